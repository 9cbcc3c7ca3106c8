//! `fastjson::from_slice` against `serde_json::from_slice` on the
//! AdmissionReview bodies of `../shared/bench/payloads` (override with
//! FLOE_GUARD_BENCH_PAYLOADS): skipping everything (`IgnoredAny`), a
//! `serde_json::Value`, and a typed `{ request: { object: Pod } }`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use serde::de::IgnoredAny;

/// The allocator of the `floe-guard` binary, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `../shared/bench/payloads` beside the repository (API-server-shaped review
/// bodies), or `$FLOE_GUARD_BENCH_PAYLOADS`.
fn payloads() -> PathBuf {
    std::env::var_os("FLOE_GUARD_BENCH_PAYLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/payloads")
        })
}

#[derive(serde::Deserialize)]
struct Review {
    #[allow(dead_code)]
    request: Request,
}

#[derive(serde::Deserialize)]
struct Request {
    #[allow(dead_code)]
    object: Pod,
}

fn decode(c: &mut Criterion) {
    for name in ["small", "typical", "large"] {
        let path = payloads().join(format!("{name}.json"));
        let Ok(body) = std::fs::read(&path) else {
            eprintln!("SKIPPED {name}: no payload at {}", path.display());
            continue;
        };
        let mut group = c.benchmark_group(format!("json/{name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("skip/serde_json", |b| {
            b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
        });
        group.bench_function("skip/json", |b| {
            b.iter(|| fastjson::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
        });
        group.bench_function("value/serde_json", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
        });
        group.bench_function("value/json", |b| {
            b.iter(|| fastjson::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
        });
        group.bench_function("pod/serde_json", |b| {
            b.iter(|| serde_json::from_slice::<Review>(black_box(&body)).unwrap())
        });
        group.bench_function("pod/json", |b| {
            b.iter(|| fastjson::from_slice::<Review>(black_box(&body)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
