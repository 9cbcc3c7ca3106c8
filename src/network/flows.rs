//! Every flow the config allows, listed once from its source namespace (and
//! pods) to its destination: DNS, the platform services, the API server,
//! external HTTPS, monitoring, and the `*_egress_allow` allowances. The
//! generator turns each into an egress rule at the source and an ingress
//! rule at the destination.

use ipnet::IpNet;

use super::rules::{Labels, Peer, PortMatch};
use super::{DNS_NAMESPACE, DNS_POD_LABEL, GenerateError, Generated, PLATFORM_SERVICES};
use crate::config::{Config, EgressAllow, JOBS_NAMESPACE, PLATFORM_NAMESPACE, Protocol, Role};

/// A flow to open: source namespace (and pods), destination, port, purpose.
pub(super) struct Flow {
    pub from: String,
    /// The source pods (every pod when empty): what the destination's
    /// ingress rule selects.
    pub from_pods: Labels,
    pub to: Peer,
    pub port: PortMatch,
    pub purpose: String,
}

/// Every flow the config allows.
pub(super) fn flows(config: &Config, g: &Generated) -> Result<Vec<Flow>, GenerateError> {
    let np = &config.security.network_policies;
    let managed = config.managed_namespaces();
    let mut out = Vec::new();
    let mut add = |from: &str, to: Peer, port: PortMatch, purpose: &str| {
        out.push(Flow {
            from: from.into(),
            from_pods: Labels::new(),
            to,
            port,
            purpose: purpose.into(),
        })
    };
    let pods_in = |ns: &str, pods: Labels| Peer::Namespace {
        namespace: ns.into(),
        pods,
    };
    let all_pods = |ns: &str| pods_in(ns, Labels::new());
    let dns = pods_in(
        DNS_NAMESPACE,
        Labels::from([(DNS_POD_LABEL.0.into(), DNS_POD_LABEL.1.into())]),
    );
    let external: Vec<Peer> = external_blocks(g);

    for m in &managed {
        let ns = m.name.as_str();
        for proto in [Protocol::UDP, Protocol::TCP] {
            add(
                ns,
                dns.clone(),
                PortMatch::One(proto, 53),
                "DNS (always on)",
            );
        }
        match &m.role {
            Role::Platform => {
                add(ns, all_pods(ns), PortMatch::Any, "intra-namespace");
                add(
                    &np.ingress_namespace,
                    all_pods(ns),
                    PortMatch::Any,
                    "ingress controller",
                );
                for s in PLATFORM_SERVICES {
                    add(
                        JOBS_NAMESPACE,
                        all_pods(ns),
                        PortMatch::One(s.protocol, s.port),
                        s.name,
                    );
                }
                if let Some(api) = &g.api_server {
                    for cidr in &api.cidrs {
                        for port in &api.ports {
                            add(
                                ns,
                                Peer::block(cidr.0, &[]),
                                PortMatch::One(Protocol::TCP, port.0),
                                "Kubernetes API server",
                            );
                        }
                    }
                }
                for block in &external {
                    add(
                        ns,
                        block.clone(),
                        PortMatch::One(Protocol::TCP, 443),
                        "external HTTPS",
                    );
                }
            }
            Role::Jobs => {
                for block in &external {
                    add(
                        ns,
                        block.clone(),
                        PortMatch::One(Protocol::TCP, 443),
                        "external HTTPS",
                    );
                }
            }
            Role::Domain(_) => {
                add(ns, all_pods(ns), PortMatch::Any, "intra-namespace");
                add(
                    &np.ingress_namespace,
                    all_pods(ns),
                    PortMatch::Any,
                    "ingress controller",
                );
                for s in PLATFORM_SERVICES.iter().filter(|s| s.for_domains) {
                    add(
                        ns,
                        all_pods(PLATFORM_NAMESPACE),
                        PortMatch::One(s.protocol, s.port),
                        s.name,
                    );
                }
            }
        }
    }
    if let Some(m) = &np.monitoring {
        let targets = managed
            .iter()
            .filter(|t| matches!(t.role, Role::Platform | Role::Domain(_)));
        for t in targets {
            for port in &m.ports {
                out.push(Flow {
                    from: m.namespace.clone(),
                    from_pods: m.pod_labels.clone(),
                    to: Peer::Namespace {
                        namespace: t.name.clone(),
                        pods: Labels::new(),
                    },
                    port: PortMatch::One(Protocol::TCP, port.0),
                    purpose: "monitoring: metrics scrape".into(),
                });
            }
        }
    }
    let domains: Vec<String> = managed
        .iter()
        .filter(|m| matches!(m.role, Role::Domain(_)))
        .map(|m| m.name.clone())
        .collect();
    let mut user = vec![
        (
            "jobs_egress_allow",
            JOBS_NAMESPACE.to_string(),
            &np.jobs_egress_allow,
        ),
        (
            "platform_egress_allow",
            PLATFORM_NAMESPACE.to_string(),
            &np.platform_egress_allow,
        ),
    ];
    user.extend(
        domains
            .into_iter()
            .map(|d| ("domain_egress_allow", d, &np.domain_egress_allow)),
    );
    for (key, from, rules) in user {
        for (index, rule) in rules.iter().enumerate() {
            let to = user_destination(config, key, index, rule, &g.external_except)?;
            out.push(Flow {
                from: from.clone(),
                from_pods: Labels::new(),
                to,
                port: PortMatch::One(rule.protocol, rule.port.0),
                purpose: format!("{key}: {}", rule.name),
            });
        }
    }
    Ok(out)
}

/// The `0.0.0.0/0` (and, on IPv6 clusters, `::/0`) blocks of external HTTPS.
fn external_blocks(g: &Generated) -> Vec<Peer> {
    if !g.external_https {
        return Vec::new();
    }
    let mut nets: Vec<IpNet> = vec!["0.0.0.0/0".parse().expect("valid CIDR")];
    if g.cluster_cidrs
        .iter()
        .flatten()
        .any(|c| matches!(c.0, IpNet::V6(_)))
    {
        nets.push("::/0".parse().expect("valid CIDR"));
    }
    nets.into_iter()
        .map(|n| Peer::block(n, &g.external_except))
        .collect()
}

/// The destination of a `*_egress_allow` entry.
fn user_destination(
    config: &Config,
    key: &'static str,
    index: usize,
    rule: &EgressAllow,
    except: &[IpNet],
) -> Result<Peer, GenerateError> {
    if let Some(cidr) = rule.cidr {
        return Ok(Peer::block(cidr.0, except));
    }
    let namespace = rule
        .namespace
        .clone()
        .expect("config check: cidr or namespace");
    let refuse = |reason: String| GenerateError {
        key,
        index,
        name: rule.name.clone(),
        reason,
    };
    match config.managed_namespace(&namespace).map(|m| m.role) {
        Some(Role::Jobs) => Err(refuse(format!(
            "{JOBS_NAMESPACE} accepts no ingress at all; an allowance into it is refused"
        ))),
        Some(Role::Domain(_)) => Err(refuse(format!(
            "{namespace} accepts ingress only from itself and the ingress controller"
        ))),
        _ => Ok(Peer::Namespace {
            namespace,
            pods: rule.pod_labels.clone().unwrap_or_default(),
        }),
    }
}
