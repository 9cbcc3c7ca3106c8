//! Hostile-load benchmark for `floe-guard serve` (docs/hostile-input.md):
//! starts the server binary on loopback with a self-signed certificate and a
//! memory limit, runs a legitimate client at `--rate` reviews/s throughout,
//! and for `--duration` seconds attacks it at once with slow maximum-size
//! bodies, idle TLS connections and an HTTP/2 stream flood. Prints the
//! server's idle RSS, peak RSS, the legitimate client's success rate and p99
//! during the attack, and its RSS `--after` seconds later.
//!
//! `scripts/attack.sh` builds and runs it; `--help` lists the knobs. Bounded:
//! every attacker stops at the end of the attack, and the run takes about
//! warm-up + duration + after seconds.

mod flood;
#[path = "../common/server.rs"]
mod server;

use std::path::PathBuf;
use std::process::Stdio;

use server::Server;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use tokio::sync::watch;

/// Hostile-load benchmark for floe-guard serve.
#[derive(Debug, Parser)]
struct Args {
    /// The floe-guard binary to start.
    #[arg(long, default_value = "target/release/floe-guard")]
    binary: PathBuf,
    /// Memory limit given to the server (`FLOE_GUARD_MEMORY_LIMIT`), as the
    /// Deployment does from its container limit.
    #[arg(long, default_value = "128Mi")]
    memory_limit: String,
    /// Connections sending a maximum-size body and holding back its last byte.
    #[arg(long, default_value_t = 1000)]
    slow_bodies: usize,
    /// Size those bodies declare.
    #[arg(long, default_value_t = 3_000_000)]
    body_bytes: usize,
    /// Idle TLS connections.
    #[arg(long, default_value_t = 2000)]
    idle_tls: usize,
    /// HTTP/2 connections flooding streams.
    #[arg(long, default_value_t = 50)]
    h2_connections: usize,
    /// Legitimate reviews per second, throughout.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Seconds of legitimate load before the attack.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds of attack.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds after the attack when RSS is read again.
    #[arg(long, default_value_t = 30)]
    after: u64,
    /// Extra arguments for `floe-guard serve`.
    #[arg(last = true)]
    serve_args: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut server = Server::start(&args.binary, "attack", |cmd, dir| {
        cmd.args(&args.serve_args)
            .env("FLOE_GUARD_MEMORY_LIMIT", &args.memory_limit)
            .env("FLOE_GUARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log"))?);
        Ok(())
    })?;
    let (port, ca_path, dir) = (server.port, server.ca_path.clone(), server.dir.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&args, port, &ca_path, &mut server));
    let alive = server.child.try_wait()?.is_none();
    drop(server);
    println!("server log: {}", dir.join("server.log").display());
    let report = result?;
    println!("{report}");
    if !alive {
        bail!("the server died during the run");
    }
    Ok(())
}

async fn run(
    args: &Args,
    port: u16,
    ca_path: &std::path::Path,
    server: &mut Server,
) -> anyhow::Result<String> {
    let pid = server.child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ca = loop {
        if let Ok(ca) = std::fs::read(ca_path)
            && !ca.is_empty()
        {
            let c = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
                .resolve("localhost", "127.0.0.1:0".parse()?)
                .build()?;
            if c.get(format!("https://localhost:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break ca;
            }
        }
        if Instant::now() > deadline || server.child.try_wait()?.is_some() {
            bail!("the server did not become ready on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let target = flood::Target::new(format!("127.0.0.1:{port}").parse()?, &ca);
    let review: serde_json::Value =
        serde_json::from_str(include_str!("../admission-review-job-pod.json"))?;
    let (stop_legit, legit_rx) = watch::channel(false);
    // The legitimate client gets its own thread and runtime, as the API
    // server is its own process: the attackers' thousands of tasks must not
    // delay its timers in this process.
    let (url, ca_pem, rate) = (
        format!("https://localhost:{port}/mutate"),
        ca.clone(),
        args.rate,
    );
    let legit = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(flood::legit(url, ca_pem, review, rate, legit_rx))
    });
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let idle_kb = flood::status_kb(pid, "VmRSS");

    let plan = flood::Plan {
        slow_bodies: args.slow_bodies,
        body_bytes: args.body_bytes,
        idle_tls: args.idle_tls,
        h2_connections: args.h2_connections,
    };
    let counters = Arc::new(flood::Counters::default());
    let (stop_attack, attack_rx) = watch::channel(false);
    let attack_start = Instant::now();
    let mut attackers = flood::launch(&target, plan, &attack_rx, &counters);
    let mut max_rss_kb = 0;
    while attack_start.elapsed() < Duration::from_secs(args.duration) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        max_rss_kb = max_rss_kb.max(flood::status_kb(pid, "VmRSS"));
        if server.child.try_wait()?.is_some() {
            break;
        }
    }
    let attack_end = Instant::now();
    let _ = stop_attack.send(true);
    let stopping = Instant::now();
    while tokio::time::timeout(Duration::from_secs(10), attackers.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    attackers.abort_all();
    let peak_kb = flood::status_kb(pid, "VmHWM");
    let stopped_in = stopping.elapsed();
    let after_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.after).saturating_sub(stopped_in)).await;
    let after_kb = flood::status_kb(pid, "VmRSS");
    let _ = stop_legit.send(true);
    let samples = legit
        .join()
        .map_err(|_| anyhow::anyhow!("the legitimate client panicked"))?;
    let (n, ok, p99) = flood::window(&samples, attack_start, attack_end);
    let (n_after, ok_after, _) = flood::window(&samples, after_start, Instant::now());
    let mib = |kb: u64| kb as f64 / 1024.0;
    Ok(format!(
        "plan: {} slow {}-byte bodies + {} idle TLS + {} HTTP/2 flood connections for {}s; legit {} reviews/s (HTTP/1.1 keep-alive); memory limit {}\n\
         {}\n\
         server RSS: idle {:.1} MiB, peak {:.1} MiB (VmHWM; sampled max {:.1}), {}s after the attack {:.1} MiB ({:.2} x idle)\n\
         legit during the attack: {} reviews, {:.2} % right, p99 {:.1} ms; after: {} reviews, {:.2} % right",
        args.slow_bodies,
        args.body_bytes,
        args.idle_tls,
        args.h2_connections,
        args.duration,
        args.rate,
        args.memory_limit,
        counters.summary(),
        mib(idle_kb),
        mib(peak_kb),
        mib(max_rss_kb),
        args.after,
        mib(after_kb),
        after_kb as f64 / idle_kb.max(1) as f64,
        n,
        ok * 100.0,
        p99.as_secs_f64() * 1000.0,
        n_after,
        ok_after * 100.0,
    ))
}
