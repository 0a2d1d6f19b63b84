//! The resource-server kit: protect an HTTP API with the broker's `Authorize`.
//!
//! A client signs its HTTP request to the resource server with its session credentials (AWS
//! SigV4, `Authorization` header form, the service name the resource server names, e.g. `s3`).
//! The resource server turns the request as it received it into a [`pb::SignedRequest`]
//! ([`signed_request`]) and asks the broker, through the crate's signing client
//! ([`crate::client::Client`], with the resource server's own credentials, which must allow
//! `sts:Authorize`), whether the client's principal may perform an action on a resource
//! ([`Authorizer::authorize`]). The broker checks the client's signature with the session's
//! secret before it evaluates, so a token alone gets the client nothing.
//!
//! The body's SHA-256 is always computed here: a client that signed `UNSIGNED-PAYLOAD` (S3's
//! `x-amz-content-sha256`) is refused, so the body the resource server acts on is the one the
//! client signed. Query-string (presigned) signatures are not supported.
//!
//! `examples/resource_server.rs` is an axum server built on this module; README.md shows the
//! Python client side.

use crate::client::Client;
use crate::proto::authz::v1 as pb;
use crate::proto::iam::v1 as iam;
use crate::sigv4;
use tonic_types::StatusExt;

/// Turns a request as received into the message the broker verifies: method, path and query as
/// they travelled, the headers the client signed plus `authorization` (all headers when the
/// `authorization` header names none), `host` from the URI's authority when no `host` header came
/// (HTTP/2), and the SHA-256 of `body`.
pub fn signed_request(parts: &http::request::Parts, body: &[u8]) -> pb::SignedRequest {
    let text = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let signed: Option<Vec<String>> = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .map(text)
        .as_deref()
        .and_then(signed_header_names);
    let wanted = |name: &str| {
        name == sigv4::HEADER_AUTHORIZATION
            || signed.as_ref().is_none_or(|s| s.iter().any(|n| n == name))
    };
    let mut headers: Vec<pb::Header> = parts
        .headers
        .iter()
        .filter(|(name, _)| wanted(name.as_str()))
        .map(|(name, value)| pb::Header {
            name: name.as_str().to_owned(),
            value: text(value),
        })
        .collect();
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(pb::Header {
            name: sigv4::HEADER_HOST.to_owned(),
            value: authority.as_str().to_owned(),
        });
    }
    pb::SignedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        payload_sha256: sigv4::sha256_hex(body),
    }
}

/// The lowercase names of `SignedHeaders=` in an `authorization` value, if it has them.
fn signed_header_names(authorization: &str) -> Option<Vec<String>> {
    let list = authorization
        .split([' ', ','])
        .find_map(|part| part.strip_prefix("SignedHeaders="))?;
    Some(list.split(';').map(str::to_ascii_lowercase).collect())
}

/// Why a request was not allowed.
#[derive(Debug)]
pub enum Refusal {
    /// The broker decided: the policies do not allow it (explicit or implicit deny).
    Denied(Box<pb::AuthorizeResponse>),
    /// The client's request or session is not acceptable (bad signature, outside the
    /// five-minute window, invalid or expired token): answer the client 403.
    Client {
        /// The broker's reason, e.g. `SignatureDoesNotMatch` or `ExpiredSubjectToken`.
        reason: String,
        /// The broker's message.
        message: String,
    },
    /// The broker refused or failed the resource server's own call (its credentials, its
    /// `sts:Authorize` permission, an outage): answer 502 and look at the server.
    Broker(tonic::Status),
}

impl Refusal {
    /// The HTTP status to answer the client with.
    #[must_use]
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Self::Denied(_) | Self::Client { .. } => http::StatusCode::FORBIDDEN,
            Self::Broker(_) => http::StatusCode::BAD_GATEWAY,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(r) => write!(f, "denied for {}", r.principal_arn),
            Self::Client { reason, message } => write!(f, "{reason}: {message}"),
            Self::Broker(s) => write!(f, "the broker refused the resource server: {}", s.message()),
        }
    }
}

/// Sorts a failed `Authorize` into the client's fault and the resource server's.
fn refusal(status: tonic::Status) -> Refusal {
    match status.get_details_error_info() {
        Some(info)
            if info.metadata.get(crate::grpc::status::SUBJECT_METADATA)
                == Some(&"true".to_owned()) =>
        {
            Refusal::Client {
                reason: info.reason,
                message: status.message().to_owned(),
            }
        }
        _ => Refusal::Broker(status),
    }
}

/// Asks the broker about client requests for one service.
#[derive(Clone, Debug)]
pub struct Authorizer {
    client: Client,
    service: String,
}

impl Authorizer {
    /// `client` signs with the resource server's credentials; `service` is the name clients
    /// sign their requests for (the credential scope's SERVICE, e.g. `s3`).
    pub fn new(client: Client, service: impl Into<String>) -> Self {
        Self {
            client,
            service: service.into(),
        }
    }

    /// May the client that signed this request perform `action` on `resource`? `Ok` only when
    /// the decision is `allowed`.
    ///
    /// # Errors
    /// A [`Refusal`] saying who is at fault.
    pub async fn authorize(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        action: &str,
        resource: &str,
        context_entries: Vec<iam::ContextEntry>,
    ) -> Result<pb::AuthorizeResponse, Refusal> {
        let request = pb::AuthorizeRequest {
            session_token: String::new(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            context_entries,
            signed_request: Some(signed_request(parts, body)),
            service: self.service.clone(),
        };
        let answer = self
            .client
            .authz()
            .authorize(request)
            .await
            .map_err(refusal)?
            .into_inner();
        if answer.decision == iam::EvalDecision::Allowed as i32 {
            Ok(answer)
        } else {
            Err(Refusal::Denied(Box::new(answer)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method("PUT").uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_request_is_forwarded_as_it_travelled() {
        let p = parts(
            "/reports/q%203.csv?b=2&a=1",
            &[
                ("Host", "files.example:8080"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=ASIA/20260301/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                ),
                ("X-Amz-Date", "20260301T000000Z"),
                ("User-Agent", "not signed"),
            ],
        );
        let r = signed_request(&p, b"body");
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, "/reports/q%203.csv");
        assert_eq!(r.query, "b=2&a=1");
        assert_eq!(r.payload_sha256, sigv4::sha256_hex(b"body"));
        let names: Vec<&str> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["host", "authorization", "x-amz-date"],
            "only what was signed"
        );
    }

    #[test]
    fn host_comes_from_the_authority_over_http2_and_unsigned_requests_keep_every_header() {
        let p = parts("http://files.example:8080/a", &[("x-other", "1")]);
        let r = signed_request(&p, b"");
        let pairs: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(pairs, [("x-other", "1"), ("host", "files.example:8080")]);
    }
}
