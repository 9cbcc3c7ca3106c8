//! `network audit` against the fake API server (or a real cluster).

use crate::support::fake_apiserver::{
    Cluster, FakeApiServer, floe_guard, insert_100_namespaces_with_5000_pods, stderr, stdout,
};
use serde_json::{Value, json};

fn privileged_pod(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                    "securityContext": {"privileged": true}}]}})
}

#[test]
fn audit_flags_a_namespace_without_default_deny_and_a_pod_violating_restricted() {
    let f = FakeApiServer::start();
    assert_eq!(
        floe_guard(f.kubeconfig(), &["bootstrap"]).status.code(),
        Some(0)
    );
    let clean = floe_guard(f.kubeconfig(), &["network", "audit"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        stdout(&clean),
        stderr(&clean)
    );
    // A floe namespace created by hand, without policies, and a privileged pod in floe-jobs.
    f.insert(json!({"kind": "Namespace", "metadata": {"name": "floe-extra",
        "labels": {"app.kubernetes.io/part-of": "floe", "pod-security.kubernetes.io/enforce": "restricted"}}}));
    f.insert(privileged_pod("floe-jobs", "bad-job"));
    let out = floe_guard(f.kubeconfig(), &["network", "audit"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("floe-extra: managed namespace without default-deny ingress"),
        "{text}"
    );
    assert!(
        text.contains("floe-extra: managed namespace without default-deny egress"),
        "{text}"
    );
    assert!(text.contains("floe-jobs/bad-job (restricted): "), "{text}");
    let jobs = text.lines().find(|l| l.starts_with("floe-jobs ")).unwrap();
    let cols: Vec<&str> = jobs.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "floe-jobs",
            "yes",
            "restricted",
            "restricted",
            "restricted",
            "yes",
            "yes",
            "2",
            "1"
        ],
        "{text}"
    );

    let json_out = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "json"]);
    let v: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let extra = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "floe-extra")
        .unwrap();
    assert_eq!(extra["default_deny_ingress"], json!([]));
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);

    let md = stdout(&floe_guard(
        f.kubeconfig(),
        &["network", "audit", "-o", "markdown"],
    ));
    assert!(md.starts_with("| NAMESPACE | MANAGED |"), "{md}");
    assert!(
        md.contains("- floe-extra: managed namespace without default-deny ingress"),
        "{md}"
    );
}

#[test]
fn audit_decides_default_deny_by_semantics_not_names() {
    let c = Cluster::new();
    c.apply(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "floe-named",
        "labels": {"app.kubernetes.io/part-of": "floe", "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}}),
        "kubectl",
    );
    // Named "default-deny" but allows all ingress; an oddly named policy denies egress.
    c.apply(
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "floe-named"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}}),
        "kubectl",
    );
    c.apply(
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "lockdown", "namespace": "floe-named"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
        "kubectl",
    );
    let out = floe_guard(c.kubeconfig(), &["network", "audit", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ns = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "floe-named")
        .unwrap();
    assert_eq!(ns["default_deny_ingress"], json!([]));
    assert_eq!(ns["default_deny_egress"], json!(["lockdown"]));
    assert_eq!(out.status.code(), Some(3));
}

/// 100 namespaces with 5,000 pods: every namespace and every violating pod
/// reported (`benches/audit.rs` times the same scenario).
#[test]
fn audit_reports_100_namespaces_and_5000_pods() {
    let f = FakeApiServer::start();
    insert_100_namespaces_with_5000_pods(&f);
    let out = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["namespaces"].as_array().unwrap().len(), 100);
    let violating: usize = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["violating_pods"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        violating,
        50 * 5,
        "every 10th pod in the 50 restricted namespaces"
    );
}

/// The MutatingWebhookConfiguration of a multi-document YAML stream.
fn mutating(yaml: &str) -> Value {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|d| d["kind"] == "MutatingWebhookConfiguration")
        .expect("a MutatingWebhookConfiguration")
}

#[test]
fn audit_reports_a_pod_webhook_selector_that_disagrees_with_the_config() {
    let f = FakeApiServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("manifest.yaml");
    std::fs::write(&config, "domains: [sales]\n").unwrap();
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| floe_guard(f.kubeconfig(), args);
    assert_eq!(
        run(&["bootstrap", "--config", config]).status.code(),
        Some(0)
    );
    // The webhook as the committed raw manifests render it: floe-jobs only.
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/webhooks.yaml"
    ))
    .unwrap();
    f.insert(mutating(&committed));
    let out = run(&["network", "audit", "--config", config]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "webhook floe-guard/pods.floe-guard.floe.dev does not select floe-sales-domain \
             (pods there are not hardened); render it from the config"
        ),
        "{}",
        stdout(&out)
    );
    // Rendered from the same config: nothing to report.
    let rendered = std::process::Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(["manifests", "webhooks", "--config", config])
        .output()
        .unwrap();
    f.insert(mutating(&stdout(&rendered)));
    let clean = run(&["network", "audit", "--config", config]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
}
