//! The listener: one port serving gRPC (HTTP/2) and the plain HTTP paths (`/healthz`,
//! `/.well-known/jwks.json`, `/metrics`), with explicit HTTP/2 limits instead of tonic's unlimited
//! defaults, optional TLS, and graceful shutdown that lets in-flight calls finish.

use crate::broker::{Broker, BrokerHandle, BrokerSettings, SessionKeys};
use crate::clock::SharedClock;
use crate::datadir::{self, DataDirError, FirstStart};
use crate::grpc::Services;
use crate::grpc::auth_layer::{self, AuthLayer, BodyLimits};
use crate::ids::AccountId;
use crate::listener::{self, ConnLimits};
use crate::metrics::Metrics;
use crate::proto::authz::v1::authorization_service_server::AuthorizationServiceServer;
use crate::proto::iam::v1::iam_service_server::IamServiceServer;
use crate::proto::sts::v1::security_token_service_server::SecurityTokenServiceServer;
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::service::Routes;

/// Connection, HTTP/2 and call limits. Each one bounds a resource a misbehaving client could
/// otherwise hog; README.md lists them with their values.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once.
    pub max_connections: usize,
    /// Connections that have not sent their first request yet.
    pub max_pending_connections: usize,
    /// From accept to the first request (TLS handshake and HTTP/2 preface included).
    pub handshake_timeout: Duration,
    /// An established connection with no call in flight for this long is closed.
    pub idle_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// Streams a client may make the server reset before the connection is closed (the
    /// "made you reset" flood, CVE-2023-44487 and relatives).
    pub max_local_error_reset_streams: usize,
    pub max_pending_accept_reset_streams: usize,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub request_timeout: Duration,
    pub max_header_list_size: u32,
    /// The largest HTTP/2 frame the client may send.
    pub max_frame_size: u32,
    /// HTTP/2 flow-control windows: what a client may send before the broker reads it.
    pub stream_window: u32,
    pub connection_window: u32,
    /// The largest request message. The largest legitimate ones are policy simulations at the
    /// bounds of `src/policy/limits.rs` (128 Ki characters of policy text, up to 1,000
    /// action × resource pairs with ARNs of 2,048 characters) and hardware seed-file imports
    /// (at most about 400 bytes a line); 1 MiB holds either with room to spare.
    pub max_message_bytes: usize,
    /// The largest response message (list calls and the credential report can be long).
    pub max_response_bytes: usize,
    /// Request bytes buffered at once across every call, before their signature is checked.
    pub buffered_request_budget: usize,
    /// The part of that budget the calls of one principal may hold at once (`grpc/budget.rs`).
    pub buffered_request_share: usize,
    /// How often the store is asked for a tiny write, whose outcome `/healthz` reports.
    pub store_probe_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_connections: 128,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_concurrent_streams: 128,
            max_local_error_reset_streams: 1024,
            max_pending_accept_reset_streams: 64,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_header_list_size: 16 * 1024,
            max_frame_size: 16 * 1024,
            stream_window: 256 * 1024,
            connection_window: 1024 * 1024,
            max_message_bytes: 1024 * 1024,
            max_response_bytes: 1024 * 1024,
            buffered_request_budget: 64 * 1024 * 1024,
            buffered_request_share: 8 * 1024 * 1024,
            store_probe_interval: Duration::from_secs(5),
        }
    }
}

impl Limits {
    fn connections(&self) -> ConnLimits {
        ConnLimits {
            max_connections: self.max_connections,
            max_pending: self.max_pending_connections,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
            max_concurrent_streams: self.max_concurrent_streams,
            max_local_error_reset_streams: self.max_local_error_reset_streams,
            max_pending_accept_reset_streams: self.max_pending_accept_reset_streams,
            max_header_list_size: self.max_header_list_size,
            max_frame_size: self.max_frame_size,
            stream_window: self.stream_window,
            connection_window: self.connection_window,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
        }
    }
}

/// A TLS acceptor for a PEM certificate chain and private key, offering HTTP/2 and HTTP/1.1.
fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let c = std::fs::read(cert).map_err(|e| StartError::TlsFile(cert.clone(), e))?;
    let k = std::fs::read(key).map_err(|e| StartError::TlsFile(key.clone(), e))?;
    let chain = CertificateDer::pem_slice_iter(&c)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Tls(format!("`{}`: {e}", cert.display())))?;
    let key_der = PrivateKeyDer::from_pem_slice(&k)
        .map_err(|e| StartError::Tls(format!("`{}`: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
}

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub region: String,
    pub account_id: Option<AccountId>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: Limits,
    /// `--allow-bearer-authorize`: `Authorize` without proof of possession.
    pub allow_bearer_authorize: bool,
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("TLS: cannot read `{0}`: {1}")]
    TlsFile(PathBuf, std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("start-up failed: {0}")]
    Internal(String),
    #[error(
        "region `{0}` is not valid: expected lowercase letters, digits and dashes, e.g. us-east-1"
    )]
    Region(String),
    #[error("session signing keys: {0}")]
    Keys(String),
}

