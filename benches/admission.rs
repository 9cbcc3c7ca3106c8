//! The admission hot path on the API-server-shaped review bodies of
//! `../shared/bench/payloads` (override with FLOE_GUARD_BENCH_PAYLOADS):
//! decode the AdmissionReview, decide, encode the response.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use floe_guard::admission::{Endpoint, review};
use floe_guard::config::Config;

mod support;
use support::payloads;

/// The allocator of the `floe-guard` binary, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn admission(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("admission");
    for name in ["small", "typical", "large"] {
        let path = payloads().join(format!("{name}.json"));
        let Ok(body) = std::fs::read(&path) else {
            eprintln!("SKIPPED {name}: no payload at {}", path.display());
            continue;
        };
        let answer = review(Endpoint::Mutate, &body, &config).expect("payload is a review");
        assert!(
            answer.log.allowed && answer.log.patch_ops > 0,
            "{name}: expected a patch"
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| review(Endpoint::Mutate, black_box(&body), &config).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
