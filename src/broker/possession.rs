//! Proof of possession at `Authorize`: whose session an `Authorize` is about, and the proof
//! that the client asking the resource server holds that session's secret.
//!
//! A session token alone is a bearer credential: whoever saw it could have a resource server
//! ask about it. With proof of possession the resource server forwards the client's HTTP
//! request as it received it ([`SignedRequest`]); the broker checks its SigV4 signature
//! (`crate::sigv4::parse_http`, the AWS SigV4 guide's canonical request with S3's path rule for
//! service `s3`) with the secret of the session its `x-amz-security-token` names, in the scope
//! `DATE/REGION/<service>/aws4_request` and within five minutes of the broker's clock. Only
//! then are the session's policies evaluated. A bare token ([`Subject::Bearer`]) is refused with
//! `AccessDenied` unless the broker runs with `--allow-bearer-authorize`.
//!
//! Failures about the subject are marked ([`BrokerError::about_subject`]) so a resource server can
//! tell them from its own authentication failing: the forwarded signature keeps AWS's SigV4
//! codes (`SignatureDoesNotMatch`, `RequestExpired`, ...), the token gets the broker's own
//! `InvalidSubjectToken` or `ExpiredSubjectToken`.
//!
//! What this does not prove: that the action and resource asked about are what the client's
//! request means. That mapping is the resource server's; the broker only sees that the client
//! signed a request to that service within the window.

use super::auth::sigv4_error;
use super::{Broker, Principal, SessionInfo};
use crate::error::{AwsCode, BrokerError};
use crate::ids::ValidationError;
use crate::sigv4::{self, HttpRequest, SigV4Error};

/// Longest HTTP method accepted.
pub const MAX_METHOD_CHARS: usize = 16;
/// Longest path or query string accepted (a request line of AWS's S3 is at most 8 KiB).
pub const MAX_TARGET_CHARS: usize = 8192;
/// Most headers accepted in a forwarded request.
pub const MAX_HEADERS: usize = 64;
/// Longest header name accepted.
pub const MAX_HEADER_NAME_CHARS: usize = 256;
/// Longest header value accepted.
pub const MAX_HEADER_VALUE_CHARS: usize = 8192;
/// Longest service name accepted.
pub const MAX_SERVICE_CHARS: usize = 64;

/// Who an `Authorize` is about.
#[derive(Clone)]
pub enum Subject {
    /// A bare session token (bearer mode, off unless `--allow-bearer-authorize`).
    Bearer(String),
    /// The client's signed request (proof of possession).
    Signed(SignedRequest),
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SECURITY: the token is a bearer credential; not printed.
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Signed(r) => f.debug_tuple("Signed").field(r).finish(),
        }
    }
}

/// A client's HTTP request as the resource server received it, every member checked.
#[derive(Clone)]
pub struct SignedRequest {
    service: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    payload_sha256: String,
}

// SECURITY: the headers carry the token and the signature; not printed.
debug_only!(SignedRequest, "SignedRequest" { service, method, path });

/// An HTTP `token` character (RFC 9110 section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn bounded(field: &'static str, v: &str, max: usize) -> Result<(), ValidationError> {
    if v.chars().count() > max {
        return Err(ValidationError::new(
            field,
            v,
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// The request target as it travels: visible ASCII (RFC 9112 section 3.2), no `#`.
fn check_target(field: &'static str, v: &str, what: &str) -> Result<(), ValidationError> {
    bounded(field, v, MAX_TARGET_CHARS)?;
    if !v.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(ValidationError::new(
            field,
            v,
            format!("Member must be {what} as sent: visible ASCII, percent-encoded"),
        ));
    }
    Ok(())
}

fn check_service(v: &str) -> Result<(), ValidationError> {
    let v = crate::ids::required("service", v)?;
    bounded("service", v, MAX_SERVICE_CHARS)?;
    if !v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ValidationError::new(
            "service",
            v,
            "Member must be the service of the client's credential scope: lowercase letters, digits and dashes, e.g. s3",
        ));
    }
    // SECURITY: `sts` and `iam` scope the calls clients make to the broker itself; a relayed
    // broker call is no proof that the client asked this resource server for anything.
    if matches!(v, "sts" | "iam") {
        return Err(ValidationError::new(
            "service",
            v,
            "Member must be the resource server's service, not one of the broker's own (sts, iam)",
        ));
    }
    Ok(())
}

