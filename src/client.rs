//! A SigV4-signing gRPC client for the broker, used by the CLI, the load generator and the tests.
//!
//! Signing is a tower layer over the HTTP request ([`SigV4Layer`]), so any tonic client stack can
//! add it: the layer reads the unary call's body, hashes the protobuf message inside its
//! length-prefixed frame (the bytes the broker hashes, see `sigv4::unary_message`), and adds
//! `authorization`, `x-amz-date` and, with temporary credentials, `x-amz-security-token`.
//! With [`Signer::with_gzip`] it then sends the message gzip-compressed (`grpc-encoding: gzip`);
//! the signature stays over the plain message, which is what the broker hashes after inflating.
//! [`Client`] is a connected channel with that layer on top.

use crate::clock::{SharedClock, SystemClock};
use crate::proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use crate::proto::iam::v1::iam_service_client::IamServiceClient;
use crate::proto::sts::v1::security_token_service_client::SecurityTokenServiceClient;
use crate::sigv4::{self, GrpcSignParams, Payload, SignedHeaders};
use http_body_util::BodyExt;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use zeroize::Zeroizing;

/// Credentials a client signs with.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Client failures before a call reaches the broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint `{0}` is not a valid URL: {1}")]
    Endpoint(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("cannot sign the request: {0}")]
    Sign(String),
}

/// What a call is signed with: credentials, the scope's region, the `:authority` the transport
/// sends, and the clock that dates signatures.
#[derive(Clone)]
pub struct Signer {
    credentials: Credentials,
    region: String,
    host: String,
    clock: SharedClock,
    gzip: bool,
}

debug_only!(Signer, "Signer" { credentials, region, host, gzip });

impl Signer {
    /// Signs for `host`, which must be the `:authority` the channel sends (the endpoint's
    /// `host:port`: tonic's channel sets it after any layer above it has run).
    pub fn new(credentials: Credentials, region: &str, host: &str) -> Self {
        Self {
            credentials,
            region: region.to_owned(),
            host: host.to_owned(),
            clock: Arc::new(SystemClock),
            gzip: false,
        }
    }

    /// The same signer sending each message gzip-compressed after signing it.
    #[must_use]
    pub fn with_gzip(self) -> Self {
        Self { gzip: true, ..self }
    }

    /// The same signer dating its signatures by `clock`.
    #[must_use]
    pub fn with_clock(self, clock: SharedClock) -> Self {
        Self { clock, ..self }
    }

    /// The same signer with other credentials.
    #[must_use]
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        Self {
            credentials,
            ..self
        }
    }

    /// The layer that signs every call passing through it with this signer.
    pub fn layer(self) -> SigV4Layer {
        SigV4Layer(Arc::new(self))
    }

    /// The headers for a call to `path` (e.g. `/iam.v1.IamService/CreateUser`) whose encoded
    /// protobuf message is `message`.
    pub fn sign(&self, path: &str, message: &[u8]) -> Result<SignedHeaders, ClientError> {
        let service = if path.starts_with("/iam.") {
            "iam"
        } else {
            "sts"
        };
        sigv4::sign_grpc(&GrpcSignParams {
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: self.credentials.secret_access_key.as_bytes(),
            session_token: self.credentials.session_token.as_deref(),
            region: &self.region,
            service,
            host: &self.host,
            path,
            payload: Payload::Bytes(message),
            time: self.clock.now(),
        })
        .map_err(|e| ClientError::Sign(e.to_string()))
    }
}

/// Adds `signed` to `headers`, replacing any earlier values.
fn insert(headers: &mut http::HeaderMap, signed: &SignedHeaders) -> Result<(), ClientError> {
    let value =
        |v: &str| http::HeaderValue::from_str(v).map_err(|e| ClientError::Sign(e.to_string()));
    headers.insert(sigv4::HEADER_AUTHORIZATION, value(&signed.authorization)?);
    headers.insert(sigv4::HEADER_X_AMZ_DATE, value(&signed.x_amz_date)?);
    if let Some(t) = &signed.x_amz_security_token {
        headers.insert(sigv4::HEADER_X_AMZ_SECURITY_TOKEN, value(t)?);
    }
    Ok(())
}

