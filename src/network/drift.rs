//! The report of `network diff`: what drifted, the fix that fits each
//! object (`bootstrap` for what is missing or changed, `--force-conflicts`
//! when another field manager owns fields floe sets, `--prune` for stale
//! floe policies), as people read it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use super::diff::{Drift, DriftKind};
use crate::kube::FIELD_MANAGER;

/// A drifted object and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remedied {
    /// The drift.
    #[serde(flatten)]
    pub drift: Drift,
    /// The fix.
    pub remedy: String,
}

/// The field managers other than floe-guard that own, in `meta`'s
/// `managedFields`, one of `fields` (`f:`-paths such as
/// `["f:metadata", "f:labels", "f:app.kubernetes.io/managed-by"]` or
/// `["f:spec"]`): a server-side apply without force would conflict.
pub fn other_owners(meta: &ObjectMeta, fields: &[Vec<String>]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for m in meta.managed_fields.iter().flatten() {
        let Some(manager) = m.manager.as_deref().filter(|m| *m != FIELD_MANAGER) else {
            continue;
        };
        let Some(owned) = m.fields_v1.as_ref().map(|f| &f.0) else {
            continue;
        };
        let owns = fields.iter().any(|path| {
            path.iter()
                .try_fold(owned, |at: &Value, key| at.get(key))
                .is_some()
        });
        if owns {
            out.insert(manager.to_string());
        }
    }
    out.into_iter().collect()
}

/// The fix for a drift; `owners` are the other managers of its fields.
pub fn remedy(d: &Drift, owners: &[String]) -> String {
    match d.kind {
        DriftKind::Missing => "floe-guard bootstrap".into(),
        DriftKind::Extra => "floe-guard bootstrap --prune".into(),
        DriftKind::Changed if owners.is_empty() => "floe-guard bootstrap".into(),
        DriftKind::Changed => format!(
            "floe-guard bootstrap --force-conflicts (the fields are owned by {})",
            owners.join(", ")
        ),
    }
}

/// The drift as text: each object with its diff and fix, then a count and
/// the commands; or a line saying that `namespaces` and `policies` match.
pub fn text(drift: &[Remedied], namespaces: usize, policies: usize) -> String {
    if drift.is_empty() {
        return format!(
            "no drift: {namespaces} namespaces and {policies} NetworkPolicies match the config\n"
        );
    }
    let mut out = String::new();
    let mut fixes = BTreeSet::new();
    for Remedied { drift: d, remedy } in drift {
        let what = match d.kind {
            DriftKind::Missing => "missing",
            DriftKind::Extra => "extra",
            DriftKind::Changed => "changed",
        };
        let _ = writeln!(out, "{what}: {}\n{}fix: {remedy}\n", d.object, d.diff);
        fixes.insert(remedy.split(" (").next().unwrap_or(remedy).to_string());
    }
    let fixes: Vec<String> = fixes.into_iter().map(|f| format!("`{f}`")).collect();
    let _ = writeln!(
        out,
        "{} drifted objects (fix with {})",
        drift.len(),
        fixes.join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_drift_says_what_matches_and_drift_lists_each_object() {
        assert_eq!(
            text(&[], 3, 7),
            "no drift: 3 namespaces and 7 NetworkPolicies match the config\n"
        );
        let d = Drift {
            kind: DriftKind::Missing,
            object: "NetworkPolicy floe-jobs/floe-default-deny".into(),
            diff: "--- a\n+++ b\n".into(),
        };
        let remedy = remedy(&d, &[]);
        let t = text(&[Remedied { drift: d, remedy }], 3, 7);
        assert!(t.starts_with("missing: NetworkPolicy floe-jobs/floe-default-deny\n--- a\n"));
        assert!(t.contains("fix: floe-guard bootstrap\n"), "{t}");
        assert!(
            t.ends_with("1 drifted objects (fix with `floe-guard bootstrap`)\n"),
            "{t}"
        );
    }

    #[test]
    fn a_field_owned_by_another_manager_calls_for_force_conflicts() {
        let meta: ObjectMeta = serde_json::from_value(serde_json::json!({"managedFields": [
            {"manager": "floe-guard", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            {"manager": "kubectl", "operation": "Apply", "fieldsV1":
                {"f:metadata": {"f:labels": {"f:pod-security.kubernetes.io/enforce": {}}}}}]}))
        .unwrap();
        let label = |k: &str| vec!["f:metadata".into(), "f:labels".into(), format!("f:{k}")];
        assert_eq!(
            other_owners(&meta, &[label("pod-security.kubernetes.io/enforce")]),
            ["kubectl"]
        );
        assert!(other_owners(&meta, &[label("team")]).is_empty());
        assert!(other_owners(&meta, &[vec!["f:spec".into()]]).is_empty());
        let d = Drift {
            kind: DriftKind::Changed,
            object: "Namespace floe-jobs".into(),
            diff: String::new(),
        };
        assert_eq!(
            remedy(&d, &["kubectl".into()]),
            "floe-guard bootstrap --force-conflicts (the fields are owned by kubectl)"
        );
        let extra = Drift {
            kind: DriftKind::Extra,
            ..d
        };
        assert_eq!(remedy(&extra, &[]), "floe-guard bootstrap --prune");
    }
}
