//! The cluster commands on clusters as they are: an older API server without
//! ServiceCIDR, foreign policies in managed namespaces, a CNI that does not
//! enforce, the audit trail of what bootstrap changed, and the fix `network
//! diff` names for each drift. Against the fake API server, with responses
//! shaped as kube-apiserver sends them.

use serde_json::{Value, json};

use crate::support::fake_apiserver::{FakeApiServer, Fault, floe_guard, stderr, stdout};

/// A fake cluster that `bootstrap` has set up.
fn bootstrapped() -> FakeApiServer {
    let f = FakeApiServer::start();
    let out = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    f
}

fn node(f: &FakeApiServer, pod_cidr: &str) {
    f.insert(
        json!({"kind": "Node", "metadata": {"name": "node-1"}, "spec": {"podCIDR": pod_cidr}}),
    );
}

fn kubernetes_service(f: &FakeApiServer) {
    f.insert(json!({"kind": "Namespace", "metadata": {"name": "default"}}));
    f.insert(
        json!({"kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}}),
    );
}

fn cni(f: &FakeApiServer, fixture: &str) {
    let path = format!(
        "{}/tests/data/cni/{fixture}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    f.insert_list(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap());
}

fn jobs_external_except(f: &FakeApiServer) -> Value {
    let p = f
        .get("NetworkPolicy", Some("floe-jobs"), "floe-allow-egress")
        .unwrap();
    p["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["to"].as_array().unwrap().clone())
        .find_map(|peer| peer.pointer("/ipBlock/except").cloned())
        .unwrap()
}

#[test]
fn without_the_service_cidr_api_bootstrap_goes_on_and_says_what_that_means() {
    let f = FakeApiServer::start();
    f.serve_minor(32);
    node(&f, "10.244.0.0/24");
    kubernetes_service(&f);
    cni(&f, "calico");
    let dry = floe_guard(f.kubeconfig(), &["bootstrap", "--dry-run=server"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}{}",
        stdout(&dry),
        stderr(&dry)
    );
    let err = stderr(&dry);
    assert!(
        err.contains("does not serve networking.k8s.io/v1 ServiceCIDR (Kubernetes before 1.33)"),
        "{err}"
    );
    assert!(err.contains("ClusterIP 10.96.0.1 lies inside it"), "{err}");
    assert!(
        err.contains("excepts the pod CIDRs 10.244.0.0/24 but not the service range"),
        "{err}"
    );
    assert!(
        err.contains("Set security.network_policies.cluster_cidrs"),
        "{err}"
    );
    // Discovery asked; the unserved resource was never listed.
    let requests = f.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == "GET /apis/networking.k8s.io/v1"),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("/servicecidrs")),
        "{requests:?}"
    );

    let real = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(real.status.code(), Some(0), "{}", stderr(&real));
    assert_eq!(
        jobs_external_except(&f),
        json!(["10.244.0.0/24", "169.254.169.254/32"])
    );
}

#[test]
fn where_the_servicecidr_api_is_served_the_service_range_is_excepted() {
    let f = FakeApiServer::start();
    f.insert(json!({"kind": "ServiceCIDR", "metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12"]}}));
    node(&f, "10.244.0.0/24");
    let out = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("ServiceCIDR"), "{}", stderr(&out));
    assert_eq!(
        jobs_external_except(&f),
        json!(["10.96.0.0/12", "10.244.0.0/24", "169.254.169.254/32"])
    );
}

