//! One connection's life: the TLS handshake under a deadline, HTTP/1.1 or
//! HTTP/2 by ALPN with buffers and streams kept small, and closing when
//! idle (no request in flight for `idle_timeout`; before the first request,
//! for `request_timeout`) or on shutdown. The accept loop holds one permit
//! of the connection cap per connection: at the cap, the connection idle
//! longest (no request in flight, the never-used first) is asked to close to
//! make room, so idle floods cannot lock a client out; with none idle, the
//! new connection is closed as soon as it is accepted, before any TLS work.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;

use super::deadline::RequestDeadline;
use super::metrics::Metrics;

pub(crate) type Service = TowerToHyperService<axum::Router>;

/// hyper's HTTP/1.1 read buffer cap (its floor is 8 KiB; its default,
/// 400 KiB, would let each connection streaming a body hold that much).
const H1_MAX_BUF: usize = 16 * 1024;
/// HTTP/2 receive windows: what a peer may send before the server reads.
const H2_WINDOW: u32 = 64 * 1024;
/// HTTP/2 send buffer per stream (answers are a few KiB).
const H2_MAX_SEND_BUF: usize = 64 * 1024;

/// Connection builders by ALPN protocol: no protocol sniffing per connection.
#[derive(Clone)]
pub(crate) struct Builders {
    h1: Arc<auto::Builder<TokioExecutor>>,
    h2: Arc<auto::Builder<TokioExecutor>>,
}

impl Builders {
    /// HTTP/1.1 keep-alive, idle connections closed after `idle` (hyper's
    /// header read timeout runs from the end of the previous response), a
    /// small read buffer; HTTP/2 with keep-alive pings, at most
    /// `max_streams` concurrent streams and small flow-control windows.
    pub(crate) fn new(idle: Duration, max_streams: u32) -> Self {
        let build = || {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .header_read_timeout(idle)
                .max_buf_size(H1_MAX_BUF);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(20))
                .max_concurrent_streams(max_streams)
                .initial_stream_window_size(H2_WINDOW)
                .initial_connection_window_size(H2_WINDOW)
                .max_send_buf_size(H2_MAX_SEND_BUF);
            builder
        };
        Self {
            h1: Arc::new(build().http1_only()),
            h2: Arc::new(build().http2_only()),
        }
    }
}

/// One accepted TCP connection and what it needs.
pub(crate) struct Connection {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) builders: Builders,
    pub(crate) service: Service,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) request_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    /// This connection's place under the connection cap.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    /// The open connections.
    pub(crate) registry: Arc<Registry>,
    /// Dropped when the connection ends; shutdown waits for all of them.
    pub(crate) _done: mpsc::Sender<()>,
}

impl Connection {
    pub(crate) async fn serve(mut self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        self.metrics.connections(1);
        let activity = Arc::new(Activity::new());
        let _registered = self.registry.register(activity.clone());
        let handshake = tokio::time::timeout(self.request_timeout, self.acceptor.accept(tcp));
        let handshake = tokio::select! {
            hs = handshake => hs,
            () = activity.close.notified() => {
                self.metrics.connections(-1);
                return;
            }
        };
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.metrics.tls_handshake_failed();
                self.metrics.connections(-1);
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                self.metrics.tls_handshake_failed();
                self.metrics.connections(-1);
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let service = Tracked {
            inner: self.service.clone(),
            activity: activity.clone(),
        };
        let idle = Idle {
            activity,
            first: self.request_timeout,
            then: self.idle_timeout,
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let result = if h2 {
            let conn = self
                .builders
                .h2
                .serve_connection(TokioIo::new(tls), service);
            drive(conn, &mut self.stop, idle).await
        } else {
            let io = RequestDeadline::new(tls, self.request_timeout);
            let conn = self.builders.h1.serve_connection(TokioIo::new(io), service);
            drive(conn, &mut self.stop, idle).await
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        self.metrics.connections(-1);
    }
}

/// Serves a connection to its end, shutting it down gracefully once `stop`
/// turns true or it has been idle too long.
async fn drive<I>(
    conn: auto::Connection<'_, TokioIo<I>, Tracked, TokioExecutor>,
    stop: &mut watch::Receiver<bool>,
    idle: Idle,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        _ = super::stopped(stop) => {}
        () = idle.elapsed() => {}
        // Evicted while idle to make room: close now (a graceful shutdown
        // waits for a first request that may never come).
        () = idle.activity.close.notified() => return Ok(()),
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

/// Requests in flight on a connection and when the last one ended.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `start` to the end of the last request; 0: none yet.
    last_ms: AtomicU64,
    /// Asked to close to make room under the cap.
    closing: AtomicBool,
    close: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        }
    }

    /// Since when the connection has had no request in flight (its start if
    /// it never had one); `None` while busy or closing.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 || self.closing.load(Ordering::Acquire) {
            return None;
        }
        Some(self.start + Duration::from_millis(self.last_ms.load(Ordering::Acquire)))
    }
}

/// The open connections of the webhook port, to make room at the cap.
#[derive(Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(self: &Arc<Self>, activity: Arc<Activity>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, activity);
        Registered {
            registry: self.clone(),
            id,
        }
    }

    /// Asks the connection idle longest to close; false when none is idle.
    pub(crate) fn evict_idlest(&self) -> bool {
        let conns = self.lock();
        let idlest = conns
            .values()
            .filter_map(|a| Some((a.idle_since()?, a)))
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, a)) => {
                a.closing.store(true, Ordering::Release);
                a.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's entry in the [`Registry`], removed on drop.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Ends a request in [`Activity`] when dropped (answered or cancelled).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.start.elapsed().as_millis().max(1) as u64;
        self.0.last_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's idle rule.
struct Idle {
    activity: Arc<Activity>,
    /// Limit before the first request.
    first: Duration,
    /// Limit after a request.
    then: Duration,
}

impl Idle {
    /// Resolves once no request has been in flight for the limit.
    async fn elapsed(&self) {
        let a = &self.activity;
        loop {
            let last = a.last_ms.load(Ordering::Acquire);
            let since = if last == 0 {
                a.start + self.first
            } else {
                a.start + Duration::from_millis(last) + self.then
            };
            tokio::time::sleep_until(since).await;
            if a.in_flight.load(Ordering::Acquire) == 0 && a.last_ms.load(Ordering::Acquire) == last
            {
                return;
            }
            if a.in_flight.load(Ordering::Acquire) > 0 {
                // Busy: look again after the shorter limit.
                tokio::time::sleep(self.first.min(self.then)).await;
            }
        }
    }
}

/// The router, counting requests in flight for the idle rule.
#[derive(Clone)]
struct Tracked {
    inner: Service,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = <Service as hyper::service::Service<hyper::Request<Incoming>>>::Response;
    type Error = <Service as hyper::service::Service<hyper::Request<Incoming>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.activity.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            drop(guard);
            result
        })
    }
}
