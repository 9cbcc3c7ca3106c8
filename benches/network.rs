//! Generating (policies, YAML files and summary) for 100 domain namespaces;
//! the spec asks for under 5 s, the target is under 1 s.

use criterion::{Criterion, criterion_group, criterion_main};
use floe_guard::config::Config;
use floe_guard::network::{files, generate};

fn config(domains: usize) -> Config {
    let list: Vec<String> = (0..domains).map(|i| format!("d{i:03}")).collect();
    let yaml = format!(
        "domains: [{}]\nsecurity:\n  network_policies:\n    cluster_cidrs: [10.244.0.0/16, 10.96.0.0/12]\n    api_server: {{cidrs: [172.18.0.2/32]}}\n    jobs_egress_allow:\n      - {{name: snowflake, cidr: 0.0.0.0/0, port: 443}}\n      - {{name: warehouse, namespace: floe-platform, pod_labels: {{app: trino}}, port: 8080}}\n",
        list.join(", ")
    );
    Config::from_yaml(&yaml, "bench").expect("valid bench config")
}

fn bench(c: &mut Criterion) {
    let config = config(100);
    let mut group = c.benchmark_group("network");
    group.sample_size(20);
    group.bench_function("generate_100_domains", |b| {
        b.iter(|| generate(&config).expect("generates"))
    });
    group.bench_function("generate_and_render_100_domains", |b| {
        b.iter(|| files::render(&generate(&config).expect("generates")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
