//! The broker's error vocabulary: AWS error codes and the one error type use cases return.
//!
//! Every failure that leaves the broker is a [`BrokerError`]: one of the error codes AWS's STS
//! and IAM API references list, plus a message in AWS's wording. `grpc::status` turns it into a
//! gRPC status in exactly one place.
//! Messages never contain secrets, seeds, codes or signatures.

use std::fmt;

/// The AWS error codes the broker answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsCode {
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidClientTokenId,
    SignatureDoesNotMatch,
    RequestExpired,
    ExpiredToken,
    AccessDenied,
    ValidationError,
    InvalidAuthenticationCode,
    MalformedPolicyDocument,
    InvalidInput,
    NoSuchEntity,
    EntityAlreadyExists,
    LimitExceeded,
    Throttling,
    DeleteConflict,
    EntityTemporarilyUnmodifiable,
    /// The broker's addition to AWS's codes (AWS answers HTTP 410 here): no credential report yet.
    ReportNotPresent,
    /// The broker's addition: the session token `Authorize` was asked about is not valid (the
    /// caller's own credentials are fine).
    InvalidSubjectToken,
    /// The broker's addition: the session token `Authorize` was asked about has expired.
    ExpiredSubjectToken,
    ServiceFailure,
}

impl AwsCode {
    /// The code as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature => "IncompleteSignature",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::RequestExpired => "RequestExpired",
            Self::ExpiredToken => "ExpiredToken",
            Self::AccessDenied => "AccessDenied",
            Self::ValidationError => "ValidationError",
            Self::InvalidAuthenticationCode => "InvalidAuthenticationCode",
            Self::MalformedPolicyDocument => "MalformedPolicyDocument",
            Self::InvalidInput => "InvalidInput",
            Self::NoSuchEntity => "NoSuchEntity",
            Self::EntityAlreadyExists => "EntityAlreadyExists",
            Self::LimitExceeded => "LimitExceeded",
            Self::Throttling => "Throttling",
            Self::DeleteConflict => "DeleteConflict",
            Self::EntityTemporarilyUnmodifiable => "EntityTemporarilyUnmodifiable",
            Self::ReportNotPresent => "ReportNotPresent",
            Self::InvalidSubjectToken => "InvalidSubjectToken",
            Self::ExpiredSubjectToken => "ExpiredSubjectToken",
            Self::ServiceFailure => "ServiceFailure",
        }
    }
}

impl fmt::Display for AwsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: an AWS code and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BrokerError {
    pub code: AwsCode,
    pub message: String,
    /// The failure is about the client request an `Authorize` asks about, not the caller's own
    /// call (the status then says so in its `ErrorInfo` metadata).
    pub about_subject: bool,
}

impl BrokerError {
    pub fn new(code: AwsCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            about_subject: false,
        }
    }

    /// The same error, marked as about the request being authorized.
    #[must_use]
    pub fn about_subject(self) -> Self {
        Self {
            about_subject: true,
            ..self
        }
    }

    /// An internal failure. The detail goes to the log (it must not contain secrets); the
    /// caller sees only AWS's generic wording.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal failure");
        Self::new(
            AwsCode::ServiceFailure,
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// The caller may not perform `action` on `resource`, in AWS's wording.
    pub fn access_denied(caller_arn: &str, action: &str, resource: &str) -> Self {
        Self::new(
            AwsCode::AccessDenied,
            format!(
                "User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
            ),
        )
    }
}

impl From<crate::ids::ValidationError> for BrokerError {
    fn from(e: crate::ids::ValidationError) -> Self {
        Self::new(AwsCode::ValidationError, e.to_string())
    }
}

impl From<crate::domain::StoreError> for BrokerError {
    fn from(e: crate::domain::StoreError) -> Self {
        use crate::domain::StoreError as S;
        match e {
            S::NotFound(m) => Self::new(AwsCode::NoSuchEntity, m.to_string()),
            S::AlreadyExists(t) => Self::new(AwsCode::EntityAlreadyExists, t.to_string()),
            S::DeleteConflict(c) => Self::new(AwsCode::DeleteConflict, c.to_string()),
            S::LimitExceeded(q) => Self::new(AwsCode::LimitExceeded, q.to_string()),
            other @ (S::Unavailable(_) | S::Backend(_) | S::Internal(_)) => Self::internal(other),
        }
    }
}
