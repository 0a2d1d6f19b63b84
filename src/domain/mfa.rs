//! MFA devices and the rules of using them: the lockout gate, the replay guard, and the
//! conditions for enabling, re-synchronising, deactivating and deleting a device.
//!
//! The rules run inside a backend's transaction ([`MfaTx`], opened by
//! [`MfaStore::mfa_transaction`](super::MfaStore::mfa_transaction)): every read they decide on
//! and every write they make commit together, so two requests can never both act on the same
//! state. They are written once here; a backend only supplies the reads and writes.
//!
//! SECURITY: the replay guard is [`is_newer_step`]: a device accepts a time step only if it is
//! newer than every step it accepted before. The code check (`CodeVerdict`) applies it to the
//! device row it was given, and the backend applies it again in the write
//! ([`MfaTx::consume_step`]), so a step is spent at most once even if a check were wrong.

use super::rules::{Conflict, Missing, Quota, Taken};
use super::store::{MfaTx, StoreError};
use super::{AuditEvent, Owner, OwnerRef};
use crate::mfa::lockout::{Gate, LockoutPolicy};
use time::OffsetDateTime;

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

impl MfaDevice {
    /// Whether the device is enabled for `owner`.
    pub fn is_enabled_for(&self, owner: &OwnerRef) -> bool {
        self.owner.as_ref().is_some_and(|o| o.is(owner))
    }
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

/// One MFA authentication queued for
/// [`StoreRules::mfa_authenticate_batch`](super::StoreRules::mfa_authenticate_batch): the
/// arguments of [`StoreRules::mfa_authenticate`](super::StoreRules::mfa_authenticate), owned,
/// with a check that can cross to a writer thread.
pub struct MfaCheck {
    pub owner: OwnerRef,
    pub serial: String,
    /// Unix seconds, for the throttling gate and the failure counter.
    pub now: i64,
    pub policy: LockoutPolicy,
    /// Runs inside the transaction with the device row; it holds the code, so it is never printed.
    pub check: Box<dyn FnMut(&MfaDevice) -> CodeVerdict + Send>,
    /// The audit record of this attempt, written in the same transaction as the step it consumes
    /// or the failure it counts (see [`MfaAudit`]); `None` writes none.
    pub audit: Option<MfaAudit>,
}

/// The audit records an MFA check writes with its outcome, so that a credential unlocked by the
/// code never leaves without its issuance record on disk: if the record cannot be written, the
/// check fails and consumes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaAudit {
    /// Written when the code is accepted: the record of what the call issued (or refused for
    /// another reason, decided before the check). `None` writes nothing on acceptance.
    pub on_accept: Option<AuditEvent>,
    /// Written when the code is refused, its detail set to `mfa refused: <reason>`.
    pub on_refusal: AuditEvent,
}

impl MfaAudit {
    /// The record for `attempt`, if one is to be written.
    pub fn record_for(&self, attempt: &MfaAttempt) -> Option<AuditEvent> {
        match attempt {
            MfaAttempt::Accepted { .. } => self.on_accept.clone(),
            MfaAttempt::Refused(reason) => Some(AuditEvent {
                detail: Some(format!("mfa refused: {}", reason.as_str())),
                ..self.on_refusal.clone()
            }),
        }
    }
}

debug_only!(MfaCheck, "MfaCheck" { owner, serial, now, audit });

/// A principal's MFA failure counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    pub failures: u32,
    pub last_failure_at: Option<i64>,
}

/// The replay guard: may a device whose newest accepted step is `last` accept `step`?
pub fn is_newer_step(last: Option<u64>, step: u64) -> bool {
    last.is_none_or(|last| step > last)
}

