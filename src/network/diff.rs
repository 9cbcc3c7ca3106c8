//! `network diff`: the generated (expected) policies and namespace labels
//! against the deployed ones. Only what has meaning is compared: policies in
//! their canonical form (server defaults explicit, unordered lists sorted,
//! no `managedFields`, `resourceVersion`…), and on namespaces only the labels
//! floe sets.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Serialize;
use serde_json::{Value, json};
use similar::DiffTag;

use crate::bootstrap::is_floe_managed;
use crate::network::validate::canonical;

/// Annotation `kubectl apply` adds: bookkeeping, not meaning.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How an object drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// Expected, not deployed.
    Missing,
    /// Deployed (and floe-managed), not expected.
    Extra,
    /// Deployed with a different meaning.
    Changed,
}

/// One drifted object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// How it drifted.
    pub kind: DriftKind,
    /// `NetworkPolicy ns/name` or `Namespace name`.
    pub object: String,
    /// Unified diff, `-` deployed, `+` expected.
    pub diff: String,
}

fn yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_else(|_| v.to_string())
}

fn meaning(p: &NetworkPolicy) -> Value {
    let mut p = p.clone();
    if let Some(a) = p.metadata.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
    canonical(&p)
}

fn drift(
    kind: DriftKind,
    object: String,
    deployed: Option<&Value>,
    expected: Option<&Value>,
) -> Drift {
    let text = |v: Option<&Value>| v.map(yaml).unwrap_or_default();
    let (from, to) = match kind {
        DriftKind::Missing => (
            "deployed (absent)".to_string(),
            format!("expected {object}"),
        ),
        DriftKind::Extra => (
            format!("deployed {object}"),
            "expected (absent)".to_string(),
        ),
        DriftKind::Changed => (format!("deployed {object}"), format!("expected {object}")),
    };
    Drift {
        kind,
        diff: unified(&text(deployed), &text(expected), &from, &to),
        object,
    }
}

/// Drift of the floe-managed NetworkPolicies of the `managed` namespaces.
pub fn policies<'a>(
    expected: impl IntoIterator<Item = &'a NetworkPolicy>,
    deployed: &[NetworkPolicy],
    managed: &[String],
) -> Vec<Drift> {
    let key = |p: &NetworkPolicy| {
        format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or_default(),
            p.metadata.name.as_deref().unwrap_or_default()
        )
    };
    let expected: BTreeMap<String, Value> =
        expected.into_iter().map(|p| (key(p), meaning(p))).collect();
    let deployed: BTreeMap<String, Value> = deployed
        .iter()
        .filter(|p| is_floe_managed(&p.metadata))
        .filter(|p| {
            p.metadata
                .namespace
                .as_ref()
                .is_some_and(|ns| managed.contains(ns))
        })
        .map(|p| (key(p), meaning(p)))
        .collect();
    let names: BTreeSet<&String> = expected.keys().chain(deployed.keys()).collect();
    names
        .into_iter()
        .filter_map(|k| {
            let object = format!("NetworkPolicy {k}");
            match (deployed.get(k), expected.get(k)) {
                (None, Some(e)) => Some(drift(DriftKind::Missing, object, None, Some(e))),
                (Some(d), None) => Some(drift(DriftKind::Extra, object, Some(d), None)),
                (Some(d), Some(e)) if d != e => {
                    Some(drift(DriftKind::Changed, object, Some(d), Some(e)))
                }
                _ => None,
            }
        })
        .collect()
}

/// Drift of the labels floe sets on the managed namespaces (other labels
/// are not floe's and are ignored).
pub fn namespaces(expected: &[Namespace], deployed: &[Namespace]) -> Vec<Drift> {
    expected
        .iter()
        .filter_map(|e| {
            let name = e.metadata.name.as_deref()?;
            let want = e.metadata.labels.clone().unwrap_or_default();
            let object = format!("Namespace {name}");
            let want_v = json!({"name": name, "labels": want});
            let Some(d) = deployed
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(name))
            else {
                return Some(drift(DriftKind::Missing, object, None, Some(&want_v)));
            };
            let have = d.metadata.labels.clone().unwrap_or_default();
            let have: BTreeMap<&String, &String> =
                want.keys().filter_map(|k| have.get_key_value(k)).collect();
            let have_v = json!({"name": name, "labels": have});
            (have_v != want_v)
                .then(|| drift(DriftKind::Changed, object, Some(&have_v), Some(&want_v)))
        })
        .collect()
}

/// The line edit script from `a` to `b`: every line of both, tagged `' '`
/// (in both), `'-'` (only in `a`) or `'+'` (only in `b`), in order, removals
/// of a changed run before its additions. Lines are compared without their
/// terminators (`str::lines`). The diff is `similar`'s Myers diff.
pub(crate) fn line_ops<'t>(a: &'t str, b: &'t str) -> Vec<(char, &'t str)> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut ops = Vec::with_capacity(a.len().max(b.len()));
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b) {
        let (tag, old, new) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => ops.extend(a[old].iter().map(|l| (' ', *l))),
            DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                ops.extend(a[old].iter().map(|l| ('-', *l)));
                ops.extend(b[new].iter().map(|l| ('+', *l)));
            }
        }
    }
    ops
}

