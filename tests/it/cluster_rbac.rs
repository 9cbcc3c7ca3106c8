//! Least privilege, enforced: the fake API server authorizes every request
//! as the bootstrap Job's ServiceAccount with exactly the rules of
//! `manifests/rbac.yaml`; a bootstrap of the configured namespaces succeeds,
//! a label patch of any other namespace is forbidden. The committed
//! manifests are the output of `floe-guard manifests` for their config.

use std::path::Path;

use crate::support::fake_apiserver::{FakeApiServer, floe_guard, stderr, stdout};
use serde_json::Value;

const CONFIG: &str = "manifests/config/manifest.yaml";

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn file_docs(path: &str) -> Vec<Value> {
    docs(&std::fs::read_to_string(repo(path)).unwrap())
}

/// `floe-guard manifests …` (no cluster needed).
fn manifests(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .arg("manifests")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FLOE_GUARD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

/// A fake holding the managed namespaces as `kubectl apply -k manifests`
/// creates them, and enforcing `rbac` for the bootstrap ServiceAccount.
fn cluster(rbac: Vec<Value>) -> FakeApiServer {
    let f = FakeApiServer::start();
    for ns in file_docs("manifests/managed-namespaces.yaml") {
        f.insert(ns);
    }
    f.insert(serde_json::json!({"kind": "Namespace", "metadata": {"name": "kube-system"}}));
    f.enforce_rbac("floe-guard", "floe-guard-bootstrap", rbac);
    f
}

fn succeeded(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

#[test]
fn the_committed_rbac_namespaces_and_webhooks_are_the_commands_output_for_their_config() {
    for (file, args) in [
        ("manifests/rbac.yaml", ["rbac", "--config", CONFIG]),
        (
            "manifests/managed-namespaces.yaml",
            ["namespaces", "--config", CONFIG],
        ),
        ("manifests/webhooks.yaml", ["webhooks", "--config", CONFIG]),
    ] {
        let committed = std::fs::read_to_string(repo(file)).unwrap();
        assert_eq!(
            committed,
            manifests(&args),
            "{file} is stale: run `floe-guard manifests {} --config {CONFIG} > {file}`",
            args[0]
        );
    }
}

#[test]
fn bootstrap_succeeds_with_exactly_the_rendered_rules() {
    let f = cluster(file_docs("manifests/rbac.yaml"));
    let out = floe_guard(f.kubeconfig(), &["bootstrap", "--config", CONFIG]);
    succeeded(&out);
    assert!(!stderr(&out).contains("forbidden"), "{}", stderr(&out));
    let policy = f.get("NetworkPolicy", Some("floe-jobs"), "floe-default-deny");
    assert!(policy.is_some(), "{}", stdout(&out));
    // A second run reads and patches only what it may.
    let again = floe_guard(f.kubeconfig(), &["bootstrap", "--config", CONFIG]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    // --prune needs list and delete, which only `manifests rbac --prune` grants.
    let pruning = floe_guard(
        f.kubeconfig(),
        &["bootstrap", "--config", CONFIG, "--prune"],
    );
    assert_eq!(pruning.status.code(), Some(1));
    assert!(
        stderr(&pruning).contains("cannot list networkpolicies in namespace floe-platform"),
        "{}",
        stderr(&pruning)
    );
    let f = cluster(docs(&manifests(&["rbac", "--config", CONFIG, "--prune"])));
    let out = floe_guard(
        f.kubeconfig(),
        &["bootstrap", "--config", CONFIG, "--prune"],
    );
    succeeded(&out);
}

#[test]
fn relabelling_an_unmanaged_namespace_is_forbidden_for_the_bootstrap_account() {
    let f = cluster(file_docs("manifests/rbac.yaml"));
    // The request a compromised bootstrap Job would make: kube-system down
    // to privileged, as floe-guard's client sends a server-side apply.
    let kubeconfig = std::fs::read_to_string(f.kubeconfig()).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kube-system","labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}"#;
    let resp = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let r = reqwest::Client::new()
                .patch(format!(
                    "{server}/api/v1/namespaces/kube-system?fieldManager=floe-guard"
                ))
                .header("content-type", "application/apply-patch+yaml")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    assert_eq!(resp.0, 403);
    assert_eq!(resp.1["reason"], "Forbidden");
    assert_eq!(
        resp.1["message"],
        "namespaces \"kube-system\" is forbidden: User \"system:serviceaccount:floe-guard:floe-guard-bootstrap\" cannot patch resource \"namespaces\" in API group \"\" in the namespace \"kube-system\""
    );
    let labels = &f.get("Namespace", None, "kube-system").unwrap()["metadata"]["labels"];
    assert!(labels.get("pod-security.kubernetes.io/enforce").is_none());

    // The same through bootstrap: a config that manages a namespace the
    // rendered RBAC does not name cannot label it.
    f.insert(serde_json::json!({"kind": "Namespace", "metadata": {"name": "floe-rogue-domain"}}));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("manifest.yaml");
    std::fs::write(&config, "domains: [rogue]\n").unwrap();
    let out = floe_guard(
        f.kubeconfig(),
        &["bootstrap", "--config", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("forbidden (403): user \"system:serviceaccount:floe-guard:floe-guard-bootstrap\" cannot get namespaces"),
        "{text}"
    );
    let rogue = f.get("Namespace", None, "floe-rogue-domain").unwrap();
    assert!(
        rogue["metadata"]["labels"]
            .get("app.kubernetes.io/part-of")
            .is_none()
    );
}
