//! The audit trail writer: events go through a [`BatchWriter`] (`writer.rs`) whose thread appends
//! them in batches, so recording an event never puts an fsync on the caller's path. `flush` waits
//! until everything sent before it is committed (tests use it); closing, at shutdown, commits
//! everything sent before it and stops the writer, whoever still holds a sink.
//!
//! After each commit the writer pauses for [`COMMIT_INTERVAL`] unless someone is waiting on a
//! flush or close, so that under load it commits at most ~100 times a second instead of once per
//! handful of events: each commit is an fsync on the connection the MFA replay guard also needs
//! (profiling a GetCallerIdentity load showed ~17% of the broker's CPU in audit commits before
//! this). An event is therefore on disk within about 10 ms of being recorded, not at once; no
//! caller waits for it either way. A failed append is logged with the number of events lost.

use super::writer::{BatchWriter, WriterConfig, WriterThread};
use crate::domain::{AuditEvent, Store};
use std::sync::Arc;

/// The pause after a commit while nobody waits for one.
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

const CONFIG: WriterConfig = WriterConfig {
    name: "audit-writer",
    channel_capacity: 16_384,
    max_batch: 4096,
    pause_when_unwaited: Some(COMMIT_INTERVAL),
};

/// Handle for recording audit events.
#[derive(Clone)]
pub struct AuditSink {
    writer: BatchWriter<AuditEvent, ()>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

impl AuditSink {
    /// Starts the writer thread (the broker does, in `Broker::start`).
    pub(super) fn start(store: Arc<dyn Store>) -> (Self, WriterThread) {
        let (writer, thread) = BatchWriter::start(CONFIG, move |events: &mut [AuditEvent]| {
            store.append_audit(events).map(|()| vec![(); events.len()])
        });
        (Self { writer }, thread)
    }

    /// Queues an event. Waits when the queue is full rather than dropping the record.
    pub async fn record(&self, event: AuditEvent) {
        if self.writer.send(event).await.is_err() {
            tracing::error!("audit writer has stopped; event not recorded");
        }
    }

    /// Commits everything queued before this call and stops the writer thread.
    pub(super) async fn close(&self) {
        self.writer.close().await;
    }

    /// Resolves once every event queued before this call is committed.
    pub async fn flush(&self) {
        self.writer.flush().await;
    }
}
