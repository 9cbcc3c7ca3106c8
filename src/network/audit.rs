//! `network audit`: per namespace, its Pod Security labels, whether its
//! pods are isolated by default (decided from what the policies do, not from
//! their names), the floe-managed policies, and the pods that would violate
//! the namespace's `enforce` level.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use crate::bootstrap::is_floe_managed;
use crate::config::{Config, FLOE, PART_OF_LABEL};
use crate::namespace::PSS_LABEL_PREFIX;
use crate::pss::{self, Level};

/// A direction of traffic, as `policyTypes` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Traffic to the selected pods.
    Ingress,
    /// Traffic from the selected pods.
    Egress,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }
}

fn selects_every_pod(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Whether a rule with these peers and ports lets everything through: no
/// port restriction, and either no peer restriction or a peer `0.0.0.0/0`
/// or `::/0` without exceptions.
fn allows_everything(
    peers: Option<&Vec<NetworkPolicyPeer>>,
    ports: Option<&Vec<NetworkPolicyPort>>,
) -> bool {
    if ports.is_some_and(|p| !p.is_empty()) {
        return false;
    }
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        return true;
    };
    peers.iter().any(|p| {
        p.ip_block.as_ref().is_some_and(|b| {
            matches!(b.cidr.as_str(), "0.0.0.0/0" | "::/0")
                && b.except.as_ref().is_none_or(Vec::is_empty)
        })
    })
}

/// Whether `policy` isolates every pod of its namespace in `direction`
/// (so that only what some policy allows gets through): it selects every
/// pod, its effective `policyTypes` include the direction, and none of its
/// rules for that direction allows all traffic.
pub fn denies_by_default(policy: &NetworkPolicy, direction: Direction) -> bool {
    let Some(spec) = &policy.spec else {
        return false;
    };
    if !spec.pod_selector.as_ref().is_none_or(selects_every_pod) {
        return false;
    }
    let has_egress = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
    let isolates = match &spec.policy_types {
        Some(types) => types.iter().any(|t| t == direction.as_str()),
        None => direction == Direction::Ingress || has_egress,
    };
    let open = match direction {
        Direction::Ingress => spec
            .ingress
            .iter()
            .flatten()
            .any(|r| allows_everything(r.from.as_ref(), r.ports.as_ref())),
        Direction::Egress => spec
            .egress
            .iter()
            .flatten()
            .any(|r| allows_everything(r.to.as_ref(), r.ports.as_ref())),
    };
    isolates && !open
}

/// A pod that the namespace's `enforce` level would reject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolatingPod {
    /// The pod's name.
    pub name: String,
    /// One line per violation.
    pub violations: Vec<String>,
}

/// The audit of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceAudit {
    /// The namespace.
    pub name: String,
    /// Whether floe manages it (configured, or labelled part-of floe).
    pub managed: bool,
    /// Whether it is a system namespace (`security.pod_security.system_namespaces`).
    pub system: bool,
    /// The `pod-security.kubernetes.io/enforce` label.
    pub enforce: Option<String>,
    /// The `pod-security.kubernetes.io/audit` label.
    pub audit: Option<String>,
    /// The `pod-security.kubernetes.io/warn` label.
    pub warn: Option<String>,
    /// Policies that deny ingress by default.
    pub default_deny_ingress: Vec<String>,
    /// Policies that deny egress by default.
    pub default_deny_egress: Vec<String>,
    /// Policies labelled `app.kubernetes.io/managed-by: floe`.
    pub floe_policies: Vec<String>,
    /// The level pods were checked against.
    pub checked_level: String,
    /// Pods that violate it.
    pub violating_pods: Vec<ViolatingPod>,
}

impl NamespaceAudit {
    /// What is wrong with the Pod Security labels of a non-system
    /// namespace (none at all, or `enforce: privileged`), and the fixing
    /// command; `None` when nothing is.
    pub fn pss_label_problem(&self) -> Option<(String, String)> {
        if self.system {
            return None;
        }
        let problem = match self.enforce.as_deref() {
            None if self.audit.is_none() && self.warn.is_none() => {
                "no Pod Security labels: its pods are admitted unchecked (privileged); only system namespaces may (security.pod_security.system_namespaces)"
            }
            None | Some("privileged") => {
                "enforces privileged, which only system namespaces may (security.pod_security.system_namespaces)"
            }
            _ => return None,
        };
        let fix = format!(
            "kubectl label --overwrite namespace {} {PSS_LABEL_PREFIX}enforce=baseline {PSS_LABEL_PREFIX}warn=restricted",
            self.name
        );
        Some((problem.to_string(), fix))
    }

