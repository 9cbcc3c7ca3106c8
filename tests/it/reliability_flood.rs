//! The hostile-load benchmark (`examples/attack`, docs/hostile-input.md) at a
//! CI size, against the real `floe-guard serve` binary: slow maximum-size
//! bodies, idle TLS connections and an HTTP/2 stream flood at once, with a
//! legitimate client throughout. Asserts the memory bound that the body
//! budget and the connection cap construct (not a time: CI machines vary),
//! that the cap holds while the attack reaches it, and that the server lives
//! and still answers.

#[path = "../../examples/attack/flood.rs"]
mod flood;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::support::reliability::{Served, metric};

const BUDGET_MIB: u64 = 12;
const MAX_CONNECTIONS: u64 = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_bodies_idle_connections_and_streams_stays_within_the_memory_bound() {
    let budget = format!("{BUDGET_MIB}Mi");
    let conns = MAX_CONNECTIONS.to_string();
    let mut s = Served::start(&[
        "--body-budget",
        &budget,
        "--max-connections",
        &conns,
        "--request-timeout",
        "3",
    ])
    .await;
    let pid = s.child.id();
    let review =
        serde_json::from_str(include_str!("../../examples/admission-review-job-pod.json")).unwrap();
    let (stop_legit, legit_rx) = watch::channel(false);
    let legit = tokio::spawn(flood::legit(
        format!("{}/mutate", s.url()),
        s.ca.clone().into_bytes(),
        review,
        20,
        legit_rx,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kb = flood::status_kb(pid, "VmRSS");

    let target = flood::Target::new(
        format!("127.0.0.1:{}", s.port).parse().unwrap(),
        s.ca.as_bytes(),
    );
    let plan = flood::Plan {
        slow_bodies: 60,
        body_bytes: 3_000_000,
        idle_tls: 300,
        h2_connections: 4,
    };
    let counters = Arc::new(flood::Counters::default());
    let (stop, rx) = watch::channel(false);
    let start = Instant::now();
    let mut attackers = flood::launch(&target, plan, &rx, &counters);
    let mut most_open = 0.0f64;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open = metric(&s.metrics().await, "floe_guard_connections");
        most_open = most_open.max(open);
    }
    let end = Instant::now();
    stop.send(true).unwrap();
    while attackers.join_next().await.is_some() {}
    let peak_kb = flood::status_kb(pid, "VmHWM");
    stop_legit.send(true).unwrap();
    let samples = legit.await.unwrap();
    let (n, ok, p99) = flood::window(&samples, start, end);
    eprintln!(
        "{}\nserver RSS before {} MiB, peak {} MiB; legit {n} reviews, {:.1} % right, p99 {} ms",
        counters.summary(),
        before_kb / 1024,
        peak_kb / 1024,
        ok * 100.0,
        p99.as_millis()
    );
    // The construction: bodies within the budget, connections within the
    // cap at most 48 KiB each (`server::limits::CONNECTION_BYTES`), and 16 MiB
    // for everything transient (a debug build's larger frames, revoked bodies
    // not yet dropped, allocator slack).
    let bound_kb = before_kb + (BUDGET_MIB + 16) * 1024 + MAX_CONNECTIONS * 48;
    assert!(
        peak_kb <= bound_kb,
        "peak RSS {} MiB over the bound {} MiB",
        peak_kb / 1024,
        bound_kb / 1024
    );
    assert!(
        most_open <= MAX_CONNECTIONS as f64,
        "{most_open} connections open, over the cap"
    );
    assert!(
        most_open >= MAX_CONNECTIONS as f64 * 0.9,
        "the attack did not reach the cap ({most_open} open): {}",
        counters.summary()
    );
    assert!(n > 0 && ok > 0.0, "the legitimate client got no answer");
    s.assert_serves().await;
}
