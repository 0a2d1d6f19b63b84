//! SQLite implementation of [`MfaStore`] and of the transaction view [`MfaTx`].
//!
//! INVARIANT: [`MfaStore::mfa_transaction`] runs in one `BEGIN IMMEDIATE` transaction under the
//! store's single connection, so no other write lands between a unit's reads (the failure
//! counter, the device row) and its writes (the consumed step, the count). Two requests with the
//! same code are therefore serialised: the second sees the first one's step and is a replay. Each
//! unit of several runs in its own SAVEPOINT (an error undoes that unit alone), and the transaction commits
//! once: the answers are returned only after that COMMIT, which is durable (`synchronous=FULL`),
//! and a failed COMMIT fails them all. Within the transaction each unit sees the writes of the
//! ones before it, so a code used twice is a replay the second time and failures add up, exactly
//! as if the units ran one by one.

use super::{SqliteStore, corrupt, from_ts, owner_sql, ts, unique, user_from_row};
use crate::domain::store::MfaUnit;
use crate::domain::{
    AccountCounts, Assignment, AuditEvent, CredentialRow, DeviceKind, LockoutState, MfaDevice,
    MfaStore, MfaTx, Owner, OwnerRef, StoreError, Taken,
};
use crate::mfa::{Algorithm, Digits, Period, TotpParams};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use time::OffsetDateTime;

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

/// The `owner_kind` and `user_id` columns of a device enabled for `owner`.
fn owner_cols(owner: &OwnerRef) -> (&'static str, Option<&str>) {
    match owner {
        OwnerRef::Root => ("root", None),
        OwnerRef::User(id) => ("user", Some(id.as_str())),
    }
}

fn principal_key(owner: &OwnerRef) -> &str {
    match owner {
        OwnerRef::Root => "root",
        OwnerRef::User(id) => id,
    }
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

fn clear_lockout(conn: &Connection, owner: &OwnerRef) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM mfa_lockout WHERE principal = ?1",
        [principal_key(owner)],
    )?;
    Ok(())
}

/// [`MfaTx`] over the open transaction (or one of its savepoints).
struct Tx<'c>(&'c Connection);