/// One MFA authentication: the throttling gate, the device and its owner, `check`, then either
/// the step is consumed and the failure count cleared, or a failure is counted. A gated attempt
/// (locked or too soon) is neither checked nor counted. Runs inside the caller's transaction.
pub fn authenticate(
    tx: &mut dyn MfaTx,
    owner: &OwnerRef,
    serial: &str,
    now: i64,
    policy: &LockoutPolicy,
    check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
) -> Result<MfaAttempt, StoreError> {
    let state = tx.lockout(owner)?;
    match policy.gate(state.failures, state.last_failure_at, now) {
        Gate::Locked => return Ok(MfaAttempt::Refused(MfaRefusal::Locked)),
        Gate::Delayed { .. } => return Ok(MfaAttempt::Refused(MfaRefusal::Throttled)),
        Gate::Open => {}
    }
    let refusal = match tx.device(serial)? {
        None => MfaRefusal::UnknownDevice,
        Some(d) if !d.is_enabled_for(owner) => MfaRefusal::ForeignDevice,
        Some(d) => match check(&d) {
            CodeVerdict::Accepted { step, drift } => {
                if tx.consume_step(&d.id, step, drift.unwrap_or(d.drift))? {
                    tx.clear_failures(owner)?;
                    return Ok(MfaAttempt::Accepted {
                        step,
                        serial: d.serial,
                    });
                }
                MfaRefusal::Replayed
            }
            CodeVerdict::Replayed => MfaRefusal::Replayed,
            CodeVerdict::NoMatch => MfaRefusal::WrongCode,
            CodeVerdict::Undecryptable => MfaRefusal::Undecryptable,
        },
    };
    tx.record_failure(owner, now)?;
    Ok(MfaAttempt::Refused(refusal))
}

/// Enable (`resync == false`) or resync (`resync == true`) `serial` for `owner` with `check`
/// (two consecutive codes). Enable needs an unassigned device and `owner` under its device
/// quota; resync needs the device enabled for `owner`. These are decided before the codes are
/// looked at, in IAM's order; on acceptance the step and drift are recorded (and, for enable,
/// the owner). Runs inside the caller's transaction; a refusal writes nothing.
pub fn bind(
    tx: &mut dyn MfaTx,
    serial: &str,
    owner: &OwnerRef,
    resync: bool,
    now: OffsetDateTime,
    check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
) -> Result<BindOutcome, StoreError> {
    let no_such_device = || StoreError::NotFound(Missing::MfaDevice(serial.to_owned()));
    let device = tx.device(serial)?.ok_or_else(no_such_device)?;
    if resync {
        if !device.is_enabled_for(owner) {
            return Err(no_such_device());
        }
    } else {
        if device.owner.is_some() {
            return Err(StoreError::AlreadyExists(Taken::MfaDeviceInUse));
        }
        let quota = Quota::MfaDevicesPerUser;
        if tx.devices_enabled_for(owner)? >= u64::from(quota.limit()) {
            return Err(StoreError::LimitExceeded(quota));
        }
    }
    let CodeVerdict::Accepted { step, drift } = check(&device) else {
        return Ok(BindOutcome::CodesRejected);
    };
    if !tx.consume_step(&device.id, step, drift.unwrap_or(device.drift))? {
        return Ok(BindOutcome::CodesRejected);
    }
    if !resync {
        tx.assign_device(&device.id, owner, now)?;
    }
    Ok(BindOutcome::Done)
}

/// Unbinds `serial` from `owner` (`NotFound` unless it is enabled for `owner`).
pub fn deactivate(tx: &mut dyn MfaTx, serial: &str, owner: &OwnerRef) -> Result<(), StoreError> {
    let device = tx
        .device(serial)?
        .filter(|d| d.is_enabled_for(owner))
        .ok_or_else(|| StoreError::NotFound(Missing::MfaDevice(serial.to_owned())))?;
    // INVARIANT: the device keeps its last accepted step: a code once used can never be used
    // again, by anyone the device is enabled for next.
    tx.release_device(&device.id)
}

