//! The attacks of the hostile-load benchmark (`examples/attack`), shared with
//! its bounded CI version (`tests/it/reliability_flood.rs`): slow
//! maximum-size bodies, idle TLS connections, an HTTP/2 stream flood, and a
//! legitimate client at a fixed rate. Loopback only: every connection goes
//! to the one `addr` of a [`Target`], and every attacker stops when told.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The server under attack.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    h1: TlsConnector,
    h2: TlsConnector,
}

impl Target {
    /// `addr` (loopback), verified against the CA certificate `ca_pem` for
    /// the name `localhost`.
    pub fn new(addr: SocketAddr, ca_pem: &[u8]) -> Self {
        assert!(addr.ip().is_loopback(), "the attacks only run on loopback");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let config = |alpn: &[u8]| {
            let mut c = rustls::ClientConfig::builder()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            c.alpn_protocols = vec![alpn.to_vec()];
            TlsConnector::from(Arc::new(c))
        };
        Self {
            addr,
            h1: config(b"http/1.1"),
            h2: config(b"h2"),
        }
    }

    async fn connect(&self, h2: bool) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from("localhost").expect("name");
        let connector = if h2 { &self.h2 } else { &self.h1 };
        match tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// How hard to attack.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Connections sending a maximum-size body and holding back its last byte.
    pub slow_bodies: usize,
    /// Declared size of those bodies.
    pub body_bytes: usize,
    /// TLS connections that send nothing.
    pub idle_tls: usize,
    /// HTTP/2 connections opening as many streams as allowed, each declaring
    /// `body_bytes` and sending a part of it.
    pub h2_connections: usize,
}

/// What the attackers saw.
#[derive(Debug, Default)]
pub struct Counters {
    /// TLS connections established.
    pub connected: AtomicU64,
    /// Connections closed or refused before the TLS handshake finished.
    pub refused: AtomicU64,
    /// Answers with a status (slow bodies and HTTP/2 streams).
    pub answered: AtomicU64,
    /// Of those, 503 (the body budget) or 408 (too slow).
    pub shed: AtomicU64,
    /// HTTP/2 streams opened.
    pub streams: AtomicU64,
}

/// Sleeps for `d` unless `stop` turns true first; false once stopped.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    !stopped && !*stop.borrow()
}

/// Starts every attacker of `plan`; they run until `stop` turns true.
pub fn launch(
    target: &Target,
    plan: Plan,
    stop: &watch::Receiver<bool>,
    counters: &Arc<Counters>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for _ in 0..plan.slow_bodies {
        let (t, s, c) = (target.clone(), stop.clone(), counters.clone());
        set.spawn(slow_body(t, plan.body_bytes, s, c));
    }
    for _ in 0..plan.idle_tls {
        let (t, s, c) = (target.clone(), stop.clone(), counters.clone());
        set.spawn(idle_tls(t, s, c));
    }
    for _ in 0..plan.h2_connections {
        let (t, s, c) = (target.clone(), stop.clone(), counters.clone());
        set.spawn(h2_flood(t, plan.body_bytes, s, c));
    }
    set
}

/// Sends a `POST /mutate` declaring `body_bytes`, all but the last byte at
/// full speed, then waits for the server to answer or close; again, until
/// stopped.
async fn slow_body(
    t: Target,
    body_bytes: usize,
    mut stop: watch::Receiver<bool>,
    c: Arc<Counters>,
) {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    loop {
        if *stop.borrow() {
            return;
        }
        let Ok(mut tls) = t.connect(false).await else {
            c.refused.fetch_add(1, Relaxed);
            if pause(Duration::from_secs(1), &mut stop).await {
                continue;
            }
            return;
        };
        c.connected.fetch_add(1, Relaxed);
        let head = format!(
            "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {body_bytes}\r\n\r\n"
        );
        let send = async {
            tls.write_all(head.as_bytes()).await?;
            let mut left = body_bytes - 1;
            while left > 0 {
                let n = left.min(chunk.len());
                tls.write_all(&chunk[..n]).await?;
                left -= n;
            }
            tls.flush().await
        };
        let sent = tokio::select! {
            r = send => r.is_ok(),
            _ = stop.wait_for(|s| *s) => return,
        };
        // Hold the last byte: read whatever the server answers, until it closes.
        let mut answer = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            while let Ok(n) = tls.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if answer.len() < 64 {
                    answer.extend_from_slice(&buf[..n]);
                }
            }
        };
        tokio::select! {
            () = read => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        count_status(&answer, &c);
        let _ = sent;
        if !pause(Duration::from_secs(1), &mut stop).await {
            return;
        }
    }
}

fn count_status(answer: &[u8], c: &Counters) {
    let status = std::str::from_utf8(answer)
        .ok()
        .and_then(|a| a.split(' ').nth(1)?.parse::<u16>().ok());
    if let Some(code) = status {
        c.answered.fetch_add(1, Relaxed);
        if code == 503 || code == 408 {
            c.shed.fetch_add(1, Relaxed);
        }
    }
}

