//! The audit record: who did what, from where, and how it ended.

use time::OffsetDateTime;

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
///
/// Most records are one event each (`count` 1, no `last_at`). Failed authentications are
/// aggregated (`broker/failed_auth.rs`): one record stands for `count` refusals alike, the first
/// at `at` and the last at `last_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened (for an aggregate: the first of its events).
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
    /// How many events this record stands for: 1, or more for an aggregate.
    pub count: u64,
    /// For an aggregate, when the last of its events happened.
    pub last_at: Option<OffsetDateTime>,
}

impl AuditEvent {
    /// A record of one event (`count` 1) at `at`, with the rest to fill in.
    pub fn single(at: OffsetDateTime, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            at,
            principal: None,
            access_key_id: None,
            action: action.into(),
            source: None,
            outcome,
            error_code: None,
            detail: None,
            count: 1,
            last_at: None,
        }
    }
}
