//! The generator's intermediate form: allowances (one peer, one port, one
//! purpose), their merge into minimal rules, and their rendering as
//! NetworkPolicy rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::config::Protocol;

use super::NAMESPACE_NAME_LABEL;

/// Pod or namespace labels (sorted, so everything built from them is deterministic).
pub type Labels = BTreeMap<String, String>;

/// The other end of an allowed flow, as a NetworkPolicy peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// Pods matching `pods` (every pod when empty) in the policy's own namespace.
    Local {
        /// Pod labels; empty selects every pod.
        pods: Labels,
    },
    /// Pods matching `pods` (every pod when empty) in the namespace `namespace`,
    /// selected by its immutable `kubernetes.io/metadata.name` label.
    Namespace {
        /// The namespace name.
        namespace: String,
        /// Pod labels; empty selects every pod.
        pods: Labels,
    },
    /// Addresses in `cidr` but in none of `except`.
    Block {
        /// The allowed network.
        cidr: IpNet,
        /// Sub-networks excluded from it (each strictly inside `cidr`).
        except: Vec<IpNet>,
    },
}

impl Peer {
    /// A block of `cidr` minus every entry of `except` that lies strictly
    /// inside it (entries of the other family, covering or outside `cidr` do
    /// not apply); nested exceptions are reduced to the outermost one.
    pub fn block(cidr: IpNet, except: &[IpNet]) -> Peer {
        let inside: BTreeSet<IpNet> = except
            .iter()
            .map(IpNet::trunc)
            .filter(|e| *e != cidr && cidr.contains(e))
            .collect();
        let except = inside
            .iter()
            .filter(|e| !inside.iter().any(|o| o != *e && o.contains(*e)))
            .copied()
            .collect();
        Peer::Block { cidr, except }
    }

    /// Whether every endpoint this peer matches is also matched by `self`
    /// (conservative: `false` when unsure).
    fn covers(&self, other: &Peer) -> bool {
        match (self, other) {
            (Peer::Local { pods: a }, Peer::Local { pods: b }) => selector_covers(a, b),
            (
                Peer::Namespace {
                    namespace: na,
                    pods: a,
                },
                Peer::Namespace {
                    namespace: nb,
                    pods: b,
                },
            ) => na == nb && selector_covers(a, b),
            (
                Peer::Block {
                    cidr: ca,
                    except: ea,
                },
                Peer::Block {
                    cidr: cb,
                    except: eb,
                },
            ) => {
                ca.contains(cb)
                    && ea.iter().all(|e| {
                        // The part of `e` inside `cb` must already be excluded from `other`.
                        !(e.contains(cb) || cb.contains(e))
                            || eb.iter().any(|x| x.contains(e) || x.contains(cb))
                    })
            }
            _ => false,
        }
    }

    /// The peer as a NetworkPolicy peer.
    pub fn to_k8s(&self) -> NetworkPolicyPeer {
        match self {
            Peer::Local { pods } => NetworkPolicyPeer {
                pod_selector: Some(selector(pods)),
                ..Default::default()
            },
            Peer::Namespace { namespace, pods } => NetworkPolicyPeer {
                namespace_selector: Some(selector(&Labels::from([(
                    NAMESPACE_NAME_LABEL.to_string(),
                    namespace.clone(),
                )]))),
                pod_selector: (!pods.is_empty()).then(|| selector(pods)),
                ..Default::default()
            },
            Peer::Block { cidr, except } => NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: cidr.to_string(),
                    except: (!except.is_empty())
                        .then(|| except.iter().map(ToString::to_string).collect()),
                }),
                ..Default::default()
            },
        }
    }
}

/// Whether the selector `a` matches every pod `b` matches (pods matching
/// `b` carry all of `b`'s labels, so `a ⊆ b` suffices).
fn selector_covers(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k) == Some(v))
}

fn selector(labels: &Labels) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| labels.clone()),
        match_expressions: None,
    }
}

fn show_labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Local { pods } if pods.is_empty() => f.write_str("all pods of this namespace"),
            Peer::Local { pods } => write!(f, "pods {} of this namespace", show_labels(pods)),
            Peer::Namespace { namespace, pods } if pods.is_empty() => {
                write!(f, "namespace {namespace}")
            }
            Peer::Namespace { namespace, pods } => {
                write!(f, "pods {} in {namespace}", show_labels(pods))
            }
            Peer::Block { cidr, except } if except.is_empty() => write!(f, "{cidr}"),
            Peer::Block { cidr, except } => {
                let except: Vec<String> = except.iter().map(ToString::to_string).collect();
                write!(f, "{cidr} except {}", except.join(", "))
            }
        }
    }
}

/// Which ports an allowance covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortMatch {
    /// Every port of every protocol.
    Any,
    /// One port of one protocol.
    One(Protocol, u16),
}

impl PortMatch {
    fn covers(self, other: PortMatch) -> bool {
        self == PortMatch::Any || self == other
    }

