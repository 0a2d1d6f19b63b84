//! SQLite implementation of [`MfaStore`].
//!
//! INVARIANT: every code check runs inside a `BEGIN IMMEDIATE` transaction that also records its
//! outcome (the new `last_step`, or the failure count), under the store's single connection. Two
//! requests with the same code are therefore serialised: the second sees the first one's step and
//! is a replay. The commit is durable (`synchronous=FULL`) before the caller learns the result.

use super::sqlite::{SqliteStore, corrupt, from_ts, owner_sql, ts, user_from_row};
use super::{
    AccountCounts, Assignment, BindOutcome, CodeVerdict, CredentialRow, DeviceKind, LockoutState,
    MfaAttempt, MfaDevice, MfaRefusal, MfaStore, Owner, OwnerRef, StoreError,
};
use crate::mfa::lockout::{Gate, LockoutPolicy};
use crate::mfa::{Algorithm, Digits, Period, TotpParams};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use time::OffsetDateTime;

/// Devices a principal may have enabled at once, as AWS allows.
pub const MAX_DEVICES_PER_PRINCIPAL: i64 = 8;

const DEVICE_COLS: &str = "d.id, d.serial, d.kind, d.seed_blob, d.algorithm, d.digits, d.period, \
     d.owner_kind, d.enabled_at, d.last_step, d.drift, d.created_at, \
     u.id, u.name, u.path, u.created_at";
const DEVICE_FROM: &str = "mfa_devices d LEFT JOIN users u ON u.id = d.user_id";

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<MfaDevice> {
    let kind = match r.get::<_, String>(2)?.as_str() {
        "virtual" => DeviceKind::Virtual,
        "hardware" => DeviceKind::Hardware,
        other => return Err(corrupt(format!("device kind `{other}`"))),
    };
    let params = TotpParams {
        algorithm: Algorithm::parse(&r.get::<_, String>(4)?).map_err(corrupt)?,
        digits: Digits::parse(&r.get::<_, i64>(5)?.to_string()).map_err(corrupt)?,
        period: Period::parse(&r.get::<_, i64>(6)?.to_string()).map_err(corrupt)?,
    };
    let owner = match r.get::<_, Option<String>>(7)?.as_deref() {
        None => None,
        Some("root") => Some(Owner::Root),
        Some(_) => Some(Owner::User(user_from_row(r, 12)?)),
    };
    let last_step: Option<i64> = r.get(9)?;
    Ok(MfaDevice {
        id: r.get(0)?,
        serial: r.get(1)?,
        kind,
        seed_blob: r.get(3)?,
        params,
        owner,
        enabled_at: r.get::<_, Option<i64>>(8)?.map(from_ts),
        last_step: last_step.and_then(|s| u64::try_from(s).ok()),
        drift: r.get(10)?,
        created: from_ts(r.get(11)?),
    })
}

fn load_device(conn: &Connection, serial: &str) -> rusqlite::Result<Option<MfaDevice>> {
    conn.query_row(
        &format!("SELECT {DEVICE_COLS} FROM {DEVICE_FROM} WHERE d.serial_lower = ?1"),
        [serial.to_lowercase()],
        device_from_row,
    )
    .optional()
}

fn owned_by(device: &MfaDevice, owner: &OwnerRef) -> bool {
    match (&device.owner, owner) {
        (Some(Owner::Root), OwnerRef::Root) => true,
        (Some(Owner::User(u)), OwnerRef::User(id)) => &u.id == id,
        _ => false,
    }
}

fn principal_key(owner: &OwnerRef) -> &str {
    match owner {
        OwnerRef::Root => "root",
        OwnerRef::User(id) => id,
    }
}

fn no_such_device(serial: &str) -> StoreError {
    StoreError::NotFound(format!(
        "MFA device with serial number {serial} cannot be found."
    ))
}

fn step_sql(step: u64) -> Result<i64, StoreError> {
    i64::try_from(step).map_err(|_| StoreError::Internal("time step out of range".into()))
}

