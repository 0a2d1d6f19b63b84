//! gRPC adapters: convert the request, hand it to the broker, convert the answer.
//!
//! This is the only module that names tonic types or generated messages. Every RPC goes through
//! [`Services::begin`] (SigV4 authentication of the exact bytes sent) and [`Services::finish`]
//! (audit, metrics, and the single error → status conversion of `status`).

/// Authenticate, run one broker call, audit and convert: the body of every RPC.
macro_rules! handle {
    ($svc:ident, $req:ident, |$caller:ident, $m:ident| $body:expr) => {{
        let call = $svc.begin($req).await?;
        let result = {
            let $caller = &call.caller;
            let $m = &call.message;
            let _ = $m; // some requests have no fields
            $body
        };
        $svc.finish(&call, result).await
    }};
}

/// Implements a service trait from rows `method(Request) -> Response = |caller, message| body;`.
/// Each body runs through [`handle!`] and may use `?` on `BrokerError` (and on a field's
/// `ValidationError`, which converts into one), so an input refused at the edge is audited and
/// counted like any other failure.
macro_rules! service {
    ($svc:ident, $service:path {
        $($method:ident($req:ty) -> $resp:ty = |$c:ident, $m:ident| $body:expr;)*
    }) => {
        #[tonic::async_trait]
        impl $service for Services {
            $(
                async fn $method(
                    &$svc,
                    req: tonic::Request<$req>,
                ) -> Result<tonic::Response<$resp>, tonic::Status> {
                    handle!($svc, req, |$c, $m| $crate::grpc::attempt(async { $body }).await)
                }
            )*
        }
    };
}

mod authz;
pub mod digest;
mod iam;
mod input;
pub mod status;
mod sts;

use crate::broker::{Broker, Caller, SignedCall, actions};
use crate::error::BrokerError;
use crate::metrics::Metrics;
use crate::sigv4::HeaderSource;
use digest::SignedParts;
use std::sync::Arc;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

/// The service implementations, sharing one broker.
#[derive(Clone)]
pub struct Services {
    broker: Arc<Broker>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

/// Other signed headers, looked up in the call's metadata. A header sent more than once is
/// treated as absent, which fails the signature check rather than guessing how it was joined.
struct MetadataHeaders<'a>(&'a tonic::metadata::MetadataMap);

impl HeaderSource for MetadataHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.0.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok(),
            _ => None,
        }
    }
}

/// An authenticated call in progress.
struct Call<T> {
    caller: Caller,
    action: String,
    message: T,
}

/// Awaits a use case written with `?`; naming the error type lets the bodies of `service!` rows
/// use `?` without annotations.
async fn attempt<R>(
    body: impl std::future::Future<Output = Result<R, BrokerError>>,
) -> Result<R, BrokerError> {
    body.await
}

/// The empty response of a use case that returns nothing.
fn done<R: Default>(result: Result<(), BrokerError>) -> Result<R, BrokerError> {
    result.map(|()| R::default())
}

fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

impl Services {
    pub fn new(broker: Arc<Broker>, metrics: Arc<Metrics>) -> Self {
        Self { broker, metrics }
    }

    /// Authenticates a request from what was signed and what was sent.
    async fn begin<T>(&self, req: Request<T>) -> Result<Call<T>, Status> {
        let parts = req.extensions().get::<SignedParts>().cloned();
        let Some(parts) = parts else {
            return Err(BrokerError::internal(
                "request reached a service without its signed parts",
            )
            .into());
        };
        let action = actions::action_for_path(&parts.path).unwrap_or_else(|| parts.path.clone());
        let md = req.metadata();
        let headers = MetadataHeaders(md);
        // SECURITY: the signature headers must appear exactly once; a repeated one is treated as
        // absent so no guess is made about which copy was signed.
        let text = |name: &str| headers.header(name);
        let call = SignedCall {
            path: &parts.path,
            host: &parts.host,
            payload_sha256: parts.payload_sha256,
            authorization: text("authorization"),
            x_amz_date: text("x-amz-date"),
            security_token: text("x-amz-security-token"),
            headers: &headers,
            source: req.remote_addr(),
            action: &action,
        };
        match self.broker.authenticate(&call).await {
            Ok(caller) => Ok(Call {
                caller,
                action,
                message: req.into_inner(),
            }),
            Err(e) => {
                self.metrics.count(&action, e.code.as_str());
                Err(e.into())
            }
        }
    }

    /// Audits and counts the outcome, and turns an error into its status.
    async fn finish<T, R>(
        &self,
        call: &Call<T>,
        result: Result<R, BrokerError>,
    ) -> Result<Response<R>, Status> {
        self.broker
            .audit_call(&call.caller, &call.action, result.as_ref().map(|_| ()))
            .await;
        match result {
            Ok(r) => {
                self.metrics.count(&call.action, "OK");
                Ok(Response::new(r))
            }
            Err(e) => {
                self.metrics.count(&call.action, e.code.as_str());
                Err(e.into())
            }
        }
    }
}
