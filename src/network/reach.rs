//! A reachability engine with the semantics of NetworkPolicy v1
//! (`networking.k8s.io/v1`), to the letter of the API reference:
//!
//! - A policy applies to the pods of its namespace matched by `podSelector`
//!   (absent or empty: every pod).
//! - `policyTypes`, when absent, is `Ingress` plus `Egress` if the policy
//!   has egress rules. A pod is isolated for a direction when any policy
//!   applying to it lists that direction; an isolated pod allows only what
//!   some rule of those policies allows (rules of every policy add up).
//! - A flow is allowed when the source's egress **and** the destination's
//!   ingress allow it; endpoints outside the cluster have no policies.
//! - A rule with no (or empty) `to`/`from` matches every peer; with no (or
//!   empty) `ports`, every port. A peer with only `podSelector` selects pods of
//!   the policy's namespace; with only `namespaceSelector`, every pod of the
//!   selected namespaces; with both, the selected pods of the selected
//!   namespaces. `ipBlock` matches addresses in `cidr` and in no `except`.
//! - A port's `protocol` defaults to TCP; no `port` means every port of the
//!   protocol; `endPort` makes a range; a named port matches the
//!   destination pod's container port of that name and protocol.
//! - Label selectors AND their `matchLabels` and `matchExpressions`
//!   (`In`, `NotIn`, `Exists`, `DoesNotExist`).
//!
//! Whether an `ipBlock` matches pod addresses is left to the CNI by the API;
//! here it does when the pod is given an address (`Pod::ip`), which is what
//! Calico does, so leaving a pod without an address models the others.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::NAMESPACE_NAME_LABEL;
use super::rules::Labels;
use crate::config::Protocol;

fn protocol_name<S: serde::Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

/// A named container port of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedPort {
    /// The port's name.
    pub name: String,
    /// Its number.
    pub port: u16,
    /// Its protocol.
    #[serde(serialize_with = "protocol_name")]
    pub protocol: Protocol,
}

/// A pod, as far as NetworkPolicy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pod {
    /// Its namespace.
    pub namespace: String,
    /// Its namespace's labels (`kubernetes.io/metadata.name` at least).
    pub namespace_labels: Labels,
    /// Its labels.
    pub labels: Labels,
    /// Its address, if it should be matched by `ipBlock`s.
    pub ip: Option<IpAddr>,
    /// Its named container ports.
    pub ports: Vec<NamedPort>,
}

impl Pod {
    /// A pod with `labels` in namespace `namespace`, whose only namespace
    /// label is `kubernetes.io/metadata.name`.
    pub fn new(namespace: &str, labels: Labels) -> Self {
        Pod {
            namespace: namespace.into(),
            namespace_labels: Labels::from([(NAMESPACE_NAME_LABEL.into(), namespace.into())]),
            labels,
            ip: None,
            ports: Vec::new(),
        }
    }
}

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// A pod in the cluster.
    Pod(Pod),
    /// An address outside the cluster (no policy applies to it).
    External(IpAddr),
}

impl Endpoint {
    fn ip(&self) -> Option<IpAddr> {
        match self {
            Endpoint::Pod(p) => p.ip,
            Endpoint::External(ip) => Some(*ip),
        }
    }
}

/// A connection attempt to `port`/`protocol` of `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The client.
    pub from: Endpoint,
    /// The server.
    pub to: Endpoint,
    /// Destination port.
    pub port: u16,
    /// Transport protocol.
    #[serde(serialize_with = "protocol_name")]
    pub protocol: Protocol,
}

/// How one direction (the source's egress or the destination's ingress) decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Side {
    /// The endpoint is outside the cluster: no policy applies.
    External,
    /// No policy isolates the pod in this direction: allowed.
    NotIsolated,
    /// Allowed by rule `rule` (0-based) of policy `policy` (`namespace/name`).
    Allowed {
        /// `namespace/name` of the policy.
        policy: String,
        /// Index of the rule in its `ingress`/`egress` list.
        rule: usize,
    },
    /// Isolated by these policies, and none of their rules allows the flow.
    Denied {
        /// `namespace/name` of each policy isolating the pod in this direction.
        isolated_by: Vec<String>,
    },
}

impl Side {
    /// Whether this direction lets the flow through.
    pub fn allows(&self) -> bool {
        !matches!(self, Side::Denied { .. })
    }
}

/// The decision on a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the flow is allowed (both sides allow it).
    pub allowed: bool,
    /// The source's egress decision.
    pub egress: Side,
    /// The destination's ingress decision.
    pub ingress: Side,
}

