//! What `network audit` found, as one flat list of checks with a verdict
//! each: the rule, how severe a failure is, the object concerned, what is
//! wrong and the command that fixes it. Renderers (the policy reports of
//! [`super::reports`]) read only this list, so a new kind of finding is one
//! more entry here and nothing else changes.
//!
//! A check that applies and holds is a `pass` (dashboards count them); a
//! check that does not apply (default-deny in a namespace floe does not
//! manage) yields nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::audit::NamespaceAudit;
use super::foreign::ForeignPolicy;
use crate::config::Config;

/// The rule names, as the reports show them (`policy: floe-guard`).
pub mod rule {
    /// A managed namespace isolates its pods from incoming traffic.
    pub const DEFAULT_DENY_INGRESS: &str = "default-deny-ingress";
    /// A managed namespace isolates its pods' outgoing traffic.
    pub const DEFAULT_DENY_EGRESS: &str = "default-deny-egress";
    /// Running pods meet their namespace's Pod Security `enforce` level.
    pub const POD_SECURITY_LEVEL: &str = "pod-security-level";
    /// Every namespace the config manages exists.
    pub const MANAGED_NAMESPACE: &str = "managed-namespace";
    /// A non-system namespace carries Pod Security labels and does not
    /// enforce `privileged`.
    pub const PSS_LABELS: &str = "pss-labels";
    /// No NetworkPolicy that floe did not generate widens what default-deny
    /// allows in a managed namespace (unless accepted as an exception).
    pub const FOREIGN_POLICY: &str = "foreign-policy-widens";
}

/// Category of the network isolation rules.
pub const NETWORK_ISOLATION: &str = "Network Isolation";
/// Category of the Pod Security rules.
pub const POD_SECURITY: &str = "Pod Security";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The check holds.
    Pass,
    /// The check fails.
    Fail,
    /// The check fails, and does not count as a failure (advice).
    Warn,
}

/// How much a failure of the check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Exploitable now.
    Critical,
    /// An isolation or hardening guarantee is missing.
    High,
    /// A guarantee is weaker than configured.
    Medium,
    /// A hygiene problem.
    Low,
    /// Information only.
    Info,
}

/// The Kubernetes object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// Its `apiVersion`.
    pub api_version: &'static str,
    /// Its `kind`.
    pub kind: &'static str,
    /// Its namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl Subject {
    /// A Namespace object.
    pub fn namespace(name: &str) -> Self {
        Subject {
            api_version: "v1",
            kind: "Namespace",
            namespace: None,
            name: name.into(),
        }
    }

    /// A Pod in `namespace`.
    pub fn pod(namespace: &str, name: &str) -> Self {
        Subject {
            api_version: "v1",
            kind: "Pod",
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

/// One check of the audit and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule (see [`rule`]).
    pub rule: &'static str,
    /// The rule's category.
    pub category: &'static str,
    /// How much a failure matters.
    pub severity: Severity,
    /// The outcome.
    pub verdict: Verdict,
    /// The object checked.
    pub subject: Subject,
    /// What holds or what is wrong, in one sentence.
    pub message: String,
    /// The command or change that fixes a failure.
    pub fix: Option<String>,
    /// Further facts (policy names, the level checked…).
    pub properties: BTreeMap<String, String>,
}

impl Finding {
    /// The message, followed by the fix when there is one.
    pub fn text(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{}; fix: {fix}", self.message),
            None => self.message.clone(),
        }
    }
}

impl NamespaceAudit {
    /// The checks of this namespace: default-deny in both directions (managed
    /// namespaces only) and its running pods against its `enforce` level.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.managed {
            for (rule, dir, by) in [
                (
                    rule::DEFAULT_DENY_INGRESS,
                    "ingress",
                    &self.default_deny_ingress,
                ),
                (
                    rule::DEFAULT_DENY_EGRESS,
                    "egress",
                    &self.default_deny_egress,
                ),
            ] {
                out.push(default_deny(&self.name, rule, dir, by));
            }
        }
        if !self.system {
            let problem = self.pss_label_problem();
            out.push(Finding {
                rule: rule::PSS_LABELS,
                category: POD_SECURITY,
                severity: Severity::High,
                verdict: if problem.is_some() {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                },
                subject: Subject::namespace(&self.name),
                message: problem.as_ref().map_or_else(
                    || "the namespace carries Pod Security labels below privileged".to_string(),
                    |(p, _)| p.clone(),
                ),
                fix: problem.map(|(_, fix)| fix),
                properties: BTreeMap::new(),
            });
        }
        let level = &self.checked_level;
        for pod in &self.violating_pods {
            out.push(Finding {
                rule: rule::POD_SECURITY_LEVEL,
                category: POD_SECURITY,
                severity: Severity::High,
                verdict: Verdict::Fail,
                subject: Subject::pod(&self.name, &pod.name),
                message: format!(
                    "running pod violates the namespace's enforce level {level}: {}",
                    pod.violations.join("; ")
                ),
                fix: Some(format!(
                    "recreate the pod from a compliant spec (`floe-guard pss check --level {level} -f POD.yaml` lists what to change)"
                )),
                properties: BTreeMap::from([("level".into(), level.clone())]),
            });
        }
        if self.managed && self.violating_pods.is_empty() {
            out.push(Finding {
                rule: rule::POD_SECURITY_LEVEL,
                category: POD_SECURITY,
                severity: Severity::High,
                verdict: Verdict::Pass,
                subject: Subject::namespace(&self.name),
                message: format!("every running pod meets the enforce level {level}"),
                fix: None,
                properties: BTreeMap::from([("level".into(), level.clone())]),
            });
        }
        out
    }
}

