//! The single error type of the module and its mapping to AWS error codes.

use super::time_fmt::format_unix_lossy;
use super::{MAX_CLOCK_SKEW_SECS, SCOPE_TERMINATOR};

/// Everything that can go wrong while signing or verifying.
///
/// `Display` is for logs (lowercase start, caller input in backticks);
/// [`SigV4Error::aws_message`] is the AWS-style text for the wire and
/// [`SigV4Error::aws_code`] the AWS error code.
///
/// SECURITY: no variant carries a secret, a session token, the expected
/// signature or the canonical request; caller-supplied text is cut to 64
/// characters with control characters, quotes and backticks replaced
/// (see [`sanitize`]), so it can neither forge log lines nor grow unbounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// No `authorization` header at all.
    #[error("missing `authorization` header")]
    MissingAuthorization,
    /// The `authorization` header is not `ALG Credential=.., SignedHeaders=.., Signature=..`.
    #[error("malformed `authorization` header: {reason}")]
    MalformedAuthorization {
        /// Fixed description of what is wrong.
        reason: &'static str,
    },
    /// An algorithm other than `AWS4-HMAC-SHA256`.
    #[error("unsupported signing algorithm `{algorithm}`")]
    UnsupportedAlgorithm {
        /// The algorithm sent (sanitised).
        algorithm: String,
    },
    /// The `Credential` part is not `AKID/DATE/REGION/SERVICE/TERMINATOR`.
    #[error("malformed credential: {reason}")]
    MalformedCredential {
        /// Fixed description of what is wrong.
        reason: &'static str,
    },
    /// The `SignedHeaders` list is empty, unsorted, duplicated or not lowercase tokens.
    #[error("invalid signed headers list: {reason}")]
    InvalidSignedHeaders {
        /// Fixed description of what is wrong.
        reason: &'static str,
    },
    /// A header that must be signed (`host`, `x-amz-date`, or
    /// `x-amz-security-token` when sent) is not in `SignedHeaders`.
    #[error("header `{name}` must be signed")]
    HeaderNotSigned {
        /// The header name.
        name: &'static str,
    },
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("signed header `{name}` is not present in the request")]
    SignedHeaderMissing {
        /// The header name (sanitised).
        name: String,
    },
    /// No `x-amz-date` header.
    #[error("missing `x-amz-date` header")]
    MissingDate,
    /// `x-amz-date` is not `YYYYMMDDTHHMMSSZ`.
    #[error("malformed `x-amz-date` value `{value}`, expected `YYYYMMDDTHHMMSSZ`")]
    MalformedDate {
        /// The value sent (sanitised).
        value: String,
    },
    /// Scope date differs from the date part of `x-amz-date`.
    #[error(
        "credential scope date `{scope_date}` does not match the date of `x-amz-date` `{amz_date}`"
    )]
    ScopeDateMismatch {
        /// The scope date (sanitised).
        scope_date: String,
        /// The `x-amz-date` value.
        amz_date: String,
    },
    /// Scope region differs from the server's region.
    #[error("credential should be scoped to a valid region, not `{region}`")]
    ScopeRegionMismatch {
        /// The region sent (sanitised).
        region: String,
    },
    /// Scope service differs from the service being called.
    #[error("credential should be scoped to service `{expected}`, not `{service}`")]
    ScopeServiceMismatch {
        /// The service this endpoint belongs to.
        expected: String,
        /// The service sent (sanitised).
        service: String,
    },
    /// Scope does not end in `aws4_request`.
    #[error(
        "credential should be scoped with terminator `{}`, not `{terminator}`",
        SCOPE_TERMINATOR
    )]
    ScopeTerminatorMismatch {
        /// The terminator sent (sanitised).
        terminator: String,
    },
    /// `x-amz-date` is more than [`MAX_CLOCK_SKEW_SECS`] away from the server clock.
    #[error("{}", expired_message(*request_time, *now, false))]
    RequestExpired {
        /// Request time, unix seconds.
        request_time: i64,
        /// Server time, unix seconds.
        now: i64,
    },
    /// A header that must occur at most once occurs more often.
    #[error("header `{name}` is repeated")]
    RepeatedHeader {
        /// The header name.
        name: &'static str,
    },
    /// `x-amz-content-sha256` differs from the hash of the body received.
    #[error("`x-amz-content-sha256` does not match the payload")]
    PayloadHashMismatch,
    /// The signature is wrong (bad secret, tampered request, different canonicalisation).
    #[error("signature does not match")]
    SignatureMismatch,
    /// Client side only: the signing time cannot be written as `YYYYMMDDTHHMMSSZ`.
    #[error("signing time is outside the years 0000-9999")]
    InvalidSigningTime,
}

