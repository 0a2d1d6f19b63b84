//! The one place a [`BrokerError`] becomes a gRPC status: the AWS code goes in a
//! `google.rpc.ErrorInfo` (reason = code, domain = `sts-broker`) and picks the gRPC code.

use crate::error::{AwsCode, BrokerError};
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
        | AwsCode::InvalidInput
        | AwsCode::InvalidSubjectToken
        | AwsCode::ExpiredSubjectToken => Code::InvalidArgument,
        AwsCode::NoSuchEntity => Code::NotFound,
        AwsCode::EntityAlreadyExists => Code::AlreadyExists,
        AwsCode::LimitExceeded | AwsCode::Throttling => Code::ResourceExhausted,
        AwsCode::DeleteConflict
        | AwsCode::EntityTemporarilyUnmodifiable
        | AwsCode::ReportNotPresent => Code::FailedPrecondition,
        AwsCode::ServiceFailure => Code::Internal,
    }
}

/// The `ErrorInfo.metadata` key (value `"true"`) of an `Authorize` failure about the client's
/// request rather than the caller's own call.
pub const SUBJECT_METADATA: &str = "subject";

/// The gRPC status for a broker error.
pub fn to_status(e: &BrokerError) -> Status {
    let mut metadata = HashMap::<String, String>::new();
    if e.about_subject {
        metadata.insert(SUBJECT_METADATA.to_owned(), "true".to_owned());
    }
    let details = ErrorDetails::with_error_info(e.code.as_str(), ERROR_DOMAIN, metadata);
    Status::with_error_details(grpc_code(e.code), e.message.clone(), details)
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