/// Completes a TLS handshake and sends nothing; reconnects a second after
/// the server closes, until stopped.
async fn idle_tls(t: Target, mut stop: watch::Receiver<bool>, c: Arc<Counters>) {
    loop {
        match t.connect(false).await {
            Ok(mut tls) => {
                c.connected.fetch_add(1, Relaxed);
                let mut buf = [0u8; 1024];
                tokio::select! {
                    _ = tls.read(&mut buf) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            Err(_) => {
                c.refused.fetch_add(1, Relaxed);
            }
        }
        if !pause(Duration::from_secs(1), &mut stop).await {
            return;
        }
    }
}

/// One HTTP/2 connection opening streams as fast as the server allows, each
/// `POST /mutate` declaring `body_bytes` and sending 256 KiB of it, then
/// holding; again on a new connection when the server closes this one.
async fn h2_flood(t: Target, body_bytes: usize, mut stop: watch::Receiver<bool>, c: Arc<Counters>) {
    let part = Bytes::from(vec![b' '; 256 * 1024]);
    loop {
        let Ok(tls) = t.connect(true).await else {
            c.refused.fetch_add(1, Relaxed);
            if pause(Duration::from_secs(1), &mut stop).await {
                continue;
            }
            return;
        };
        c.connected.fetch_add(1, Relaxed);
        let Ok((send, conn)) = h2::client::handshake(tls).await else {
            continue;
        };
        let mut streams = JoinSet::new();
        tokio::select! {
            _ = conn => {}
            _ = open_streams(send, &part, body_bytes, &c, &mut streams) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        streams.abort_all();
        if !pause(Duration::from_secs(1), &mut stop).await {
            return;
        }
    }
}

/// Streams one flood connection keeps open or queued at most (the h2 client
/// queues any number beyond the server's limit); hyper's default limit.
const H2_STREAMS: usize = 256;

/// Opens streams on one HTTP/2 connection as fast as the server allows.
async fn open_streams(
    mut send: h2::client::SendRequest<Bytes>,
    part: &Bytes,
    body_bytes: usize,
    c: &Arc<Counters>,
    streams: &mut JoinSet<()>,
) -> Result<(), h2::Error> {
    let slots = Arc::new(tokio::sync::Semaphore::new(H2_STREAMS));
    loop {
        let slot = slots.clone().acquire_owned().await.expect("open");
        send = send.ready().await?;
        let req = axum::http::Request::post("https://localhost/mutate")
            .header("content-type", "application/json")
            .header("content-length", body_bytes.to_string())
            .body(())
            .expect("request");
        let (response, mut body) = send.send_request(req, false)?;
        c.streams.fetch_add(1, Relaxed);
        let _ = body.send_data(part.clone(), false);
        let c = c.clone();
        streams.spawn(async move {
            if let Ok(r) = response.await {
                c.answered.fetch_add(1, Relaxed);
                if matches!(r.status().as_u16(), 503 | 408) {
                    c.shed.fetch_add(1, Relaxed);
                }
            }
            drop((body, slot));
        });
        while streams.try_join_next().is_some() {}
    }
}

/// One review sent by the legitimate client: when, how long, whether right.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub sent: Instant,
    pub latency: Duration,
    pub ok: bool,
}

/// A client as kube-apiserver calls webhooks: HTTP/1.1 keep-alive, a
/// timeout of 3 s (the most `timeoutSeconds` allows here), `rate` reviews a
/// second on an open loop (a slow answer does not delay the next review),
/// each counted right only when answered 200 with its uid. Runs until
/// stopped; returns every sample.
pub async fn legit(
    url: String,
    ca_pem: Vec<u8>,
    review: serde_json::Value,
    rate: u32,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).expect("CA")])
        .resolve("localhost", "127.0.0.1:0".parse().expect("addr"))
        .http1_only()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client");
    let samples = Arc::new(Mutex::new(Vec::new()));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0u64;
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        n += 1;
        let uid = format!("legit-{n}");
        let mut r = review.clone();
        r["request"]["uid"] = uid.clone().into();
        let body = serde_json::to_vec(&r).expect("json");
        let (client, url, samples) = (client.clone(), url.clone(), samples.clone());
        inflight.spawn(async move {
            let sent = Instant::now();
            let ok = match client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(resp) if resp.status() == 200 => resp.text().await.is_ok_and(|t| {
                    t.contains(&format!("\"uid\":\"{uid}\"")) && t.contains("\"allowed\":true")
                }),
                _ => false,
            };
            samples.lock().expect("samples").push(Sample {
                sent,
                latency: sent.elapsed(),
                ok,
            });
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    samples.lock().expect("samples").clone()
}

/// Success rate and p99 of the samples sent in `[from, to)`.
pub fn window(samples: &[Sample], from: Instant, to: Instant) -> (usize, f64, Duration) {
    let mut lat: Vec<Duration> = samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to)
        .map(|s| s.latency)
        .collect();
    let n = lat.len();
    let ok = samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to && s.ok)
        .count();
    lat.sort_unstable();
    let p99 = lat
        .get((n * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default();
    let rate = if n == 0 { 0.0 } else { ok as f64 / n as f64 };
    (n, rate, p99)
}

/// A field of /proc/PID/status, kB (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

impl Counters {
    /// One line of what the attackers saw.
    pub fn summary(&self) -> String {
        format!(
            "attack: {} TLS connections, {} refused/closed before TLS, {} HTTP/2 streams, {} answers ({} were 503/408)",
            self.connected.load(Relaxed),
            self.refused.load(Relaxed),
            self.streams.load(Relaxed),
            self.answered.load(Relaxed),
            self.shed.load(Relaxed),
        )
    }
}