impl SigV4Error {
    /// The AWS error code for this error.
    #[must_use]
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::MissingAuthorization => "MissingAuthenticationToken",
            Self::MalformedAuthorization { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::MalformedCredential { .. }
            | Self::InvalidSignedHeaders { .. }
            | Self::HeaderNotSigned { .. }
            | Self::SignedHeaderMissing { .. }
            | Self::MissingDate
            | Self::MalformedDate { .. }
            | Self::RepeatedHeader { .. }
            | Self::InvalidSigningTime => "IncompleteSignature",
            Self::ScopeDateMismatch { .. }
            | Self::ScopeRegionMismatch { .. }
            | Self::ScopeServiceMismatch { .. }
            | Self::ScopeTerminatorMismatch { .. }
            | Self::PayloadHashMismatch
            | Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::RequestExpired { .. } => "RequestExpired",
        }
    }

    /// AWS-style message to return to the client next to [`Self::aws_code`].
    #[must_use]
    pub fn aws_message(&self) -> String {
        match self {
            Self::MissingAuthorization => "Request is missing Authentication Token".to_owned(),
            Self::MalformedAuthorization { reason } => format!(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters ({reason})."
            ),
            Self::UnsupportedAlgorithm { algorithm } => {
                format!("Unsupported AWS 'algorithm': '{algorithm}'.")
            }
            Self::MalformedCredential { reason } => format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term ({reason})."
            ),
            Self::InvalidSignedHeaders { reason } => {
                format!("Invalid SignedHeaders in the Authorization header ({reason}).")
            }
            Self::HeaderNotSigned { name } => {
                format!("'{name}' must be a 'SignedHeader' in the AWS Authorization.")
            }
            Self::SignedHeaderMissing { name } => {
                format!("Header '{name}' is listed in SignedHeaders but is not present in the request.")
            }
            Self::MissingDate => {
                "Authorization header requires existence of a 'X-Amz-Date' header.".to_owned()
            }
            Self::MalformedDate { value } => {
                format!("X-Amz-Date '{value}' is not in the form YYYYMMDDTHHMMSSZ.")
            }
            Self::ScopeDateMismatch {
                scope_date,
                amz_date,
            } => format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
                amz_date.get(..8).unwrap_or(amz_date)
            ),
            Self::ScopeRegionMismatch { region } => {
                format!("Credential should be scoped to a valid region, not '{region}'.")
            }
            Self::ScopeServiceMismatch { expected, .. } => {
                format!("Credential should be scoped to correct service: '{expected}'.")
            }
            Self::ScopeTerminatorMismatch { terminator } => format!(
                "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{terminator}'."
            ),
            Self::RequestExpired { request_time, now } => {
                expired_message(*request_time, *now, true)
            }
            Self::RepeatedHeader { name } => {
                format!("Header '{name}' may be sent only once.")
            }
            Self::PayloadHashMismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned()
            }
            Self::SignatureMismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_owned(),
            Self::InvalidSigningTime => "Signing time is outside the years 0000-9999.".to_owned(),
        }
    }

    pub(crate) fn signed_header_missing(name: &str) -> Self {
        Self::SignedHeaderMissing {
            name: sanitize(name),
        }
    }
}

/// AWS wording for a request outside the clock window, either direction.
fn expired_message(request_time: i64, now: i64, aws_style: bool) -> String {
    let req = format_unix_lossy(request_time);
    let minutes = MAX_CLOCK_SKEW_SECS / 60;
    let now_s = format_unix_lossy(now);
    let (head, relation, bound, sign) = if request_time < now {
        (
            "Signature expired",
            "is now earlier than",
            now.saturating_sub(MAX_CLOCK_SKEW_SECS),
            '-',
        )
    } else {
        (
            "Signature not yet current",
            "is still later than",
            now.saturating_add(MAX_CLOCK_SKEW_SECS),
            '+',
        )
    };
    let bound = format_unix_lossy(bound);
    if aws_style {
        format!("{head}: {req} {relation} {bound} ({now_s} {sign} {minutes} min.)")
    } else {
        let head = head.to_ascii_lowercase();
        format!("{head}: `{req}` {relation} `{bound}` (`{now_s}` {sign} {minutes} min.)")
    }
}

/// Makes caller-supplied text safe to put in an error: at most 64
/// characters, printable ASCII only, no quotes or backticks.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '`' | '\'' | '"' | '\\') || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}