#[test]
fn bootstrap_refuses_to_drop_exceptions_that_discovery_can_no_longer_find() {
    let f = FakeApiServer::start();
    node(&f, "10.244.0.0/24");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("manifest.yaml");
    std::fs::write(
        &cfg,
        "security:\n  network_policies:\n    cluster_cidrs: [10.244.0.0/24, 10.96.0.0/12]\n",
    )
    .unwrap();
    let first = floe_guard(
        f.kubeconfig(),
        &[
            "bootstrap",
            "--skip-cni-check",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    f.serve_minor(32);
    let out = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("refused to apply floe-jobs/floe-allow-egress: it would drop the external-HTTPS exceptions 10.96.0.0/12"),
        "{text}"
    );
    assert!(
        text.contains("set security.network_policies.cluster_cidrs"),
        "{text}"
    );
    // The live policy kept its exception.
    assert!(
        jobs_external_except(&f)
            .as_array()
            .unwrap()
            .contains(&json!("10.96.0.0/12"))
    );
}

#[test]
fn a_foreign_allow_all_policy_is_reported_by_diff_and_audit_until_removed_or_labelled() {
    let f = bootstrapped();
    f.insert(json!({"kind": "NetworkPolicy", "metadata": {"name": "allow-all-ingress", "namespace": "floe-jobs"},
        "spec": {"podSelector": {}, "ingress": [{}]}}));

    let diff = floe_guard(f.kubeconfig(), &["network", "diff", "--skip-cni-check"]);
    assert_eq!(diff.status.code(), Some(3), "{}", stdout(&diff));
    let text = stdout(&diff);
    assert!(text.starts_with("no drift: 2 namespaces"), "{text}");
    assert!(
        text.contains(
            "foreign: NetworkPolicy floe-jobs/allow-all-ingress (not generated by floe) opens:"
        ),
        "{text}"
    );
    assert!(
        text.contains("floe-jobs ingress from anywhere on any port, by allow-all-ingress"),
        "{text}"
    );
    assert!(
        text.contains("kubectl delete networkpolicy allow-all-ingress -n floe-jobs"),
        "{text}"
    );
    assert!(
        text.contains(
            "kubectl label networkpolicy allow-all-ingress -n floe-jobs floe.dev/exception=accepted"
        ),
        "{text}"
    );

    let audit = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "json"]);
    assert_eq!(audit.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(v["foreign_policies"][0]["name"], "allow-all-ingress");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("floe-jobs/allow-all-ingress: not generated by floe and opens floe-jobs ingress from anywhere"), "{warnings}");

    let mut p = f
        .get("NetworkPolicy", Some("floe-jobs"), "allow-all-ingress")
        .unwrap();
    p["metadata"]["labels"] = json!({"floe.dev/exception": "accepted"});
    f.insert(p);
    let again = floe_guard(f.kubeconfig(), &["network", "diff", "--skip-cni-check"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    assert!(
        stdout(&again).contains("accepted as an exception"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn audit_flags_unlabelled_and_privileged_namespaces_that_are_not_system_ones() {
    let f = bootstrapped();
    for (name, labels) in [
        ("kube-system", json!({})),
        (
            "floe-guard",
            json!({"pod-security.kubernetes.io/enforce": "privileged"}),
        ),
        ("team-a", json!({})),
        (
            "team-b",
            json!({"pod-security.kubernetes.io/enforce": "privileged"}),
        ),
    ] {
        f.insert(json!({"kind": "Namespace", "metadata": {"name": name, "labels": labels}}));
    }
    let out = floe_guard(f.kubeconfig(), &["network", "audit"]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(text.contains("team-a: no Pod Security labels"), "{text}");
    assert!(text.contains("team-b: enforces privileged"), "{text}");
    assert!(
        text.contains(
            "kubectl label --overwrite namespace team-b pod-security.kubernetes.io/enforce=baseline"
        ),
        "{text}"
    );
    assert!(!text.contains("kube-system: "), "{text}");
    assert!(!text.contains("floe-guard: "), "{text}");
}

#[test]
fn a_cni_that_does_not_enforce_is_a_finding_of_bootstrap_and_diff_unless_skipped() {
    let f = FakeApiServer::start();
    cni(&f, "flannel");
    let out = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("NetworkPolicies are installed but not enforced by Flannel"),
        "{}",
        stdout(&out)
    );
    let diff = floe_guard(f.kubeconfig(), &["network", "diff"]);
    assert_eq!(diff.status.code(), Some(3));
    assert!(stdout(&diff).contains("not enforced by Flannel"));
    let skipped = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    assert!(!stdout(&skipped).contains("Flannel"));
    let validate_dir = tempfile::tempdir().unwrap();
    let dir = validate_dir.path().to_str().unwrap();
    let generate = std::process::Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(["network", "generate", "--out", dir])
        .env_remove("FLOE_GUARD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(generate.status.code(), Some(0), "{}", stderr(&generate));
    let v = floe_guard(
        f.kubeconfig(),
        &["network", "validate", "--dir", dir, "--server-dry-run"],
    );
    assert_eq!(v.status.code(), Some(3), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("not enforced by Flannel"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn every_change_is_logged_and_recorded_as_an_event_but_a_dry_run_only_logged() {
    let f = FakeApiServer::start();
    let dry = floe_guard(
        f.kubeconfig(),
        &[
            "--log-format",
            "json",
            "bootstrap",
            "--dry-run=server",
            "--skip-cni-check",
        ],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let logged: Vec<Value> = stderr(&dry)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["target"] == "floe_guard::audit")
        .collect();
    let one = logged
        .iter()
        .find(|v| v["name"] == "floe-default-deny" && v["namespace"] == "floe-jobs")
        .expect("a log event per object");
    assert_eq!(one["action"], "created");
    assert_eq!(one["kind"], "NetworkPolicy");
    assert_eq!(one["field_manager"], "floe-guard");
    assert_eq!(one["dry_run"], true);
    assert!(f.all("Event").is_empty(), "a dry run records no Event");

    let real = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert_eq!(real.status.code(), Some(0), "{}", stderr(&real));
    assert!(
        stderr(&real).contains("bootstrap created NetworkPolicy floe-jobs/floe-default-deny"),
        "{}",
        stderr(&real)
    );
    let events: Vec<Value> = f
        .all("Event")
        .into_iter()
        .filter(|e| e["metadata"]["namespace"] == "floe-jobs")
        .collect();
    let deny = events
        .iter()
        .find(|e| e["regarding"]["name"] == "floe-default-deny")
        .expect("an Event in floe-jobs");
    assert_eq!(deny["reason"], "Created");
    assert_eq!(deny["reportingController"], "floe.dev/floe-guard");
    assert_eq!(
        deny["note"],
        "floe-guard bootstrap created NetworkPolicy floe-jobs/floe-default-deny (field manager floe-guard)"
    );
    assert!(deny["eventTime"].is_string());
    // Unchanged objects are neither logged nor recorded.
    let before = f.all("Event").len();
    let again = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert!(!stderr(&again).contains("bootstrap created"));
    assert_eq!(f.all("Event").len(), before);
}

#[test]
fn an_event_that_rbac_refuses_is_a_warning_not_a_failure() {
    let f = FakeApiServer::start();
    f.fail(Fault {
        method: Some("POST"),
        path: "/events".into(),
        status: 403,
        times: 100,
    });
    let out = floe_guard(f.kubeconfig(), &["bootstrap", "--skip-cni-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot record the Event"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("events"), "{}", stderr(&out));
}

#[test]
fn diff_names_the_fix_that_fits_each_drift() {
    let f = bootstrapped();
    // Label changed with kubectl (owned by it now), policy missing, stale policy.
    let mut ns = f.get("Namespace", None, "floe-jobs").unwrap();
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = json!("baseline");
    f.insert(ns);
    f.remove("NetworkPolicy", Some("floe-platform"), "floe-default-deny");
    f.insert(
        json!({"kind": "NetworkPolicy", "metadata": {"name": "floe-old", "namespace": "floe-jobs",
        "labels": {"app.kubernetes.io/managed-by": "floe"}}, "spec": {"podSelector": {}}}),
    );
    let out = floe_guard(f.kubeconfig(), &["network", "diff", "--skip-cni-check"]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.contains(
            "fix: floe-guard bootstrap --force-conflicts (the fields are owned by kubectl)"
        ),
        "{text}"
    );
    assert!(
        text.contains("missing: NetworkPolicy floe-platform/floe-default-deny\n"),
        "{text}"
    );
    assert!(text.contains("fix: floe-guard bootstrap\n"), "{text}");
    assert!(
        text.contains("fix: floe-guard bootstrap --prune\n"),
        "{text}"
    );
    assert!(text.contains("3 drifted objects (fix with `floe-guard bootstrap`, `floe-guard bootstrap --force-conflicts`, `floe-guard bootstrap --prune`)"), "{text}");
    let v: Value = serde_json::from_slice(
        &floe_guard(
            f.kubeconfig(),
            &["network", "diff", "-o", "json", "--skip-cni-check"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        v["drift"][0]["remedy"],
        "floe-guard bootstrap --force-conflicts (the fields are owned by kubectl)"
    );
}
