//! Persistence. The only module with SQL; it returns domain types, never rows.
//!
//! [`Store`] is the seam for a second backend; [`sqlite::SqliteStore`] is the embedded default.
//! Methods are blocking: the broker calls them from `spawn_blocking` or from one of its writer
//! threads (the audit trail, the MFA replay guard), never on the async executor.
//! Secrets arrive here already sealed by the broker (`crypto`), so the store never sees plaintext.

pub mod migrations;
pub mod sqlite;
mod sqlite_mfa;
mod sqlite_policies;
mod sqlite_sessions;

use crate::ids::{AccessKeyId, IamPath, KeyStatus, UserName};
use time::OffsetDateTime;

/// Store failures. The message strings of the first four are AWS's wording and reach the caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("cannot open the store: {0}")]
    Open(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store invariant broken: {0}")]
    Internal(String),
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The unique id (`AIDA...`).
    pub id: String,
    pub name: UserName,
    pub path: IamPath,
    pub created: OffsetDateTime,
}

/// Who a long-term access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Root,
    User(User),
}

impl Owner {
    /// The identity string that secrets of this owner are bound to.
    pub fn binding_id(&self) -> &str {
        match self {
            Self::Root => "root",
            Self::User(u) => &u.id,
        }
    }
}

/// A reference to a principal that can own keys, without its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    Root,
    /// The user's unique id.
    User(String),
}

/// A long-term access key as stored: the secret is an AEAD blob.
#[derive(Debug, Clone)]
pub struct AccessKeyRecord {
    pub id: AccessKeyId,
    pub owner: Owner,
    pub secret_blob: Vec<u8>,
    pub status: KeyStatus,
    pub created: OffsetDateTime,
}

/// One page of a listing; `next_marker` is set when more items follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// How a call or an authentication attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One audit record. Never carries secrets, signatures, seeds or codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    /// The caller's ARN when it was established.
    pub principal: Option<String>,
    /// The access key id the caller presented, if any.
    pub access_key_id: Option<String>,
    /// The IAM action, e.g. `iam:CreateUser`, or the RPC path when it is unknown.
    pub action: String,
    /// The peer address.
    pub source: Option<String>,
    pub outcome: Outcome,
    /// The AWS error code on failure.
    pub error_code: Option<String>,
    /// Extra non-secret detail (e.g. why an authentication failed).
    pub detail: Option<String>,
}

/// Physical or virtual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Virtual,
    Hardware,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Virtual => "virtual",
            Self::Hardware => "hardware",
        }
    }
}

/// An MFA device as stored. The seed is an AEAD blob bound to `id` and `serial`.
#[derive(Debug, Clone)]
pub struct MfaDevice {
    /// Internal identity, random; part of the seed's associated data.
    pub id: String,
    /// The ARN of a virtual device, or the vendor serial of a hardware token.
    pub serial: String,
    pub kind: DeviceKind,
    pub seed_blob: Vec<u8>,
    pub params: crate::mfa::TotpParams,
    /// Whom the device is enabled for; `None` when unassigned.
    pub owner: Option<Owner>,
    pub enabled_at: Option<OffsetDateTime>,
    /// The newest time step ever accepted for this device.
    pub last_step: Option<u64>,
    /// Recorded clock drift, in steps.
    pub drift: i64,
    pub created: OffsetDateTime,
}

/// Which virtual devices to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    Assigned,
    Unassigned,
    Any,
}

/// What a code check decided about a device, computed inside the store's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The code matched `step`, newer than any accepted before; `drift` is set by enable/resync.
    Accepted {
        step: u64,
        drift: Option<i64>,
    },
    /// The code matched a step already used (or older).
    Replayed,
    NoMatch,
    /// The seed did not decrypt: a damaged or moved row.
    Undecryptable,
}

/// Why an MFA authentication was refused. The caller always gets the same answer; this goes to
/// the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRefusal {
    WrongCode,
    Replayed,
    Locked,
    Throttled,
    UnknownDevice,
    /// A device that exists but is not enabled for this principal.
    ForeignDevice,
    Undecryptable,
}

impl MfaRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongCode => "wrong_code",
            Self::Replayed => "otp_replay",
            Self::Locked => "mfa_locked",
            Self::Throttled => "mfa_throttled",
            Self::UnknownDevice => "unknown_device",
            Self::ForeignDevice => "foreign_device",
            Self::Undecryptable => "seed_undecryptable",
        }
    }
}

