//! The HTTPS admission server: `POST /mutate`, `POST /mutate-audit`,
//! `POST /validate`, `/healthz`, `/readyz`, `/metrics` over TLS 1.2/1.3
//! with HTTP/1.1 keep-alive and HTTP/2 (ALPN).
//!
//! [`start`] binds, loads the certificate and returns a [`Handle`] with the
//! bound address, the readiness flag and the shutdown trigger, so tests run
//! the real server in-process on an ephemeral port.

mod deadline;
mod http;
pub mod metrics;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use tls::TlsSource;

use crate::config::Config;
use deadline::RequestDeadline;
use metrics::Metrics;

/// Default listen address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8443";
/// Default largest request body: kube-apiserver caps objects at about 3 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

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
        ready: ready.clone(),
        metrics: metrics.clone(),
    });
    let service = TowerToHyperService::new(http::router(state));

    let builders = Builders {
        h1: Arc::new(http_builder(cfg.idle_timeout).http1_only()),
        h2: Arc::new(http_builder(cfg.idle_timeout).http2_only()),
    };

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
    let request_timeout = cfg.request_timeout;
    let accept_metrics = metrics.clone();
    let mut accept_stop = stop_rx.clone();
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
            let conn = Connection {
                acceptor: acceptor.clone(),
                builders: builders.clone(),
                service: service.clone(),
                stop: stop_rx.clone(),
                metrics: accept_metrics.clone(),
                request_timeout,
                _done: done_tx.clone(),
            };
            tokio::spawn(conn.serve(tcp, peer));
        }
        tracing::debug!("listener closed");
    });
    ready.store(true, Ordering::Release);
    metrics.set_ready(true);
    tracing::info!(%addr, "serving admission webhooks over HTTPS");
    Ok(Handle {
        addr,
        ready,
        metrics,
        stop,
        done,
        delay: cfg.shutdown_delay,
        timeout: cfg.shutdown_timeout,
    })
}

type Service = TowerToHyperService<axum::Router>;

/// Connection builders by ALPN protocol: no protocol sniffing per connection.
#[derive(Clone)]
struct Builders {
    h1: Arc<auto::Builder<TokioExecutor>>,
    h2: Arc<auto::Builder<TokioExecutor>>,
}

/// HTTP/1.1 keep-alive, idle connections closed after `idle` (hyper's header
/// read timeout runs from the end of the previous response); HTTP/2 with
/// keep-alive pings.
fn http_builder(idle: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(idle);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256);
    builder
}

/// One accepted TCP connection and what it needs.
struct Connection {
    acceptor: tokio_rustls::TlsAcceptor,
    builders: Builders,
    service: Service,
    stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    request_timeout: Duration,
    /// Dropped when the connection ends; shutdown waits for all of them.
    _done: mpsc::Sender<()>,
}

impl Connection {
    async fn serve(mut self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        self.metrics.connections(1);
        let handshake = tokio::time::timeout(self.request_timeout, self.acceptor.accept(tcp));
        let tls = match handshake.await {
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
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let result = if h2 {
            let conn = self
                .builders
                .h2
                .serve_connection(TokioIo::new(tls), self.service.clone());
            drive(conn, &mut self.stop).await
        } else {
            let io = RequestDeadline::new(tls, self.request_timeout);
            let conn = self
                .builders
                .h1
                .serve_connection(TokioIo::new(io), self.service.clone());
            drive(conn, &mut self.stop).await
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        self.metrics.connections(-1);
    }
}

/// Serves a connection to its end, shutting it down gracefully once `stop`
/// turns true.
async fn drive<I>(
    conn: auto::Connection<'_, TokioIo<I>, Service, TokioExecutor>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        _ = stopped(stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

/// Resolves once shutdown has been triggered (or the [`Handle`] dropped).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
