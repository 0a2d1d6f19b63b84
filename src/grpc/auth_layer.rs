//! SigV4 authentication in the transport, before tonic decodes anything.
//!
//! For every call to a signed service (`sts.v1.*`, `iam.v1.*`, `authz.v1.*`) this middleware:
//! 1. checks what the headers carry ([`Broker::identify`]: signature syntax, scope, clock window,
//!    the key or session token behind it) and refuses the call before reading any of its body;
//! 2. reads the body under two bounds, the size of one message ([`BodyLimits::max_message_bytes`])
//!    and a budget of request bytes buffered across all calls, of which one principal may hold a
//!    share (`budget.rs`);
//!    a gzip-compressed message (`grpc-encoding: gzip`, gRPC's "Compression" document) is
//!    inflated under the same two bounds, so a compression bomb stops at the limit;
//! 3. checks the signature over the message bytes as sent, after removing any compression
//!    ([`Broker::confirm`]);
//! 4. hands the call on with an [`Authenticated`] in its extensions, which
//!    `Services::begin` takes, and the plain message in one uncompressed frame.
//!
//! A request in any other encoding is refused from its headers with `UNIMPLEMENTED`, and every
//! answer names the encodings accepted in `grpc-accept-encoding`. Every failed gRPC answer that
//! passes through here, whoever wrote it, carries an `ErrorInfo` ([`super::status::ensure_error_info`]).
//!
//! A refusal at 1 or 3 is answered here with its status and counted in `/metrics`; the broker
//! has audited it. A call that authenticated but never reached its handler (its message does not
//! decode, see [`super::codec`]) is audited and counted here too. Health and reflection are not
//! signed and pass through untouched.

use super::budget::{Budget, Hold};
use super::status::{NOT_IMPLEMENTED, ensure_error_info, to_status, with_reason};
use crate::broker::{Broker, Caller, SignedCall, actions};
use crate::error::{AwsCode, BrokerError};
use crate::metrics::Metrics;
use crate::sigv4::HeaderSource;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// The gRPC message prefix: 1 byte compressed flag, 4 bytes big-endian length.
const PREFIX: usize = 5;

/// The request encodings accepted, as `grpc-accept-encoding` lists them.
pub const ACCEPTED_ENCODINGS: &str = "identity,gzip";

/// How a request's messages are compressed (its `grpc-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

/// The request's encoding, or the `UNIMPLEMENTED` answer for one the broker does not accept.
fn encoding(headers: &HeaderMap) -> Result<Encoding, tonic::Status> {
    let mut values = headers.get_all("grpc-encoding").iter();
    let (value, extra) = (values.next(), values.next());
    let name = match (value, extra) {
        (None, _) => return Ok(Encoding::Identity),
        (Some(v), None) => v.to_str().unwrap_or_default(),
        (Some(_), Some(_)) => "",
    };
    match name {
        "identity" => Ok(Encoding::Identity),
        "gzip" => Ok(Encoding::Gzip),
        other => {
            // The name is the caller's text: quoted only when short and printable.
            let shown = if other.len() <= 32 && other.bytes().all(|b| b.is_ascii_graphic()) {
                format!("`{other}`")
            } else {
                "this encoding".to_owned()
            };
            Err(with_reason(
                tonic::Code::Unimplemented,
                NOT_IMPLEMENTED,
                format!(
                    "the request is compressed with {shown}, which the broker does not accept; \
                     grpc-encoding must be one of: {ACCEPTED_ENCODINGS}"
                ),
            ))
        }
    }
}

/// The bounds on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// The largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Request bytes that may be buffered at once, across all calls and connections.
    pub budget_bytes: usize,
    /// The part of `budget_bytes` that the calls of one principal (by the ARN their headers
    /// claim) may hold at once (`budget.rs`).
    pub principal_share_bytes: usize,
}

/// The middleware's state.
#[derive(Clone)]
pub struct AuthLayer {
    broker: Arc<Broker>,
    metrics: Arc<Metrics>,
    limits: BodyLimits,
    budget: Arc<Budget>,
}

impl AuthLayer {
    pub fn new(broker: Arc<Broker>, metrics: Arc<Metrics>, limits: BodyLimits) -> Self {
        let budget = Budget::new(limits.budget_bytes, limits.principal_share_bytes);
        Self {
            broker,
            metrics,
            limits,
            budget,
        }
    }
}

