//! The reachability engine against the NetworkPolicy v1 rules, one rule at a time.

use floe_guard::config::Protocol;
use floe_guard::network::reach::{self, Endpoint, Flow, NamedPort, Pod, Side};
use floe_guard::network::rules::Labels;
use k8s_openapi::api::networking::v1::NetworkPolicy;

fn policies(yaml: &str) -> Vec<NetworkPolicy> {
    floe_guard::yaml::parse_all(yaml, "test")
        .unwrap()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

fn pod(ns: &str, labels: &[(&str, &str)]) -> Pod {
    let labels: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Pod::new(ns, labels)
}

fn ok(p: &[NetworkPolicy], from: &Pod, to: &Pod, port: u16, protocol: Protocol) -> bool {
    reach::evaluate(
        p,
        &Flow {
            from: Endpoint::Pod(from.clone()),
            to: Endpoint::Pod(to.clone()),
            port,
            protocol,
        },
    )
    .allowed
}

const HEAD: &str =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\n";

#[test]
fn without_policies_everything_is_allowed() {
    let a = pod("a", &[]);
    let v = reach::evaluate(
        &[],
        &Flow {
            from: Endpoint::Pod(a.clone()),
            to: Endpoint::Pod(a),
            port: 1,
            protocol: Protocol::UDP,
        },
    );
    assert!(v.allowed);
    assert_eq!(v.egress, Side::NotIsolated);
}

#[test]
fn policy_types_default_from_the_rules_present() {
    // Only ingress rules, no policyTypes: isolates ingress only.
    let p = policies(&format!("{HEAD}spec: {{podSelector: {{}}, ingress: []}}"));
    let (a, b) = (pod("a", &[]), pod("b", &[]));
    assert!(!ok(&p, &b, &a, 80, Protocol::TCP), "ingress isolated");
    assert!(ok(&p, &a, &b, 80, Protocol::TCP), "egress not isolated");
    // Egress rules present, no policyTypes: Ingress and Egress.
    let p = policies(&format!(
        "{HEAD}spec: {{podSelector: {{}}, egress: [{{ports: [{{port: 53, protocol: UDP}}]}}]}}"
    ));
    assert!(!ok(&p, &a, &b, 80, Protocol::TCP));
    assert!(ok(&p, &a, &b, 53, Protocol::UDP));
    assert!(!ok(&p, &b, &a, 53, Protocol::UDP), "ingress isolated too");
    // policyTypes [Egress]: ingress rules are ignored, ingress not isolated.
    let p = policies(&format!(
        "{HEAD}spec: {{podSelector: {{}}, policyTypes: [Egress], ingress: [{{from: [{{podSelector: {{matchLabels: {{x: y}}}}}}]}}]}}"
    ));
    assert!(ok(&p, &b, &a, 80, Protocol::TCP));
    assert!(!ok(&p, &a, &b, 80, Protocol::TCP));
}

#[test]
fn pod_selector_decides_which_pods_a_policy_isolates() {
    let p = policies(&format!(
        "{HEAD}spec: {{podSelector: {{matchLabels: {{role: db}}}}, policyTypes: [Ingress]}}"
    ));
    let (db, web, other) = (
        pod("a", &[("role", "db")]),
        pod("a", &[("role", "web")]),
        pod("b", &[("role", "db")]),
    );
    assert!(!ok(&p, &web, &db, 5432, Protocol::TCP));
    assert!(ok(&p, &db, &web, 80, Protocol::TCP));
    assert!(ok(&p, &web, &other, 5432, Protocol::TCP), "other namespace");
}

#[test]
fn peer_selectors_in_one_element_are_anded_in_two_are_ored() {
    let and = policies(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{team: x}}}}\n      podSelector: {{matchLabels: {{app: c}}}}\n"
    ));
    let or = policies(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{team: x}}}}\n    - podSelector: {{matchLabels: {{app: c}}}}\n"
    ));
    let target = pod("a", &[]);
    let mut x_c = pod("n", &[("app", "c")]);
    x_c.namespace_labels.insert("team".into(), "x".into());
    let mut x_d = pod("n", &[("app", "d")]);
    x_d.namespace_labels.insert("team".into(), "x".into());
    let other_c = pod("m", &[("app", "c")]);
    let local_c = pod("a", &[("app", "c")]);
    assert!(ok(&and, &x_c, &target, 1, Protocol::TCP));
    assert!(!ok(&and, &x_d, &target, 1, Protocol::TCP));
    assert!(!ok(&and, &other_c, &target, 1, Protocol::TCP));
    assert!(!ok(&and, &local_c, &target, 1, Protocol::TCP));
    assert!(
        ok(&or, &x_d, &target, 1, Protocol::TCP),
        "any pod of team x"
    );
    assert!(
        ok(&or, &local_c, &target, 1, Protocol::TCP),
        "podSelector alone: policy namespace"
    );
    assert!(
        !ok(&or, &other_c, &target, 1, Protocol::TCP),
        "not app=c of another namespace"
    );
}

