//! `network diff` against the fake API server (or a real cluster).

use crate::support::fake_apiserver::{Cluster, FakeApiServer, floe_guard, stderr, stdout};
use serde_json::{Value, json};

fn bootstrapped() -> FakeApiServer {
    let f = FakeApiServer::start();
    let out = floe_guard(f.kubeconfig(), &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    f
}

/// Rewrites a stored policy by hand, as `kubectl edit` would.
fn edit(f: &FakeApiServer, ns: &str, name: &str, change: impl FnOnce(&mut Value)) {
    let mut p = f.get("NetworkPolicy", Some(ns), name).unwrap();
    change(&mut p);
    f.insert(p);
}

#[test]
fn a_clean_cluster_reports_no_drift() {
    let c = Cluster::new();
    assert_eq!(
        floe_guard(c.kubeconfig(), &["bootstrap"]).status.code(),
        Some(0)
    );
    let out = floe_guard(c.kubeconfig(), &["network", "diff"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("no drift: 2 namespaces and "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn every_kind_of_drift_is_reported_as_a_unified_diff() {
    let f = bootstrapped();
    // Rule added (platform egress), rule removed and rule changed (jobs egress).
    edit(&f, "floe-platform", "floe-allow-egress", |p| {
        p["spec"]["egress"]
            .as_array_mut()
            .unwrap()
            .push(json!({"ports": [{"port": 22, "protocol": "TCP"}]}));
    });
    edit(&f, "floe-jobs", "floe-allow-egress", |p| {
        let rules = p["spec"]["egress"].as_array_mut().unwrap();
        rules.pop();
        rules[0]["ports"][0]["port"] = json!(5353);
    });
    // Label changed, policy missing, extra managed policy.
    let mut ns = f.get("Namespace", None, "floe-jobs").unwrap();
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = json!("privileged");
    f.insert(ns);
    f.remove("NetworkPolicy", Some("floe-platform"), "floe-default-deny");
    f.insert(
        json!({"kind": "NetworkPolicy", "metadata": {"name": "floe-old", "namespace": "floe-jobs",
        "labels": {"app.kubernetes.io/managed-by": "floe"}}, "spec": {"podSelector": {}}}),
    );
    // Not floe's: never drift.
    f.insert(
        json!({"kind": "NetworkPolicy", "metadata": {"name": "team", "namespace": "floe-jobs"},
        "spec": {"podSelector": {}}}),
    );

    let out = floe_guard(f.kubeconfig(), &["network", "diff"]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    for header in [
        "changed: Namespace floe-jobs",
        "changed: NetworkPolicy floe-platform/floe-allow-egress",
        "changed: NetworkPolicy floe-jobs/floe-allow-egress",
        "missing: NetworkPolicy floe-platform/floe-default-deny",
        "extra: NetworkPolicy floe-jobs/floe-old",
        "5 drifted objects",
    ] {
        assert!(text.contains(header), "{header}\n{text}");
    }
    assert!(!text.contains("floe-jobs/team"), "{text}");
    assert!(text.contains("-  pod-security.kubernetes.io/enforce: privileged\n+  pod-security.kubernetes.io/enforce: restricted"), "{text}");
    assert!(text.contains("-    port: 22"), "{text}");
    assert!(text.contains("-    port: 5353"), "{text}");
    assert!(
        !text.contains("managedFields") && !text.contains("resourceVersion"),
        "{text}"
    );

    let v: Value = serde_json::from_slice(
        &floe_guard(f.kubeconfig(), &["network", "diff", "-o", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["drift"].as_array().unwrap().len(), 5);

    // Bootstrap with --prune restores the config.
    let fix = floe_guard(
        f.kubeconfig(),
        &["bootstrap", "--prune", "--force-conflicts"],
    );
    assert_eq!(
        fix.status.code(),
        Some(0),
        "{}{}",
        stdout(&fix),
        stderr(&fix)
    );
    let again = floe_guard(f.kubeconfig(), &["network", "diff"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}
