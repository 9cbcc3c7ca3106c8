//! `bootstrap` through the real kube client, against the fake API server
//! (or the cluster named by FLOE_GUARD_TEST_KUBECONFIG).

use crate::support::fake_apiserver::{Cluster, FakeApiServer, floe_guard, stderr, stdout};
use serde_json::json;

fn results(out: &str) -> Vec<(String, String)> {
    out.lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                format!("{} {}/{}", cols[0], cols[1], cols[2]),
                cols[3].to_string(),
            )
        })
        .collect()
}

#[test]
fn first_run_creates_everything_second_reports_all_unchanged() {
    let c = Cluster::new();
    let first = floe_guard(c.kubeconfig(), &["bootstrap"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let rows = results(&stdout(&first));
    assert!(rows.len() >= 7, "{}", stdout(&first));
    if let Cluster::Fake(_) = c {
        assert!(
            rows.iter().all(|(_, r)| r == "created"),
            "{}",
            stdout(&first)
        );
    }
    assert!(rows.iter().any(|(o, _)| o == "Namespace -/floe-jobs"));
    assert!(
        rows.iter()
            .any(|(o, _)| o == "NetworkPolicy floe-jobs/floe-default-deny")
    );
    let second = floe_guard(c.kubeconfig(), &["bootstrap"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let again = results(&stdout(&second));
    assert_eq!(again.len(), rows.len());
    assert!(
        again.iter().all(|(_, r)| r == "unchanged"),
        "{}",
        stdout(&second)
    );
    assert!(stdout(&second).contains(&format!("{} objects: {} unchanged", rows.len(), rows.len())));
}

#[test]
fn namespaces_get_pss_and_floe_labels_and_policies_are_server_side_applied() {
    let f = FakeApiServer::start();
    let out = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ns = f.get("Namespace", None, "floe-jobs").unwrap();
    let labels = &ns["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "floe");
    assert_eq!(labels["app.kubernetes.io/part-of"], "floe");
    let applies: Vec<String> = f
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .collect();
    assert!(!applies.is_empty());
    assert!(
        applies
            .iter()
            .all(|r| r.contains("fieldManager=floe-guard")),
        "{applies:?}"
    );
    assert!(
        applies.iter().all(|r| !r.contains("force=true")),
        "no force without --force-conflicts"
    );
}

#[test]
fn configured_when_a_label_was_changed_by_hand() {
    let f = FakeApiServer::start();
    assert_eq!(
        floe_guard(f.kubeconfig(), &["bootstrap"]).status.code(),
        Some(0)
    );
    // Someone edits a policy floe owns (a field floe-guard manages, with force).
    let mut p = f
        .get("NetworkPolicy", Some("floe-jobs"), "floe-default-deny")
        .unwrap();
    p["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("floe");
    p["spec"]["policyTypes"] = json!(["Ingress"]);
    let c = Cluster::Fake(f);
    c.apply(
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "floe-default-deny", "namespace": "floe-jobs"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
        "kubectl",
    );
    let out = floe_guard(c.kubeconfig(), &["bootstrap", "--force-conflicts"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = results(&stdout(&out));
    let row = rows
        .iter()
        .find(|(o, _)| o == "NetworkPolicy floe-jobs/floe-default-deny")
        .unwrap();
    assert_eq!(row.1, "configured", "{}", stdout(&out));
    assert_eq!(
        rows.iter().filter(|(_, r)| r == "configured").count(),
        1,
        "{}",
        stdout(&out)
    );
}

#[test]
fn prune_removes_only_stale_floe_managed_policies_in_managed_namespaces() {
    let c = Cluster::new();
    assert_eq!(
        floe_guard(c.kubeconfig(), &["bootstrap"]).status.code(),
        Some(0)
    );
    let np = |ns: &str, name: &str, managed: bool| {
        let labels = if managed {
            json!({"app.kubernetes.io/managed-by": "floe"})
        } else {
            json!({})
        };
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    };
    c.apply(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        "kubectl",
    );
    c.apply(&np("floe-jobs", "floe-stale", true), "floe-guard");
    c.apply(&np("floe-jobs", "hand-made", false), "kubectl");
    c.apply(&np("team-a", "floe-stale", true), "kubectl");
    let out = floe_guard(c.kubeconfig(), &["bootstrap", "--prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = results(&stdout(&out));
    let pruned: Vec<&String> = rows
        .iter()
        .filter(|(_, r)| r == "pruned")
        .map(|(o, _)| o)
        .collect();
    assert_eq!(
        pruned,
        ["NetworkPolicy floe-jobs/floe-stale"],
        "{}",
        stdout(&out)
    );
    if let Cluster::Fake(f) = &c {
        assert!(
            f.get("NetworkPolicy", Some("floe-jobs"), "floe-stale")
                .is_none()
        );
        assert!(
            f.get("NetworkPolicy", Some("floe-jobs"), "hand-made")
                .is_some()
        );
        assert!(
            f.get("NetworkPolicy", Some("team-a"), "floe-stale")
                .is_some()
        );
        assert!(
            f.get("NetworkPolicy", Some("floe-jobs"), "floe-default-deny")
                .is_some()
        );
    }
}

#[test]
fn dry_runs_change_nothing() {
    let f = FakeApiServer::start();
    let client = floe_guard(f.kubeconfig(), &["bootstrap", "--dry-run=client"]);
    assert_eq!(client.status.code(), Some(0), "{}", stderr(&client));
    assert!(stdout(&client).contains("kind: NetworkPolicy"));
    assert!(
        f.requests().is_empty(),
        "client dry run talks to no cluster"
    );
    let rv = f.resource_version();
    let server = floe_guard(
        f.kubeconfig(),
        &["bootstrap", "--dry-run=server", "--prune"],
    );
    assert_eq!(server.status.code(), Some(0), "{}", stderr(&server));
    assert!(
        results(&stdout(&server))
            .iter()
            .all(|(_, r)| r == "created")
    );
    assert!(stdout(&server).contains("nothing was changed"));
    assert_eq!(f.resource_version(), rv);
    assert!(f.all("Namespace").is_empty() && f.all("NetworkPolicy").is_empty());
    assert!(
        f.requests()
            .iter()
            .filter(|r| r.starts_with("PATCH"))
            .all(|r| r.contains("dryRun=All"))
    );
    // After a real run, a server dry run of a changed config reports the change only.
    assert_eq!(
        floe_guard(f.kubeconfig(), &["bootstrap"]).status.code(),
        Some(0)
    );
    let rv = f.resource_version();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("manifest.yaml");
    std::fs::write(
        &cfg,
        "security:\n  pod_security:\n    jobs_level: baseline\n",
    )
    .unwrap();
    let out = floe_guard(
        f.kubeconfig(),
        &[
            "bootstrap",
            "--dry-run=server",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let rows = results(&stdout(&out));
    assert_eq!(
        rows.iter()
            .filter(|(_, r)| r == "configured")
            .map(|(o, _)| o.as_str())
            .collect::<Vec<_>>(),
        ["Namespace -/floe-jobs"],
        "{}",
        stdout(&out)
    );
    assert_eq!(f.resource_version(), rv);
}

#[test]
fn api_server_egress_is_discovered_from_the_kubernetes_endpointslice() {
    let f = FakeApiServer::start();
    f.insert(json!({"kind": "Namespace", "metadata": {"name": "default"}}));
    f.insert(json!({"kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "endpoints": [{"addresses": ["172.18.0.2"], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}));
    f.insert(json!({"kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}}));
    f.insert(json!({"kind": "ServiceCIDR", "metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12"]}}));
    let out = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unknown"), "{}", stderr(&out));
    let egress = f
        .get("NetworkPolicy", Some("floe-platform"), "floe-allow-egress")
        .unwrap();
    let text = egress["spec"]["egress"].to_string();
    assert!(
        text.contains("172.18.0.2/32") && text.contains("6443"),
        "{text}"
    );
    assert!(
        text.contains("10.96.0.0/12") && text.contains("10.244.0.0/24"),
        "{text}"
    );
}

#[test]
fn a_failure_on_one_object_does_not_stop_the_others() {
    let f = FakeApiServer::start();
    f.fail(crate::support::fake_apiserver::Fault {
        method: Some("PATCH"),
        path: "/namespaces/floe-jobs/networkpolicies/floe-default-deny".into(),
        status: 422,
        times: 1,
    });
    let out = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = results(&stdout(&out));
    assert_eq!(
        rows.iter().filter(|(_, r)| r == "failed").count(),
        1,
        "{}",
        stdout(&out)
    );
    assert!(
        rows.iter().filter(|(_, r)| r == "created").count() >= 6,
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("1 of"), "{}", stderr(&out));
}

#[test]
fn transient_errors_are_retried() {
    let f = FakeApiServer::start();
    for status in [429, 500, 409] {
        f.fail(crate::support::fake_apiserver::Fault {
            method: Some("PATCH"),
            path: "/namespaces/floe-jobs".into(),
            status,
            times: 1,
        });
    }
    let out = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(results(&stdout(&out)).iter().all(|(_, r)| r == "created"));
}