fn check_header(name: &str, value: &str) -> Result<(), ValidationError> {
    const NAME: &str = "signedRequest.headers.member.name";
    const VALUE: &str = "signedRequest.headers.member.value";
    if name.is_empty() {
        return Err(ValidationError::missing(NAME));
    }
    bounded(NAME, name, MAX_HEADER_NAME_CHARS)?;
    if !name.bytes().all(is_tchar) {
        return Err(ValidationError::new(
            NAME,
            name,
            "Member must be an HTTP header name",
        ));
    }
    // SECURITY: values carry the token and the signature, so they are never echoed.
    if value.chars().count() > MAX_HEADER_VALUE_CHARS {
        return Err(ValidationError::redacted(
            VALUE,
            format!("Member must have length less than or equal to {MAX_HEADER_VALUE_CHARS}"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ValidationError::redacted(
            VALUE,
            "Member must not contain control characters",
        ));
    }
    Ok(())
}

impl SignedRequest {
    /// Checks each member of a forwarded request and the `service` it was signed for; a bad one
    /// is a `ValidationError` naming it (`service`, `signedRequest.method`, ...).
    ///
    /// # Errors
    /// The first member that is missing, too long or malformed.
    pub fn parse(
        service: &str,
        method: &str,
        path: &str,
        query: &str,
        headers: Vec<(String, String)>,
        payload_sha256: &str,
    ) -> Result<Self, ValidationError> {
        check_service(service)?;
        let method = crate::ids::required("signedRequest.method", method)?;
        bounded("signedRequest.method", method, MAX_METHOD_CHARS)?;
        if !method.bytes().all(is_tchar) {
            return Err(ValidationError::new(
                "signedRequest.method",
                method,
                "Member must be an HTTP method, e.g. GET",
            ));
        }
        let path = crate::ids::required("signedRequest.path", path)?;
        check_target("signedRequest.path", path, "the request path")?;
        if !path.starts_with('/') {
            return Err(ValidationError::new(
                "signedRequest.path",
                path,
                "Member must be an absolute path starting with /",
            ));
        }
        check_target("signedRequest.query", query, "the query string")?;
        if headers.len() > MAX_HEADERS {
            return Err(ValidationError::members(
                "signedRequest.headers",
                format!(
                    "Value at 'signedRequest.headers' failed to satisfy constraint: Member must have length less than or equal to {MAX_HEADERS}"
                ),
            ));
        }
        for (name, value) in &headers {
            check_header(name, value)?;
        }
        let is_hash = payload_sha256.len() == 64
            && payload_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_hash && payload_sha256 != sigv4::UNSIGNED_PAYLOAD {
            return Err(if payload_sha256.is_empty() {
                ValidationError::missing("signedRequest.payloadSha256")
            } else {
                ValidationError::new(
                    "signedRequest.payloadSha256",
                    payload_sha256,
                    "Member must be the lowercase hex SHA-256 of the body or UNSIGNED-PAYLOAD",
                )
            });
        }
        Ok(Self {
            service: service.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            payload_sha256: payload_sha256.to_owned(),
        })
    }

    /// The `x-amz-security-token` header, when sent exactly once.
    #[must_use]
    pub fn security_token(&self) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(sigv4::HEADER_X_AMZ_SECURITY_TOKEN));
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Some(v),
            _ => None,
        }
    }
}

/// AWS's words for a refused bearer `Authorize`.
const BEARER_REFUSED: &str = "Authorize needs proof of possession: forward the client's signed request in signedRequest. This broker does not decide on a bare session token (see --allow-bearer-authorize).";

/// A SigV4 failure of the forwarded request, marked as the subject's.
fn refused_signature(e: &SigV4Error) -> BrokerError {
    let mut error = sigv4_error(e);
    error.message = format!("In signedRequest: {}", error.message);
    error.about_subject()
}

fn invalid_subject(message: &str) -> BrokerError {
    BrokerError::new(AwsCode::InvalidSubjectToken, message).about_subject()
}

impl Broker {
    /// The principal and session an `Authorize` is about: proven by the client's signature, or
    /// taken from a bare token where the broker allows that.
    pub(super) async fn subject_session(
        &self,
        subject: &Subject,
    ) -> Result<(Principal, SessionInfo), BrokerError> {
        match subject {
            Subject::Bearer(token) if self.settings.allow_bearer_authorize => {
                self.subject_token(token, None).await
            }
            Subject::Bearer(_) => Err(BrokerError::new(AwsCode::AccessDenied, BEARER_REFUSED)),
            Subject::Signed(request) => self.prove(request).await,
        }
    }

    /// Checks the client's signature with its session's secret; gives that session.
    async fn prove(
        &self,
        request: &SignedRequest,
    ) -> Result<(Principal, SessionInfo), BrokerError> {
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let http = HttpRequest {
            method: &request.method,
            path: &request.path,
            query: &request.query,
            headers: &headers,
            payload_sha256: &request.payload_sha256,
            now: self.clock.unix(),
            region: &self.settings.region,
            service: &request.service,
        };
        // Syntax, scope and the five-minute window first: they need no secret.
        let parsed = sigv4::parse_http(&http).map_err(|e| refused_signature(&e))?;
        let token = parsed.security_token().ok_or_else(|| {
            invalid_subject(
                "The signed request has no x-amz-security-token header: Authorize decides for session credentials only.",
            )
        })?;
        // The token must be the one issued with the signing key (same check as a signed call).
        let (principal, session) = self
            .subject_token(token, Some(parsed.access_key_id()))
            .await?;
        let secret = self.session_secret(&session.claims.akid, &session.claims.jti);
        parsed
            .verify(secret.as_bytes())
            .map_err(|e| refused_signature(&e))?;
        Ok((principal, session))
    }

