//! `floe-guard serve`: the admission webhook server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{ConfigArg, Outcome};
use crate::certs::{Bundle, SanList};
use crate::server::{self, Limits, ServerConfig, TlsSource};

/// `floe-guard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Address to listen on (HTTPS only).
    #[arg(long, default_value = server::DEFAULT_ADDR, env = "FLOE_GUARD_ADDR")]
    pub addr: SocketAddr,
    /// Serving certificate chain (PEM, cert-manager's `tls.crt`); reloaded when it changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        required_unless_present = "self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM, cert-manager's `tls.key`).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Generate a CA and serving certificate in memory (for localhost, 127.0.0.1,
    /// ::1 and the Service names) and write the CA certificate to `--ca-out`.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub self_signed: bool,
    /// Where `--self-signed` writes its CA certificate
    /// (default: floe-guard-ca.crt in the temporary directory).
    #[arg(long, value_name = "FILE", requires = "self_signed")]
    pub ca_out: Option<PathBuf>,
    /// Service name put in the `--self-signed` certificate.
    #[arg(long, default_value = "floe-guard", requires = "self_signed")]
    pub service: String,
    /// Service namespace put in the `--self-signed` certificate.
    #[arg(long, default_value = "floe-guard", requires = "self_signed")]
    pub namespace: String,
    /// Largest accepted request body, bytes (larger: 413).
    #[arg(long, default_value_t = server::DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// The container's memory limit (bytes, or with Ki/Mi/Gi), from which the
    /// body budget and the connection cap are derived (default: the cgroup's
    /// limit, else 128Mi).
    #[arg(long, env = "FLOE_GUARD_MEMORY_LIMIT", value_name = "BYTES", value_parser = server::limits::parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Bytes of request bodies held in memory at once, over all connections
    /// (default: a quarter of the memory limit). A request that cannot get
    /// its share is answered 503 with Retry-After.
    #[arg(long, value_name = "BYTES", value_parser = server::limits::parse_bytes)]
    pub body_budget: Option<u64>,
    /// Open connections on the webhook port; more are closed at once
    /// (default: derived from the memory limit, 1024 for 128Mi).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Concurrent HTTP/2 streams per connection.
    #[arg(long, default_value_t = server::DEFAULT_HTTP2_MAX_STREAMS, value_name = "N")]
    pub http2_max_streams: u32,
    /// Slowest accepted request body, bytes/s: a body of N bytes must arrive
    /// within 1 s + N / rate (and the request timeout), else 408.
    #[arg(long, default_value_t = server::DEFAULT_MIN_BODY_RATE, value_name = "BYTES_PER_S")]
    pub min_body_rate: u64,
    /// Also serve /metrics, /healthz and /readyz over plain HTTP here (the
    /// port the NetworkPolicy opens to the monitoring namespace, and the
    /// kubelet's probes).
    #[arg(long, value_name = "ADDR", env = "FLOE_GUARD_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Seconds for a TLS handshake, and for a request to arrive once started.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// Seconds an idle keep-alive connection (HTTP/1.1 or HTTP/2) is kept open.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub idle_timeout: u64,
    /// Seconds between checks of the certificate files for changes.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub cert_reload_interval: u64,
    /// On SIGTERM, seconds to keep serving while /readyz reports not ready.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub shutdown_delay: u64,
    /// On SIGTERM, seconds in-flight requests get to finish afterwards.
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    pub shutdown_timeout: u64,
}

/// Days the `--self-signed` certificate is valid.
const SELF_SIGNED_DAYS: u32 = 365;

/// Runs the server until SIGTERM or Ctrl-C, then shuts down gracefully.
pub fn serve(args: ServeArgs) -> anyhow::Result<Outcome> {
    let config = Arc::new(args.config.load()?);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => {
            let sans = SanList::for_service(&args.service, &args.namespace).with_localhost();
            let bundle = Bundle::generate(&sans, SELF_SIGNED_DAYS)?;
            let ca_out = args
                .ca_out
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("floe-guard-ca.crt"));
            std::fs::write(&ca_out, &bundle.ca_crt).with_context(|| {
                format!("cannot write the CA certificate to {}", ca_out.display())
            })?;
            let names: Vec<String> = (sans.dns_names.iter().cloned())
                .chain(sans.ips.iter().map(ToString::to_string))
                .collect();
            eprintln!(
                "floe-guard: self-signed certificate for {}; CA certificate written to {}",
                names.join(", "),
                ca_out.display()
            );
            TlsSource::Pem {
                cert: bundle.tls_crt,
                key: bundle.tls_key,
            }
        }
    };
    let memory_limit = args
        .memory_limit
        .or_else(server::limits::cgroup_memory_limit)
        .unwrap_or(server::limits::DEFAULT_MEMORY_LIMIT);
    let derived = Limits::for_memory(memory_limit, args.max_body_bytes);
    let limits = Limits {
        body_budget: args.body_budget.map_or(derived.body_budget, |b| {
            usize::try_from(b).unwrap_or(usize::MAX)
        }),
        max_connections: args.max_connections.unwrap_or(derived.max_connections),
    };
    if limits.body_budget < args.max_body_bytes {
        anyhow::bail!(
            "--body-budget {} is below --max-body-bytes {}: no maximum-size review could be read",
            limits.body_budget,
            args.max_body_bytes
        );
    }
    let cfg = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        limits,
        http2_max_streams: args.http2_max_streams.max(1),
        min_body_rate: args.min_body_rate.max(1),
        metrics_addr: args.metrics_addr,
        request_timeout: Duration::from_secs(args.request_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        cert_reload_interval: Duration::from_secs(args.cert_reload_interval.max(1)),
        shutdown_delay: Duration::from_secs(args.shutdown_delay),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        ..ServerConfig::new(args.addr, tls, config)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let handle = server::start(cfg).await?;
        wait_for_signal().await?;
        handle.shutdown().await;
        Ok(Outcome::Clean)
    })
}

/// Waits for SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
