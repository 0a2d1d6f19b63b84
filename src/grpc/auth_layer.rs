//! SigV4 authentication in the transport, before tonic decodes anything.
//!
//! For every call to a signed service (`sts.v1.*`, `iam.v1.*`, `authz.v1.*`) this middleware:
//! 1. checks what the headers carry ([`Broker::identify`]: signature syntax, scope, clock window,
//!    the key or session token behind it) and refuses the call before reading any of its body;
//! 2. reads the body under two bounds, the size of one message ([`BodyLimits::max_message_bytes`])
//!    and a budget of request bytes buffered across all calls ([`BodyLimits::budget_bytes`]);
//! 3. checks the signature over the message bytes exactly as sent ([`Broker::confirm`]);
//! 4. hands the call on with an [`Authenticated`] in its extensions, which
//!    `Services::begin` takes.
//!
//! A refusal at 1 or 3 is answered here with its status and counted in `/metrics`; the broker
//! has audited it. A call that authenticated but never reached its handler (its message does not
//! decode, see [`super::codec`]) is audited and counted here too. Health and reflection are not
//! signed and pass through untouched.

use super::status::to_status;
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// The gRPC message prefix: 1 byte compressed flag, 4 bytes big-endian length.
const PREFIX: usize = 5;

/// The bounds on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// The largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Request bytes that may be buffered at once, across all calls and connections.
    pub budget_bytes: usize,
}

/// The middleware's state.
#[derive(Clone)]
pub struct AuthLayer {
    broker: Arc<Broker>,
    metrics: Arc<Metrics>,
    limits: BodyLimits,
    budget: Arc<Semaphore>,
}

impl AuthLayer {
    pub fn new(broker: Arc<Broker>, metrics: Arc<Metrics>, limits: BodyLimits) -> Self {
        let budget = Arc::new(Semaphore::new(
            limits.budget_bytes.min(Semaphore::MAX_PERMITS),
        ));
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

fn over_budget() -> BrokerError {
    BrokerError::new(
        AwsCode::Throttling,
        "Rate exceeded: too many request bytes in flight; retry shortly",
    )
}

impl AuthLayer {
    /// Reads a unary call's body: at most one message's worth of bytes, each byte counted
    /// against the global budget while the call lasts. Stops early once the body cannot be one
    /// message (its signature will not match).
    async fn read_body(
        &self,
        body: Body,
    ) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BrokerError> {
        let max = self.limits.max_message_bytes;
        let mut body = body;
        let mut buf = BytesMut::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
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
            let n = u32::try_from(data.len()).map_err(|_| too_large(max))?;
            let permit = Arc::clone(&self.budget)
                .try_acquire_many_owned(n)
                .map_err(|_| over_budget())?;
            match held.as_mut() {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
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
        Ok((buf.freeze(), held))
    }

    fn refuse(&self, action: &str, e: &BrokerError) -> Response {
        self.metrics.count(action, e.code.as_str());
        to_status(e).into_http::<Body>()
    }
}

/// What a call to a path that names no RPC is counted and audited as.
pub const UNKNOWN_ACTION: &str = "unknown";

/// The middleware.
pub async fn authenticate(State(layer): State<AuthLayer>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !is_grpc(req.headers()) || actions::ServiceScope::of_path(path).is_none() {
        return next.run(req).await;
    }
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
    let identified = match layer.broker.identify(&call).await {
        Ok(i) => i,
        Err(e) => return layer.refuse(&action, &e),
    };
    let (bytes, _held) = match layer.read_body(body).await {
        Ok(read) => read,
        Err(e) => return layer.refuse(&action, &e),
    };
    let payload_sha256 = crate::sigv4::unary_message(&bytes).map(|m| Sha256::digest(m).into());
    let caller = match layer.broker.confirm(identified, payload_sha256).await {
        Ok(c) => c,
        Err(e) => return layer.refuse(&action, &e),
    };
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
