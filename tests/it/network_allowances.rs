//! The allowances a running platform needs: a Prometheus in another
//! namespace scraping `floe-platform` and the domains
//! (`security.network_policies.monitoring`), and extra egress for the
//! domains (`domain_egress_allow`), through generate, validate, explain and
//! bootstrap.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::fake_apiserver::{FakeApiServer, floe_guard as against, stderr};

const CONFIG: &str = "domains: [sales]
security:
  network_policies:
    cluster_cidrs: [10.244.0.0/16, 10.96.0.0/12]
    monitoring:
      namespace: monitoring
      pod_labels: {app.kubernetes.io/name: prometheus}
      ports: [9090, 8080]
    domain_egress_allow:
      - {name: snowflake, cidr: 0.0.0.0/0, port: 443}
      - {name: warehouse, namespace: floe-platform, pod_labels: {app: trino}, port: 8080}
";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(args)
        .env_remove("FLOE_GUARD_CONFIG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn config(dir: &Path) -> String {
    let path = dir.join("manifest.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    path.display().to_string()
}

#[test]
fn monitoring_and_domain_egress_are_generated_summarised_validated_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    assert!(
        run(&["network", "generate", "--config", &cfg, "--out", out])
            .status
            .success()
    );
    let summary =
        std::fs::read_to_string(Path::new(out).join("NETWORK-POLICY-SUMMARY.md")).unwrap();
    assert!(summary.contains("## Monitoring"), "{summary}");
    assert!(
        summary.contains(
            "the pods `app.kubernetes.io/name=prometheus` of `monitoring` may scrape TCP 9090, 8080"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("domain_egress_allow: snowflake"),
        "{summary}"
    );
    assert!(summary.contains("monitoring: metrics scrape"), "{summary}");
    let v = run(&["network", "validate", "--config", &cfg, "--dir", out]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));

    let explain = |from: &str, to: &str, port: &str| {
        run(&[
            "network", "explain", "--config", &cfg, "--from", from, "--to", to, "--port", port,
        ])
    };
    let prom = "monitoring/app.kubernetes.io/name=prometheus";
    for to in ["floe-platform", "floe-sales-domain"] {
        let o = explain(prom, to, "9090");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            text(&o).contains("monitoring: metrics scrape"),
            "{}",
            text(&o)
        );
    }
    // Never floe-jobs, never another port, never another pod of monitoring.
    assert_eq!(explain(prom, "floe-jobs", "9090").status.code(), Some(3));
    assert_eq!(
        explain(prom, "floe-platform", "5432").status.code(),
        Some(3)
    );
    assert_eq!(
        explain("monitoring", "floe-platform", "9090").status.code(),
        Some(3)
    );
    // Domain egress: both ends opened; cluster CIDRs excepted from the CIDR rule.
    let o = explain("floe-sales-domain", "floe-platform/app=trino", "8080");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("domain_egress_allow: warehouse"),
        "{}",
        text(&o)
    );
    assert_eq!(
        explain("floe-sales-domain", "floe-platform", "8080")
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        explain("floe-sales-domain", "1.2.3.4", "443").status.code(),
        Some(0)
    );
    assert_eq!(
        explain("floe-sales-domain", "10.96.0.10", "443")
            .status
            .code(),
        Some(3)
    );
}

#[test]
fn a_domain_allowance_into_jobs_or_another_domain_is_refused_with_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.yaml");
    std::fs::write(
        &path,
        "domains: [sales]\nsecurity:\n  network_policies:\n    domain_egress_allow:\n      - {name: sneak, namespace: floe-jobs, port: 80}\n",
    )
    .unwrap();
    let o = run(&[
        "network",
        "generate",
        "--config",
        path.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("security.network_policies.domain_egress_allow[0] (sneak)"),
        "{err}"
    );
}

#[test]
fn bootstrap_installs_the_monitoring_ingress() {
    let f = FakeApiServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let o = against(
        f.kubeconfig(),
        &["bootstrap", "--skip-cni-check", "--config", &cfg],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = f
        .get(
            "NetworkPolicy",
            Some("floe-sales-domain"),
            "floe-allow-ingress",
        )
        .unwrap();
    let rules = p["spec"]["ingress"].to_string();
    assert!(
        rules.contains("\"app.kubernetes.io/name\":\"prometheus\""),
        "{rules}"
    );
    assert!(
        rules.contains("\"kubernetes.io/metadata.name\":\"monitoring\""),
        "{rules}"
    );
}