impl MfaTx for Tx<'_> {
    fn lockout(&mut self, owner: &OwnerRef) -> Result<LockoutState, StoreError> {
        Ok(lockout_row(self.0, owner)?)
    }

    fn device(&mut self, serial: &str) -> Result<Option<MfaDevice>, StoreError> {
        Ok(load_device(self.0, serial)?)
    }

    fn devices_enabled_for(&mut self, owner: &OwnerRef) -> Result<u64, StoreError> {
        let (kind, user) = owner_cols(owner);
        let n: i64 = self.0.query_row(
            "SELECT COUNT(*) FROM mfa_devices WHERE owner_kind = ?1 AND user_id IS ?2",
            params![kind, user],
            |r| r.get(0),
        )?;
        u64::try_from(n).map_err(|_| StoreError::Internal("a negative count".into()))
    }

    fn consume_step(&mut self, device_id: &str, step: u64, drift: i64) -> Result<bool, StoreError> {
        let n = self.0.execute(
            "UPDATE mfa_devices SET last_step = ?2, drift = ?3
             WHERE id = ?1 AND (last_step IS NULL OR last_step < ?2)",
            params![device_id, step_sql(step)?, drift],
        )?;
        Ok(n == 1)
    }

    fn assign_device(
        &mut self,
        device_id: &str,
        owner: &OwnerRef,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (kind, user) = owner_cols(owner);
        self.0.execute(
            "UPDATE mfa_devices SET owner_kind = ?1, user_id = ?2, enabled_at = ?3 WHERE id = ?4",
            params![kind, user, ts(at), device_id],
        )?;
        Ok(())
    }

    fn release_device(&mut self, device_id: &str) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE mfa_devices SET owner_kind = NULL, user_id = NULL, enabled_at = NULL, drift = 0
             WHERE id = ?1",
            [device_id],
        )?;
        Ok(())
    }

    fn delete_device(&mut self, device_id: &str) -> Result<(), StoreError> {
        self.0
            .execute("DELETE FROM mfa_devices WHERE id = ?1", [device_id])?;
        Ok(())
    }

    fn record_failure(&mut self, owner: &OwnerRef, at: i64) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO mfa_lockout (principal, failures, last_failure_at) VALUES (?1, 1, ?2)
             ON CONFLICT (principal) DO UPDATE SET failures = failures + 1, last_failure_at = ?2",
            params![principal_key(owner), at],
        )?;
        Ok(())
    }

    fn clear_failures(&mut self, owner: &OwnerRef) -> Result<(), StoreError> {
        clear_lockout(self.0, owner)
    }

    fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
        Ok(super::audit::insert(self.0, std::slice::from_ref(event))?)
    }
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
            unique(r, || Taken::MfaDevice {
                kind: d.kind,
                serial: d.serial.clone(),
            })?;
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
        let (kind, user) = owner_cols(owner);
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

    fn mfa_transaction(
        &self,
        units: usize,
        work: &mut MfaUnit<'_>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if units == 1 {
            // A single unit needs no savepoint: if it fails, dropping `tx` undoes it.
            let answer = work(0, &mut Tx(&tx));
            if answer.is_ok() {
                tx.commit()?;
            }
            return Ok(vec![answer]);
        }
        let mut answers = Vec::with_capacity(units);
        for i in 0..units {
            let mut sp = tx.savepoint()?;
            let answer = work(i, &mut Tx(&sp));
            if answer.is_err() {
                // Undo this unit's writes only. If SQLite already rolled back the whole
                // transaction (I/O error, full disk), ROLLBACK TO fails and the batch fails.
                sp.rollback()?;
            }
            sp.commit()?;
            answers.push(answer);
            if tx.is_autocommit() {
                return Err(StoreError::Internal(
                    "the MFA transaction ended early".into(),
                ));
            }
        }
        tx.commit()?;
        Ok(answers)
    }

    fn mfa_lockout(&self, owner: &OwnerRef) -> Result<LockoutState, StoreError> {
        let conn = self.conn()?;
        Ok(lockout_row(&conn, owner)?)
    }

    fn reset_mfa_lockout(&self, owner: &OwnerRef) -> Result<(), StoreError> {
        clear_lockout(&*self.conn()?, owner)
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
            let (kind, user) = owner_cols(owner);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        BindOutcome, CodeVerdict, MfaAttempt, MfaAudit, MfaCheck, MfaRefusal, Outcome, Store,
        StoreRules, User,
    };
    use crate::ids::{IamPath, UserName};
    use crate::mfa::lockout::LockoutPolicy;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const NOW: i64 = 1_780_000_000;

    fn user(s: &SqliteStore, name: &str) -> OwnerRef {
        let u = User {
            id: crate::ids::generate_unique_id("AIDA"),
            name: UserName::parse(name).unwrap(),
            path: IamPath::root(),
            created: from_ts(NOW),
        };
        s.create_user(&u).unwrap();
        OwnerRef::User(u.id)
    }

    /// A virtual device `serial` enabled for `owner`, with step 1 already used.
    fn device(s: &SqliteStore, serial: &str, owner: &OwnerRef) {
        s.insert_mfa_devices(&[MfaDevice {
            id: crate::ids::generate_unique_id("MFAD"),
            serial: serial.to_owned(),
            kind: DeviceKind::Virtual,
            seed_blob: vec![1, 2, 3],
            params: TotpParams::AWS,
            owner: None,
            enabled_at: None,
            last_step: None,
            drift: 0,
            created: from_ts(NOW),
        }])
        .unwrap();
        let r = s.bind_mfa_device(serial, owner, false, from_ts(NOW), &mut |_| {
            CodeVerdict::Accepted {
                step: 1,
                drift: Some(0),
            }
        });
        assert_eq!(r.unwrap(), BindOutcome::Done);
    }

    /// A store with alice and bob, each with an enabled device (`alice-phone`, `bob-phone-1`).
    fn alice_and_bob() -> (SqliteStore, OwnerRef, OwnerRef) {
        let s = SqliteStore::open_in_memory().unwrap();
        let alice = user(&s, "alice");
        let bob = user(&s, "bob");
        device(&s, "alice-phone", &alice);
        device(&s, "bob-phone-1", &bob);
        (s, alice, bob)
    }

    fn last_step(s: &SqliteStore, serial: &str) -> Option<u64> {
        s.get_mfa_device(serial).unwrap().unwrap().last_step
    }

    fn failures(s: &SqliteStore, owner: &OwnerRef) -> u32 {
        s.mfa_lockout(owner).unwrap().failures
    }

    /// Like the broker's TOTP check of a code for `step`: replayed if the device has used it.
    fn code_at(step: u64) -> Box<dyn FnMut(&MfaDevice) -> CodeVerdict + Send> {
        Box::new(move |d| {
            if d.last_step.is_some_and(|last| last >= step) {
                CodeVerdict::Replayed
            } else {
                CodeVerdict::Accepted { step, drift: None }
            }
        })
    }

    fn verdict(v: CodeVerdict) -> Box<dyn FnMut(&MfaDevice) -> CodeVerdict + Send> {
        Box::new(move |_| v)
    }

    fn req(
        owner: &OwnerRef,
        serial: &str,
        check: Box<dyn FnMut(&MfaDevice) -> CodeVerdict + Send>,
    ) -> MfaCheck {
        MfaCheck {
            owner: owner.clone(),
            serial: serial.to_owned(),
            now: NOW,
            policy: LockoutPolicy::default(),
            check,
            audit: None,
        }
    }

    /// `reqs` under a lockout policy with `free_failures` and `lock_at`.
    fn under(
        free_failures: u32,
        lock_at: u32,
        reqs: impl Iterator<Item = MfaCheck>,
    ) -> Vec<MfaCheck> {
        let policy = LockoutPolicy {
            free_failures,
            max_delay_secs: 300,
            lock_at,
        };
        reqs.map(|r| MfaCheck { policy, ..r }).collect()
    }

    fn accepted(step: u64, serial: &str) -> MfaAttempt {
        MfaAttempt::Accepted {
            step,
            serial: serial.to_owned(),
        }
    }

    /// The answers of a batch, with store errors as `None`.
    fn run(s: &SqliteStore, reqs: &mut [MfaCheck]) -> Vec<Option<MfaAttempt>> {
        s.mfa_authenticate_batch(reqs)
            .unwrap()
            .into_iter()
            .map(Result::ok)
            .collect()
    }

    #[test]
    fn the_same_step_twice_in_one_batch_is_accepted_then_replayed() {
        let s = SqliteStore::open_in_memory().unwrap();
        let alice = user(&s, "alice");
        device(&s, "arn:aws:iam::123456789012:mfa/alice", &alice);
        let serial = "arn:aws:iam::123456789012:mfa/alice";
        let answers = run(
            &s,
            &mut [
                req(&alice, serial, code_at(7)),
                req(&alice, serial, code_at(7)),
            ],
        );
        assert_eq!(
            answers,
            [
                Some(accepted(7, serial)),
                Some(MfaAttempt::Refused(MfaRefusal::Replayed))
            ]
        );
        assert_eq!(last_step(&s, serial), Some(7));
        assert_eq!(failures(&s, &alice), 1, "the replay counts as a failure");
        // And it stays spent for a later batch.
        let again = run(&s, &mut [req(&alice, serial, code_at(7))]);
        assert_eq!(again, [Some(MfaAttempt::Refused(MfaRefusal::Replayed))]);
    }

    #[test]
    fn each_request_of_a_mixed_batch_gets_its_own_answer() {
        let s = SqliteStore::open_in_memory().unwrap();
        let alice = user(&s, "alice");
        let bob = user(&s, "bob");
        let (mine, other, theirs) = ("alice-phone-1", "alice-phone-2", "bob-phone-01");
        device(&s, mine, &alice);
        device(&s, other, &alice);
        device(&s, theirs, &bob);
        let foreign_checks = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&foreign_checks);
        let answers = run(
            &s,
            &mut [
                req(&alice, "no-such-serial", code_at(5)),
                req(
                    &alice,
                    theirs,
                    Box::new(move |_| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        CodeVerdict::Accepted {
                            step: 5,
                            drift: None,
                        }
                    }),
                ),
                req(&alice, other, verdict(CodeVerdict::NoMatch)),
                req(&alice, other, verdict(CodeVerdict::Undecryptable)),
                req(&alice, mine, code_at(5)),
            ],
        );
        assert_eq!(
            answers,
            [
                Some(MfaAttempt::Refused(MfaRefusal::UnknownDevice)),
                Some(MfaAttempt::Refused(MfaRefusal::ForeignDevice)),
                Some(MfaAttempt::Refused(MfaRefusal::WrongCode)),
                Some(MfaAttempt::Refused(MfaRefusal::Undecryptable)),
                Some(accepted(5, mine)),
            ]
        );
        assert_eq!(foreign_checks.load(Ordering::SeqCst), 0, "never checked");
        assert_eq!(last_step(&s, mine), Some(5), "only the good code moves");
        assert_eq!(last_step(&s, other), Some(1));
        assert_eq!(last_step(&s, theirs), Some(1));
        assert_eq!(failures(&s, &alice), 0, "the success cleared the count");
        assert_eq!(failures(&s, &bob), 0, "bob's counter is not alice's");
    }

    #[test]
    fn failures_add_up_within_a_batch_and_gate_the_later_requests() {
        let (s, alice, bob) = alice_and_bob();
        let mut reqs = under(
            10,
            3,
            (0..4)
                .map(|_| req(&alice, "alice-phone", verdict(CodeVerdict::NoMatch)))
                .chain([
                    req(&bob, "bob-phone-1", verdict(CodeVerdict::NoMatch)),
                    req(&alice, "alice-phone", code_at(9)),
                ]),
        );
        let wrong = Some(MfaAttempt::Refused(MfaRefusal::WrongCode));
        let locked = Some(MfaAttempt::Refused(MfaRefusal::Locked));
        assert_eq!(
            run(&s, &mut reqs),
            [
                wrong.clone(),
                wrong.clone(),
                wrong.clone(),
                locked.clone(),
                wrong,
                locked
            ]
        );
        assert_eq!(failures(&s, &alice), 3);
        assert_eq!(failures(&s, &bob), 1);
        assert_eq!(last_step(&s, "alice-phone"), Some(1), "locked: not checked");

        // Throttling: past the free failures, a retry at the same second is delayed, uncounted.
        let carol = user(&s, "carol");
        device(&s, "carol-phone", &carol);
        let mut reqs = under(
            2,
            100,
            (0..4).map(|_| req(&carol, "carol-phone", verdict(CodeVerdict::NoMatch))),
        );
        let answers = run(&s, &mut reqs);
        let throttled = Some(MfaAttempt::Refused(MfaRefusal::Throttled));
        assert_eq!(
            answers,
            [
                Some(MfaAttempt::Refused(MfaRefusal::WrongCode)),
                Some(MfaAttempt::Refused(MfaRefusal::WrongCode)),
                throttled.clone(),
                throttled
            ]
        );
        assert_eq!(failures(&s, &carol), 2);
    }

    #[test]
    fn a_batch_answers_exactly_as_the_same_checks_one_by_one() {
        fn scenario(alice: &OwnerRef, bob: &OwnerRef) -> Vec<MfaCheck> {
            vec![
                req(alice, "alice-phone", code_at(4)),
                req(alice, "alice-phone", code_at(3)),
                req(alice, "alice-phone", verdict(CodeVerdict::NoMatch)),
                req(bob, "alice-phone", code_at(8)),
                req(bob, "bob-phone-1", code_at(4)),
                req(alice, "alice-phone", code_at(4)),
                req(alice, "alice-phone", code_at(6)),
                req(bob, "bob-phone-1", verdict(CodeVerdict::NoMatch)),
            ]
        }
        let (batched, a1, b1) = alice_and_bob();
        let batch_answers = run(&batched, &mut scenario(&a1, &b1));
        let (single, a2, b2) = alice_and_bob();
        let single_answers: Vec<_> = scenario(&a2, &b2)
            .iter_mut()
            .map(|r| single.mfa_authenticate(r).ok())
            .collect();
        assert_eq!(batch_answers, single_answers);
        assert_eq!(batch_answers[0], Some(accepted(4, "alice-phone")));
        assert_eq!(batch_answers[6], Some(accepted(6, "alice-phone")));
        for serial in ["alice-phone", "bob-phone-1"] {
            assert_eq!(last_step(&batched, serial), last_step(&single, serial));
        }
        assert_eq!(failures(&batched, &a1), failures(&single, &a2));
        assert_eq!(failures(&batched, &b1), failures(&single, &b2));
        assert_eq!(
            failures(&batched, &b1),
            1,
            "foreign, cleared by a success, wrong"
        );
    }

    #[test]
    fn a_request_whose_sql_fails_is_undone_alone() {
        let s = SqliteStore::open_in_memory().unwrap();
        let alice = user(&s, "alice");
        let carol = user(&s, "carol");
        let dave = user(&s, "dave");
        device(&s, "alice-phone", &alice);
        device(&s, "carol-phone", &carol);
        device(&s, "dave-phone1", &dave);
        // Carol has one failure on record; clearing it after her success will fail, after her
        // step was already written in the transaction.
        assert_eq!(
            run(
                &s,
                &mut [req(&carol, "carol-phone", verdict(CodeVerdict::NoMatch))]
            ),
            [Some(MfaAttempt::Refused(MfaRefusal::WrongCode))]
        );
        let OwnerRef::User(carol_id) = &carol else {
            unreachable!()
        };
        s.conn()
            .unwrap()
            .execute_batch(&format!(
                "CREATE TEMP TRIGGER no_clear BEFORE DELETE ON main.mfa_lockout
                 WHEN OLD.principal = '{carol_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END;"
            ))
            .unwrap();
        // Dave's device row is unreadable.
        s.conn()
            .unwrap()
            .execute(
                "UPDATE mfa_devices SET algorithm = 'bogus' WHERE serial = 'dave-phone1'",
                [],
            )
            .unwrap();
        let answers = s
            .mfa_authenticate_batch(&mut [
                req(&alice, "alice-phone", code_at(5)),
                req(&carol, "carol-phone", code_at(5)),
                req(&dave, "dave-phone1", code_at(5)),
                req(&carol, "carol-phone", verdict(CodeVerdict::NoMatch)),
                req(&alice, "alice-phone", code_at(6)),
            ])
            .unwrap();
        assert!(
            matches!(answers[1], Err(StoreError::Backend(_))),
            "{answers:?}"
        );
        assert!(
            matches!(answers[2], Err(StoreError::Backend(_))),
            "{answers:?}"
        );
        let ok: Vec<_> = answers.into_iter().filter_map(Result::ok).collect();
        assert_eq!(
            ok,
            [
                accepted(5, "alice-phone"),
                MfaAttempt::Refused(MfaRefusal::WrongCode),
                accepted(6, "alice-phone"),
            ]
        );
        assert_eq!(last_step(&s, "alice-phone"), Some(6));
        assert_eq!(
            last_step(&s, "carol-phone"),
            Some(1),
            "carol's step write was rolled back with her failed request"
        );
        assert_eq!(
            failures(&s, &carol),
            2,
            "her later wrong code still counted"
        );
        assert_eq!(failures(&s, &dave), 0);
    }

    /// `r` with audit records whose detail on acceptance is `accepted`.
    fn audited(mut r: MfaCheck, accepted: &str) -> MfaCheck {
        let event = |detail: Option<&str>| AuditEvent {
            detail: detail.map(str::to_owned),
            ..AuditEvent::single(from_ts(NOW), "sts:GetSessionToken", Outcome::Success)
        };
        r.audit = Some(MfaAudit {
            on_accept: Some(event(Some(accepted))),
            on_refusal: AuditEvent {
                outcome: Outcome::Failure,
                ..event(None)
            },
        });
        r
    }

    fn audit_details(s: &SqliteStore) -> Vec<String> {
        let mut d: Vec<String> = s
            .recent_audit(100)
            .unwrap()
            .into_iter()
            .filter_map(|e| e.detail)
            .collect();
        d.sort();
        d
    }

    #[test]
    fn a_check_writes_its_audit_record_with_its_outcome_or_is_undone_with_it() {
        let (s, alice, bob) = alice_and_bob();
        // Bob's issuance record cannot be written (as on a full disk, for his row alone).
        s.conn()
            .unwrap()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse_bob BEFORE INSERT ON main.audit
                 WHEN NEW.detail = 'issued to bob' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let answers = s
            .mfa_authenticate_batch(&mut [
                audited(req(&alice, "alice-phone", code_at(5)), "issued to alice"),
                audited(req(&bob, "bob-phone-1", code_at(5)), "issued to bob"),
                audited(
                    req(&alice, "alice-phone", verdict(CodeVerdict::NoMatch)),
                    "never",
                ),
            ])
            .unwrap();
        assert_eq!(answers[0], Ok(accepted(5, "alice-phone")));
        assert!(
            matches!(answers[1], Err(StoreError::Backend(_))),
            "{answers:?}"
        );
        assert_eq!(answers[2], Ok(MfaAttempt::Refused(MfaRefusal::WrongCode)));
        assert_eq!(
            audit_details(&s),
            ["issued to alice", "mfa refused: wrong_code"]
        );
        assert_eq!(
            last_step(&s, "bob-phone-1"),
            Some(1),
            "bob's code is unspent"
        );
        assert_eq!(failures(&s, &bob), 0);
        s.conn()
            .unwrap()
            .execute_batch("DROP TRIGGER temp.refuse_bob")
            .unwrap();
        // Alone (no savepoint) the same holds, and the same code now goes through.
        s.conn()
            .unwrap()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse_all BEFORE INSERT ON main.audit
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let alone = s.mfa_authenticate(&mut audited(
            req(&bob, "bob-phone-1", code_at(5)),
            "issued to bob",
        ));
        assert!(matches!(alone, Err(StoreError::Backend(_))), "{alone:?}");
        assert_eq!(last_step(&s, "bob-phone-1"), Some(1));
        s.conn()
            .unwrap()
            .execute_batch("DROP TRIGGER temp.refuse_all")
            .unwrap();
        let retried = s.mfa_authenticate(&mut audited(
            req(&bob, "bob-phone-1", code_at(5)),
            "issued to bob",
        ));
        assert_eq!(retried, Ok(accepted(5, "bob-phone-1")));
        assert_eq!(
            audit_details(&s),
            [
                "issued to alice",
                "issued to bob",
                "mfa refused: wrong_code"
            ]
        );
    }

    #[test]
    fn a_batch_whose_commit_fails_records_nothing() {
        let (s, alice, bob) = alice_and_bob();
        // A deferred foreign-key violation lets every statement run and fails the COMMIT.
        s.conn()
            .unwrap()
            .execute_batch(
                "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TEMP TABLE child (p INTEGER REFERENCES parent(id)
                     DEFERRABLE INITIALLY DEFERRED);
                 CREATE TEMP TRIGGER poison AFTER UPDATE ON main.mfa_devices
                 BEGIN INSERT INTO child VALUES (42); END;",
            )
            .unwrap();
        let r = s.mfa_authenticate_batch(&mut [
            req(&bob, "bob-phone-1", verdict(CodeVerdict::NoMatch)),
            req(&alice, "alice-phone", code_at(5)),
        ]);
        assert!(r.is_err(), "{r:?}");
        assert_eq!(last_step(&s, "alice-phone"), Some(1));
        assert_eq!(failures(&s, &bob), 0, "the failure was not recorded either");
        // The connection is usable afterwards.
        s.conn()
            .unwrap()
            .execute_batch("DROP TRIGGER temp.poison")
            .unwrap();
        assert_eq!(
            run(&s, &mut [req(&alice, "alice-phone", code_at(5))]),
            [Some(accepted(5, "alice-phone"))]
        );
    }
}