    /// The warnings for this namespace: a managed namespace without
    /// default-deny in a direction; a non-system namespace without Pod
    /// Security labels, or enforcing `privileged`.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((problem, fix)) = self.pss_label_problem() {
            out.push(format!("{}: {problem}: `{fix}`", self.name));
        }
        if self.managed {
            for (dir, by) in [
                ("ingress", &self.default_deny_ingress),
                ("egress", &self.default_deny_egress),
            ] {
                if by.is_empty() {
                    out.push(format!(
                        "{}: managed namespace without default-deny {dir} (run `floe-guard bootstrap`)",
                        self.name
                    ));
                }
            }
        }
        out
    }
}

/// The level Pod Security Admission enforces for these labels: none
/// (privileged) when absent; an invalid value counts as `restricted`, as
/// Pod Security Admission treats it.
fn enforced_level(labels: &BTreeMap<String, String>) -> Level {
    labels
        .get(&format!("{PSS_LABEL_PREFIX}enforce"))
        .map_or(Level::Privileged, |v| {
            v.parse().unwrap_or(Level::Restricted)
        })
}

/// Audits every namespace, in name order.
pub fn audit(
    cfg: &Config,
    namespaces: &[Namespace],
    policies: &[NetworkPolicy],
    pods: &[Pod],
) -> Vec<NamespaceAudit> {
    let mut pods_by_ns: HashMap<&str, Vec<&Pod>> = HashMap::new();
    for p in pods {
        pods_by_ns
            .entry(p.metadata.namespace.as_deref().unwrap_or_default())
            .or_default()
            .push(p);
    }
    let mut policies_by_ns: HashMap<&str, Vec<&NetworkPolicy>> = HashMap::new();
    for p in policies {
        policies_by_ns
            .entry(p.metadata.namespace.as_deref().unwrap_or_default())
            .or_default()
            .push(p);
    }
    let mut out: Vec<NamespaceAudit> = namespaces
        .iter()
        .filter_map(|ns| {
            let name = ns.metadata.name.as_deref()?;
            let labels = ns.metadata.labels.clone().unwrap_or_default();
            let label = |mode: &str| labels.get(&format!("{PSS_LABEL_PREFIX}{mode}")).cloned();
            let pols = policies_by_ns
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let names = |f: &dyn Fn(&NetworkPolicy) -> bool| -> Vec<String> {
                let mut v: Vec<String> = pols
                    .iter()
                    .filter(|p| f(p))
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                v.sort();
                v
            };
            let level = enforced_level(&labels);
            let mut violating: Vec<ViolatingPod> = pods_by_ns
                .get(name)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let spec = p.spec.as_ref()?;
                    let v = pss::check(&p.metadata, spec, level);
                    (!v.is_empty()).then(|| ViolatingPod {
                        name: p.metadata.name.clone().unwrap_or_default(),
                        violations: v
                            .iter()
                            .map(|v| format!("{}: {}", v.check, v.message))
                            .collect(),
                    })
                })
                .collect();
            violating.sort_by(|a, b| a.name.cmp(&b.name));
            Some(NamespaceAudit {
                name: name.to_string(),
                managed: cfg.managed_namespace(name).is_some()
                    || labels.get(PART_OF_LABEL).map(String::as_str) == Some(FLOE),
                system: cfg
                    .security
                    .pod_security
                    .system_namespaces
                    .iter()
                    .any(|s| s == name),
                enforce: label("enforce"),
                audit: label("audit"),
                warn: label("warn"),
                default_deny_ingress: names(&|p| denies_by_default(p, Direction::Ingress)),
                default_deny_egress: names(&|p| denies_by_default(p, Direction::Egress)),
                floe_policies: names(&|p| is_floe_managed(&p.metadata)),
                checked_level: level.as_str().into(),
                violating_pods: violating,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The audit as an aligned table (or a Markdown one), then the violating
/// pods and the warnings.
pub fn table(report: &[NamespaceAudit], warnings: &[String], markdown: bool) -> String {
    let header = [
        "NAMESPACE",
        "MANAGED",
        "ENFORCE",
        "AUDIT",
        "WARN",
        "DENY-INGRESS",
        "DENY-EGRESS",
        "FLOE-POLICIES",
        "VIOLATING-PODS",
    ];
    let yes = |v: &Vec<String>| if v.is_empty() { "no" } else { "yes" };
    let rows: Vec<[String; 9]> = report
        .iter()
        .map(|n| {
            let label = |l: &Option<String>| l.clone().unwrap_or_else(|| "-".into());
            [
                n.name.clone(),
                if n.managed { "yes" } else { "no" }.into(),
                label(&n.enforce),
                label(&n.audit),
                label(&n.warn),
                yes(&n.default_deny_ingress).into(),
                yes(&n.default_deny_egress).into(),
                n.floe_policies.len().to_string(),
                n.violating_pods.len().to_string(),
            ]
        })
        .collect();
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for r in &rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
    } else {
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(header[i].len())
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let cells: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(header.to_vec()));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    let bullet = if markdown { "- " } else { "  " };
    let violating: Vec<&NamespaceAudit> = report
        .iter()
        .filter(|n| !n.violating_pods.is_empty())
        .collect();
    if !violating.is_empty() {
        let _ = writeln!(
            out,
            "\n{}Pods violating their namespace's enforce level:",
            if markdown { "### " } else { "" }
        );
        for n in violating {
            for p in &n.violating_pods {
                let _ = writeln!(
                    out,
                    "{bullet}{}/{} ({}): {}",
                    n.name,
                    p.name,
                    n.checked_level,
                    p.violations.join("; ")
                );
            }
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "\n{}Warnings:", if markdown { "### " } else { "" });
        for w in warnings {
            let _ = writeln!(out, "{bullet}{w}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn default_deny_is_decided_by_what_the_policy_does() {
        let deny_all = policy(json!({"metadata": {"name": "whatever"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}));
        assert!(denies_by_default(&deny_all, Direction::Ingress));
        assert!(denies_by_default(&deny_all, Direction::Egress));
        // Without policyTypes: Ingress always, Egress only with egress rules.
        let implicit =
            policy(json!({"metadata": {"name": "default-deny"}, "spec": {"podSelector": {}}}));
        assert!(denies_by_default(&implicit, Direction::Ingress));
        assert!(!denies_by_default(&implicit, Direction::Egress));
        // An allowlist selecting every pod still isolates them.
        let dns_only = policy(
            json!({"metadata": {"name": "egress"}, "spec": {"podSelector": {},
            "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}),
        );
        assert!(denies_by_default(&dns_only, Direction::Egress));
        // Named default-deny, but allows everything / selects only some pods.
        let allow_all = policy(
            json!({"metadata": {"name": "default-deny"}, "spec": {"podSelector": {},
            "policyTypes": ["Ingress"], "ingress": [{}]}}),
        );
        assert!(!denies_by_default(&allow_all, Direction::Ingress));
        let world = policy(
            json!({"metadata": {"name": "default-deny"}, "spec": {"podSelector": {},
            "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}),
        );
        assert!(!denies_by_default(&world, Direction::Egress));
        let some = policy(json!({"metadata": {"name": "default-deny"}, "spec": {
            "podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]}}));
        assert!(!denies_by_default(&some, Direction::Ingress));
    }

    #[test]
    fn audit_flags_missing_default_deny_and_restricted_violations() {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "floe-jobs",
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
        .unwrap();
        let other: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
        let bad: Pod = serde_json::from_value(
            json!({"metadata": {"name": "root", "namespace": "floe-jobs"},
            "spec": {"containers": [{"name": "c", "image": "x",
                "securityContext": {"privileged": true}}]}}),
        )
        .unwrap();
        let elsewhere: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "team"},
            "spec": {"containers": [{"name": "c", "image": "x",
                "securityContext": {"privileged": true}}]}}))
            .unwrap();
        let deny = policy(json!({"metadata": {"name": "d", "namespace": "floe-jobs"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}));
        let report = audit(&Config::default(), &[other, ns], &[deny], &[bad, elsewhere]);
        assert_eq!(report[0].name, "floe-jobs");
        assert!(report[0].managed);
        assert_eq!(report[0].default_deny_ingress, ["d"]);
        assert!(report[0].default_deny_egress.is_empty());
        assert_eq!(report[0].violating_pods[0].name, "root");
        assert!(
            report[0].violating_pods[0]
                .violations
                .iter()
                .any(|v| v.contains("privileged"))
        );
        assert_eq!(report[0].warnings().len(), 1);
        assert!(report[0].warnings()[0].contains("default-deny egress"));
        // Unlabelled namespace: privileged, nothing violates, flagged
        // because it is not a system namespace.
        assert!(!report[1].managed);
        assert!(report[1].violating_pods.is_empty());
        assert_eq!(report[1].warnings().len(), 1);
        assert!(report[1].warnings()[0].contains("team: no Pod Security labels"));
        assert!(report[1].warnings()[0].contains("kubectl label --overwrite namespace team"));
    }

    #[test]
    fn only_non_system_namespaces_are_flagged_for_missing_or_privileged_pss() {
        let ns = |name: &str, enforce: Option<&str>| -> Namespace {
            let mut v = json!({"metadata": {"name": name}});
            if let Some(e) = enforce {
                v["metadata"]["labels"] = json!({"pod-security.kubernetes.io/enforce": e});
            }
            serde_json::from_value(v).unwrap()
        };
        let list = [
            ns("kube-system", None),
            ns("floe-guard", Some("privileged")),
            ns("team-a", Some("privileged")),
            ns("team-b", Some("baseline")),
        ];
        let report = audit(&Config::default(), &list, &[], &[]);
        let flagged: Vec<&str> = report
            .iter()
            .filter(|n| !n.warnings().is_empty())
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(flagged, ["team-a"]);
        assert!(report[2].warnings()[0].contains("enforces privileged"));
    }
}
