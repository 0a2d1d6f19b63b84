//! The MFA replay guard's group-commit writer.
//!
//! Why: every MFA check at GetSessionToken/AssumeRole records its outcome (the time step it
//! consumed, or a failure for the throttling counter) in a durable transaction before the caller
//! gets an answer, so that no credential leaves before its guard is on disk and a code can never be
//! used twice, not even across a crash. The same transaction holds the call's audit record
//! ([`MfaCheck::audit`](crate::domain::MfaCheck::audit)): the issuance record, naming the
//! credential already minted for the call, on acceptance, or the refusal with its reason. So a
//! credential never leaves without its record either, and if the record cannot be written the
//! check fails, its savepoint is rolled back, and the code is still unspent for a retry.
//!
//! The store runs `synchronous=FULL`, so every COMMIT is an
//! fsync (about 300 µs on the reference machine); with one transaction per check, issuance was
//! bounded at about one credential per fsync (1,579 GetSessionToken/s measured).
//!
//! How: checks go over a channel to one thread that takes everything queued, up to [`MAX_BATCH`]
//! requests, and hands it to [`mfa_authenticate_batch`]: the checks run one after another
//! in one `BEGIN IMMEDIATE` transaction, each in its own savepoint (an SQL error fails that request
//! alone), with exactly the logic of a single check (its audit record included), then one COMMIT pays one fsync for the whole
//! batch. Only after that COMMIT returns is any request answered; if it fails, every request of the
//! batch gets an error and none is accepted. So each guard is still durable before its credential
//! leaves, and the batch behaves exactly as the same checks one by one in arrival order: a code used
//! twice in one batch is a replay the second time, and failures add up to the throttling gate.
//!
//! Under light load a batch is a single request, so latency is unchanged; under load the batch
//! grows to the requests that arrived during the previous commit. The bound keeps one transaction,
//! which holds the store's only connection, short, and with it the wait of the last request in a
//! batch. The channel is bounded too: when it is full, callers wait to enqueue.
//!
//! The mechanics (the channel, the thread, answering only after the commit, a failed commit
//! accepting nothing, close draining what was queued) are the [`BatchWriter`]'s (`writer.rs`);
//! this module supplies the store operation and the bounds.
//!
//! [`mfa_authenticate_batch`]: crate::domain::StoreRules::mfa_authenticate_batch

use super::writer::{BatchWriter, WriteError, WriterConfig, WriterThread};
use crate::domain::{MfaAttempt, MfaCheck, Store, StoreError, StoreRules};
use crate::error::BrokerError;
use std::sync::Arc;

/// The most checks committed together.
pub const MAX_BATCH: usize = 256;

const CONFIG: WriterConfig = WriterConfig {
    name: "mfa-guard-writer",
    channel_capacity: 4 * MAX_BATCH,
    max_batch: MAX_BATCH,
    pause_when_unwaited: None,
};

type Answer = Result<MfaAttempt, StoreError>;

/// Handle for submitting MFA checks to the writer.
#[derive(Clone)]
pub struct MfaGuard {
    writer: BatchWriter<MfaCheck, Answer>,
}

impl std::fmt::Debug for MfaGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaGuard")
    }
}

impl MfaGuard {
    /// Starts the writer thread (the broker does, in `Broker::start`). If the thread cannot
    /// start, every check fails (closed).
    pub(super) fn start(store: Arc<dyn Store>) -> (Self, WriterThread) {
        let (writer, thread) = BatchWriter::start(CONFIG, move |checks: &mut [MfaCheck]| {
            store.mfa_authenticate_batch(checks)
        });
        (Self { writer }, thread)
    }

    /// Runs one check in the next batch; resolves once that batch is committed (or has failed).
    pub async fn authenticate(&self, check: MfaCheck) -> Result<MfaAttempt, BrokerError> {
        Self::answer(self.writer.submit(check).await)
    }

    fn answer(r: Result<Answer, WriteError>) -> Result<MfaAttempt, BrokerError> {
        match r {
            Ok(answer) => answer.map_err(BrokerError::from),
            Err(WriteError::Stopped) => Err(BrokerError::internal(
                "the MFA replay-guard writer has stopped",
            )),
            Err(WriteError::NotCommitted) => Err(BrokerError::from(StoreError::Internal(
                "the MFA replay-guard batch did not commit".into(),
            ))),
        }
    }

    /// Answers every check queued before this call and stops the writer; later checks fail.
    pub(super) async fn close(&self) {
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CodeVerdict, DeviceKind, MfaDevice, MfaRefusal, OwnerRef, User};
    use crate::ids::{IamPath, UserName};
    use crate::mfa::TotpParams;
    use crate::mfa::lockout::LockoutPolicy;
    use crate::store::sqlite::SqliteStore;
    use time::OffsetDateTime;

    const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