    fn to_k8s(self) -> Option<NetworkPolicyPort> {
        match self {
            PortMatch::Any => None,
            PortMatch::One(protocol, port) => Some(NetworkPolicyPort {
                protocol: Some(protocol.as_str().into()),
                port: Some(IntOrString::Int(port.into())),
                end_port: None,
            }),
        }
    }
}

/// Formats ports as `TCP 8181, 4317; UDP 53` or `all ports`.
pub fn show_ports(ports: &[PortMatch]) -> String {
    if ports.is_empty() || ports.contains(&PortMatch::Any) {
        return "all ports".into();
    }
    let mut by_proto: BTreeMap<Protocol, Vec<u16>> = BTreeMap::new();
    for p in ports {
        if let PortMatch::One(proto, n) = p {
            by_proto.entry(*proto).or_default().push(*n);
        }
    }
    by_proto
        .iter()
        .map(|(proto, ns)| {
            let ns: Vec<String> = ns.iter().map(ToString::to_string).collect();
            format!("{proto} {}", ns.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One allowed (peer, port) pair and why it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The other end.
    pub peer: Peer,
    /// The port on the destination.
    pub port: PortMatch,
    /// Why it is allowed (shown in the summary), e.g. `DNS` or `Polaris`.
    pub purpose: String,
}

/// A NetworkPolicy rule: every peer on every port, with the purposes merged into it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// The peers (never empty).
    pub peers: Vec<Peer>,
    /// The ports; `[Any]` for all ports.
    pub ports: Vec<PortMatch>,
    /// The purposes of the allowances merged into this rule.
    pub purposes: BTreeSet<String>,
}

impl Rule {
    /// The rule's `to`/`from` peers as NetworkPolicy peers.
    pub fn k8s_peers(&self) -> Vec<NetworkPolicyPeer> {
        self.peers.iter().map(Peer::to_k8s).collect()
    }

    /// The rule's ports; `None` (all ports) when it covers every port.
    pub fn k8s_ports(&self) -> Option<Vec<NetworkPolicyPort>> {
        self.ports.iter().map(|p| p.to_k8s()).collect()
    }
}

/// Merges allowances into the fewest rules this scheme gives, allowing
/// exactly the same flows: allowances covered by a broader one are dropped
/// (their purpose kept), the ports of each peer are collected, and peers
/// with the same port set share one rule. The result is sorted.
pub fn merge(allows: &[Allow]) -> Vec<Rule> {
    // Distinct (peer, port) atoms with every purpose that asked for them.
    let mut atoms: BTreeMap<(Peer, PortMatch), BTreeSet<String>> = BTreeMap::new();
    for a in allows {
        atoms
            .entry((a.peer.clone(), a.port))
            .or_default()
            .insert(a.purpose.clone());
    }
    let keys: Vec<(Peer, PortMatch)> = atoms.keys().cloned().collect();
    let covers = |a: &(Peer, PortMatch), b: &(Peer, PortMatch)| a.0.covers(&b.0) && a.1.covers(b.1);
    // Drop, one at a time, each atom covered by another atom still kept: a
    // drop is always justified by a kept atom, so no flow is lost.
    let mut dropped_for: Vec<Option<usize>> = vec![None; keys.len()];
    for i in 0..keys.len() {
        dropped_for[i] = (0..keys.len())
            .find(|&j| j != i && dropped_for[j].is_none() && covers(&keys[j], &keys[i]));
    }
    let mut kept: BTreeMap<Peer, (BTreeSet<PortMatch>, BTreeSet<String>)> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        // Purposes go to the kept atom reached by following the drops
        // (which always point to atoms dropped later, or kept).
        let mut j = i;
        while let Some(k) = dropped_for[j] {
            j = k;
        }
        let entry = kept.entry(keys[j].0.clone()).or_default();
        entry.0.insert(keys[j].1);
        entry.1.extend(atoms[key].iter().cloned());
    }
    let mut by_ports: BTreeMap<Vec<PortMatch>, (Vec<Peer>, BTreeSet<String>)> = BTreeMap::new();
    for (peer, (ports, purposes)) in kept {
        let ports: Vec<PortMatch> = if ports.contains(&PortMatch::Any) {
            vec![PortMatch::Any]
        } else {
            ports.into_iter().collect()
        };
        let entry = by_ports.entry(ports).or_default();
        entry.0.push(peer);
        entry.1.extend(purposes);
    }
    let mut rules: Vec<Rule> = by_ports
        .into_iter()
        .map(|(ports, (peers, purposes))| Rule {
            peers,
            ports,
            purposes,
        })
        .collect();
    rules.sort();
    rules
}

/// Each allowance as its own rule, unmerged (for comparisons and tests).
pub fn unmerged(allows: &[Allow]) -> Vec<Rule> {
    allows
        .iter()
        .map(|a| Rule {
            peers: vec![a.peer.clone()],
            ports: vec![a.port],
            purposes: BTreeSet::from([a.purpose.clone()]),
        })
        .collect()
}
