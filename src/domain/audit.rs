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
