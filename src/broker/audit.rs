//! The audit trail writer: events go through a [`BatchWriter`] (`writer.rs`) whose thread appends
//! them in batches. There are three ways in, by how much the record matters:
//!
//! - **Issuance records of MFA calls** do not come here at all: GetSessionToken and AssumeRole
//!   with a code write theirs in the replay guard's own transaction (`mfa_guard.rs`), so the
//!   record is on disk before the credential leaves, or the call fails and the code is unspent.
//! - **Issuance records without MFA** ([`AuditSink::record_durable`]) wait for the commit of the
//!   batch that holds them: the caller gets its credential only once the record is on disk, and
//!   if the batch does not commit (a full disk, a failing store), the call fails with
//!   `ServiceFailure` and nothing is issued. Several such calls share one commit (group commit),
//!   and a waiting record never waits out the pause below.
//! - **Everything else** ([`AuditSink::record`]): read-only calls, refusals, administrative
//!   calls. No caller waits: the record is queued and committed with the next batch. After each
//!   commit that nobody waited for the writer pauses for [`COMMIT_INTERVAL`], so that under load
//!   it commits at most ~100 times a second instead of once per handful of events: each commit is
//!   an fsync on the connection the MFA replay guard also needs (profiling a GetCallerIdentity
//!   load showed ~17% of the broker's CPU in audit commits before this). Such a record is
//!   therefore on disk within about 10 ms of being recorded (plus the commit itself), and a crash
//!   in that window loses it; a failed append is logged with the number of events lost.
//!   Failed authentications reach the trail aggregated (`failed_auth.rs`), once per interval.
//!
//! `flush` waits until everything sent before it is committed (tests use it); closing, at
//! shutdown, commits everything sent before it and stops the writer, whoever still holds a sink.

use super::writer::{BatchWriter, WriteError, WriterConfig, WriterThread};
use crate::domain::{AuditEvent, Store};
use crate::error::BrokerError;
use std::sync::Arc;

/// The pause after a commit while nobody waits for one: the bound on how long a batched record
/// stays in memory before its commit starts.
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

    /// Queues an event and resolves only once the batch holding it has committed; `Err` (the
    /// batch did not commit, or the writer has stopped) means the record is not on disk and
    /// whatever it records must not happen.
    pub async fn record_durable(&self, event: AuditEvent) -> Result<(), BrokerError> {
        match self.writer.submit(event).await {
            Ok(()) => Ok(()),
            Err(WriteError::Stopped) => Err(BrokerError::internal(
                "the audit writer has stopped; the record was not written",
            )),
            Err(WriteError::NotCommitted) => Err(BrokerError::internal(
                "the audit batch did not commit; the record was not written",
            )),
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