    /// Verifies the subject's token (signature, expiry, revocation, and `akid` when given),
    /// answering with the subject's codes rather than the caller's.
    async fn subject_token(
        &self,
        token: &str,
        akid: Option<&str>,
    ) -> Result<(Principal, SessionInfo), BrokerError> {
        self.resolve_session(token, akid)
            .await
            .map_err(|(e, why)| match e.code {
                AwsCode::ExpiredToken => BrokerError::new(
                    AwsCode::ExpiredSubjectToken,
                    "The session token of the request being authorized is expired.",
                )
                .about_subject(),
                AwsCode::InvalidClientTokenId => {
                    tracing::info!(reason = why, "Authorize: subject token refused");
                    invalid_subject("The session token of the request being authorized is invalid.")
                }
                _ => e,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn headers() -> Vec<(String, String)> {
        vec![("host".into(), "files.example:8080".into())]
    }

    fn parse(
        service: &str,
        method: &str,
        path: &str,
        query: &str,
    ) -> Result<SignedRequest, ValidationError> {
        SignedRequest::parse(service, method, path, query, headers(), HASH)
    }

    #[test]
    fn a_well_formed_request_is_kept_as_sent() {
        let r = parse("s3", "GET", "/reports/q%203.csv", "b=2&a=1").unwrap();
        assert_eq!(r.path, "/reports/q%203.csv");
        assert_eq!(r.query, "b=2&a=1");
        assert!(SignedRequest::parse("s3", "PUT", "/", "", headers(), "UNSIGNED-PAYLOAD").is_ok());
    }

    #[test]
    fn each_bad_member_is_refused_by_name() {
        let cases = [
            (parse("", "GET", "/", ""), "'service'"),
            (parse("S3", "GET", "/", ""), "'service'"),
            (parse("sts", "GET", "/", ""), "'service'"),
            (parse("iam", "GET", "/", ""), "'service'"),
            (parse("s3", "", "/", ""), "'signedRequest.method'"),
            (parse("s3", "GE T", "/", ""), "'signedRequest.method'"),
            (parse("s3", "GET", "", ""), "'signedRequest.path'"),
            (parse("s3", "GET", "reports", ""), "'signedRequest.path'"),
            (parse("s3", "GET", "/a b", ""), "'signedRequest.path'"),
            (
                parse(
                    "s3",
                    "GET",
                    &format!("/{}", "a".repeat(MAX_TARGET_CHARS)),
                    "",
                ),
                "'signedRequest.path'",
            ),
            (parse("s3", "GET", "/", "a=#"), "'signedRequest.query'"),
            (
                SignedRequest::parse("s3", "GET", "/", "", headers(), "ABC"),
                "'signedRequest.payloadSha256'",
            ),
            (
                SignedRequest::parse("s3", "GET", "/", "", headers(), ""),
                "'signedRequest.payloadSha256'",
            ),
            (
                SignedRequest::parse("s3", "GET", "/", "", vec![("".into(), "v".into())], HASH),
                "'signedRequest.headers.member.name'",
            ),
            (
                SignedRequest::parse("s3", "GET", "/", "", vec![("a b".into(), "v".into())], HASH),
                "'signedRequest.headers.member.name'",
            ),
            (
                SignedRequest::parse(
                    "s3",
                    "GET",
                    "/",
                    "",
                    vec![("x".into(), "a\r\nb".into())],
                    HASH,
                ),
                "'signedRequest.headers.member.value'",
            ),
            (
                SignedRequest::parse(
                    "s3",
                    "GET",
                    "/",
                    "",
                    vec![("x".into(), "v".into()); MAX_HEADERS + 1],
                    HASH,
                ),
                "'signedRequest.headers'",
            ),
        ];
        for (result, field) in cases {
            let e = result.expect_err(field);
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn header_values_are_never_echoed() {
        let secretish = "AWS4-HMAC-SHA256 Credential=ASIA/x\u{7}";
        let e = SignedRequest::parse(
            "s3",
            "GET",
            "/",
            "",
            vec![("authorization".into(), secretish.into())],
            HASH,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("Credential"), "{e}");
    }

    #[test]
    fn the_token_is_read_only_from_a_single_header() {
        let one = vec![("X-Amz-Security-Token".to_owned(), "t1".to_owned())];
        let r = SignedRequest::parse("s3", "GET", "/", "", one.clone(), HASH).unwrap();
        assert_eq!(r.security_token(), Some("t1"));
        let mut two = one;
        two.push(("x-amz-security-token".into(), "t2".into()));
        let r = SignedRequest::parse("s3", "GET", "/", "", two, HASH).unwrap();
        assert_eq!(r.security_token(), None);
    }
}
