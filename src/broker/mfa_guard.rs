//! The MFA replay guard's group-commit writer.
//!
//! Why: every MFA check at GetSessionToken/AssumeRole records its outcome (the time step it
//! consumed, or a failure for the throttling counter) in a durable transaction before the caller
//! gets an answer, so that no credential leaves before its guard is on disk and a code can never be
//! used twice, not even across a crash. The store runs `synchronous=FULL`, so every COMMIT is an
//! fsync (about 300 µs on the reference machine); with one transaction per check, issuance was
//! bounded at about one credential per fsync (1,579 GetSessionToken/s measured).
//!
//! How: checks go over a channel to one thread that takes everything queued, up to [`MAX_BATCH`]
//! requests, and hands it to [`mfa_authenticate_batch`]: the checks run one after another
//! in one `BEGIN IMMEDIATE` transaction, each in its own savepoint (an SQL error fails that request
//! alone), with exactly the logic of a single check, then one COMMIT pays one fsync for the whole
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
//! [`mfa_authenticate_batch`]: crate::domain::StoreRules::mfa_authenticate_batch

use crate::domain::{MfaAttempt, MfaCheck, Store, StoreError, StoreRules};
use crate::error::BrokerError;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most checks committed together.
pub const MAX_BATCH: usize = 256;
const CHANNEL_CAPACITY: usize = 4 * MAX_BATCH;

type Answer = Result<MfaAttempt, StoreError>;

enum Msg {
    Check(MfaCheck, oneshot::Sender<Answer>),
    Close,
}

/// Handle for submitting MFA checks to the writer.
#[derive(Clone)]
pub struct MfaGuard {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for MfaGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaGuard")
    }
}

impl MfaGuard {
    /// Starts the writer thread. It ends after [`close`](Self::close), or once every handle is
    /// dropped, when the queue is drained. If the thread cannot start, every check fails (closed).
    pub fn start(store: Arc<dyn Store>) -> (Self, Option<std::thread::JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel::<Msg>(CHANNEL_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("mfa-guard-writer".into())
            .spawn(move || run(store.as_ref(), rx));
        match handle {
            Ok(h) => (Self { tx }, Some(h)),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the MFA replay-guard writer; MFA checks will fail");
                (Self { tx }, None)
            }
        }
    }

    /// Runs one check in the next batch; resolves once that batch is committed (or has failed).
    pub async fn authenticate(&self, check: MfaCheck) -> Result<MfaAttempt, BrokerError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Check(check, tx)).await.is_err() {
            return Err(BrokerError::internal(
                "the MFA replay-guard writer has stopped",
            ));
        }
        match rx.await {
            Ok(answer) => answer.map_err(BrokerError::from),
            Err(_) => Err(BrokerError::internal(
                "the MFA replay-guard writer dropped a request",
            )),
        }
    }

    /// Answers every check queued before this call and stops the writer; later checks fail.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }
}

fn run(store: &dyn Store, mut rx: mpsc::Receiver<Msg>) {
    let mut checks = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Check(check, reply) => {
                    checks.push(check);
                    replies.push(reply);
                }
                // No new checks; those already queued are still answered, by the loop.
                Msg::Close => rx.close(),
            }
            if checks.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !checks.is_empty() {
            commit_batch(store, &mut checks, &mut replies);
        }
    }
}

/// Runs one batch and answers it, only after its COMMIT. Dropping the checks zeroizes the codes.
fn commit_batch(
    store: &dyn Store,
    checks: &mut Vec<MfaCheck>,
    replies: &mut Vec<oneshot::Sender<Answer>>,
) {
    let n = checks.len();
    match store.mfa_authenticate_batch(checks) {
        Ok(answers) if answers.len() == n => {
            for (reply, answer) in replies.drain(..).zip(answers) {
                // The caller may have gone; its check is recorded all the same.
                let _ = reply.send(answer);
            }
        }
        outcome => {
            match outcome {
                Err(e) => tracing::error!(error = %e, requests = n,
                    "the MFA replay-guard batch failed; none of its checks is accepted"),
                Ok(answers) => tracing::error!(
                    requests = n,
                    answers = answers.len(),
                    "the MFA replay-guard batch answered the wrong number of checks"
                ),
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Err(StoreError::Internal(
                    "the MFA replay-guard batch did not commit".into(),
                )));
            }
        }
    }
    checks.clear();
    replies.clear();
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
    ) -> (MfaGuard, Vec<Answer>) {
        let (guard, thread) = MfaGuard::start(Arc::clone(store));
        let mut pending = Vec::new();
        for &step in steps {
            let (tx, rx) = oneshot::channel();
            assert!(
                guard
                    .tx
                    .send(Msg::Check(code_at(owner, step), tx))
                    .await
                    .is_ok()
            );
            pending.push(rx);
        }
        guard.close().await;
        tokio::task::spawn_blocking(move || thread.unwrap().join())
            .await
            .unwrap()
            .unwrap();
        let mut answers = Vec::new();
        for rx in pending {
            answers.push(rx.await.unwrap());
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
        tokio::task::spawn_blocking(move || thread.unwrap().join())
            .await
            .unwrap()
            .unwrap();
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