/// A broker that is serving.
pub struct Running {
    pub local_addr: SocketAddr,
    pub broker: Arc<Broker>,
    pub first_start: Option<FirstStart>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    handle: BrokerHandle,
    _probe: crate::health::ProbeTask,
    /// Released when the server is dropped, after it has stopped.
    _data_dir: datadir::DirLock,
}

debug_only!(Running, "Running" { local_addr });

impl Running {
    /// Stops accepting, lets in-flight calls finish, stops the MFA replay-guard writer, and
    /// commits the audit trail.
    pub async fn shutdown(mut self) -> Result<(), std::io::Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits for the server to stop (after a signal or `shutdown`).
    pub async fn wait(self) -> Result<(), std::io::Error> {
        let served = self.task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "server task failed");
            Ok(())
        });
        self.handle.shutdown().await;
        served
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `/healthz`: 200 `ok` while the store can write, else 503 with the reason.
fn healthz(health: &crate::health::WriteHealth) -> (http::StatusCode, String) {
    match health.check() {
        Ok(()) => (http::StatusCode::OK, "ok\n".into()),
        Err(reason) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        ),
    }
}

/// Opens the data dir, binds, and starts serving in the background. `signal` ends the server
/// gracefully when it resolves (in addition to [`Running::shutdown`]).
pub async fn start(
    config: ServeConfig,
    clock: SharedClock,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    if !valid_region(&config.region) {
        return Err(StartError::Region(config.region));
    }
    let now = clock.now();
    let (data_dir, account) = (config.data_dir.clone(), config.account_id.clone());
    let opened = tokio::task::spawn_blocking(move || {
        datadir::open_or_init(&data_dir, account.as_ref(), now)
    })
    .await
    .map_err(|e| StartError::Internal(format!("the start-up task failed: {e}")))??;

    let store: Arc<dyn crate::domain::Store> = opened.store.clone();
    let sessions = {
        let (store, master) = (Arc::clone(&store), Arc::clone(&opened.master));
        tokio::task::spawn_blocking(move || SessionKeys::load(store.as_ref(), &master, now))
            .await
            .map_err(|e| StartError::Keys(e.to_string()))?
            .map_err(StartError::Keys)?
    };
    let mut settings = BrokerSettings::new(config.region.clone());
    settings.tls = config.tls.is_some();
    settings.allow_bearer_authorize = config.allow_bearer_authorize;
    let write_health = Arc::new(crate::health::WriteHealth::new(
        config.limits.store_probe_interval,
    ));
    let probe =
        crate::health::start_probe(Arc::clone(&store), clock.clone(), Arc::clone(&write_health));
    let handle = Broker::start(
        store,
        opened.master,
        clock,
        opened.account,
        settings,
        sessions,
    );
    let broker = Arc::clone(handle.broker());
    let metrics = Arc::new(Metrics::with_failed_authentications(
        broker.failed_authentication_counts(),
    ));
    let services = Services::new(Arc::clone(&broker), Arc::clone(&metrics));
    let auth = AuthLayer::new(
        Arc::clone(&broker),
        Arc::clone(&metrics),
        BodyLimits {
            max_message_bytes: config.limits.max_message_bytes,
            budget_bytes: config.limits.buffered_request_budget,
            principal_share_bytes: config.limits.buffered_request_share,
        },
    );
    let limits = &config.limits;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<SecurityTokenServiceServer<Services>>()
        .await;
    health.set_serving::<IamServiceServer<Services>>().await;
    health
        .set_serving::<AuthorizationServiceServer<Services>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Internal(format!("gRPC reflection: {e}")))?;
    // v1alpha too: many clients (grpcio-reflection, older grpcurl) only speak it.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| StartError::Internal(format!("gRPC reflection: {e}")))?;

    let (max, max_out) = (limits.max_message_bytes, limits.max_response_bytes);
    let mut routes = Routes::builder();
    routes
        .add_service(
            SecurityTokenServiceServer::new(services.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max_out),
        )
        .add_service(
            IamServiceServer::new(services.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max_out),
        )
        .add_service(
            AuthorizationServiceServer::new(services)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max_out),
        )
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha);
    let routes = routes.routes();
    let metrics_route = Arc::clone(&metrics);
    let jwks_broker = Arc::clone(&broker);
    let router = routes
        .into_axum_router()
        .route(
            "/healthz",
            get(move || {
                let h = Arc::clone(&write_health);
                async move { healthz(&h) }
            }),
        )
        .route(
            "/.well-known/jwks.json",
            get(move || {
                let b = Arc::clone(&jwks_broker);
                async move { axum::Json(b.jwks()) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&metrics_route);
                async move { m.render() }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth_layer::authenticate,
        ));

    let tls = match &config.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind(config.listen, e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(config.listen, e))?;

    let (tx, rx) = oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            _ = rx => {}
            () = signal => {}
        }
    };
    let task = tokio::spawn(listener::serve(
        listener,
        tls,
        router,
        limits.connections(),
        stop,
    ));
    Ok(Running {
        local_addr,
        broker,
        first_start: opened.first_start,
        shutdown: Some(tx),
        task,
        handle,
        _probe: probe,
        _data_dir: opened.lock,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
