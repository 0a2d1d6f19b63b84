//! A SigV4-signing gRPC client for the broker, used by the CLI and the tests.
//!
//! Each request is signed over the exact protobuf bytes tonic will send: prost's encoding is
//! deterministic, so encoding the message once here gives the same bytes as the wire.

use crate::clock::{SharedClock, SystemClock};
use crate::proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use crate::proto::iam::v1::iam_service_client::IamServiceClient;
use crate::proto::sts::v1::security_token_service_client::SecurityTokenServiceClient;
use crate::sigv4::{self, GrpcSignParams, Payload};
use std::fmt;
use std::sync::Arc;
use tonic::metadata::MetadataValue;
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

/// A connected, signing client.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    host: String,
    region: String,
    credentials: Credentials,
    /// The clock signatures are dated by (the wall clock unless a test sets another).
    pub clock: SharedClock,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
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
            host,
            region: region.to_owned(),
            credentials,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same connection signing with its signatures dated by `clock`.
    pub fn with_clock(&self, clock: SharedClock) -> Self {
        Self {
            clock,
            ..self.clone()
        }
    }

    /// The same connection signing with other credentials.
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        Self {
            credentials,
            ..self.clone()
        }
    }

    pub fn sts(&self) -> SecurityTokenServiceClient<Channel> {
        SecurityTokenServiceClient::new(self.channel.clone())
    }

    pub fn iam(&self) -> IamServiceClient<Channel> {
        IamServiceClient::new(self.channel.clone())
    }

    pub fn authz(&self) -> AuthorizationServiceClient<Channel> {
        AuthorizationServiceClient::new(self.channel.clone())
    }

    /// A request for `path` (e.g. `/iam.v1.IamService/CreateUser`) carrying a SigV4 signature
    /// over `message`.
    pub fn signed<T: prost::Message>(
        &self,
        path: &str,
        message: T,
    ) -> Result<tonic::Request<T>, ClientError> {
        let bytes = message.encode_to_vec();
        let service = if path.starts_with("/iam.") {
            "iam"
        } else {
            "sts"
        };
        let signed = sigv4::sign_grpc(&GrpcSignParams {
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: self.credentials.secret_access_key.as_bytes(),
            session_token: self.credentials.session_token.as_deref(),
            region: &self.region,
            service,
            host: &self.host,
            path,
            payload: Payload::Bytes(&bytes),
            time: self.clock.now(),
        })
        .map_err(|e| ClientError::Sign(e.to_string()))?;
        let mut req = tonic::Request::new(message);
        let md = req.metadata_mut();
        let value =
            |v: &str| MetadataValue::try_from(v).map_err(|e| ClientError::Sign(e.to_string()));
        md.insert("authorization", value(&signed.authorization)?);
        md.insert("x-amz-date", value(&signed.x_amz_date)?);
        if let Some(t) = &signed.x_amz_security_token {
            md.insert("x-amz-security-token", value(t)?);
        }
        Ok(req)
    }
}
