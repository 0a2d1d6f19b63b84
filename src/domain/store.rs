//! The store contract: what a persistence backend implements, and what it must guarantee.
//!
//! A backend implements [`Store`] (with [`MfaStore`], [`SessionStore`], [`PolicyStore`]) and the
//! transaction view [`MfaTx`]. It stores and loads domain values and decides nothing: IAM's
//! rules (quotas, delete conflicts, the MFA lockout gate and replay guard) are in
//! [`StoreRules`], which every `Store` has and no backend can replace. The broker calls the
//! rule-bearing operations only through `StoreRules`.
//!
//! Methods are blocking: the broker calls them from `spawn_blocking` or from one of its writer
//! threads (the audit trail, the MFA replay guard), never on the async executor. Secrets arrive
//! already sealed by the broker (`crypto`), so a backend never sees plaintext.
//!
//! # What every backend must guarantee
//!
//! 1. **Atomic operations.** An operation documented "in one transaction" makes its reads and
//!    writes as one serialisable unit: no other write lands between what it reads (a count, a
//!    device row, a failure counter) and what it writes. (The SQLite backend: `BEGIN IMMEDIATE`
//!    on its one connection. A PostgreSQL backend: `SERIALIZABLE` with retry, or row locks,
//!    `SELECT … FOR UPDATE`, on every row the operation reads, including the owner's row before
//!    counting what the owner has.) There is no check-then-act across two calls anywhere in
//!    this contract; a backend must not introduce one.
//! 2. **Durable before answered.** When a write returns `Ok`, its commit is on stable storage
//!    (SQLite `synchronous=FULL`; PostgreSQL `synchronous_commit = on`). The MFA replay guard
//!    depends on it: a consumed time step must survive a crash before the credential it unlocked
//!    leaves the broker.
//!    The same holds for an MFA check's audit record ([`MfaCheck::audit`]): it is written in the
//!    check's own unit of the transaction, so the issuance (or refusal) record of a credential is
//!    on stable storage before that credential leaves, and if the record cannot be written the
//!    unit fails and its step stays unspent.
//! 3. **All or nothing.** An operation that fails or refuses changes nothing.
//! 4. **Names.** User, group, role and policy names and device serials are unique
//!    case-insensitively, keep the case they were created with, and are looked up
//!    case-insensitively.
//! 5. **Errors.** A missing row is `NotFound` and a taken name `AlreadyExists`, with the
//!    [`Missing`]/[`Taken`] saying which (the domain words them). Any other failure is `Backend`
//!    (a statement failed) or `Unavailable` (the store cannot be opened or reached). A backend
//!    never returns `DeleteConflict` or `LimitExceeded`: those are the rules' verdicts. No error
//!    carries a secret.
//!
//! `store::contract` (tests) checks these for any backend given as `&dyn Store`.

use super::rules::{self, Conflict, Missing, Quota, Taken};
use super::{
    AccessKeyRecord, AccountCounts, Assignment, AuditEvent, BindOutcome, CodeVerdict,
    CredentialRow, EffectivePolicy, Group, LockoutState, ManagedPolicy, MfaAttempt, MfaCheck,
    MfaDevice, OwnerRef, Page, PrincipalKind, Role, SigningKeyRecord, User,
};
use crate::ids::{AccessKeyId, GroupName, KeyStatus, RoleName, UserName};
use time::OffsetDateTime;

/// A store operation that failed or was refused. The messages of the first four are AWS's
/// wording and reach the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(Missing),
    #[error("{0}")]
    AlreadyExists(Taken),
    /// Only from [`StoreRules`].
    #[error("{0}")]
    DeleteConflict(Conflict),
    /// Only from [`StoreRules`].
    #[error("{0}")]
    LimitExceeded(Quota),
    /// The store cannot be opened or reached.
    #[error("cannot open the store: {0}")]
    Unavailable(String),
    /// A statement failed.
    #[error("database error: {0}")]
    Backend(String),
    #[error("store invariant broken: {0}")]
    Internal(String),
}

/// What still refers to an entity whose deletion was asked for, counted in the deleting
/// transaction. Each operation fills the counts that apply to its entity; the rest are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dependents {
    /// A user's access keys.
    pub access_keys: u64,
    /// MFA devices enabled for a user.
    pub mfa_devices: u64,
    /// Managed policies attached to, plus inline policies embedded in, a user, group or role.
    pub policies: u64,
    /// Groups a user belongs to.
    pub groups: u64,
    /// A group's members.
    pub members: u64,
    /// Principals a managed policy is attached to.
    pub attachments: u64,
}