    /// A store with alice and her device, step 1 used.
    fn setup(store: &dyn Store) -> OwnerRef {
        let at = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        let id = crate::ids::generate_unique_id("AIDA");
        store
            .create_user(&User {
                id: id.clone(),
                name: UserName::parse("alice").unwrap(),
                path: IamPath::root(),
                created: at,
            })
            .unwrap();
        store
            .insert_mfa_devices(&[MfaDevice {
                id: crate::ids::generate_unique_id("MFAD"),
                serial: SERIAL.into(),
                kind: DeviceKind::Virtual,
                seed_blob: vec![0; 8],
                params: TotpParams::AWS,
                owner: None,
                enabled_at: None,
                last_step: None,
                drift: 0,
                created: at,
            }])
            .unwrap();
        let owner = OwnerRef::User(id);
        store
            .bind_mfa_device(SERIAL, &owner, false, at, &mut |_| CodeVerdict::Accepted {
                step: 1,
                drift: Some(0),
            })
            .unwrap();
        owner
    }

    /// Queues one check per step before the writer can take any, closes the guard, waits for its
    /// thread to end, and returns the guard (now closed) with every answer in order.
    async fn queue_then_close(
        store: &Arc<dyn Store>,
        owner: &OwnerRef,
        steps: &[u64],
    ) -> (MfaGuard, Vec<Result<MfaAttempt, BrokerError>>) {
        let (guard, thread) = MfaGuard::start(Arc::clone(store));
        let mut pending = Vec::new();
        for &step in steps {
            pending.push(guard.writer.enqueue(code_at(owner, step)).await.unwrap());
        }
        guard.close().await;
        assert!(thread.join().await);
        let mut answers = Vec::new();
        for p in pending {
            answers.push(MfaGuard::answer(p.answer().await));
        }
        (guard, answers)
    }

    fn code_at(owner: &OwnerRef, step: u64) -> MfaCheck {
        MfaCheck {
            owner: owner.clone(),
            serial: SERIAL.into(),
            now: 1_780_000_000,
            policy: LockoutPolicy {
                free_failures: 1000,
                max_delay_secs: 300,
                lock_at: 1000,
            },
            check: Box::new(move |d| {
                if d.last_step.is_some_and(|last| last >= step) {
                    CodeVerdict::Replayed
                } else {
                    CodeVerdict::Accepted { step, drift: None }
                }
            }),
            audit: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_uses_of_one_step_give_exactly_one_success() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let owner = setup(store.as_ref());
        let (guard, thread) = MfaGuard::start(Arc::clone(&store));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (guard, check) = (guard.clone(), code_at(&owner, 5));
                tokio::spawn(async move { guard.authenticate(check).await })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                MfaAttempt::Accepted { step, .. } => {
                    assert_eq!(step, 5);
                    accepted += 1;
                }
                MfaAttempt::Refused(r) => assert_eq!(r, MfaRefusal::Replayed),
            }
        }
        assert_eq!(accepted, 1);
        assert_eq!(store.mfa_lockout(&owner).unwrap().failures, 63);
        guard.close().await;
        drop(guard);
        assert!(thread.join().await);
    }

    #[tokio::test]
    async fn close_answers_what_was_queued_then_refuses() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let owner = setup(store.as_ref());
        let (guard, answers) = queue_then_close(&store, &owner, &[3, 3, 4]).await;
        let got: Vec<MfaAttempt> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            [
                MfaAttempt::Accepted {
                    step: 3,
                    serial: SERIAL.into()
                },
                MfaAttempt::Refused(MfaRefusal::Replayed),
                MfaAttempt::Accepted {
                    step: 4,
                    serial: SERIAL.into()
                },
            ]
        );
        let after = guard.authenticate(code_at(&owner, 9)).await;
        assert!(after.is_err(), "a closed guard accepts nothing");
        assert_eq!(
            store.get_mfa_device(SERIAL).unwrap().unwrap().last_step,
            Some(4)
        );
    }

    #[tokio::test]
    async fn a_failed_commit_answers_every_request_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let sqlite = SqliteStore::open(&path).unwrap();
        let owner = setup(&sqlite);
        // A trigger whose deferred foreign-key violation fails COMMIT once a step is written.
        sqlite
            .execute_batch_for_tests(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                 CREATE TRIGGER poison AFTER UPDATE ON mfa_devices
                 BEGIN INSERT INTO child VALUES (42); END;",
            )
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(sqlite);
        let (_, answers) = queue_then_close(&store, &owner, &[5, 5, 6]).await;
        for a in answers {
            assert!(a.is_err(), "nothing is accepted");
        }
        assert_eq!(
            store.get_mfa_device(SERIAL).unwrap().unwrap().last_step,
            Some(1)
        );
        assert_eq!(store.mfa_lockout(&owner).unwrap().failures, 0);
    }
}