/// One gRPC frame holding `message` gzip-compressed (compressed flag 1).
fn gzip_frame(message: &[u8]) -> Result<bytes::Bytes, ClientError> {
    use std::io::Write;
    let fail = |e: std::io::Error| ClientError::Sign(format!("cannot compress the message: {e}"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(message).map_err(fail)?;
    let compressed = gz.finish().map_err(fail)?;
    let len = u32::try_from(compressed.len())
        .map_err(|_| ClientError::Sign("the compressed message is over 4 GiB".into()))?;
    let mut frame = Vec::with_capacity(5 + compressed.len());
    frame.push(1);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&compressed);
    Ok(frame.into())
}

/// A tower layer that signs each unary gRPC call with SigV4 ([`SigV4Service`]).
#[derive(Clone, Debug)]
pub struct SigV4Layer(Arc<Signer>);

impl<S> tower::Layer<S> for SigV4Layer {
    type Service = SigV4Service<S>;

    fn layer(&self, inner: S) -> SigV4Service<S> {
        SigV4Service {
            inner,
            signer: Arc::clone(&self.0),
        }
    }
}

/// The service [`SigV4Layer`] makes.
///
/// A request that already carries `authorization` is sent as it is (a caller that signs by
/// hand keeps its own signature). Any other request's body must be one uncompressed gRPC
/// message, as tonic sends a unary call; a streaming call cannot be signed this way.
#[derive(Clone, Debug)]
pub struct SigV4Service<S> {
    inner: S,
    signer: Arc<Signer>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S> tower::Service<http::Request<Body>> for SigV4Service<S>
where
    S: tower::Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The ready service goes with this call; the clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let signer = Arc::clone(&self.signer);
        Box::pin(async move {
            if req.headers().contains_key(sigv4::HEADER_AUTHORIZATION) {
                return inner.call(req).await.map_err(Into::into);
            }
            let (mut parts, body) = req.into_parts();
            let frame = body.collect().await?.to_bytes();
            let message = sigv4::unary_message(&frame).ok_or_else(|| {
                ClientError::Sign("the body is not one uncompressed gRPC message".into())
            })?;
            let signed = signer.sign(parts.uri.path(), message)?;
            insert(&mut parts.headers, &signed)?;
            let frame = if signer.gzip {
                parts
                    .headers
                    .insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
                gzip_frame(message)?
            } else {
                frame
            };
            let req = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(frame)));
            inner.call(req).await.map_err(Into::into)
        })
    }
}

/// The channel every [`Client`] call goes through: signed by [`SigV4Layer`].
pub type SignedChannel = SigV4Service<Channel>;

/// A connected, signing client.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    signer: Signer,
}

