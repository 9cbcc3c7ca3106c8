//! `network audit` of 100 namespaces with 5,000 pods through the real kube
//! client against the in-process fake API server (the spec's target: < 30 s).
//! Prints the wall time of each run and the median.

#[path = "../tests/it/support/fake_apiserver.rs"]
#[allow(dead_code)] // the bench uses a part of it
mod fake_apiserver;

use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, floe_guard, insert_100_namespaces_with_5000_pods};

fn main() {
    // `cargo test --benches` runs benches as tests: one quick run is enough there.
    let runs = if std::env::args().any(|a| a == "--bench") {
        5
    } else {
        1
    };
    let f = FakeApiServer::start();
    insert_100_namespaces_with_5000_pods(&f);
    let mut times: Vec<Duration> = (0..runs)
        .map(|i| {
            let start = Instant::now();
            let out = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "json"]);
            let elapsed = start.elapsed();
            assert_eq!(
                out.status.code(),
                Some(3),
                "the scenario has violating pods"
            );
            println!(
                "audit 100 namespaces / 5000 pods, run {}: {elapsed:.2?}",
                i + 1
            );
            elapsed
        })
        .collect();
    times.sort();
    println!(
        "audit 100 namespaces / 5000 pods: median {:.2?} (target < 30 s)",
        times[times.len() / 2]
    );
}