/// The result of an MFA authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaAttempt {
    Accepted { step: u64, serial: String },
    Refused(MfaRefusal),
}

/// The result of binding (enable) or re-centring (resync) a device with two codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    Done,
    CodesRejected,
}

/// One MFA authentication queued for [`MfaStore::mfa_authenticate_batch`]: the arguments of
/// [`MfaStore::mfa_authenticate`], owned, with a check that can cross to a writer thread.
pub struct MfaCheck {
    pub owner: OwnerRef,
    pub serial: String,
    /// Unix seconds, for the throttling gate and the failure counter.
    pub now: i64,
    pub policy: crate::mfa::lockout::LockoutPolicy,
    /// Runs inside the transaction with the device row; it holds the code, so it is never printed.
    pub check: Box<dyn FnMut(&MfaDevice) -> CodeVerdict + Send>,
}

impl std::fmt::Debug for MfaCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaCheck")
            .field("owner", &self.owner)
            .field("serial", &self.serial)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A principal's MFA failure counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    pub failures: u32,
    pub last_failure_at: Option<i64>,
}

/// Counts for `GetAccountSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountCounts {
    pub users: i64,
    pub mfa_devices: i64,
    pub mfa_devices_in_use: i64,
    pub root_mfa_devices: i64,
    pub root_access_keys: i64,
}

/// One principal's line of the credential report.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    /// `None` for the root user.
    pub user: Option<User>,
    pub mfa_active: bool,
    /// Up to two keys, oldest first: (active, created).
    pub keys: Vec<(bool, OffsetDateTime)>,
}

/// MFA devices, the replay guard and the failure counter.
pub trait MfaStore {
    /// Inserts devices, all or none (`EntityAlreadyExists` if any serial is taken).
    fn insert_mfa_devices(&self, devices: &[MfaDevice]) -> Result<(), StoreError>;
    fn get_mfa_device(&self, serial: &str) -> Result<Option<MfaDevice>, StoreError>;
    /// Devices enabled for `owner`.
    fn list_mfa_devices(&self, owner: &OwnerRef) -> Result<Vec<MfaDevice>, StoreError>;
    fn list_virtual_mfa_devices(&self, filter: Assignment) -> Result<Vec<MfaDevice>, StoreError>;
    /// Enable (`resync == false`: the device must be unassigned and `owner` under the device
    /// quota) or resync (`resync == true`: the device must be enabled for `owner`). `check` runs
    /// inside the transaction; on `Accepted` the step and drift are recorded in it.
    fn bind_mfa_device(
        &self,
        serial: &str,
        owner: &OwnerRef,
        resync: bool,
        now: OffsetDateTime,
        check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
    ) -> Result<BindOutcome, StoreError>;
    /// Unbinds a device from `owner` (`NotFound` if it is not enabled for `owner`).
    fn deactivate_mfa_device(&self, serial: &str, owner: &OwnerRef) -> Result<(), StoreError>;
    /// Removes an unassigned virtual device.
    fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), StoreError>;
    /// One MFA authentication for `owner` with the device `serial`: throttling gate, ownership,
    /// `check`, and the replay guard / failure counter, all in one durable transaction.
    fn mfa_authenticate(
        &self,
        owner: &OwnerRef,
        serial: &str,
        now: i64,
        policy: &crate::mfa::lockout::LockoutPolicy,
        check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
    ) -> Result<MfaAttempt, StoreError>;
    /// Several MFA authentications, one after another, exactly as if each were a separate
    /// [`mfa_authenticate`](Self::mfa_authenticate) in that order (a later check sees the steps
    /// and failure counts recorded by earlier ones), each answered on its own. The outer `Err`
    /// means nothing was recorded and no request may be treated as accepted. A backend that can
    /// commit them together (one durable commit for the batch) should; this default does not.
    fn mfa_authenticate_batch(
        &self,
        reqs: &mut [MfaCheck],
    ) -> Result<Vec<Result<MfaAttempt, StoreError>>, StoreError> {
        Ok(reqs
            .iter_mut()
            .map(|r| self.mfa_authenticate(&r.owner, &r.serial, r.now, &r.policy, &mut *r.check))
            .collect())
    }
    fn mfa_lockout(&self, owner: &OwnerRef) -> Result<LockoutState, StoreError>;
    fn reset_mfa_lockout(&self, owner: &OwnerRef) -> Result<(), StoreError>;
    fn account_counts(&self) -> Result<AccountCounts, StoreError>;
    fn credential_rows(&self) -> Result<Vec<CredentialRow>, StoreError>;
    fn save_credential_report(&self, at: OffsetDateTime, csv: &[u8]) -> Result<(), StoreError>;
    fn credential_report(&self) -> Result<Option<(OffsetDateTime, Vec<u8>)>, StoreError>;
}