/// Removes the virtual device `serial`, which must not be enabled for anyone.
pub fn delete_virtual(tx: &mut dyn MfaTx, serial: &str) -> Result<(), StoreError> {
    let device = tx
        .device(serial)?
        .filter(|d| d.kind == DeviceKind::Virtual)
        .ok_or_else(|| StoreError::NotFound(Missing::MfaDevice(serial.to_owned())))?;
    if device.owner.is_some() {
        return Err(StoreError::DeleteConflict(Conflict::MfaDeviceInUse));
    }
    tx.delete_device(&device.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::User;
    use crate::ids::{IamPath, UserName};
    use std::collections::HashMap;

    /// An in-memory transaction: the rules' view of a backend, with a log of every write.
    #[derive(Default)]
    struct FakeTx {
        devices: Vec<MfaDevice>,
        lockout: HashMap<String, LockoutState>,
        writes: Vec<String>,
    }

    fn key(owner: &OwnerRef) -> String {
        match owner {
            OwnerRef::Root => "root".into(),
            OwnerRef::User(id) => id.clone(),
        }
    }

    impl FakeTx {
        fn find(&mut self, id: &str) -> Result<&mut MfaDevice, StoreError> {
            self.devices
                .iter_mut()
                .find(|d| d.id == id)
                .ok_or_else(|| StoreError::Internal("no such device id".into()))
        }
    }

    impl MfaTx for FakeTx {
        fn lockout(&mut self, owner: &OwnerRef) -> Result<LockoutState, StoreError> {
            Ok(self.lockout.get(&key(owner)).copied().unwrap_or_default())
        }
        fn device(&mut self, serial: &str) -> Result<Option<MfaDevice>, StoreError> {
            Ok(self
                .devices
                .iter()
                .find(|d| d.serial.eq_ignore_ascii_case(serial))
                .cloned())
        }
        fn devices_enabled_for(&mut self, owner: &OwnerRef) -> Result<u64, StoreError> {
            Ok(self
                .devices
                .iter()
                .filter(|d| d.is_enabled_for(owner))
                .count() as u64)
        }
        fn consume_step(&mut self, id: &str, step: u64, drift: i64) -> Result<bool, StoreError> {
            let d = self.find(id)?;
            if !is_newer_step(d.last_step, step) {
                return Ok(false);
            }
            d.last_step = Some(step);
            d.drift = drift;
            self.writes.push(format!("consume {id} {step} {drift}"));
            Ok(true)
        }
        fn assign_device(
            &mut self,
            id: &str,
            owner: &OwnerRef,
            at: OffsetDateTime,
        ) -> Result<(), StoreError> {
            let o = match owner {
                OwnerRef::Root => Owner::Root,
                OwnerRef::User(uid) => Owner::User(user(uid)),
            };
            let d = self.find(id)?;
            d.owner = Some(o);
            d.enabled_at = Some(at);
            self.writes.push(format!("assign {id}"));
            Ok(())
        }
        fn release_device(&mut self, id: &str) -> Result<(), StoreError> {
            let d = self.find(id)?;
            d.owner = None;
            d.enabled_at = None;
            d.drift = 0;
            self.writes.push(format!("release {id}"));
            Ok(())
        }
        fn delete_device(&mut self, id: &str) -> Result<(), StoreError> {
            self.devices.retain(|d| d.id != id);
            self.writes.push(format!("delete {id}"));
            Ok(())
        }
        fn record_failure(&mut self, owner: &OwnerRef, at: i64) -> Result<(), StoreError> {
            let s = self.lockout.entry(key(owner)).or_default();
            s.failures += 1;
            s.last_failure_at = Some(at);
            self.writes.push(format!("failure {}", key(owner)));
            Ok(())
        }
        fn clear_failures(&mut self, owner: &OwnerRef) -> Result<(), StoreError> {
            self.lockout.remove(&key(owner));
            self.writes.push(format!("clear {}", key(owner)));
            Ok(())
        }
        fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
            self.writes.push(format!("audit {}", event.action));
            Ok(())
        }
    }

    const NOW: i64 = 1_780_000_000;

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: UserName::parse(id).unwrap(),
            path: IamPath::root(),
            created: at(),
        }
    }

    fn alice() -> OwnerRef {
        OwnerRef::User("alice".into())
    }

    fn device(serial: &str, owner: Option<&str>, last_step: Option<u64>) -> MfaDevice {
        MfaDevice {
            id: format!("id-{serial}"),
            serial: serial.into(),
            kind: DeviceKind::Virtual,
            seed_blob: vec![],
            params: crate::mfa::TotpParams::AWS,
            owner: owner.map(|o| Owner::User(user(o))),
            enabled_at: owner.map(|_| at()),
            last_step,
            drift: 3,
            created: at(),
        }
    }

    fn tx_with(devices: Vec<MfaDevice>) -> FakeTx {
        FakeTx {
            devices,
            ..FakeTx::default()
        }
    }

    /// A check that must not run.
    fn never(_: &MfaDevice) -> CodeVerdict {
        panic!("the code was checked")
    }

    fn accept(step: u64) -> impl FnMut(&MfaDevice) -> CodeVerdict {
        move |_| CodeVerdict::Accepted { step, drift: None }
    }

    fn auth(
        tx: &mut FakeTx,
        serial: &str,
        policy: &LockoutPolicy,
        check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
    ) -> MfaAttempt {
        authenticate(tx, &alice(), serial, NOW, policy, check).unwrap()
    }

    #[test]
    fn only_a_newer_step_is_accepted() {
        assert!(is_newer_step(None, 0));
        assert!(is_newer_step(Some(4), 5));
        assert!(!is_newer_step(Some(5), 5));
        assert!(!is_newer_step(Some(6), 5));
    }

    #[test]
    fn a_locked_or_throttled_principal_is_neither_checked_nor_counted() {
        let policy = LockoutPolicy {
            free_failures: 1,
            max_delay_secs: 300,
            lock_at: 3,
        };
        for (failures, refusal) in [(3, MfaRefusal::Locked), (2, MfaRefusal::Throttled)] {
            let mut tx = tx_with(vec![device("alice-phone", Some("alice"), Some(1))]);
            let state = LockoutState {
                failures,
                last_failure_at: Some(NOW),
            };
            tx.lockout.insert("alice".into(), state);
            let got = auth(&mut tx, "alice-phone", &policy, &mut never);
            assert_eq!(got, MfaAttempt::Refused(refusal));
            assert!(tx.writes.is_empty(), "{:?}", tx.writes);
            assert_eq!(tx.lockout["alice"], state);
        }
    }

    #[test]
    fn unknown_and_foreign_devices_count_as_failures_without_a_check() {
        let mut tx = tx_with(vec![device("bob-phone-1", Some("bob"), Some(1))]);
        let policy = LockoutPolicy::default();
        let unknown = auth(&mut tx, "nobody-phone", &policy, &mut never);
        let foreign = auth(&mut tx, "BOB-PHONE-1", &policy, &mut never);
        assert_eq!(unknown, MfaAttempt::Refused(MfaRefusal::UnknownDevice));
        assert_eq!(foreign, MfaAttempt::Refused(MfaRefusal::ForeignDevice));
        assert_eq!(tx.lockout["alice"].failures, 2);
        assert_eq!(tx.lockout["alice"].last_failure_at, Some(NOW));
        assert_eq!(tx.devices[0].last_step, Some(1), "bob's device untouched");
    }

    #[test]
    fn an_accepted_code_consumes_its_step_and_clears_the_count() {
        let mut tx = tx_with(vec![device("alice-phone", Some("alice"), Some(1))]);
        tx.lockout.insert(
            "alice".into(),
            LockoutState {
                failures: 2,
                last_failure_at: Some(NOW - 100),
            },
        );
        let got = auth(
            &mut tx,
            "Alice-Phone",
            &LockoutPolicy::default(),
            &mut accept(7),
        );
        assert_eq!(
            got,
            MfaAttempt::Accepted {
                step: 7,
                serial: "alice-phone".into()
            },
            "the stored serial, not the spelling asked for"
        );
        assert_eq!(tx.devices[0].last_step, Some(7));
        assert_eq!(
            tx.devices[0].drift, 3,
            "no drift given: the recorded one stays"
        );
        assert!(!tx.lockout.contains_key("alice"));
    }

    #[test]
    fn a_step_the_guard_refuses_is_a_replay_even_if_the_check_accepted_it() {
        let mut tx = tx_with(vec![device("alice-phone", Some("alice"), Some(9))]);
        let got = auth(
            &mut tx,
            "alice-phone",
            &LockoutPolicy::default(),
            &mut accept(9),
        );
        assert_eq!(got, MfaAttempt::Refused(MfaRefusal::Replayed));
        assert_eq!(tx.devices[0].last_step, Some(9));
        assert_eq!(tx.lockout["alice"].failures, 1);
    }

    #[test]
    fn wrong_replayed_and_undecryptable_codes_count() {
        let mut tx = tx_with(vec![device("alice-phone", Some("alice"), Some(1))]);
        let policy = LockoutPolicy::default();
        for (verdict, refusal) in [
            (CodeVerdict::NoMatch, MfaRefusal::WrongCode),
            (CodeVerdict::Replayed, MfaRefusal::Replayed),
            (CodeVerdict::Undecryptable, MfaRefusal::Undecryptable),
        ] {
            let got = auth(&mut tx, "alice-phone", &policy, &mut |_| verdict);
            assert_eq!(got, MfaAttempt::Refused(refusal));
        }
        assert_eq!(tx.lockout["alice"].failures, 3);
        assert_eq!(tx.devices[0].last_step, Some(1));
    }

    fn full_quota() -> Vec<MfaDevice> {
        let limit = Quota::MfaDevicesPerUser.limit();
        (0..limit)
            .map(|i| device(&format!("alice-phone-{i}"), Some("alice"), Some(1)))
            .chain([device("spare-phone", None, None)])
            .collect()
    }

    #[test]
    fn enable_refuses_before_looking_at_the_codes_in_iams_order() {
        let bind_to_alice =
            |tx: &mut FakeTx, serial: &str| bind(tx, serial, &alice(), false, at(), &mut never);
        let mut tx = tx_with(full_quota());
        assert_eq!(
            bind_to_alice(&mut tx, "no-such-phone"),
            Err(StoreError::NotFound(Missing::MfaDevice(
                "no-such-phone".into()
            )))
        );
        assert_eq!(
            bind_to_alice(&mut tx, "alice-phone-0"),
            Err(StoreError::AlreadyExists(Taken::MfaDeviceInUse))
        );
        assert_eq!(
            bind_to_alice(&mut tx, "spare-phone"),
            Err(StoreError::LimitExceeded(Quota::MfaDevicesPerUser))
        );
        assert!(tx.writes.is_empty(), "{:?}", tx.writes);
    }

    #[test]
    fn enable_records_step_drift_and_owner_and_rejected_codes_write_nothing() {
        let mut tx = tx_with(vec![device("spare-phone", None, None)]);
        let rejected = bind(&mut tx, "spare-phone", &alice(), false, at(), &mut |_| {
            CodeVerdict::NoMatch
        });
        assert_eq!(rejected, Ok(BindOutcome::CodesRejected));
        assert!(tx.writes.is_empty());
        let done = bind(&mut tx, "spare-phone", &alice(), false, at(), &mut |_| {
            CodeVerdict::Accepted {
                step: 40,
                drift: Some(-1),
            }
        });
        assert_eq!(done, Ok(BindOutcome::Done));
        let d = &tx.devices[0];
        assert!(d.is_enabled_for(&alice()));
        assert_eq!(
            (d.last_step, d.drift, d.enabled_at),
            (Some(40), -1, Some(at()))
        );
    }

    #[test]
    fn resync_needs_the_owners_device_and_a_newer_step() {
        let mut tx = tx_with(vec![device("bob-phone-1", Some("bob"), Some(10))]);
        let foreign = bind(&mut tx, "bob-phone-1", &alice(), true, at(), &mut never);
        assert_eq!(
            foreign,
            Err(StoreError::NotFound(Missing::MfaDevice(
                "bob-phone-1".into()
            )))
        );
        let bob = OwnerRef::User("bob".into());
        let stale = bind(&mut tx, "bob-phone-1", &bob, true, at(), &mut accept(10));
        assert_eq!(stale, Ok(BindOutcome::CodesRejected));
        let fresh = bind(&mut tx, "bob-phone-1", &bob, true, at(), &mut accept(12));
        assert_eq!(fresh, Ok(BindOutcome::Done));
        assert_eq!(
            tx.writes,
            ["consume id-bob-phone-1 12 3"],
            "no owner change"
        );
    }

    #[test]
    fn deactivate_keeps_the_spent_step_and_delete_needs_an_unassigned_virtual_device() {
        let mut hardware = device("GAKT00000001", None, None);
        hardware.kind = DeviceKind::Hardware;
        let mut tx = tx_with(vec![
            device("alice-phone", Some("alice"), Some(33)),
            hardware,
        ]);
        assert_eq!(
            delete_virtual(&mut tx, "alice-phone"),
            Err(StoreError::DeleteConflict(Conflict::MfaDeviceInUse))
        );
        assert!(matches!(
            deactivate(&mut tx, "alice-phone", &OwnerRef::Root),
            Err(StoreError::NotFound(_))
        ));
        deactivate(&mut tx, "alice-phone", &alice()).unwrap();
        let d = &tx.devices[0];
        assert_eq!((d.owner.is_none(), d.last_step), (true, Some(33)));
        assert!(matches!(
            delete_virtual(&mut tx, "GAKT00000001"),
            Err(StoreError::NotFound(_))
        ));
        delete_virtual(&mut tx, "alice-phone").unwrap();
        assert_eq!(tx.devices.len(), 1);
    }
}