fn lockout_row(conn: &Connection, owner: &OwnerRef) -> rusqlite::Result<LockoutState> {
    Ok(conn
        .query_row(
            "SELECT failures, last_failure_at FROM mfa_lockout WHERE principal = ?1",
            [principal_key(owner)],
            |r| {
                Ok(LockoutState {
                    failures: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                    last_failure_at: Some(r.get(1)?),
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

impl MfaStore for SqliteStore {
    fn insert_mfa_devices(&self, devices: &[MfaDevice]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for d in devices {
            let r = tx.execute(
                "INSERT INTO mfa_devices (id, serial, serial_lower, kind, seed_blob, algorithm, digits,
                     period, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    d.id,
                    d.serial,
                    d.serial.to_lowercase(),
                    d.kind.as_str(),
                    d.seed_blob,
                    d.params.algorithm.as_str(),
                    d.params.digits.get(),
                    i64::try_from(d.params.period.as_secs()).unwrap_or(30),
                    ts(d.created)
                ],
            );
            match r {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(StoreError::AlreadyExists(match d.kind {
                        DeviceKind::Virtual => {
                            "MFADevice entity at the same path and name already exists.".to_owned()
                        }
                        DeviceKind::Hardware => {
                            format!("MFA device with serial number {} already exists.", d.serial)
                        }
                    }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn get_mfa_device(&self, serial: &str) -> Result<Option<MfaDevice>, StoreError> {
        let conn = self.conn()?;
        Ok(load_device(&conn, serial)?)
    }

    fn list_mfa_devices(&self, owner: &OwnerRef) -> Result<Vec<MfaDevice>, StoreError> {
        let conn = self.conn()?;
        let (kind, user) = match owner {
            OwnerRef::Root => ("root", None),
            OwnerRef::User(id) => ("user", Some(id.as_str())),
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {DEVICE_COLS} FROM {DEVICE_FROM}
             WHERE d.owner_kind = ?1 AND d.user_id IS ?2 ORDER BY d.enabled_at, d.serial"
        ))?;
        let rows = stmt.query_map(params![kind, user], device_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn list_virtual_mfa_devices(&self, filter: Assignment) -> Result<Vec<MfaDevice>, StoreError> {
        let conn = self.conn()?;
        let cond = match filter {
            Assignment::Assigned => "AND d.owner_kind IS NOT NULL",
            Assignment::Unassigned => "AND d.owner_kind IS NULL",
            Assignment::Any => "",
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {DEVICE_COLS} FROM {DEVICE_FROM}
             WHERE d.kind = 'virtual' {cond} ORDER BY d.serial_lower"
        ))?;
        let rows = stmt.query_map([], device_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn bind_mfa_device(
        &self,
        serial: &str,
        owner: &OwnerRef,
        resync: bool,
        now: OffsetDateTime,
        check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
    ) -> Result<BindOutcome, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let device = load_device(&tx, serial)?.ok_or_else(|| no_such_device(serial))?;
        if resync {
            if !owned_by(&device, owner) {
                return Err(no_such_device(serial));
            }
        } else {
            if device.owner.is_some() {
                return Err(StoreError::AlreadyExists(
                    "MFA Device is already in use.".to_owned(),
                ));
            }
            let (kind, user) = match owner {
                OwnerRef::Root => ("root", None),
                OwnerRef::User(id) => ("user", Some(id.as_str())),
            };
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM mfa_devices WHERE owner_kind = ?1 AND user_id IS ?2",
                params![kind, user],
                |r| r.get(0),
            )?;
            if count >= MAX_DEVICES_PER_PRINCIPAL {
                return Err(StoreError::LimitExceeded(format!(
                    "Cannot exceed quota for MFADevicesPerUser: {MAX_DEVICES_PER_PRINCIPAL}"
                )));
            }
        }
        let CodeVerdict::Accepted { step, drift } = check(&device) else {
            return Ok(BindOutcome::CodesRejected);
        };
        let drift = drift.unwrap_or(device.drift);
        if resync {
            tx.execute(
                "UPDATE mfa_devices SET last_step = ?1, drift = ?2 WHERE id = ?3",
                params![step_sql(step)?, drift, device.id],
            )?;
        } else {
            let (kind, user) = match owner {
                OwnerRef::Root => ("root", None),
                OwnerRef::User(id) => ("user", Some(id.as_str())),
            };
            tx.execute(
                "UPDATE mfa_devices
                 SET owner_kind = ?1, user_id = ?2, enabled_at = ?3, last_step = ?4, drift = ?5
                 WHERE id = ?6",
                params![kind, user, ts(now), step_sql(step)?, drift, device.id],
            )?;
        }
        tx.commit()?;
        Ok(BindOutcome::Done)
    }

    fn deactivate_mfa_device(&self, serial: &str, owner: &OwnerRef) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let device = load_device(&tx, serial)?.ok_or_else(|| no_such_device(serial))?;
        if !owned_by(&device, owner) {
            return Err(no_such_device(serial));
        }
        // last_step stays: codes already used can never be used again, by anyone.
        tx.execute(
            "UPDATE mfa_devices SET owner_kind = NULL, user_id = NULL, enabled_at = NULL, drift = 0
             WHERE id = ?1",
            [&device.id],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let device = load_device(&tx, serial)?
            .filter(|d| d.kind == DeviceKind::Virtual)
            .ok_or_else(|| no_such_device(serial))?;
        if device.owner.is_some() {
            return Err(StoreError::DeleteConflict(
                "MFA Device is in use: deactivate it before deleting it.".to_owned(),
            ));
        }
        tx.execute("DELETE FROM mfa_devices WHERE id = ?1", [&device.id])?;
        tx.commit()?;
        Ok(())
    }

    fn mfa_authenticate(
        &self,
        owner: &OwnerRef,
        serial: &str,
        now: i64,
        policy: &LockoutPolicy,
        check: &mut dyn FnMut(&MfaDevice) -> CodeVerdict,
    ) -> Result<MfaAttempt, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state = lockout_row(&tx, owner)?;
        match policy.gate(state.failures, state.last_failure_at, now) {
            Gate::Locked => return Ok(MfaAttempt::Refused(MfaRefusal::Locked)),
            Gate::Delayed { .. } => return Ok(MfaAttempt::Refused(MfaRefusal::Throttled)),
            Gate::Open => {}
        }
        let refusal = match load_device(&tx, serial)? {
            None => MfaRefusal::UnknownDevice,
            Some(d) if !owned_by(&d, owner) => MfaRefusal::ForeignDevice,
            Some(d) => match check(&d) {
                CodeVerdict::Accepted { step, drift } => {
                    tx.execute(
                        "UPDATE mfa_devices SET last_step = ?1, drift = ?2 WHERE id = ?3",
                        params![step_sql(step)?, drift.unwrap_or(d.drift), d.id],
                    )?;
                    tx.execute(
                        "DELETE FROM mfa_lockout WHERE principal = ?1",
                        [principal_key(owner)],
                    )?;
                    tx.commit()?;
                    return Ok(MfaAttempt::Accepted {
                        step,
                        serial: d.serial,
                    });
                }
                CodeVerdict::Replayed => MfaRefusal::Replayed,
                CodeVerdict::NoMatch => MfaRefusal::WrongCode,
                CodeVerdict::Undecryptable => MfaRefusal::Undecryptable,
            },
        };
        tx.execute(
            "INSERT INTO mfa_lockout (principal, failures, last_failure_at) VALUES (?1, 1, ?2)
             ON CONFLICT (principal) DO UPDATE SET failures = failures + 1, last_failure_at = ?2",
            params![principal_key(owner), now],
        )?;
        tx.commit()?;
        Ok(MfaAttempt::Refused(refusal))
    }

    fn mfa_lockout(&self, owner: &OwnerRef) -> Result<LockoutState, StoreError> {
        let conn = self.conn()?;
        Ok(lockout_row(&conn, owner)?)
    }

    fn reset_mfa_lockout(&self, owner: &OwnerRef) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM mfa_lockout WHERE principal = ?1",
            [principal_key(owner)],
        )?;
        Ok(())
    }

    fn account_counts(&self) -> Result<AccountCounts, StoreError> {
        let conn = self.conn()?;
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
        Ok(AccountCounts {
            users: count("SELECT COUNT(*) FROM users")?,
            mfa_devices: count("SELECT COUNT(*) FROM mfa_devices")?,
            mfa_devices_in_use: count(
                "SELECT COUNT(*) FROM mfa_devices WHERE owner_kind IS NOT NULL",
            )?,
            root_mfa_devices: count("SELECT COUNT(*) FROM mfa_devices WHERE owner_kind = 'root'")?,
            root_access_keys: count("SELECT COUNT(*) FROM access_keys WHERE user_id IS NULL")?,
        })
    }

    fn credential_rows(&self) -> Result<Vec<CredentialRow>, StoreError> {
        let conn = self.conn()?;
        let keys_of = |owner: &OwnerRef| -> rusqlite::Result<Vec<(bool, OffsetDateTime)>> {
            let mut stmt = conn.prepare_cached(
                "SELECT status = 'Active', created_at FROM access_keys
                 WHERE user_id IS ?1 ORDER BY created_at, id",
            )?;
            let rows =
                stmt.query_map([owner_sql(owner)], |r| Ok((r.get(0)?, from_ts(r.get(1)?))))?;
            rows.collect()
        };
        let mfa_of = |owner: &OwnerRef| -> rusqlite::Result<bool> {
            let (kind, user) = match owner {
                OwnerRef::Root => ("root", None),
                OwnerRef::User(id) => ("user", Some(id.as_str())),
            };
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM mfa_devices WHERE owner_kind = ?1 AND user_id IS ?2)",
                params![kind, user],
                |r| r.get(0),
            )
        };
        let mut out = vec![CredentialRow {
            user: None,
            mfa_active: mfa_of(&OwnerRef::Root)?,
            keys: keys_of(&OwnerRef::Root)?,
        }];
        let mut stmt =
            conn.prepare("SELECT id, name, path, created_at FROM users ORDER BY name_lower")?;
        let users = stmt
            .query_map([], |r| user_from_row(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        for u in users {
            let owner = OwnerRef::User(u.id.clone());
            out.push(CredentialRow {
                mfa_active: mfa_of(&owner)?,
                keys: keys_of(&owner)?,
                user: Some(u),
            });
        }
        Ok(out)
    }

    fn save_credential_report(&self, at: OffsetDateTime, csv: &[u8]) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO credential_report (id, generated_at, content) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET generated_at = ?1, content = ?2",
            params![ts(at), csv],
        )?;
        Ok(())
    }

    fn credential_report(&self) -> Result<Option<(OffsetDateTime, Vec<u8>)>, StoreError> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT generated_at, content FROM credential_report WHERE id = 1",
                [],
                |r| Ok((from_ts(r.get(0)?), r.get(1)?)),
            )
            .optional()?)
    }
}
