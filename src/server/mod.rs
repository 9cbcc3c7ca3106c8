//! The HTTPS admission server: `POST /mutate`, `POST /mutate-audit`,
//! `POST /validate`, `/healthz`, `/readyz`, `/metrics` over TLS 1.2/1.3
//! with HTTP/1.1 keep-alive and HTTP/2 (ALPN).
//!
//! [`start`] binds, loads the certificate and returns a [`Handle`] with the
//! bound address, the readiness flag and the shutdown trigger, so tests run
//! the real server in-process on an ephemeral port.
//!
//! Memory is bounded by construction (`docs/hostile-input.md`): request
//! bodies draw on one global byte budget ([`budget`]), open connections on a
//! cap ([`conn`]), both derived from the memory limit ([`limits`]).

mod budget;
mod conn;
mod deadline;
mod http;
pub mod limits;
pub mod metrics;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

pub use limits::Limits;
pub use tls::TlsSource;

use crate::config::Config;
use conn::{Builders, Connection};
use metrics::Metrics;

/// Default listen address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8443";
/// Default largest request body: kube-apiserver caps objects at about 3 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Default concurrent HTTP/2 streams per connection.
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 8;
/// Default slowest accepted request body, bytes/s.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024 * 1024;
/// At the connection cap, how long a new connection waits for the one it
/// evicted to close, and how many may wait at once.
const ROOM_WAIT: Duration = Duration::from_millis(500);
const ROOM_WAITERS: usize = 256;
/// Connections the metrics port serves at once.
const METRICS_CONNECTIONS: usize = 32;

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// The serving certificate.
    pub tls: TlsSource,
    /// The floe configuration the reviews are decided with.
    pub config: Arc<Config>,
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// The bytes of request bodies held at once and the open-connection
    /// cap.
    pub limits: Limits,
    /// Concurrent HTTP/2 streams per connection.
    pub http2_max_streams: u32,
    /// Slowest accepted request body, bytes/s: a body of N bytes must arrive
    /// within 1 s + N / rate (and `request_timeout`).
    pub min_body_rate: u64,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` over plain HTTP
    /// (none: only on the TLS port).
    pub metrics_addr: Option<SocketAddr>,
    /// Time for the TLS handshake, and from the first byte of a request to
    /// the whole request (headers and body).
    pub request_timeout: Duration,
    /// How long an HTTP/1.1 keep-alive connection may stay idle. Keep it
    /// above the API server's client idle timeout (90 s) so the client, not
    /// the server, closes idle connections.
    pub idle_timeout: Duration,
    /// How often the certificate files are checked for changes.
    pub cert_reload_interval: Duration,
    /// On shutdown, how long to keep serving while not ready, so that load
    /// balancers stop sending new requests first.
    pub shutdown_delay: Duration,
    /// On shutdown, how long in-flight requests may take to finish.
    pub shutdown_timeout: Duration,
}

impl ServerConfig {
    /// The defaults for `tls` and `config`.
    pub fn new(addr: SocketAddr, tls: TlsSource, config: Arc<Config>) -> Self {
        Self {
            addr,
            tls,
            config,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: Limits::for_memory(limits::DEFAULT_MEMORY_LIMIT, DEFAULT_MAX_BODY_BYTES),
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
            metrics_addr: None,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            cert_reload_interval: Duration::from_secs(5),
            shutdown_delay: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// A running server.
pub struct Handle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
    delay: Duration,
    timeout: Duration,
}

impl Handle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of the metrics port, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Graceful shutdown: readiness turns false at once; the server keeps
    /// serving for `shutdown_delay`, then stops accepting, lets in-flight
    /// requests finish (closing idle keep-alive connections; HTTP/2 GOAWAY)
    /// for up to `shutdown_timeout`, and returns.
    pub async fn shutdown(mut self) {
        self.ready.store(false, Ordering::Release);
        self.metrics.set_ready(false);
        tracing::info!(
            delay_s = self.delay.as_secs_f32(),
            "shutting down: not ready"
        );
        tokio::time::sleep(self.delay).await;
        let _ = self.stop.send(true);
        if tokio::time::timeout(self.timeout, self.done.recv())
            .await
            .is_err()
        {
            tracing::warn!("shutdown timeout: closing remaining connections");
        } else {
            tracing::info!("all connections closed");
        }
    }
}

/// Binds `cfg.addr`, loads the certificate and serves until
/// [`Handle::shutdown`] (or until the handle is dropped, which stops
/// accepting and closes connections gracefully at once).
pub async fn start(cfg: ServerConfig) -> anyhow::Result<Handle> {
    let metrics = Arc::new(Metrics::default());
    let (store, watcher) = tls::cert_store(&cfg.tls, cfg.cert_reload_interval, metrics.clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(store)?));
    let listener = TcpListener::bind(cfg.addr)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.addr))?;
    let addr = listener.local_addr()?;
    let ready = Arc::new(AtomicBool::new(false));
    let state = Arc::new(http::AppState {
        config: cfg.config.clone(),
        max_body_bytes: cfg.max_body_bytes,
        body_timeout: cfg.request_timeout,
        min_body_rate: cfg.min_body_rate,
        budget: budget::Budget::new(cfg.limits.body_budget),
        ready: ready.clone(),
        metrics: metrics.clone(),
    });
    let service = TowerToHyperService::new(http::router(state.clone()));
    let builders = Builders::new(cfg.idle_timeout, cfg.http2_max_streams);

    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, done) = mpsc::channel::<()>(1);
    if let Some(watcher) = watcher {
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = watcher => {}
                _ = stopped(&mut stop_rx) => {}
            }
        });
    }
    let metrics_addr = match cfg.metrics_addr {
        Some(at) => Some(serve_metrics(at, state, stop_rx.clone()).await?),
        None => None,
    };
    let max_connections = cfg.limits.max_connections;
    let permits = Arc::new(Semaphore::new(max_connections));
    let waiters = Arc::new(Semaphore::new(ROOM_WAITERS));
    let registry = Arc::new(conn::Registry::default());
    let (request_timeout, idle_timeout) = (cfg.request_timeout, cfg.idle_timeout);
    let accept_metrics = metrics.clone();
    let mut accept_stop = stop_rx.clone();
    let mut last_full_warning: Option<tokio::time::Instant> = None;
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = stopped(&mut accept_stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let mut conn = Connection {
                acceptor: acceptor.clone(),
                builders: builders.clone(),
                service: service.clone(),
                stop: stop_rx.clone(),
                metrics: accept_metrics.clone(),
                request_timeout,
                idle_timeout,
                permit: None,
                registry: registry.clone(),
                _done: done_tx.clone(),
            };
            if let Ok(permit) = permits.clone().try_acquire_owned() {
                conn.permit = Some(permit);
                tokio::spawn(conn.serve(tcp, peer));
                continue;
            }
            // At the cap: the connection idle longest makes room; with none
            // idle (or too many already waiting), close at once.
            let waiter = waiters.clone().try_acquire_owned();
            if let Ok(waiter) = waiter
                && registry.evict_idlest()
            {
                let permits = permits.clone();
                tokio::spawn(async move {
                    let room = tokio::time::timeout(ROOM_WAIT, permits.acquire_owned()).await;
                    drop(waiter);
                    if let Ok(Ok(permit)) = room {
                        conn.permit = Some(permit);
                        conn.serve(tcp, peer).await;
                    }
                });
                continue;
            }
            drop((conn, tcp));
            if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                last_full_warning = Some(tokio::time::Instant::now());
                tracing::warn!(%peer, max_connections, "connection limit reached, none idle: closing new connections");
            }
        }
        tracing::debug!("listener closed");
    });
    ready.store(true, Ordering::Release);
    metrics.set_ready(true);
    tracing::info!(
        %addr,
        body_budget = cfg.limits.body_budget,
        max_connections = cfg.limits.max_connections,
        "serving admission webhooks over HTTPS"
    );
    Ok(Handle {
        addr,
        metrics_addr,
        ready,
        metrics,
        stop,
        done,
        delay: cfg.shutdown_delay,
        timeout: cfg.shutdown_timeout,
    })
}

/// Serves `/metrics`, `/healthz` and `/readyz` over plain HTTP/1.1 on `at`
/// (Prometheus and the kubelet's probes: never behind the webhook port's
/// connection cap), at most [`METRICS_CONNECTIONS`] connections at once.
async fn serve_metrics(
    at: SocketAddr,
    state: Arc<http::AppState>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(at)
        .await
        .with_context(|| format!("cannot listen on {at} (metrics)"))?;
    let bound = listener.local_addr()?;
    let service = TowerToHyperService::new(http::metrics_router(state));
    let permits = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                _ = stopped(&mut stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(tcp), service);
                let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
                drop(permit);
            });
        }
    });
    tracing::info!(addr = %bound, "serving metrics and probes over HTTP");
    Ok(bound)
}

/// Resolves once shutdown has been triggered (or the [`Handle`] dropped).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