/// A session-token signing key as stored.
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_blob: Vec<u8>,
    pub created: OffsetDateTime,
    pub retired: Option<OffsetDateTime>,
    pub publish_until: Option<OffsetDateTime>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The unique id (`AROA...`).
    pub id: String,
    pub name: crate::ids::RoleName,
    pub path: IamPath,
    pub trust_policy: String,
    pub max_session_duration: i64,
    pub description: String,
    pub created: OffsetDateTime,
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
    /// The value of `key`, inserting `value` first if there is none.
    fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
    fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError>;
    fn set_revocation(&self, principal_arn: &str, revoked_before: i64) -> Result<(), StoreError>;
    fn create_role(&self, role: &Role) -> Result<(), StoreError>;
    fn get_role(&self, name: &crate::ids::RoleName) -> Result<Option<Role>, StoreError>;
    fn get_role_by_id(&self, id: &str) -> Result<Option<Role>, StoreError>;
    fn update_trust_policy(
        &self,
        name: &crate::ids::RoleName,
        policy: &str,
    ) -> Result<(), StoreError>;
    fn delete_role(&self, name: &crate::ids::RoleName) -> Result<(), StoreError>;
    fn get_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
}

/// What a policy can be attached to or embedded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Group,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Role => "role",
        }
    }
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: crate::ids::GroupName,
    pub path: IamPath,
    pub created: OffsetDateTime,
}

/// A customer-managed policy (the broker keeps one version, `v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub id: String,
    pub arn: String,
    pub name: crate::ids::PolicyName,
    pub path: IamPath,
    pub document: String,
    pub description: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// How many principals it is attached to (filled by listings).
    pub attachment_count: i64,
}

/// One policy document that applies to a principal, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// The managed policy ARN, or the inline policy's name.
    pub source_id: String,
    /// `user`, `group`, `role` for inline policies; `user-managed` for managed ones.
    pub source_type: &'static str,
    pub document: String,
}

/// Groups, managed and inline policies, attachments.
pub trait PolicyStore {
    fn create_group(&self, group: &Group) -> Result<(), StoreError>;
    fn get_group(&self, name: &crate::ids::GroupName) -> Result<Option<Group>, StoreError>;
    fn group_members(&self, group_id: &str) -> Result<Vec<User>, StoreError>;
    fn add_user_to_group(&self, group_id: &str, user_id: &str) -> Result<(), StoreError>;
    fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> Result<(), StoreError>;
    /// Deletes an empty group with no policies (`DeleteConflict` otherwise).
    fn delete_group(&self, group_id: &str) -> Result<(), StoreError>;
    fn create_managed_policy(&self, policy: &ManagedPolicy) -> Result<(), StoreError>;
    fn get_managed_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, StoreError>;
    /// Deletes an unattached policy (`DeleteConflict` otherwise).
    fn delete_managed_policy(&self, arn: &str) -> Result<(), StoreError>;
    fn list_managed_policies(
        &self,
        only_attached: bool,
        path_prefix: &str,
    ) -> Result<Vec<ManagedPolicy>, StoreError>;
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
    fn list_users(
        &self,
        path_prefix: &str,
        marker: Option<&str>,
        max_items: usize,
    ) -> Result<Page<User>, StoreError>;
    /// Deletes a user that owns nothing; AWS's `DeleteConflict` otherwise.
    fn delete_user(&self, name: &UserName) -> Result<(), StoreError>;

    /// Adds a key for `owner`, refusing a third one (`LimitExceeded`).
    fn create_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The key with its owner, for authentication.
    fn get_access_key(&self, id: &AccessKeyId) -> Result<Option<AccessKeyRecord>, StoreError>;
    fn list_access_keys(&self, owner: &OwnerRef) -> Result<Vec<AccessKeyRecord>, StoreError>;
    /// Sets the status of `owner`'s key `id`; `NotFound` when `owner` has no such key.
    fn update_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        status: KeyStatus,
    ) -> Result<(), StoreError>;
    fn delete_access_key(&self, owner: &OwnerRef, id: &AccessKeyId) -> Result<(), StoreError>;

    /// Appends audit records in one transaction.
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The newest `limit` audit records, newest first.
    fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
}