impl Dependents {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a delete-if-unused operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Something still refers to the entity; nothing was changed.
    Refused(Dependents),
}

/// What an insert under a quota did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capped {
    Inserted,
    /// The owner already has the limit; nothing was changed.
    AtLimit,
}

/// The reads and writes of the MFA tables available inside [`MfaStore::mfa_transaction`].
/// Reads see the writes made earlier in the same transaction.
pub trait MfaTx {
    /// `owner`'s failure counter (zero when none is recorded).
    fn lockout(&mut self, owner: &OwnerRef) -> Result<LockoutState, StoreError>;
    /// The device with this serial (case-insensitively), with its owner.
    fn device(&mut self, serial: &str) -> Result<Option<MfaDevice>, StoreError>;
    /// How many devices are enabled for `owner`.
    fn devices_enabled_for(&mut self, owner: &OwnerRef) -> Result<u64, StoreError>;
    /// The replay guard's write: records `step` (and `drift`) as the device's newest accepted
    /// step **only if** `step` is newer than its last accepted step
    /// ([`is_newer_step`](super::mfa::is_newer_step)), as one conditional write. Returns whether
    /// it did; `false` means the step is spent and nothing changed.
    fn consume_step(&mut self, device_id: &str, step: u64, drift: i64) -> Result<bool, StoreError>;
    /// Enables the device for `owner` from `at`.
    fn assign_device(
        &mut self,
        device_id: &str,
        owner: &OwnerRef,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Makes the device unassigned: no owner, no enable date, drift 0. The last accepted step
    /// is kept.
    fn release_device(&mut self, device_id: &str) -> Result<(), StoreError>;
    fn delete_device(&mut self, device_id: &str) -> Result<(), StoreError>;
    /// Adds one to `owner`'s consecutive failures and sets the last failure time to `at`.
    fn record_failure(&mut self, owner: &OwnerRef, at: i64) -> Result<(), StoreError>;
    /// Forgets `owner`'s failures.
    fn clear_failures(&mut self, owner: &OwnerRef) -> Result<(), StoreError>;
    /// Appends an audit record in this transaction: it commits with the unit's other writes, or
    /// is undone with them.
    fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError>;
}

/// One unit of work of [`MfaStore::mfa_transaction`]: its index and the transaction.
pub type MfaUnit<'a> = dyn FnMut(usize, &mut dyn MfaTx) -> Result<(), StoreError> + 'a;

/// MFA devices, the replay guard and the failure counter.
pub trait MfaStore {
    /// Inserts devices, all or none (`AlreadyExists(Taken::MfaDevice)` if a serial is taken).
    fn insert_mfa_devices(&self, devices: &[MfaDevice]) -> Result<(), StoreError>;
    fn get_mfa_device(&self, serial: &str) -> Result<Option<MfaDevice>, StoreError>;
    /// Devices enabled for `owner`, in the order they were enabled.
    fn list_mfa_devices(&self, owner: &OwnerRef) -> Result<Vec<MfaDevice>, StoreError>;
    fn list_virtual_mfa_devices(&self, filter: Assignment) -> Result<Vec<MfaDevice>, StoreError>;
    /// Runs `units` units of work, `work(0, tx)`, `work(1, tx)`, …, one after another in ONE
    /// transaction over the MFA tables, and commits once, durably, after the last.
    ///
    /// - A unit that returns `Err` has its own writes undone (a savepoint), and only its own:
    ///   later units see the state as if it had not run. A unit that returns `Ok` keeps them,
    ///   and later units see them (a step it consumed is spent for the next unit).
    /// - The answer, one `Result` per unit in order, is returned only after the COMMIT has
    ///   reached stable storage. The outer `Err` means nothing was committed (for example the
    ///   COMMIT failed, or the backend lost the transaction), and no unit may be treated as done.
    /// - The transaction is serialised against every other write to devices and failure
    ///   counters (guarantee 1 of the module): this is what makes a time step single-use.
    fn mfa_transaction(
        &self,
        units: usize,
        work: &mut MfaUnit<'_>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;
    fn mfa_lockout(&self, owner: &OwnerRef) -> Result<LockoutState, StoreError>;
    fn reset_mfa_lockout(&self, owner: &OwnerRef) -> Result<(), StoreError>;
    fn account_counts(&self) -> Result<AccountCounts, StoreError>;
    fn credential_rows(&self) -> Result<Vec<CredentialRow>, StoreError>;
    fn save_credential_report(&self, at: OffsetDateTime, csv: &[u8]) -> Result<(), StoreError>;
    fn credential_report(&self) -> Result<Option<(OffsetDateTime, Vec<u8>)>, StoreError>;
}

/// Signing keys, revocations and roles.
pub trait SessionStore {
    /// All signing keys, newest first.
    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Retires the current key (if any) and adds `new` as the current one, in one transaction.
    fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        now: OffsetDateTime,
        publish_retired_until: OffsetDateTime,
    ) -> Result<Option<String>, StoreError>;
    /// Forgets retired keys whose last token has expired.
    fn prune_signing_keys(&self, now: OffsetDateTime) -> Result<(), StoreError>;
    /// The value of `key`, inserting `value` first if there is none, in one transaction.
    fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
    fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Records that sessions of `principal_arn` issued before `revoked_before` are revoked; a
    /// later call never moves an earlier, wider revocation back.
    fn set_revocation(&self, principal_arn: &str, revoked_before: i64) -> Result<(), StoreError>;
    fn create_role(&self, role: &Role) -> Result<(), StoreError>;
    fn get_role(&self, name: &RoleName) -> Result<Option<Role>, StoreError>;
    fn get_role_by_id(&self, id: &str) -> Result<Option<Role>, StoreError>;
    fn update_trust_policy(&self, name: &RoleName, policy: &str) -> Result<(), StoreError>;
    /// In one transaction: counts the role's policies and, when it has none, deletes it.
    fn delete_role_if_unused(&self, name: &RoleName) -> Result<Deletion, StoreError>;
    fn get_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
}

/// Groups, managed and inline policies, attachments.
pub trait PolicyStore {
    fn create_group(&self, group: &Group) -> Result<(), StoreError>;
    fn get_group(&self, name: &GroupName) -> Result<Option<Group>, StoreError>;
    fn group_members(&self, group_id: &str) -> Result<Vec<User>, StoreError>;
    /// Adds a member; adding one already there changes nothing.
    fn add_user_to_group(&self, group_id: &str, user_id: &str) -> Result<(), StoreError>;
    fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> Result<(), StoreError>;
    /// In one transaction: counts the group's members and policies and, when there are none,
    /// deletes it.
    fn delete_group_if_unused(&self, group_id: &str) -> Result<Deletion, StoreError>;
    fn create_managed_policy(&self, policy: &ManagedPolicy) -> Result<(), StoreError>;
    fn get_managed_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, StoreError>;
    /// In one transaction: counts the policy's attachments and, when there are none, deletes it.
    fn delete_managed_policy_if_unused(&self, arn: &str) -> Result<Deletion, StoreError>;
    fn list_managed_policies(
        &self,
        only_attached: bool,
        path_prefix: &str,
    ) -> Result<Vec<ManagedPolicy>, StoreError>;
    /// Attaches a policy; attaching it again changes nothing.
    fn attach_policy(
        &self,
        arn: &str,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<(), StoreError>;
    fn detach_policy(
        &self,
        arn: &str,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<(), StoreError>;
    /// (name, arn) of the managed policies attached to a principal.
    fn attached_policies(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Creates or replaces (by case-insensitive name) an inline policy.
    fn put_inline_policy(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
        name: &str,
        document: &str,
    ) -> Result<(), StoreError>;
    fn get_inline_policy(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
        name: &str,
    ) -> Result<Option<(String, String)>, StoreError>;
    fn delete_inline_policy(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
        name: &str,
    ) -> Result<(), StoreError>;
    /// Every policy that applies to a user (its own and its groups') or a role.
    fn effective_policies(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<Vec<EffectivePolicy>, StoreError>;
}

/// The broker's persistent state.
pub trait Store: MfaStore + SessionStore + PolicyStore + Send + Sync + 'static {
    /// A value from the key/value metadata table.
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// First-start initialisation in one transaction: metadata and the root user's first key.
    /// Fails if the store is already initialised.
    fn initialise(
        &self,
        meta: &[(&str, &str)],
        root_key: &AccessKeyId,
        root_secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    fn create_user(&self, user: &User) -> Result<(), StoreError>;
    fn get_user(&self, name: &UserName) -> Result<Option<User>, StoreError>;
    /// Users whose path starts with `path_prefix`, by case-insensitive name, from `marker`.
    fn list_users(
        &self,
        path_prefix: &str,
        marker: Option<&str>,
        max_items: usize,
    ) -> Result<Page<User>, StoreError>;
    /// In one transaction: counts what the user owns or belongs to (access keys, enabled MFA
    /// devices, policies, groups) and, when there is nothing, deletes the user and its MFA
    /// failure counter.
    fn delete_user_if_unused(&self, name: &UserName) -> Result<Deletion, StoreError>;

    /// In one transaction: when `owner` has fewer than `limit` keys, adds this one, Active.
    fn insert_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        secret_blob: &[u8],
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Capped, StoreError>;
    /// The key with its owner, for authentication.
    fn get_access_key(&self, id: &AccessKeyId) -> Result<Option<AccessKeyRecord>, StoreError>;
    /// `owner`'s keys, oldest first.
    fn list_access_keys(&self, owner: &OwnerRef) -> Result<Vec<AccessKeyRecord>, StoreError>;
    /// Sets the status of `owner`'s key `id`; `NotFound` when `owner` has no such key.
    fn update_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        status: KeyStatus,
    ) -> Result<(), StoreError>;
    /// Deletes `owner`'s key `id`; `NotFound` when `owner` has no such key.
    fn delete_access_key(&self, owner: &OwnerRef, id: &AccessKeyId) -> Result<(), StoreError>;

    /// Appends audit records in one transaction.
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The newest `limit` audit records, newest first.
    fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;

    /// The write-health probe: a tiny durable write in its own transaction (the time of the
    /// probe, in one row). `Ok` only once it has committed, so an error means the store cannot
    /// write now (disk full, read-only file, failed COMMIT).
    fn probe_write(&self, at: OffsetDateTime) -> Result<(), StoreError>;
}

/// IAM's rules over any [`Store`]: the operations the broker calls where a rule applies.
/// Implemented once for every store (a backend cannot replace it), each in terms of the atomic
/// operations above, so no check is ever separated from its write.
pub trait StoreRules: Store {
    /// `DeleteUser`: only a user that owns nothing.
    fn delete_user(&self, name: &UserName) -> Result<(), StoreError> {
        refuse_conflicts(self.delete_user_if_unused(name)?, rules::user_conflict)
    }

    /// `CreateAccessKey`: at most [`Quota::AccessKeysPerUser`] keys per principal.
    fn create_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let quota = Quota::AccessKeysPerUser;
        match self.insert_access_key(owner, id, secret_blob, now, quota.limit())? {
            Capped::Inserted => Ok(()),
            Capped::AtLimit => Err(StoreError::LimitExceeded(quota)),
        }
    }

    /// `DeleteGroup`: only an empty group with no policies.
    fn delete_group(&self, group_id: &str) -> Result<(), StoreError> {
        refuse_conflicts(
            self.delete_group_if_unused(group_id)?,
            rules::group_conflict,
        )
    }

    /// `DeletePolicy`: only a policy attached to nobody.
    fn delete_managed_policy(&self, arn: &str) -> Result<(), StoreError> {
        refuse_conflicts(
            self.delete_managed_policy_if_unused(arn)?,
            rules::policy_conflict,
        )
    }

    /// `DeleteRole`: only a role with no policies.
    fn delete_role(&self, name: &RoleName) -> Result<(), StoreError> {
        refuse_conflicts(self.delete_role_if_unused(name)?, rules::role_conflict)
    }

    /// `EnableMfaDevice` (`resync == false`) or `ResyncMfaDevice` (`resync == true`): see
    /// [`super::mfa::bind`]. `check` runs inside the transaction.
    fn bind_mfa_device(
        &self,
        serial: &str,
        owner: &OwnerRef,
        resync: bool,
        now: OffsetDateTime,
        check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
    ) -> Result<BindOutcome, StoreError> {
        let mut outcome = BindOutcome::CodesRejected;
        in_one_transaction(self, &mut |tx| {
            outcome = super::mfa::bind(tx, serial, owner, resync, now, &mut *check)?;
            Ok(())
        })?;
        Ok(outcome)
    }

    /// `DeactivateMfaDevice`: unbinds a device from `owner` (`NotFound` if it is not theirs).
    fn deactivate_mfa_device(&self, serial: &str, owner: &OwnerRef) -> Result<(), StoreError> {
        in_one_transaction(self, &mut |tx| super::mfa::deactivate(tx, serial, owner))
    }

    /// `DeleteVirtualMfaDevice`: removes an unassigned virtual device.
    fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), StoreError> {
        in_one_transaction(self, &mut |tx| super::mfa::delete_virtual(tx, serial))
    }

    /// One MFA authentication ([`super::mfa::authenticate`]) and its audit record
    /// ([`MfaCheck::audit`]) in one durable transaction.
    fn mfa_authenticate(&self, req: &mut MfaCheck) -> Result<MfaAttempt, StoreError> {
        let mut attempt = None;
        in_one_transaction(self, &mut |tx| {
            attempt = Some(authenticate(tx, req)?);
            Ok(())
        })?;
        attempt.ok_or_else(|| StoreError::Internal("the MFA check gave no answer".into()))
    }

    /// Several MFA authentications in one transaction, one after another, exactly as if each
    /// were a separate [`mfa_authenticate`](Self::mfa_authenticate) in that order (a later
    /// check sees the steps and failure counts recorded by earlier ones), each answered on its
    /// own, and all committed with one durable commit. The outer `Err` means nothing was
    /// recorded and no request may be treated as accepted.
    ///
    /// Each check's audit record ([`MfaCheck::audit`]) is appended in that check's own unit,
    /// after its outcome: it commits with the step or the failure count, or not at all. A check
    /// whose record cannot be written answers `Err` and leaves its step unspent and its
    /// failure uncounted, so the same code can be tried again.
    fn mfa_authenticate_batch(
        &self,
        reqs: &mut [MfaCheck],
    ) -> Result<Vec<Result<MfaAttempt, StoreError>>, StoreError> {
        let mut attempts: Vec<Option<MfaAttempt>> = vec![None; reqs.len()];
        let units = self.mfa_transaction(reqs.len(), &mut |i, tx| {
            let (Some(r), Some(slot)) = (reqs.get_mut(i), attempts.get_mut(i)) else {
                return Err(StoreError::Internal("an MFA unit out of range".into()));
            };
            *slot = Some(authenticate(tx, r)?);
            Ok(())
        })?;
        if units.len() != attempts.len() {
            return Err(StoreError::Internal(
                "the MFA transaction answered the wrong number of units".into(),
            ));
        }
        Ok(units
            .into_iter()
            .zip(attempts)
            .map(|(unit, attempt)| {
                unit.and_then(|()| {
                    attempt.ok_or_else(|| StoreError::Internal("an MFA unit gave no answer".into()))
                })
            })
            .collect())
    }
}

impl<S: Store + ?Sized> StoreRules for S {}

/// A delete-if-unused outcome as the caller sees it: `DeleteConflict` with `rule`'s reason.
fn refuse_conflicts(
    deletion: Deletion,
    rule: fn(&Dependents) -> Option<Conflict>,
) -> Result<(), StoreError> {
    match deletion {
        Deletion::Deleted => Ok(()),
        Deletion::Refused(d) => Err(rule(&d).map_or_else(
            || StoreError::Internal(format!("a deletion was refused for no known reason: {d:?}")),
            StoreError::DeleteConflict,
        )),
    }
}

/// One check and, in the same unit of the transaction, its audit record.
fn authenticate(tx: &mut dyn MfaTx, r: &mut MfaCheck) -> Result<MfaAttempt, StoreError> {
    let attempt =
        super::mfa::authenticate(tx, &r.owner, &r.serial, r.now, &r.policy, &mut *r.check)?;
    if let Some(event) = r.audit.as_ref().and_then(|a| a.record_for(&attempt)) {
        tx.append_audit(&event)?;
    }
    Ok(attempt)
}

/// Runs `work` as the only unit of an MFA transaction and returns its result.
fn in_one_transaction<S: MfaStore + ?Sized>(
    store: &S,
    work: &mut dyn FnMut(&mut dyn MfaTx) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut units = store.mfa_transaction(1, &mut |_, tx| work(tx))?;
    match (units.pop(), units.is_empty()) {
        (Some(unit), true) => unit,
        _ => Err(StoreError::Internal(
            "the MFA transaction answered the wrong number of units".into(),
        )),
    }
}
