//! What `bootstrap` applies and prunes, how it names the result of each
//! apply, the cluster facts it discovers ([`facts`]) and its result table
//! ([`report`]): pure decisions.

pub mod facts;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use crate::config::{Config, FLOE, MANAGED_BY_LABEL, PART_OF_LABEL};
use crate::namespace::PSS_LABEL_PREFIX;
use crate::network::Generated;
use crate::pss::Level;

/// Label selector of every object floe generates.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={FLOE}")
}

/// The labels floe sets on a managed namespace: the three Pod Security
/// Admission modes (enforce at the configured level; audit and warn at
/// `restricted`, so that anything short of it is reported), and the floe
/// ownership labels.
pub fn namespace_labels(level: Level, pss_enabled: bool) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (PART_OF_LABEL.to_string(), FLOE.to_string()),
        (MANAGED_BY_LABEL.to_string(), FLOE.to_string()),
    ]);
    if pss_enabled {
        let report = level.max(Level::Restricted);
        for (mode, level) in [("enforce", level), ("audit", report), ("warn", report)] {
            labels.insert(format!("{PSS_LABEL_PREFIX}{mode}"), level.as_str().into());
        }
    }
    labels
}

/// The managed namespaces as bootstrap applies them (labels only: server-side
/// apply leaves every other field, and other managers' labels, alone).
pub fn desired_namespaces(cfg: &Config) -> Vec<Namespace> {
    let pss = cfg.security.pod_security.enabled;
    cfg.managed_namespaces()
        .into_iter()
        .map(|m| Namespace {
            metadata: ObjectMeta {
                name: Some(m.name),
                labels: Some(namespace_labels(m.level, pss)),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect()
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and the apply changed it.
    Configured,
    /// It existed and the apply changed nothing.
    Unchanged,
    /// A stale floe-managed policy was deleted.
    Pruned,
    /// The API call failed.
    Failed,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Pruned => "pruned",
            Action::Failed => "failed",
        })
    }
}

/// The object without what every write changes by itself
/// (`resourceVersion`, `managedFields`, `generation`).
fn content(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation"] {
            meta.remove(k);
        }
    }
    v
}

/// Names the result of an apply from the object before (`None`: absent) and
/// the object the API server returned: its content decides, not its
/// `resourceVersion` (a dry run returns a changed object with the old one).
pub fn classify(before: Option<&Value>, after: &Value) -> Action {
    match before {
        None => Action::Created,
        Some(b) if content(b) == content(after) => Action::Unchanged,
        Some(_) => Action::Configured,
    }
}

/// The floe-managed policies of the managed namespaces that the config no
/// longer generates, as `(namespace, name)`. Policies outside the managed
/// namespaces, or without the managed-by label, are never stale.
pub fn stale_policies(
    deployed: &[NetworkPolicy],
    generated: &Generated,
    managed: &[String],
) -> Vec<(String, String)> {
    let keep: BTreeSet<(Option<&str>, Option<&str>)> = generated
        .policies()
        .map(|p| (p.metadata.namespace.as_deref(), p.metadata.name.as_deref()))
        .collect();
    let mut out: Vec<(String, String)> = deployed
        .iter()
        .filter(|p| is_floe_managed(&p.metadata))
        .filter_map(|p| Some((p.metadata.namespace.clone()?, p.metadata.name.clone()?)))
        .filter(|(ns, name)| {
            managed.contains(ns) && !keep.contains(&(Some(ns.as_str()), Some(name.as_str())))
        })
        .collect();
    out.sort();
    out
}

/// Whether an object carries `app.kubernetes.io/managed-by: floe`.
pub fn is_floe_managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(FLOE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaces_carry_valid_pss_labels_the_webhook_accepts() {
        let cfg = Config {
            domains: vec!["sales".into()],
            ..Default::default()
        };
        let ns = desired_namespaces(&cfg);
        let names: Vec<_> = ns
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["floe-platform", "floe-jobs", "floe-sales-domain"]);
        for n in &ns {
            let labels = n.metadata.labels.clone().unwrap();
            let name = n.metadata.name.as_deref().unwrap();
            assert!(
                crate::namespace::validate(name, &labels, &cfg).allowed(),
                "{name}"
            );
            assert_eq!(labels[MANAGED_BY_LABEL], "floe");
            assert_eq!(labels[PART_OF_LABEL], "floe");
        }
        let platform = ns[0].metadata.labels.as_ref().unwrap();
        assert_eq!(platform["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(platform["pod-security.kubernetes.io/warn"], "restricted");
    }

    #[test]
    fn classify_compares_content_not_bookkeeping() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"a": 1}});
        assert_eq!(classify(None, &a), Action::Created);
        assert_eq!(classify(Some(&a), &a), Action::Unchanged);
        let b = json!({"metadata": {"name": "x", "resourceVersion": "6"}, "spec": {"a": 2}});
        assert_eq!(classify(Some(&a), &b), Action::Configured);
        // A dry run returns the changed object with the old version.
        let dry = json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"a": 2}});
        assert_eq!(classify(Some(&a), &dry), Action::Configured);
        let bookkeeping = json!({"metadata": {"name": "x", "resourceVersion": "7", "managedFields": [], "generation": 2}, "spec": {"a": 1}});
        assert_eq!(classify(Some(&a), &bookkeeping), Action::Unchanged);
    }

    #[test]
    fn only_stale_managed_policies_in_managed_namespaces_are_pruned() {
        let g = crate::network::generate(&Config::default()).unwrap();
        let policy = |ns: &str, name: &str, managed: bool| {
            let mut p = NetworkPolicy::default();
            p.metadata.namespace = Some(ns.into());
            p.metadata.name = Some(name.into());
            if managed {
                p.metadata.labels = Some(BTreeMap::from([(MANAGED_BY_LABEL.into(), FLOE.into())]));
            }
            p
        };
        let kept = g.policies().next().unwrap().clone();
        let deployed = vec![
            kept,
            policy("floe-jobs", "floe-old", true),
            policy("floe-jobs", "hand-made", false),
            policy("team-a", "floe-old", true),
        ];
        let managed: Vec<String> = Config::default()
            .managed_namespaces()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(
            stale_policies(&deployed, &g, &managed),
            vec![("floe-jobs".to_string(), "floe-old".to_string())]
        );
    }
}
