//! Captures what SigV4 signs but tonic does not hand to a service: the request's `:authority`,
//! its path, and the SHA-256 of the protobuf message bytes exactly as sent (API.md section 3).
//!
//! An axum middleware buffers a gRPC request body (bounded by the message size limit), reads the
//! single length-prefixed message of a unary call, hashes it, and passes the same bytes on. The
//! result rides in the request extensions as [`SignedParts`], which tonic keeps on its `Request`.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The parts of the HTTP request the signature covers, captured before tonic decodes the body.
#[derive(Debug, Clone)]
pub struct SignedParts {
    pub host: String,
    pub path: String,
    /// SHA-256 of the protobuf-encoded request message, or `None` when the body could not be
    /// read as exactly one uncompressed gRPC message (the signature check then fails).
    pub payload_sha256: Option<[u8; 32]>,
}

/// The largest request message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The message bytes inside a single gRPC frame: 1 byte compressed flag, 4 bytes big-endian
/// length, then the message.
fn single_message(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    if flag != 0 || rest.len() < 4 {
        return None;
    }
    let (len, msg) = rest.split_at(4);
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    (usize::try_from(len).ok()? == msg.len()).then_some(msg)
}

/// The middleware.
pub async fn capture(req: Request, next: Next) -> Response {
    if !is_grpc(&req) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
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
    let bytes = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES + 5).await {
        Ok(b) => b,
        Err(_) => {
            return tonic::Status::resource_exhausted(format!(
                "request message larger than {MAX_MESSAGE_BYTES} bytes"
            ))
            .into_http::<Body>()
            .into_response();
        }
    };
    let payload_sha256 = single_message(&bytes).map(|m| Sha256::digest(m).into());
    parts.extensions.insert(SignedParts {
        host,
        path: parts.uri.path().to_owned(),
        payload_sha256,
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_strictly() {
        assert_eq!(single_message(&[0, 0, 0, 0, 2, 7, 8]), Some(&[7u8, 8][..]));
        assert_eq!(single_message(&[0, 0, 0, 0, 0]), Some(&[][..]));
        assert_eq!(single_message(&[1, 0, 0, 0, 1, 7]), None, "compressed");
        assert_eq!(single_message(&[0, 0, 0, 0, 3, 7]), None, "short");
        assert_eq!(
            single_message(&[0, 0, 0, 0, 1, 7, 9]),
            None,
            "two messages or junk"
        );
        assert_eq!(single_message(&[]), None);
    }
}