/// A unified diff (3 lines of context) of two texts, `from` → `to`.
pub fn unified(a: &str, b: &str, from: &str, to: &str) -> String {
    let ops = line_ops(a, b);
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = format!("--- {from}\n+++ {to}\n");
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = (changed[k] + CONTEXT + 1).min(ops.len());
        while k + 1 < changed.len() && changed[k + 1] <= end + CONTEXT {
            k += 1;
            end = (changed[k] + CONTEXT + 1).min(ops.len());
        }
        let line_a = ops[..start].iter().filter(|o| o.0 != '+').count();
        let line_b = ops[..start].iter().filter(|o| o.0 != '-').count();
        let hunk = &ops[start..end];
        let len_a = hunk.iter().filter(|o| o.0 != '+').count();
        let len_b = hunk.iter().filter(|o| o.0 != '-').count();
        let pos = |line: usize, len: usize| if len == 0 { line } else { line + 1 };
        out.push_str(&format!(
            "@@ -{},{len_a} +{},{len_b} @@\n",
            pos(line_a, len_a),
            pos(line_b, len_b)
        ));
        for (op, line) in hunk {
            out.push_str(&format!("{op}{line}\n"));
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn generated() -> Vec<NetworkPolicy> {
        crate::network::generate(&Config::default())
            .unwrap()
            .policies()
            .cloned()
            .collect()
    }

    fn managed() -> Vec<String> {
        Config::default()
            .managed_namespaces()
            .into_iter()
            .map(|m| m.name)
            .collect()
    }

    /// What the API server returns for an applied policy: defaults filled,
    /// bookkeeping added, lists in another order.
    fn as_served(p: &NetworkPolicy) -> NetworkPolicy {
        let mut v = serde_json::to_value(p).unwrap();
        let meta = v["metadata"].as_object_mut().unwrap();
        meta.insert("resourceVersion".into(), json!("42"));
        meta.insert("uid".into(), json!("0000"));
        meta.insert("generation".into(), json!(1));
        meta.insert(
            "managedFields".into(),
            json!([{"manager": "floe-guard", "operation": "Apply"}]),
        );
        let mut p: NetworkPolicy = serde_json::from_value(v).unwrap();
        let spec = p.spec.as_mut().unwrap();
        for r in spec.egress.iter_mut().flatten() {
            for port in r.ports.iter_mut().flatten() {
                port.protocol.get_or_insert_with(|| "TCP".into());
            }
            r.to.iter_mut().for_each(|t| t.reverse());
        }
        spec.egress.iter_mut().for_each(|e| e.reverse());
        p
    }

    #[test]
    fn a_clean_cluster_has_no_drift_despite_defaults_and_ordering() {
        let exp = generated();
        let deployed: Vec<NetworkPolicy> = exp.iter().map(as_served).collect();
        assert_eq!(policies(&exp, &deployed, &managed()), vec![]);
    }

    #[test]
    fn every_kind_of_policy_drift_is_found() {
        let exp = generated();
        let mut deployed: Vec<NetworkPolicy> = exp.iter().map(as_served).collect();
        let missing = deployed.remove(0);
        let egress = deployed
            .iter_mut()
            .find(|p| {
                p.spec
                    .as_ref()
                    .unwrap()
                    .egress
                    .as_ref()
                    .is_some_and(|e| e.len() > 1)
            })
            .unwrap();
        egress.spec.as_mut().unwrap().egress.as_mut().unwrap().pop();
        let egress_name = egress.metadata.name.clone().unwrap();
        let mut extra = missing.clone();
        extra.metadata.name = Some("floe-stale".into());
        deployed.push(extra);
        let mut hand_made = missing.clone();
        hand_made.metadata.name = Some("team-policy".into());
        hand_made.metadata.labels = None;
        deployed.push(hand_made);
        let drift = policies(&exp, &deployed, &managed());
        let kinds: Vec<(DriftKind, &str)> =
            drift.iter().map(|d| (d.kind, d.object.as_str())).collect();
        let ns = missing.metadata.namespace.as_deref().unwrap();
        assert!(kinds.contains(&(
            DriftKind::Missing,
            &*format!(
                "NetworkPolicy {ns}/{}",
                missing.metadata.name.as_deref().unwrap()
            )
        )));
        assert!(kinds.contains(&(DriftKind::Extra, &*format!("NetworkPolicy {ns}/floe-stale"))));
        let changed = drift.iter().find(|d| d.kind == DriftKind::Changed).unwrap();
        assert!(changed.object.ends_with(&egress_name));
        assert!(
            changed
                .diff
                .lines()
                .any(|l| l.starts_with('+') && !l.starts_with("+++"))
        );
        assert!(
            !changed
                .diff
                .lines()
                .any(|l| l.starts_with('-') && !l.starts_with("---"))
        );
        assert_eq!(drift.len(), 3, "{drift:#?}");
    }

    #[test]
    fn namespace_label_drift_ignores_foreign_labels() {
        let exp = crate::bootstrap::desired_namespaces(&Config::default());
        let mut dep = exp.clone();
        for n in &mut dep {
            n.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("team".into(), "x".into());
        }
        assert_eq!(namespaces(&exp, &dep), vec![]);
        dep[1].metadata.labels.as_mut().unwrap().insert(
            "pod-security.kubernetes.io/enforce".into(),
            "baseline".into(),
        );
        dep.remove(0);
        let d = namespaces(&exp, &dep);
        assert_eq!(d[0].kind, DriftKind::Missing);
        assert_eq!(d[0].object, "Namespace floe-platform");
        assert_eq!(d[1].kind, DriftKind::Changed);
        assert!(
            d[1].diff
                .contains("-  pod-security.kubernetes.io/enforce: baseline"),
            "{}",
            d[1].diff
        );
        assert!(
            d[1].diff
                .contains("+  pod-security.kubernetes.io/enforce: restricted")
        );
    }

    #[test]
    fn unified_diff_has_hunks_with_context() {
        let a = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let b = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified(a, b, "x", "y"),
            "--- x\n+++ y\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(
            unified("", "a\n", "x", "y"),
            "--- x\n+++ y\n@@ -0,0 +1,1 @@\n+a\n"
        );
    }
}
