//! The audit trail writer: events go through a bounded channel to one blocking thread that
//! appends them in batches, so recording an event never puts an fsync on the caller's path.
//! `flush` waits until everything sent before it is committed (tests use it); `close` commits
//! everything sent before it and stops the writer, whoever still holds a sink.
//!
//! After each commit the writer pauses for [`COMMIT_INTERVAL`] unless someone is waiting on a
//! flush or close, so that under load it commits at most ~100 times a second instead of once per
//! handful of events: each commit is an fsync on the connection the MFA replay guard also needs
//! (profiling a GetCallerIdentity load showed ~17% of the broker's CPU in audit commits before
//! this). An event is therefore on disk within about 10 ms of being recorded, not at once; no
//! caller waits for it either way.

use crate::domain::{AuditEvent, Store};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

const CHANNEL_CAPACITY: usize = 16_384;
const MAX_BATCH: usize = 4096;
/// The pause after a commit while nobody waits for one.
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

enum Msg {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
    Close,
}

/// Handle for recording audit events.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

impl AuditSink {
    /// Starts the writer thread. It ends once every sink clone is dropped and the queue is drained.
    pub fn start(store: Arc<dyn Store>) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                let mut waiters = Vec::new();
                let mut closing = false;
                while let Some(first) = rx.blocking_recv() {
                    let mut next = Some(first);
                    while let Some(msg) = next.take() {
                        match msg {
                            Msg::Event(e) => batch.push(e),
                            Msg::Flush(w) => waiters.push(w),
                            Msg::Close => closing = true,
                        }
                        if batch.len() < MAX_BATCH && !closing {
                            next = rx.try_recv().ok();
                        }
                    }
                    if let Err(e) = store.append_audit(&batch) {
                        tracing::error!(error = %e, lost = batch.len(), "audit write failed");
                    }
                    batch.clear();
                    let someone_waited = !waiters.is_empty();
                    for w in waiters.drain(..) {
                        let _ = w.send(());
                    }
                    if closing {
                        rx.close();
                        break;
                    }
                    if !someone_waited {
                        std::thread::sleep(COMMIT_INTERVAL);
                    }
                }
            });
        let handle = match handle {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the audit writer; audit disabled");
                std::thread::spawn(|| {})
            }
        };
        (Self { tx }, handle)
    }

    /// Queues an event. Waits when the queue is full rather than dropping the record.
    pub async fn record(&self, event: AuditEvent) {
        if self.tx.send(Msg::Event(event)).await.is_err() {
            tracing::error!("audit writer has stopped; event not recorded");
        }
    }

    /// Commits everything queued before this call and stops the writer thread.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }

    /// Resolves once every event queued before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
