//! The accept loop and the life of each connection: how many there may be, how long one may stay
//! silent, and how it ends.
//!
//! A connection is *pending* from accept until its first request arrives (TLS handshake and
//! HTTP/2 preface included), then *established*. The bounds, each logged (at most once per
//! [`LOG_EVERY`]) when it is hit:
//! - at most [`ConnLimits::max_connections`] connections; over it the new one is closed at once;
//! - at most [`ConnLimits::max_pending`] pending ones; a new connection over it evicts the oldest
//!   pending one, so a flood of silent sockets cannot keep a real client out;
//! - a pending connection is closed after [`ConnLimits::handshake_timeout`]; an established one
//!   with no call in flight after [`ConnLimits::idle_timeout`] (gracefully, with GOAWAY);
//! - when the process runs out of file descriptors, the oldest pending connection is evicted so
//!   the next accept can succeed;
//! - each call gets [`ConnLimits::request_timeout`];
//! - HTTP/2 streams, header list, frame size and flow-control windows are bounded per connection.
//!
//! Shutdown stops accepting, closes pending connections, asks established ones to finish their
//! calls (GOAWAY), and resolves when every connection is gone.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tonic::transport::server::TcpConnectInfo;
use tower::ServiceExt;

/// The least time between two log lines about the same limit.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Connection limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_pending: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_local_error_reset_streams: usize,
    pub max_pending_accept_reset_streams: usize,
    pub max_header_list_size: u32,
    pub max_frame_size: u32,
    pub stream_window: u32,
    pub connection_window: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

/// A log line that is written at most once per [`LOG_EVERY`], with the count of the events it
/// stands for.
struct RateLimitedLog {
    what: &'static str,
    last: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl RateLimitedLog {
    const fn new(what: &'static str) -> Self {
        Self {
            what,
            last: Mutex::new(None),
            count: AtomicU64::new(0),
        }
    }

    fn hit(&self, limit: usize) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return;
        }
        *last = Some(now);
        let events = self.count.swap(0, Ordering::Relaxed);
        tracing::warn!(limit, events, "connection limit hit: {}", self.what);
    }
}

/// Pending connections, oldest first, each with the signal that closes it.
#[derive(Default)]
struct Pending {
    next_id: AtomicU64,
    queue: Mutex<VecDeque<(u64, Arc<Notify>)>>,
}

impl Pending {
    fn add(&self) -> (u64, Arc<Notify>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        if let Ok(mut q) = self.queue.lock() {
            q.push_back((id, Arc::clone(&evict)));
        }
        (id, evict)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut q) = self.queue.lock() {
            q.retain(|(i, _)| *i != id);
        }
    }

    fn len(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Closes the oldest pending connection; false when there is none.
    fn evict_oldest(&self) -> bool {
        let oldest = self.queue.lock().ok().and_then(|mut q| q.pop_front());
        oldest.is_some_and(|(_, evict)| {
            evict.notify_one();
            true
        })
    }

    fn evict_all(&self) {
        while self.evict_oldest() {}
    }
}

/// What one connection's calls tell its watchdog.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `started` to the end of the last call.
    last_ms: AtomicU64,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
            self.started.elapsed().saturating_sub(last)
        })
    }
}

/// Counts a call in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(a))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Shared {
    limits: ConnLimits,
    router: Router,
    http: auto::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pending: Pending,
    connections: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    over_cap: RateLimitedLog,
    evicted: RateLimitedLog,
    out_of_fds: RateLimitedLog,
}

fn http_builder(l: &ConnLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(l.handshake_timeout)
        .max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(l.max_concurrent_streams)
        .max_local_error_reset_streams(l.max_local_error_reset_streams)
        .max_pending_accept_reset_streams(l.max_pending_accept_reset_streams)
        .max_header_list_size(l.max_header_list_size)
        .max_frame_size(l.max_frame_size)
        .initial_stream_window_size(l.stream_window)
        .initial_connection_window_size(l.connection_window)
        .keep_alive_interval(l.keepalive_interval)
        .keep_alive_timeout(l.keepalive_timeout);
    b
}