fn default_deny(namespace: &str, rule: &'static str, dir: &str, by: &[String]) -> Finding {
    let (verdict, message, fix) = if by.is_empty() {
        (
            Verdict::Fail,
            format!(
                "managed namespace without default-deny {dir}: its pods' {dir} is open to every peer"
            ),
            Some("floe-guard bootstrap".to_string()),
        )
    } else {
        (
            Verdict::Pass,
            format!("pods are isolated for {dir} by {}", by.join(", ")),
            None,
        )
    };
    let mut properties = BTreeMap::new();
    if !by.is_empty() {
        properties.insert("policies".into(), by.join(","));
    }
    Finding {
        rule,
        category: NETWORK_ISOLATION,
        severity: Severity::High,
        verdict,
        subject: Subject::namespace(namespace),
        message,
        fix,
        properties,
    }
}

/// The cluster-wide checks: every namespace the config manages exists (a
/// missing one has no default-deny and no Pod Security labels to hold).
pub fn cluster_findings(cfg: &Config, audits: &[NamespaceAudit]) -> Vec<Finding> {
    cfg.managed_namespaces()
        .into_iter()
        .map(|m| {
            let exists = audits.iter().any(|a| a.name == m.name);
            Finding {
                rule: rule::MANAGED_NAMESPACE,
                category: NETWORK_ISOLATION,
                severity: Severity::High,
                verdict: if exists { Verdict::Pass } else { Verdict::Fail },
                message: if exists {
                    format!("managed namespace {} exists", m.name)
                } else {
                    format!(
                        "managed namespace {} does not exist: its default-deny policies and Pod Security labels are missing",
                        m.name
                    )
                },
                fix: (!exists).then(|| "floe-guard bootstrap".to_string()),
                properties: BTreeMap::from([("level".into(), m.level.as_str().to_string())]),
                subject: Subject::namespace(&m.name),
            }
        })
        .collect()
}

/// One finding per NetworkPolicy in a managed namespace that floe did not
/// generate and that opens more than the generated set: a failure, or a
/// warning when it is labelled as a reviewed exception.
pub fn foreign_findings(foreign: &[ForeignPolicy]) -> Vec<Finding> {
    foreign
        .iter()
        .map(|f| {
            let [remove, accept] = f.remedies();
            Finding {
                rule: rule::FOREIGN_POLICY,
                category: NETWORK_ISOLATION,
                severity: Severity::High,
                verdict: if f.accepted {
                    Verdict::Warn
                } else {
                    Verdict::Fail
                },
                subject: Subject {
                    api_version: "networking.k8s.io/v1",
                    kind: "NetworkPolicy",
                    namespace: Some(f.namespace.clone()),
                    name: f.name.clone(),
                },
                message: format!(
                    "not generated by floe{} and opens {}",
                    if f.accepted {
                        ", accepted as an exception,"
                    } else {
                        ""
                    },
                    f.opens.join("; ")
                ),
                fix: (!f.accepted).then(|| format!("`{remove}`, or keep it: `{accept}`")),
                properties: BTreeMap::new(),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::network::audit::ViolatingPod;

    /// A namespace enforcing restricted, with a default-deny for ingress only.
    pub(crate) fn ns(name: &str, managed: bool) -> NamespaceAudit {
        NamespaceAudit {
            name: name.into(),
            managed,
            system: false,
            enforce: Some("restricted".into()),
            audit: None,
            warn: None,
            default_deny_ingress: vec!["deny".into()],
            default_deny_egress: vec![],
            floe_policies: vec![],
            checked_level: "restricted".into(),
            violating_pods: vec![],
        }
    }

    #[test]
    fn a_managed_namespace_gets_a_verdict_for_each_direction_and_its_pods() {
        let f = ns("floe-jobs", true).findings();
        let got: Vec<(&str, Verdict)> = f.iter().map(|f| (f.rule, f.verdict)).collect();
        assert_eq!(
            got,
            [
                (rule::DEFAULT_DENY_INGRESS, Verdict::Pass),
                (rule::DEFAULT_DENY_EGRESS, Verdict::Fail),
                (rule::PSS_LABELS, Verdict::Pass),
                (rule::POD_SECURITY_LEVEL, Verdict::Pass),
            ]
        );
        assert_eq!(f[0].properties["policies"], "deny");
        assert_eq!(f[1].fix.as_deref(), Some("floe-guard bootstrap"));
        assert_eq!(f[1].subject, Subject::namespace("floe-jobs"));
    }

    #[test]
    fn an_unmanaged_system_namespace_yields_only_its_violating_pods() {
        let mut team = ns("team", false);
        team.system = true;
        assert!(team.findings().is_empty());
        team.violating_pods.push(ViolatingPod {
            name: "root".into(),
            violations: vec!["privileged: container c is privileged".into()],
        });
        let f = team.findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].verdict, Verdict::Fail);
        assert_eq!(f[0].subject, Subject::pod("team", "root"));
        assert!(f[0].message.contains("container c is privileged"), "{f:?}");
        assert!(
            f[0].fix
                .as_deref()
                .unwrap()
                .contains("pss check --level restricted")
        );
    }

    #[test]
    fn a_configured_namespace_missing_from_the_cluster_fails() {
        let f = cluster_findings(&Config::default(), &[ns("floe-jobs", true)]);
        let got: Vec<(&str, Verdict)> = f
            .iter()
            .map(|f| (f.subject.name.as_str(), f.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("floe-platform", Verdict::Fail),
                ("floe-jobs", Verdict::Pass)
            ]
        );
        assert_eq!(f[0].properties["level"], "baseline");
    }
}
