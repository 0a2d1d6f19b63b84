//! The one place a [`BrokerError`] becomes a gRPC status: the AWS code goes in a
//! `google.rpc.ErrorInfo` (reason = code, domain = `sts-broker`) and picks the gRPC code.
//!
//! Statuses the broker's code does not write (tonic's own, the health and reflection services',
//! the listener's deadline) get their `ErrorInfo` from [`ensure_error_info`], which the transport
//! applies to every gRPC answer, so no failed call leaves without one.

use crate::error::{AwsCode, BrokerError};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the broker returns.
pub const ERROR_DOMAIN: &str = "sts-broker";

/// The gRPC code for an AWS code. Exhaustive on purpose: a new AWS code must be placed here.
pub fn grpc_code(code: AwsCode) -> Code {
    match code {
        AwsCode::MissingAuthenticationToken
        | AwsCode::IncompleteSignature
        | AwsCode::InvalidClientTokenId
        | AwsCode::SignatureDoesNotMatch
        | AwsCode::RequestExpired
        | AwsCode::ExpiredToken => Code::Unauthenticated,
        AwsCode::AccessDenied => Code::PermissionDenied,
        AwsCode::ValidationError
        | AwsCode::InvalidAuthenticationCode
        | AwsCode::MalformedPolicyDocument
        | AwsCode::InvalidInput => Code::InvalidArgument,
        AwsCode::NoSuchEntity => Code::NotFound,
        AwsCode::EntityAlreadyExists => Code::AlreadyExists,
        AwsCode::LimitExceeded | AwsCode::Throttling => Code::ResourceExhausted,
        AwsCode::DeleteConflict
        | AwsCode::EntityTemporarilyUnmodifiable
        | AwsCode::ReportNotPresent => Code::FailedPrecondition,
        AwsCode::ServiceFailure => Code::Internal,
    }
}

/// The gRPC status for a broker error.
pub fn to_status(e: &BrokerError) -> Status {
    let details = ErrorDetails::with_error_info(
        e.code.as_str(),
        ERROR_DOMAIN,
        HashMap::<String, String>::new(),
    );
    Status::with_error_details(grpc_code(e.code), e.message.clone(), details)
}

/// A status with `code`, `message` and an `ErrorInfo` whose reason is `reason`, for the answers
/// that have no [`AwsCode`] (see [`reason_for`]).
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details =
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::<String, String>::new());
    Status::with_error_details(code, message, details)
}

/// The `ErrorInfo.reason` for a status the broker's own code did not write, chosen by its gRPC
/// code: the AWS code of the contract's table where the table has that gRPC code, else AWS's
/// generic codes: `NotImplemented` (S3's "Error responses" list: functionality a header asks
/// for is not implemented), `ServiceUnavailable` (the AWS API references' "Common errors": a
/// temporary failure of the server), and `ServiceFailure` for anything else.
pub fn reason_for(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => AwsCode::ValidationError.as_str(),
        Code::ResourceExhausted => AwsCode::LimitExceeded.as_str(),
        Code::Unauthenticated => AwsCode::MissingAuthenticationToken.as_str(),
        Code::PermissionDenied => AwsCode::AccessDenied.as_str(),
        Code::NotFound => AwsCode::NoSuchEntity.as_str(),
        Code::AlreadyExists => AwsCode::EntityAlreadyExists.as_str(),
        Code::Unimplemented => NOT_IMPLEMENTED,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => "ServiceUnavailable",
        _ => AwsCode::ServiceFailure.as_str(),
    }
}

/// The reason of an `UNIMPLEMENTED` answer (a method or an encoding the broker does not have).
pub const NOT_IMPLEMENTED: &str = "NotImplemented";

const GRPC_STATUS_DETAILS: &str = "grpc-status-details-bin";

/// Adds an `ErrorInfo` to the failed status in `headers` (a trailers-only answer, or the
/// trailers of a body) when it has no details; the code and message stay as they are. A status
/// that already carries details was written by [`to_status`] and is left alone.
pub fn ensure_error_info(headers: &mut HeaderMap) {
    if headers.contains_key(GRPC_STATUS_DETAILS) {
        return;
    }
    let mut status_only = HeaderMap::new();
    for name in ["grpc-status", "grpc-message"] {
        if let Some(v) = headers.get(name) {
            status_only.insert(name, v.clone());
        }
    }
    let Some(status) = Status::from_header_map(&status_only) else {
        return;
    };
    if status.code() == Code::Ok {
        return;
    }
    let fixed = with_reason(status.code(), reason_for(status.code()), status.message());
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(fixed.details());
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        headers.insert(GRPC_STATUS_DETAILS, v);
    }
}

impl From<BrokerError> for Status {
    fn from(e: BrokerError) -> Self {
        to_status(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_error_info() {
        let s = to_status(&BrokerError::new(AwsCode::AccessDenied, "no"));
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(s.message(), "no");
        let info = s.get_details_error_info().unwrap();
        assert_eq!(info.reason, "AccessDenied");
        assert_eq!(info.domain, "sts-broker");
    }

    #[test]
    fn a_status_without_details_gets_error_info_and_keeps_code_and_message() {
        let mut headers = tonic::Status::unimplemented("no such method: a%b")
            .into_http::<()>()
            .into_parts()
            .0
            .headers;
        ensure_error_info(&mut headers);
        let s = Status::from_header_map(&headers).unwrap();
        assert_eq!(s.code(), Code::Unimplemented);
        assert_eq!(s.message(), "no such method: a%b");
        let info = s.get_details_error_info().unwrap();
        assert_eq!(info.reason, "NotImplemented");
        assert_eq!(info.domain, "sts-broker");

        let mut ok = HeaderMap::new();
        ok.insert("grpc-status", HeaderValue::from_static("0"));
        ensure_error_info(&mut ok);
        assert!(
            !ok.contains_key(GRPC_STATUS_DETAILS),
            "a success has no details"
        );

        let mine = to_status(&BrokerError::new(AwsCode::Throttling, "slow down"));
        let mut headers = mine.into_http::<()>().into_parts().0.headers;
        let before = headers.clone();
        ensure_error_info(&mut headers);
        assert_eq!(headers, before, "the broker's own status is left alone");
    }

    #[test]
    fn table_matches_the_contract() {
        assert_eq!(
            grpc_code(AwsCode::SignatureDoesNotMatch),
            Code::Unauthenticated
        );
        assert_eq!(grpc_code(AwsCode::RequestExpired), Code::Unauthenticated);
        assert_eq!(grpc_code(AwsCode::ValidationError), Code::InvalidArgument);
        assert_eq!(grpc_code(AwsCode::NoSuchEntity), Code::NotFound);
        assert_eq!(grpc_code(AwsCode::EntityAlreadyExists), Code::AlreadyExists);
        assert_eq!(grpc_code(AwsCode::LimitExceeded), Code::ResourceExhausted);
        assert_eq!(grpc_code(AwsCode::DeleteConflict), Code::FailedPrecondition);
        assert_eq!(grpc_code(AwsCode::ServiceFailure), Code::Internal);
    }
}