impl Client {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:4180`).
    pub async fn connect(
        endpoint: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        let ep = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| ClientError::Endpoint(endpoint.to_owned(), e.to_string()))?;
        let host = ep
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| ClientError::Endpoint(endpoint.to_owned(), "no host".into()))?;
        let channel = ep
            .connect()
            .await
            .map_err(|e| ClientError::Connect(endpoint.to_owned(), e.to_string()))?;
        Ok(Self {
            channel,
            signer: Signer::new(credentials, region, &host),
        })
    }

    /// The same connection signing with its signatures dated by `clock`.
    #[must_use]
    pub fn with_clock(&self, clock: SharedClock) -> Self {
        Self {
            channel: self.channel.clone(),
            signer: self.signer.clone().with_clock(clock),
        }
    }

    /// The same connection signing with other credentials.
    #[must_use]
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        Self {
            channel: self.channel.clone(),
            signer: self.signer.clone().with_credentials(credentials),
        }
    }

    /// The same connection sending its requests gzip-compressed (signed over the plain message).
    #[must_use]
    pub fn with_gzip(&self) -> Self {
        Self {
            channel: self.channel.clone(),
            signer: self.signer.clone().with_gzip(),
        }
    }

    /// The connection without signing, for calls that must arrive unsigned.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The connection with the signing layer on top.
    pub fn signed_channel(&self) -> SignedChannel {
        tower::Layer::layer(&self.signer.clone().layer(), self.channel.clone())
    }

    pub fn sts(&self) -> SecurityTokenServiceClient<SignedChannel> {
        SecurityTokenServiceClient::new(self.signed_channel())
    }

    pub fn iam(&self) -> IamServiceClient<SignedChannel> {
        IamServiceClient::new(self.signed_channel())
    }

    pub fn authz(&self) -> AuthorizationServiceClient<SignedChannel> {
        AuthorizationServiceClient::new(self.signed_channel())
    }

    /// A request for `path` signed by hand in its metadata, for tests that change a signature
    /// or a body after signing; the layer sends such a request as it is. Ordinary calls pass
    /// the message and let the layer sign.
    pub fn signed<T: prost::Message>(
        &self,
        path: &str,
        message: T,
    ) -> Result<tonic::Request<T>, ClientError> {
        let signed = self.signer.sign(path, &message.encode_to_vec())?;
        let mut req = tonic::Request::new(message);
        let mut headers = std::mem::take(req.metadata_mut()).into_headers();
        insert(&mut headers, &signed)?;
        *req.metadata_mut() = MetadataMap::from_headers(headers);
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Mutex;
    use tower::{Layer, ServiceExt};

    const PATH: &str = "/iam.v1.IamService/CreateUser";

    fn signer(session_token: Option<&str>) -> Signer {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            session_token: session_token.map(str::to_owned),
        };
        Signer::new(credentials, "us-east-1", "broker.example:4180")
            .with_clock(Arc::new(ManualClock::at(1_772_323_200)))
    }

    fn frame(message: &[u8]) -> bytes::Bytes {
        let len = u32::try_from(message.len()).unwrap().to_be_bytes();
        [&[0u8][..], &len, message].concat().into()
    }

    /// Sends `req` through the layer; returns what reached the inner service.
    async fn through(
        signer: Signer,
        req: http::Request<Body>,
    ) -> Result<(http::HeaderMap, bytes::Bytes), BoxError> {
        let seen = Arc::new(Mutex::new(None));
        let inner = {
            let seen = Arc::clone(&seen);
            tower::service_fn(move |req: http::Request<Body>| {
                let seen = Arc::clone(&seen);
                async move {
                    let (parts, body) = req.into_parts();
                    let bytes = body.collect().await?.to_bytes();
                    *seen.lock().unwrap() = Some((parts.headers, bytes));
                    Ok::<_, BoxError>(http::Response::new(()))
                }
            })
        };
        signer.layer().layer(inner).oneshot(req).await?;
        Ok(seen.lock().unwrap().take().unwrap())
    }

    fn request(body: bytes::Bytes) -> http::Request<Body> {
        http::Request::post(PATH)
            .body(Body::new(http_body_util::Full::new(body)))
            .unwrap()
    }

    #[tokio::test]
    async fn the_layer_signs_the_framed_message_and_passes_the_body_on_unchanged() {
        let message = b"\x0a\x05alice";
        for token in [None, Some("session-token")] {
            let (headers, body) = through(signer(token), request(frame(message)))
                .await
                .unwrap();
            assert_eq!(body, frame(message), "the body is sent as it was");
            let want = signer(token).sign(PATH, message).unwrap();
            assert_eq!(headers["authorization"], want.authorization.as_str());
            assert_eq!(headers["x-amz-date"], "20260301T000000Z");
            assert_eq!(
                headers
                    .get("x-amz-security-token")
                    .map(|v| v.to_str().unwrap()),
                token
            );
            // The same signature as signing the message's SHA-256, which is what the broker
            // computes from the bytes it receives.
            let by_hash = sigv4::sign_grpc(&GrpcSignParams {
                access_key_id: "AKIAIOSFODNN7EXAMPLE",
                secret_access_key: b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                session_token: token,
                region: "us-east-1",
                service: "iam",
                host: "broker.example:4180",
                path: PATH,
                payload: Payload::Sha256(<sha2::Sha256 as sha2::Digest>::digest(message).into()),
                time: time::macros::datetime!(2026-03-01 00:00 UTC),
            })
            .unwrap();
            assert_eq!(by_hash, want);
        }
    }

    #[tokio::test]
    async fn with_gzip_the_message_is_signed_plain_and_sent_compressed() {
        use std::io::Read;
        let message = b"\x0a\x05alice";
        let (headers, body) = through(signer(None).with_gzip(), request(frame(message)))
            .await
            .unwrap();
        assert_eq!(headers["grpc-encoding"], "gzip");
        let want = signer(None).sign(PATH, message).unwrap();
        assert_eq!(headers["authorization"], want.authorization.as_str());
        assert_eq!(body[0], 1, "the compressed flag is set");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap());
        assert_eq!(len as usize, body.len() - 5);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[5..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, message);
    }

    #[tokio::test]
    async fn a_request_signed_by_hand_is_left_alone_and_a_stream_is_refused() {
        let mut req = request(frame(b"x"));
        req.headers_mut().insert(
            "authorization",
            http::HeaderValue::from_static("AWS4-HMAC-SHA256 by hand"),
        );
        let (headers, _) = through(signer(None), req).await.unwrap();
        assert_eq!(headers["authorization"], "AWS4-HMAC-SHA256 by hand");
        assert!(!headers.contains_key("x-amz-date"));

        let two = [frame(b"a"), frame(b"b")].concat().into();
        let e = through(signer(None), request(two)).await.unwrap_err();
        assert!(
            e.to_string().contains("not one uncompressed gRPC message"),
            "{e}"
        );
    }
}