/// True for the accept errors that mean "out of file descriptors".
fn out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Serves `router` on `listener` until `stop` resolves and every connection has ended.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: ConnLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        http: http_builder(&limits),
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        limits,
        router,
        tls,
        pending: Pending::default(),
        stop: stop_rx,
        over_cap: RateLimitedLog::new("too many connections; new ones are closed"),
        evicted: RateLimitedLog::new("too many pending connections; the oldest are closed"),
        out_of_fds: RateLimitedLog::new("out of file descriptors; pending connections are closed"),
    });
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if out_of_fds(&e) => {
                shared.out_of_fds.hit(shared.limits.max_connections);
                if !shared.pending.evict_oldest() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let permit = match Arc::clone(&shared.connections).try_acquire_owned() {
            Ok(p) => p,
            Err(_) if shared.pending.evict_oldest() => {
                shared.evicted.hit(shared.limits.max_pending);
                // The evicted connection gives its slot back when its task ends.
                match tokio::time::timeout(
                    Duration::from_secs(1),
                    Arc::clone(&shared.connections).acquire_owned(),
                )
                .await
                {
                    Ok(Ok(p)) => p,
                    _ => continue,
                }
            }
            Err(_) => {
                shared.over_cap.hit(shared.limits.max_connections);
                continue;
            }
        };
        if shared.pending.len() >= shared.limits.max_pending {
            shared.evicted.hit(shared.limits.max_pending);
            shared.pending.evict_oldest();
        }
        let _ = stream.set_nodelay(true);
        // INVARIANT: registered before the next accept, so the pending count is exact.
        let pending = shared.pending.add();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _permit = permit;
            shared.connection(stream, peer, pending).await;
        });
    }
    let _ = stop_tx.send(true);
    shared.pending.evict_all();
    tracing::info!("shutting down: no new connections; finishing in-flight calls");
    let all = u32::try_from(shared.limits.max_connections).unwrap_or(u32::MAX);
    let _ = shared.connections.acquire_many(all).await;
    Ok(())
}

impl Shared {
    async fn connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        (id, evict): (u64, Arc<Notify>),
    ) {
        let info = TcpConnectInfo {
            local_addr: stream.local_addr().ok(),
            remote_addr: Some(peer),
        };
        let deadline = Instant::now() + self.limits.handshake_timeout;
        match &self.tls {
            None => self.http(stream, info, id, &evict, deadline).await,
            Some(acceptor) => {
                let handshake = tokio::select! {
                    r = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => r,
                    () = evict.notified() => return,
                };
                match handshake {
                    Ok(Ok(tls)) => self.http(tls, info, id, &evict, deadline).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
        self.pending.remove(id);
    }

    async fn http<I>(
        self: &Arc<Self>,
        io: I,
        info: TcpConnectInfo,
        id: u64,
        evict: &Notify,
        handshake_deadline: Instant,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        });
        let established = Arc::new(Notify::new());
        let service = {
            let (shared, activity, established) = (
                Arc::clone(self),
                Arc::clone(&activity),
                Arc::clone(&established),
            );
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                shared.pending.remove(id);
                established.notify_one();
                let in_flight = InFlight::new(&activity);
                req.extensions_mut().insert(info.clone());
                let timeout = shared.limits.request_timeout;
                let call = shared
                    .router
                    .clone()
                    .oneshot(req.map(axum::body::Body::new));
                async move {
                    let _in_flight = in_flight;
                    match tokio::time::timeout(timeout, call).await {
                        Ok(Ok(response)) => Ok::<_, std::convert::Infallible>(response),
                        Ok(Err(never)) => match never {},
                        Err(_) => {
                            let code = tonic::Code::DeadlineExceeded;
                            let reason = crate::grpc::status::reason_for(code);
                            let message =
                                format!("the call did not finish within {} s", timeout.as_secs());
                            Ok(crate::grpc::status::with_reason(code, reason, message).into_http())
                        }
                    }
                }
            })
        };
        let conn = self.http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut stop = self.stop.clone();
        let mut is_pending = true;
        let mut closing = false;
        let tick = Duration::from_secs(1);
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                () = evict.notified(), if is_pending => return,
                () = established.notified(), if is_pending => is_pending = false,
                _ = stop.changed(), if !closing => {
                    if is_pending {
                        return;
                    }
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep(tick) => {
                    if is_pending && Instant::now() >= handshake_deadline {
                        return;
                    }
                    let idle = activity.idle_for().is_some_and(|d| d >= self.limits.idle_timeout);
                    if !is_pending && !closing && idle {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_takes_the_oldest_pending_connection() {
        let p = Pending::default();
        let (a, evict_a) = p.add();
        let (_b, _) = p.add();
        let (c, _) = p.add();
        p.remove(c);
        assert_eq!(p.len(), 2);
        assert!(p.evict_oldest());
        assert_eq!(p.len(), 1);
        // The stored permit means the connection sees it even if it was not waiting yet.
        let woke = futures_now(evict_a.notified());
        assert!(woke, "the oldest connection ({a}) was told to close");
        assert!(p.evict_oldest());
        assert!(!p.evict_oldest(), "nothing left to evict");
    }

    fn futures_now(f: impl Future<Output = ()>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_ready()
    }
}
