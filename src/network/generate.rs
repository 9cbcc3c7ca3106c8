//! Config → NetworkPolicy objects, per managed namespace.
//!
//! Every allowed flow is first listed once, from a source namespace to a
//! destination; it then becomes an egress allowance in the source namespace
//! (when floe manages it) **and** an ingress allowance in the destination
//! namespace (when floe manages it), so both ends always agree.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::flows;
use super::rules::{Allow, Labels, Peer, Rule, merge};
use super::{DATA_LAYER, DOMAIN_LABEL, LAYER_LABEL};
use crate::config::{ApiServer, Cidr, Config, FLOE, MANAGED_BY_LABEL, Monitoring, Role};

/// What `bootstrap` discovered about the cluster; used only where the
/// config leaves a value out (the config always wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFacts {
    /// Pod and service CIDRs (nodes' `podCIDR`s, the `kubernetes` Service range).
    pub cluster_cidrs: Option<Vec<Cidr>>,
    /// The API server endpoints (the `kubernetes` EndpointSlice).
    pub api_server: Option<ApiServer>,
}

/// Which of a namespace's policies (and files) a policy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Denies all ingress and egress of every pod.
    DefaultDeny,
    /// The namespace's allowed egress (DNS always included).
    AllowEgress,
    /// The namespace's allowed ingress.
    AllowIngress,
}

impl PolicyKind {
    /// The file name suffix: `{namespace}-{suffix}.yaml`.
    pub fn file_suffix(self) -> &'static str {
        match self {
            PolicyKind::DefaultDeny => "default-deny",
            PolicyKind::AllowEgress => "allow-egress",
            PolicyKind::AllowIngress => "allow-ingress",
        }
    }
}

/// One generated NetworkPolicy with the rules it was rendered from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPolicy {
    /// Which policy of the namespace this is.
    pub kind: PolicyKind,
    /// Labels of the pods it selects (empty: every pod).
    pub target: Labels,
    /// Its ingress rules, with their purposes.
    pub ingress: Vec<Rule>,
    /// Its egress rules, with their purposes.
    pub egress: Vec<Rule>,
    /// The Kubernetes object.
    pub policy: NetworkPolicy,
}

/// The policies of one managed namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespacePolicies {
    /// The namespace.
    pub namespace: String,
    /// What it is for.
    pub role: Role,
    /// Default-deny, allow-egress, then the allow-ingress policies (if any).
    pub policies: Vec<PlannedPolicy>,
}

/// Everything the generator produced, and the cluster facts it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Whether NetworkPolicies are enabled at all (nothing is generated otherwise).
    pub enabled: bool,
    /// The ingress controller namespace.
    pub ingress_namespace: String,
    /// Pod and service CIDRs used, `None` when unknown.
    pub cluster_cidrs: Option<Vec<Cidr>>,
    /// API server endpoints used, `None` when unknown (no API server egress).
    pub api_server: Option<ApiServer>,
    /// Addresses excluded from external HTTPS and extra CIDR allowances.
    pub external_except: Vec<IpNet>,
    /// Whether external HTTPS is allowed.
    pub external_https: bool,
    /// The scraper allowed to reach the metrics ports, if any.
    pub monitoring: Option<Monitoring>,
    /// The policies, per managed namespace, in `managed_namespaces()` order.
    pub namespaces: Vec<NamespacePolicies>,
}

impl Generated {
    /// Every generated NetworkPolicy.
    pub fn policies(&self) -> impl Iterator<Item = &NetworkPolicy> {
        self.namespaces
            .iter()
            .flat_map(|n| n.policies.iter().map(|p| &p.policy))
    }
}

/// A config the generator refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("security.network_policies.{key}[{index}] ({name}): {reason}")]
pub struct GenerateError {
    /// `jobs_egress_allow`, `platform_egress_allow` or `domain_egress_allow`.
    pub key: &'static str,
    /// Index of the entry.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Why it is refused.
    pub reason: String,
}

/// Generates the policies from the config alone (unknown facts stay unknown).
pub fn generate(config: &Config) -> Result<Generated, GenerateError> {
    generate_with(config, &ClusterFacts::default())
}