/// An authenticated call, as the layer hands it to the service.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Caller,
    pub action: String,
    /// Set by `Services::begin`; a call left unset never reached its handler.
    pub(super) taken: Arc<AtomicBool>,
}

/// Signed headers looked up in the request's headers. A header sent more than once is treated
/// as absent, which fails the signature check rather than guessing how it was joined.
struct Headers<'a>(&'a HeaderMap);

impl HeaderSource for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.0.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok(),
            _ => None,
        }
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The peer address, as the server recorded it for the connection.
fn peer(ext: &http::Extensions) -> Option<SocketAddr> {
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

/// The declared length of the first message, once its prefix has arrived.
fn declared_len(buf: &[u8]) -> Option<usize> {
    let len = buf.get(1..PREFIX)?;
    usize::try_from(u32::from_be_bytes([len[0], len[1], len[2], len[3]])).ok()
}

fn too_large(max: usize) -> BrokerError {
    BrokerError::new(
        AwsCode::LimitExceeded,
        format!("the request message is larger than the limit of {max} bytes"),
    )
}

fn inflates_too_large(max: usize) -> BrokerError {
    BrokerError::new(
        AwsCode::LimitExceeded,
        format!("the request message inflates to more than the limit of {max} bytes"),
    )
}

impl AuthLayer {
    /// Reads a unary call's body: at most one message's worth of bytes, each byte counted
    /// against the budget (`budget.rs`) while the call lasts. Stops early once the body cannot be one
    /// message (its signature will not match).
    async fn read_body(&self, body: Body, hold: &mut Hold) -> Result<Bytes, BrokerError> {
        let max = self.limits.max_message_bytes;
        let mut body = body;
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                BrokerError::new(AwsCode::ValidationError, format!("request body: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if PREFIX + max < buf.len() + data.len() {
                return Err(too_large(max));
            }
            // SECURITY: bytes are counted before they are kept, and a call over budget is
            // refused at once instead of waiting, so a flood cannot queue memory either.
            hold.take(data.len())?;
            buf.extend_from_slice(&data);
            if let Some(len) = declared_len(&buf) {
                if len > max {
                    return Err(too_large(max));
                }
                if buf.len() > PREFIX + len {
                    break;
                }
            }
        }
        Ok(buf.freeze())
    }

    /// The plain message of a gzip-compressed frame, in an uncompressed frame of its own:
    /// inflated at most to the message limit (one byte more shows it is over), each inflated
    /// byte counted against the budget in `held` before it is kept. `Ok(None)` when `frame` is
    /// not one compressed message or does not inflate: its signature cannot match then.
    fn inflate(&self, frame: &[u8], hold: &mut Hold) -> Result<Option<Bytes>, BrokerError> {
        use std::io::Read;
        let max = self.limits.max_message_bytes;
        let Some((&1, rest)) = frame.split_first() else {
            return Ok(None);
        };
        let Some((len, compressed)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        if usize::try_from(u32::from_be_bytes(*len)).ok() != Some(compressed.len()) {
            return Ok(None);
        }
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        let mut reader = flate2::read::GzDecoder::new(compressed).take(limit);
        let mut plain = BytesMut::new();
        plain.extend_from_slice(&[0; PREFIX]);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => return Ok(None),
            };
            if plain.len() - PREFIX + n > max {
                return Err(inflates_too_large(max));
            }
            hold.take(n)?;
            plain.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        let len = u32::try_from(plain.len() - PREFIX).map_err(|_| inflates_too_large(max))?;
        if let Some(prefix) = plain.get_mut(1..PREFIX) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
        Ok(Some(plain.freeze()))
    }

    fn refuse(&self, action: &str, e: &BrokerError) -> Response {
        self.metrics.count(action, e.code.as_str());
        to_status(e).into_http::<Body>()
    }
}

/// What a call to a path that names no RPC is counted and audited as.
pub const UNKNOWN_ACTION: &str = "unknown";

/// The middleware: authenticates signed calls ([`authenticate_signed`]) and gives every failed
/// gRPC answer its `ErrorInfo`.
pub async fn authenticate(State(layer): State<AuthLayer>, req: Request, next: Next) -> Response {
    if !is_grpc(req.headers()) {
        return next.run(req).await;
    }
    let signed = actions::ServiceScope::of_path(req.uri().path()).is_some();
    let mut response = if signed {
        authenticate_signed(&layer, req, next).await
    } else {
        next.run(req).await
    };
    if signed {
        response.headers_mut().insert(
            "grpc-accept-encoding",
            http::HeaderValue::from_static(ACCEPTED_ENCODINGS),
        );
    }
    with_error_info(response)
}

/// `response` with an `ErrorInfo` on its failed status, in its headers or in its trailers.
fn with_error_info(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    ensure_error_info(&mut parts.headers);
    let body = body.map_frame(|frame| match frame.into_trailers() {
        Ok(mut trailers) => {
            ensure_error_info(&mut trailers);
            http_body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    });
    Response::from_parts(parts, Body::new(body))
}

async fn authenticate_signed(layer: &AuthLayer, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    // A path that names no RPC is counted and audited under one fixed word: the path is the
    // caller's choice, and as a metrics label or audit action it would let unauthenticated
    // callers grow both without bound.
    let action = actions::action_for_path(&path).unwrap_or_else(|| UNKNOWN_ACTION.to_owned());
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let headers = Headers(&parts.headers);
    let text = |name: &str| headers.header(name);
    let call = SignedCall {
        path: &path,
        host: &host,
        payload_sha256: None,
        authorization: text("authorization"),
        x_amz_date: text("x-amz-date"),
        security_token: text("x-amz-security-token"),
        headers: &headers,
        source: peer(&parts.extensions),
        action: &action,
    };
    let encoding = match encoding(&parts.headers) {
        Ok(e) => e,
        Err(status) => {
            layer.metrics.count(&action, NOT_IMPLEMENTED);
            return status.into_http::<Body>();
        }
    };
    let identified = match layer.broker.identify(&call).await {
        Ok(i) => i,
        Err(e) => return layer.refuse(&action, &e),
    };
    let mut hold = layer.budget.hold(identified.claimed_arn());
    let mut bytes = match layer.read_body(body, &mut hold).await {
        Ok(read) => read,
        Err(e) => return layer.refuse(&action, &e),
    };
    if encoding == Encoding::Gzip && bytes.first() == Some(&1) {
        match layer.inflate(&bytes, &mut hold) {
            Ok(Some(plain)) => bytes = plain,
            Ok(None) => {}
            Err(e) => return layer.refuse(&action, &e),
        }
    }
    let payload_sha256 = crate::sigv4::unary_message(&bytes).map(|m| Sha256::digest(m).into());
    let caller = match layer.broker.confirm(identified, payload_sha256).await {
        Ok(c) => c,
        Err(e) => return layer.refuse(&action, &e),
    };
    // tonic receives the plain message: one uncompressed frame, no encoding to undo.
    parts.headers.remove("grpc-encoding");
    let taken = Arc::new(AtomicBool::new(false));
    parts.extensions.insert(Authenticated {
        caller: caller.clone(),
        action: action.clone(),
        taken: Arc::clone(&taken),
    });
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !taken.load(Ordering::Acquire) {
        layer.unhandled(&caller, &action, response.headers()).await;
    }
    response
}

impl AuthLayer {
    /// Audits and counts an authenticated call that tonic answered before its handler ran.
    async fn unhandled(&self, caller: &Caller, action: &str, headers: &HeaderMap) {
        let Some(status) = tonic::Status::from_header_map(headers) else {
            return;
        };
        let code = match status.code() {
            tonic::Code::Ok => return,
            // The codec's answer to a message that does not decode.
            tonic::Code::InvalidArgument => AwsCode::ValidationError,
            tonic::Code::ResourceExhausted => AwsCode::LimitExceeded,
            _ => AwsCode::ServiceFailure,
        };
        let e = BrokerError::new(code, status.message());
        self.broker.audit_call(caller, action, Err(&e)).await;
        self.metrics.count(action, code.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_length_needs_the_whole_prefix() {
        assert_eq!(declared_len(&[0, 0, 0, 1]), None);
        assert_eq!(declared_len(&[0, 0, 0, 1, 0]), Some(256));
        assert_eq!(
            declared_len(&[0, 0xff, 0xff, 0xff, 0xff, 9]),
            Some(0xffff_ffff)
        );
    }
}