/// Decides a flow under `policies`.
pub fn evaluate(policies: &[NetworkPolicy], flow: &Flow) -> Verdict {
    let egress = match &flow.from {
        Endpoint::External(_) => Side::External,
        Endpoint::Pod(src) => decide(policies, src, Direction::Egress, &flow.to, flow),
    };
    let ingress = match &flow.to {
        Endpoint::External(_) => Side::External,
        Endpoint::Pod(dst) => decide(policies, dst, Direction::Ingress, &flow.from, flow),
    };
    Verdict {
        allowed: egress.allows() && ingress.allows(),
        egress,
        ingress,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

fn decide(
    policies: &[NetworkPolicy],
    pod: &Pod,
    direction: Direction,
    peer: &Endpoint,
    flow: &Flow,
) -> Side {
    let mut isolated_by = Vec::new();
    for p in policies.iter().filter(|p| applies_to(p, pod)) {
        let Some(spec) = &p.spec else { continue };
        let has_egress = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
        let types_have = |t: &str| match &spec.policy_types {
            Some(types) => types.iter().any(|x| x == t),
            None => t == "Ingress" || (t == "Egress" && has_egress),
        };
        let id = format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or_default(),
            p.metadata.name.as_deref().unwrap_or_default()
        );
        // The policy namespace gives podSelector-only peers their namespace.
        let ns = pod.namespace.as_str();
        let dst_pod = match &flow.to {
            Endpoint::Pod(d) => Some(d),
            Endpoint::External(_) => None,
        };
        let hit = match direction {
            Direction::Ingress if types_have("Ingress") => {
                Some(spec.ingress.iter().flatten().position(|r| {
                    peers_match(r.from.as_deref(), ns, peer)
                        && ports_match(r.ports.as_deref(), dst_pod, flow)
                }))
            }
            Direction::Egress if types_have("Egress") => {
                Some(spec.egress.iter().flatten().position(|r| {
                    peers_match(r.to.as_deref(), ns, peer)
                        && ports_match(r.ports.as_deref(), dst_pod, flow)
                }))
            }
            _ => None,
        };
        match hit {
            Some(Some(rule)) => return Side::Allowed { policy: id, rule },
            Some(None) => isolated_by.push(id),
            None => {}
        }
    }
    if isolated_by.is_empty() {
        Side::NotIsolated
    } else {
        Side::Denied { isolated_by }
    }
}

fn applies_to(policy: &NetworkPolicy, pod: &Pod) -> bool {
    policy.metadata.namespace.as_deref() == Some(pod.namespace.as_str())
        && policy.spec.as_ref().is_some_and(|s| {
            s.pod_selector
                .as_ref()
                .is_none_or(|sel| selector_matches(sel, &pod.labels))
        })
}

fn peers_match(peers: Option<&[NetworkPolicyPeer]>, policy_ns: &str, peer: &Endpoint) -> bool {
    match peers {
        None | Some([]) => true,
        Some(peers) => peers.iter().any(|p| peer_matches(p, policy_ns, peer)),
    }
}

fn peer_matches(p: &NetworkPolicyPeer, policy_ns: &str, endpoint: &Endpoint) -> bool {
    if let Some(block) = &p.ip_block {
        let Some(ip) = endpoint.ip() else {
            return false;
        };
        let in_net = |s: &str| s.parse::<IpNet>().is_ok_and(|n| n.contains(&ip));
        return in_net(&block.cidr) && !block.except.iter().flatten().any(|e| in_net(e));
    }
    let Endpoint::Pod(pod) = endpoint else {
        return false;
    };
    if p.namespace_selector.is_none() && p.pod_selector.is_none() {
        return false;
    }
    let ns_ok = match &p.namespace_selector {
        Some(sel) => selector_matches(sel, &pod.namespace_labels),
        None => pod.namespace == policy_ns,
    };
    ns_ok
        && p.pod_selector
            .as_ref()
            .is_none_or(|sel| selector_matches(sel, &pod.labels))
}

fn ports_match(ports: Option<&[NetworkPolicyPort]>, dst: Option<&Pod>, flow: &Flow) -> bool {
    match ports {
        None | Some([]) => true,
        Some(ports) => ports.iter().any(|p| port_matches(p, dst, flow)),
    }
}

fn port_matches(p: &NetworkPolicyPort, dst: Option<&Pod>, flow: &Flow) -> bool {
    if p.protocol.as_deref().unwrap_or("TCP") != flow.protocol.as_str() {
        return false;
    }
    match &p.port {
        None => true,
        Some(IntOrString::Int(n)) => {
            let port = i32::from(flow.port);
            match p.end_port {
                Some(end) => (*n..=end).contains(&port),
                None => *n == port,
            }
        }
        Some(IntOrString::String(name)) => dst.is_some_and(|pod| {
            pod.ports
                .iter()
                .any(|np| np.name == *name && np.port == flow.port && np.protocol == flow.protocol)
        }),
    }
}

/// Whether a label selector matches `labels` (an empty selector matches all).
pub fn selector_matches(sel: &LabelSelector, labels: &Labels) -> bool {
    sel.match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}