/// Generates the policies from the config, filling the cluster CIDRs and
/// API server endpoints the config leaves out from `facts`.
pub fn generate_with(config: &Config, facts: &ClusterFacts) -> Result<Generated, GenerateError> {
    let np = &config.security.network_policies;
    let cluster_cidrs = np
        .cluster_cidrs
        .clone()
        .or_else(|| facts.cluster_cidrs.clone());
    let api_server = np.api_server.clone().or_else(|| facts.api_server.clone());
    let mut external_except: Vec<IpNet> = np.external_https.except.iter().map(|c| c.0).collect();
    external_except.extend(cluster_cidrs.iter().flatten().map(|c| c.0));
    external_except.sort();
    external_except.dedup();
    let mut generated = Generated {
        enabled: np.enabled,
        ingress_namespace: np.ingress_namespace.clone(),
        cluster_cidrs,
        api_server,
        external_except,
        external_https: np.external_https.enabled,
        monitoring: np.monitoring.clone(),
        namespaces: Vec::new(),
    };
    if !np.enabled {
        return Ok(generated);
    }
    let managed = config.managed_namespaces();
    let flows = flows::flows(config, &generated)?;

    let mut egress: BTreeMap<&str, Vec<Allow>> = BTreeMap::new();
    let mut ingress: BTreeMap<&str, BTreeMap<Labels, Vec<Allow>>> = BTreeMap::new();
    for f in &flows {
        if managed.iter().any(|m| m.name == f.from) {
            let peer = match &f.to {
                Peer::Namespace { namespace, pods } if *namespace == f.from => {
                    Peer::Local { pods: pods.clone() }
                }
                other => other.clone(),
            };
            egress.entry(&f.from).or_default().push(Allow {
                peer,
                port: f.port,
                purpose: f.purpose.clone(),
            });
        }
        if let Peer::Namespace { namespace, pods } = &f.to
            && let Some(m) = managed.iter().find(|m| m.name == *namespace)
        {
            let peer = if f.from == *namespace {
                Peer::Local {
                    pods: Labels::new(),
                }
            } else {
                Peer::Namespace {
                    namespace: f.from.clone(),
                    pods: f.from_pods.clone(),
                }
            };
            ingress
                .entry(m.name.as_str())
                .or_default()
                .entry(pods.clone())
                .or_default()
                .push(Allow {
                    peer,
                    port: f.port,
                    purpose: f.purpose.clone(),
                });
        }
    }

    for m in &managed {
        let labels = policy_labels(&m.role);
        let meta = |name: String| ObjectMeta {
            name: Some(name),
            namespace: Some(m.name.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        let mut policies = vec![PlannedPolicy {
            kind: PolicyKind::DefaultDeny,
            target: Labels::new(),
            ingress: Vec::new(),
            egress: Vec::new(),
            policy: policy(meta("floe-default-deny".into()), &Labels::new(), None, None),
        }];
        let egress_rules = merge(egress.get(m.name.as_str()).map_or(&[][..], Vec::as_slice));
        policies.push(PlannedPolicy {
            kind: PolicyKind::AllowEgress,
            target: Labels::new(),
            ingress: Vec::new(),
            policy: policy(
                meta("floe-allow-egress".into()),
                &Labels::new(),
                None,
                Some(&egress_rules),
            ),
            egress: egress_rules,
        });
        let mut names = BTreeSet::new();
        for (target, allows) in ingress.get(m.name.as_str()).into_iter().flatten() {
            let rules = merge(allows);
            let name = ingress_policy_name(target, &mut names);
            policies.push(PlannedPolicy {
                kind: PolicyKind::AllowIngress,
                target: target.clone(),
                egress: Vec::new(),
                policy: policy(meta(name), target, Some(&rules), None),
                ingress: rules,
            });
        }
        generated.namespaces.push(NamespacePolicies {
            namespace: m.name.clone(),
            role: m.role.clone(),
            policies,
        });
    }
    Ok(generated)
}

fn policy_labels(role: &Role) -> Labels {
    let mut labels = Labels::from([(MANAGED_BY_LABEL.into(), FLOE.into())]);
    if let Role::Domain(d) = role {
        labels.insert(DOMAIN_LABEL.into(), d.clone());
        labels.insert(LAYER_LABEL.into(), DATA_LAYER.into());
    }
    labels
}

/// `floe-allow-ingress` for every pod, else `floe-allow-ingress-{label values}`.
fn ingress_policy_name(target: &Labels, taken: &mut BTreeSet<String>) -> String {
    let mut base = String::from("floe-allow-ingress");
    if !target.is_empty() {
        let values: Vec<String> = target
            .values()
            .map(|v| {
                v.to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect()
            })
            .collect();
        base = format!("{base}-{}", values.join("-"));
        base.truncate(200);
        base = base.trim_end_matches('-').to_string();
    }
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn policy(
    metadata: ObjectMeta,
    target: &Labels,
    ingress: Option<&[Rule]>,
    egress: Option<&[Rule]>,
) -> NetworkPolicy {
    let mut types = Vec::new();
    if ingress.is_some() || egress.is_none() {
        types.push("Ingress".to_string());
    }
    if egress.is_some() || ingress.is_none() {
        types.push("Egress".to_string());
    }
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: (!target.is_empty()).then(|| target.clone()),
                match_expressions: None,
            }),
            policy_types: Some(types),
            ingress: ingress.map(|rules| {
                rules
                    .iter()
                    .map(|r| NetworkPolicyIngressRule {
                        from: Some(r.k8s_peers()),
                        ports: r.k8s_ports(),
                    })
                    .collect()
            }),
            egress: egress.map(|rules| {
                rules
                    .iter()
                    .map(|r| NetworkPolicyEgressRule {
                        to: Some(r.k8s_peers()),
                        ports: r.k8s_ports(),
                    })
                    .collect()
            }),
        }),
    }
}