#[test]
fn empty_or_absent_peers_and_ports_match_everything() {
    for spec in ["ingress: [{}]", "ingress: [{from: [], ports: []}]"] {
        let p = policies(&format!("{HEAD}spec: {{podSelector: {{}}, {spec}}}"));
        assert!(
            ok(&p, &pod("z", &[]), &pod("a", &[]), 9, Protocol::SCTP),
            "{spec}"
        );
    }
}

#[test]
fn ip_blocks_match_addresses_in_cidr_and_not_in_except() {
    let p = policies(&format!(
        "{HEAD}spec: {{podSelector: {{}}, policyTypes: [Egress], egress: [{{to: [{{ipBlock: {{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}}}]}}]}}"
    ));
    let from = Endpoint::Pod(pod("a", &[]));
    let go = |ip: &str| {
        reach::evaluate(
            &p,
            &Flow {
                from: from.clone(),
                to: Endpoint::External(ip.parse().unwrap()),
                port: 443,
                protocol: Protocol::TCP,
            },
        )
        .allowed
    };
    assert!(go("10.2.3.4"));
    assert!(!go("10.1.3.4"));
    assert!(!go("11.0.0.1"));
    // A pod matches an ipBlock only by its address.
    let mut target = pod("b", &[]);
    assert!(!ok(&p, &pod("a", &[]), &target, 443, Protocol::TCP));
    target.ip = Some("10.2.0.9".parse().unwrap());
    assert!(ok(&p, &pod("a", &[]), &target, 443, Protocol::TCP));
}

#[test]
fn ports_protocols_ranges_and_named_ports() {
    let p = policies(&format!(
        "{HEAD}spec:\n  podSelector: {{}}\n  ingress:\n  - ports:\n    - port: 8000\n      endPort: 8010\n    - protocol: UDP\n    - port: metrics\n      protocol: TCP\n"
    ));
    let src = pod("b", &[]);
    let mut dst = pod("a", &[]);
    assert!(ok(&p, &src, &dst, 8000, Protocol::TCP));
    assert!(ok(&p, &src, &dst, 8010, Protocol::TCP));
    assert!(!ok(&p, &src, &dst, 8011, Protocol::TCP));
    assert!(
        !ok(&p, &src, &dst, 8005, Protocol::SCTP),
        "protocol defaults to TCP"
    );
    assert!(
        ok(&p, &src, &dst, 12345, Protocol::UDP),
        "no port: every UDP port"
    );
    assert!(
        !ok(&p, &src, &dst, 9090, Protocol::TCP),
        "no such named port yet"
    );
    dst.ports.push(NamedPort {
        name: "metrics".into(),
        port: 9090,
        protocol: Protocol::TCP,
    });
    assert!(ok(&p, &src, &dst, 9090, Protocol::TCP));
    assert!(!ok(&p, &src, &dst, 9091, Protocol::TCP));
}

#[test]
fn match_expressions() {
    let p = policies(&format!(
        "{HEAD}spec:\n  podSelector:\n    matchExpressions:\n    - {{key: tier, operator: In, values: [db, cache]}}\n    - {{key: env, operator: NotIn, values: [dev]}}\n    - {{key: team, operator: Exists}}\n    - {{key: legacy, operator: DoesNotExist}}\n  policyTypes: [Ingress]\n"
    ));
    let src = pod("b", &[]);
    let isolated = |labels: &[(&str, &str)]| !ok(&p, &src, &pod("a", labels), 1, Protocol::TCP);
    assert!(isolated(&[("tier", "db"), ("team", "t")]));
    assert!(isolated(&[
        ("tier", "cache"),
        ("team", "t"),
        ("env", "prod")
    ]));
    assert!(!isolated(&[("tier", "web"), ("team", "t")]), "In");
    assert!(
        !isolated(&[("tier", "db"), ("team", "t"), ("env", "dev")]),
        "NotIn"
    );
    assert!(!isolated(&[("tier", "db")]), "Exists");
    assert!(
        !isolated(&[("tier", "db"), ("team", "t"), ("legacy", "")]),
        "DoesNotExist"
    );
}

#[test]
fn policies_add_up_and_the_deciding_rule_is_named() {
    let p = policies(&format!(
        "{HEAD}spec: {{podSelector: {{}}, policyTypes: [Ingress]}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: q, namespace: a}}\nspec: {{podSelector: {{}}, ingress: [{{ports: [{{port: 1}}]}}, {{ports: [{{port: 2}}]}}]}}\n"
    ));
    let flow = Flow {
        from: Endpoint::Pod(pod("b", &[])),
        to: Endpoint::Pod(pod("a", &[])),
        port: 2,
        protocol: Protocol::TCP,
    };
    let v = reach::evaluate(&p, &flow);
    assert!(v.allowed);
    assert_eq!(
        v.ingress,
        Side::Allowed {
            policy: "a/q".into(),
            rule: 1
        }
    );
    let v = reach::evaluate(&p, &Flow { port: 3, ..flow });
    assert_eq!(
        v.ingress,
        Side::Denied {
            isolated_by: vec!["a/p".into(), "a/q".into()]
        }
    );
}
