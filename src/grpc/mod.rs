//! gRPC adapters: convert the request, hand it to the broker, convert the answer.
//!
//! This is the only module that names tonic types or generated messages. Every signed call is
//! authenticated by [`auth_layer`] on the exact bytes sent, before tonic decodes them; every RPC
//! then goes through [`Services::begin`] (takes the authenticated caller) and [`Services::finish`]
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

pub mod auth_layer;
mod authz;
mod budget;
pub mod codec;
mod iam;
mod input;
pub mod status;
mod sts;

use crate::broker::{Broker, Caller};
use crate::error::BrokerError;
use crate::metrics::Metrics;
use auth_layer::Authenticated;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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

    /// Takes the caller the transport authenticated (see [`auth_layer`]).
    async fn begin<T>(&self, mut req: Request<T>) -> Result<Call<T>, Status> {
        let Some(auth) = req.extensions_mut().remove::<Authenticated>() else {
            return Err(BrokerError::internal(
                "request reached a service without being authenticated",
            )
            .into());
        };
        auth.taken.store(true, Ordering::Release);
        Ok(Call {
            caller: auth.caller,
            action: auth.action,
            message: req.into_inner(),
        })
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
