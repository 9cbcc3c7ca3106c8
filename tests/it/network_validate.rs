//! Offline validation of NetworkPolicy documents and semantic comparison.

use floe_guard::config::Config;
use floe_guard::network::files::{self, LoadedFile};
use floe_guard::network::generate;
use floe_guard::network::validate::{Difference, canonical, compare, schema_problems};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{Value, json};

fn doc(spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "a"},
        "spec": spec,
    })
}

fn problems(spec: Value) -> Vec<String> {
    schema_problems(&doc(spec))
}

#[test]
fn every_generated_policy_is_valid() {
    let config = Config::from_yaml(
        "domains: [a, b]\nsecurity: {network_policies: {cluster_cidrs: [10.244.0.0/16, 'fd00:10::/56'], api_server: {cidrs: [10.0.0.1/32]}, jobs_egress_allow: [{name: w, namespace: floe-platform, pod_labels: {app.kubernetes.io/name: trino}, port: 8080}]}}",
        "t",
    )
    .unwrap();
    for p in generate(&config).unwrap().policies() {
        let v = serde_json::to_value(p).unwrap();
        assert_eq!(schema_problems(&v), Vec::<String>::new(), "{v}");
    }
}

#[test]
fn api_server_rules_are_enforced() {
    let cases = [
        (
            json!({"podSelector": {}, "bogus": 1}),
            "unknown field spec.bogus",
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]}),
            "is not in 1..65535",
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 79}]}]}),
            "endPort",
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}),
            "needs a numeric port",
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": "Not_A_Name"}]}]}),
            "not a valid port name",
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}),
            "is not TCP, UDP or SCTP",
        ),
        (
            json!({"podSelector": {}, "egress": [{"to": [{}]}]}),
            "must specify a peer",
        ),
        (
            json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}),
            "cannot be combined",
        ),
        (
            json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]}),
            "strict subset",
        ),
        (
            json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0/8"}}]}]}),
            "is not a CIDR",
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
            "must not be empty",
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Is", "values": ["x"]}]}}),
            "not a valid operator",
        ),
        (
            json!({"podSelector": {"matchLabels": {"a": "-x"}}}),
            "not a valid label value",
        ),
        (
            json!({"podSelector": {}, "policyTypes": ["Both"]}),
            "is not one of Ingress, Egress",
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": true}]}]}),
            "does not match the NetworkPolicy schema",
        ),
    ];
    for (spec, expected) in cases {
        let found = problems(spec.clone());
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{spec}: {found:?}"
        );
    }
    let mut no_ns = doc(json!({"podSelector": {}}));
    no_ns["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    assert!(
        schema_problems(&no_ns)
            .iter()
            .any(|p| p.contains("metadata.namespace is required"))
    );
}

fn policy(spec: Value) -> NetworkPolicy {
    serde_json::from_value(doc(spec)).unwrap()
}

#[test]
fn equal_meaning_compares_equal() {
    let pairs = [
        (
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
            json!({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}]}),
        ),
        (
            json!({"egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}]}),
            json!({"podSelector": {}, "policyTypes": ["Egress", "Ingress"], "egress": [{"ports": [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "to": []}]}),
        ),
        (
            json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.2.0.0/16", "10.1.0.0/16"]}}]}, {}]}),
            json!({"podSelector": {}, "egress": [{}, {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.0.0/16"]}}]}]}),
        ),
    ];
    for (a, b) in pairs {
        assert_eq!(
            canonical(&policy(a.clone())),
            canonical(&policy(b.clone())),
            "{a} vs {b}"
        );
    }
    let different = [
        (
            json!({"podSelector": {}}),
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        ),
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 53}]}]}),
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        ),
    ];
    for (a, b) in different {
        assert_ne!(
            canonical(&policy(a.clone())),
            canonical(&policy(b.clone())),
            "{a} vs {b}"
        );
    }
}

#[test]
fn compare_finds_missing_unexpected_and_changed_policies() {
    let g = generate(&Config::default()).unwrap();
    let mut on_disk: Vec<LoadedFile> = files::policy_files(&g)
        .into_iter()
        .map(|(name, policies)| LoadedFile {
            name,
            documents: policies
                .iter()
                .map(|p| serde_json::to_value(p).unwrap())
                .collect(),
        })
        .collect();
    let summary = floe_guard::network::summary::markdown(&g);
    assert_eq!(compare(&g, &on_disk, Some(&summary)), vec![]);

    on_disk[0].documents[0]["metadata"]["labels"] = json!({});
    let dropped = on_disk.pop().unwrap();
    on_disk.push(LoadedFile {
        name: "extra.yaml".into(),
        documents: vec![],
    });
    let mut extra_policy = on_disk[1].documents[0].clone();
    extra_policy["metadata"]["name"] = "other".into();
    on_disk[1].documents.push(extra_policy);
    let found = compare(&g, &on_disk, None);
    assert!(found.contains(&Difference::MissingFile(dropped.name)));
    assert!(found.contains(&Difference::UnexpectedFile("extra.yaml".into())));
    assert!(found.contains(&Difference::MissingFile("NETWORK-POLICY-SUMMARY.md".into())));
    assert!(found.iter().any(|d| matches!(d, Difference::Changed { diff, .. } if diff.iter().any(|l| l.contains("app.kubernetes.io/managed-by")))));
    assert!(found.iter().any(
        |d| matches!(d, Difference::UnexpectedPolicy { policy, .. } if policy.ends_with("/other"))
    ));
}
