//! Merging rules never changes what they allow: merged and unmerged rule
//! sets are compared flow by flow with the reachability engine.

use floe_guard::config::{Config, Protocol};
use floe_guard::network::generate;
use floe_guard::network::reach::{self, Endpoint, Flow, Pod};
use floe_guard::network::rules::{Allow, Labels, Peer, PortMatch, Rule, merge, unmerged};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use proptest::prelude::*;

fn policy(rules: &[Rule], egress: bool) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("home".into()),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec![if egress { "Egress" } else { "Ingress" }.into()]),
            egress: egress.then(|| {
                rules
                    .iter()
                    .map(|r| NetworkPolicyEgressRule {
                        to: Some(r.k8s_peers()),
                        ports: r.k8s_ports(),
                    })
                    .collect()
            }),
            ingress: (!egress).then(|| {
                rules
                    .iter()
                    .map(|r| NetworkPolicyIngressRule {
                        from: Some(r.k8s_peers()),
                        ports: r.k8s_ports(),
                    })
                    .collect()
            }),
        }),
    }
}

const NAMESPACES: [&str; 3] = ["home", "x", "y"];
const LABEL_SETS: [&[(&str, &str)]; 4] =
    [&[], &[("a", "1")], &[("a", "1"), ("b", "2")], &[("b", "2")]];
const CIDRS: [&str; 6] = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.2.0.0/16",
    "192.0.2.0/24",
];
const IPS: [&str; 6] = [
    "10.1.2.3",
    "10.1.9.9",
    "10.2.0.1",
    "10.9.9.9",
    "192.0.2.7",
    "203.0.113.1",
];
const PORTS: [u16; 3] = [53, 443, 8080];

fn labels(i: usize) -> Labels {
    LABEL_SETS[i]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        (0..4usize).prop_map(|l| Peer::Local { pods: labels(l) }),
        (1..3usize, 0..4usize).prop_map(|(n, l)| Peer::Namespace {
            namespace: NAMESPACES[n].into(),
            pods: labels(l)
        }),
        (
            0..CIDRS.len(),
            proptest::collection::vec(0..CIDRS.len(), 0..3)
        )
            .prop_map(|(c, e)| {
                let except: Vec<_> = e.iter().map(|i| CIDRS[*i].parse().unwrap()).collect();
                Peer::block(CIDRS[c].parse().unwrap(), &except)
            }),
    ]
}

fn port() -> impl Strategy<Value = PortMatch> {
    prop_oneof![
        1 => Just(PortMatch::Any),
        4 => (0..PORTS.len(), prop::bool::ANY).prop_map(|(p, udp)| PortMatch::One(
            if udp { Protocol::UDP } else { Protocol::TCP },
            PORTS[p]
        )),
    ]
}

fn allows() -> impl Strategy<Value = Vec<Allow>> {
    proptest::collection::vec(
        (peer(), port(), 0..3usize).prop_map(|(peer, port, n)| Allow {
            peer,
            port,
            purpose: format!("p{n}"),
        }),
        0..8,
    )
}

/// Every endpoint the rules can tell apart.
fn endpoints() -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = IPS
        .iter()
        .map(|ip| Endpoint::External(ip.parse().unwrap()))
        .collect();
    for ns in NAMESPACES.iter().chain(&["z"]) {
        for l in 0..LABEL_SETS.len() {
            for ip in [None, Some("10.1.2.3"), Some("10.2.0.1")] {
                let mut p = Pod::new(ns, labels(l));
                p.ip = ip.map(|i| i.parse().unwrap());
                out.push(Endpoint::Pod(p));
            }
        }
    }
    out
}

fn same_flows(a: &[NetworkPolicy], b: &[NetworkPolicy], egress: bool) -> Result<(), String> {
    let home = Endpoint::Pod(Pod::new("home", Labels::new()));
    for other in endpoints() {
        for port in PORTS.iter().chain(&[9999]) {
            for protocol in [Protocol::TCP, Protocol::UDP, Protocol::SCTP] {
                let (from, to) = if egress {
                    (home.clone(), other.clone())
                } else {
                    (other.clone(), home.clone())
                };
                let flow = Flow {
                    from,
                    to,
                    port: *port,
                    protocol,
                };
                let (x, y) = (
                    reach::evaluate(a, &flow).allowed,
                    reach::evaluate(b, &flow).allowed,
                );
                if x != y {
                    return Err(format!("{flow:?}: unmerged {x}, merged {y}"));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn merged_and_unmerged_rules_allow_the_same_flows(allows in allows()) {
        let merged = merge(&allows);
        for egress in [true, false] {
            let a = [policy(&unmerged(&allows), egress)];
            let b = [policy(&merged, egress)];
            prop_assert!(same_flows(&a, &b, egress).is_ok(), "{:?}", same_flows(&a, &b, egress));
        }
        // Merging keeps every purpose and never adds rules.
        let purposes: std::collections::BTreeSet<String> = allows.iter().map(|a| a.purpose.clone()).collect();
        let kept: std::collections::BTreeSet<String> = merged.iter().flat_map(|r| r.purposes.clone()).collect();
        prop_assert_eq!(purposes, kept);
        prop_assert!(merged.len() <= allows.len());
        // Merging is idempotent.
        let again: Vec<Allow> = merged.iter().flat_map(|r| r.peers.iter().flat_map(move |p| r.ports.iter().map(move |port| Allow { peer: p.clone(), port: *port, purpose: String::new() }))).collect();
        let remerged: Vec<(Vec<Peer>, Vec<PortMatch>)> = merge(&again).into_iter().map(|r| (r.peers, r.ports)).collect();
        let once: Vec<(Vec<Peer>, Vec<PortMatch>)> = merged.into_iter().map(|r| (r.peers, r.ports)).collect();
        prop_assert_eq!(remerged, once);
    }
}

#[test]
fn the_generated_egress_merges_overlaps_into_fewer_rules() {
    let config = Config::from_yaml(
        "security: {network_policies: {cluster_cidrs: [10.244.0.0/16], jobs_egress_allow: [{name: snowflake, cidr: 0.0.0.0/0, port: 443}, {name: s3, cidr: 52.0.0.0/8, port: 443}]}}",
        "t",
    )
    .unwrap();
    let g = generate(&config).unwrap();
    let jobs = g
        .namespaces
        .iter()
        .find(|n| n.namespace == "floe-jobs")
        .unwrap();
    let egress = &jobs.policies[1].egress;
    // Platform services, DNS, and one 443 block that absorbed both extra rules.
    assert_eq!(egress.len(), 3, "{egress:#?}");
    let https = egress
        .iter()
        .find(|r| r.ports == [PortMatch::One(Protocol::TCP, 443)])
        .unwrap();
    assert_eq!(https.peers.len(), 1);
    assert_eq!(
        https
            .purposes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "external HTTPS",
            "jobs_egress_allow: s3",
            "jobs_egress_allow: snowflake"
        ]
    );
}
