//! The result of `bootstrap`: one row per object (what happened to it, or
//! why it failed) and the table people read.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::Action;
use crate::kube::FIELD_MANAGER;

/// `reportingController` of the Events bootstrap records.
pub const REPORTING_CONTROLLER: &str = "floe.dev/floe-guard";

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `Namespace` or `NetworkPolicy`.
    pub kind: &'static str,
    /// Its namespace (`None` for a Namespace).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// What happened.
    pub result: Action,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The rows as an aligned table, with a count per result and the errors.
pub fn table(rows: &[Row], dry: bool) -> String {
    let w_ns = rows
        .iter()
        .filter_map(|r| r.namespace.as_ref().map(String::len))
        .max()
        .unwrap_or(0)
        .max("NAMESPACE".len());
    let w_name = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = format!(
        "{:<13}  {:<w_ns$}  {:<w_name$}  RESULT\n",
        "KIND", "NAMESPACE", "NAME"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<13}  {:<w_ns$}  {:<w_name$}  {}",
            r.kind,
            r.namespace.as_deref().unwrap_or("-"),
            r.name,
            r.result
        );
    }
    let mut counts: Vec<(Action, usize)> = Vec::new();
    for r in rows {
        match counts.iter_mut().find(|(a, _)| *a == r.result) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.result, 1)),
        }
    }
    counts.sort();
    let summary: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    let _ = writeln!(
        out,
        "\n{} objects: {}{}",
        rows.len(),
        summary.join(", "),
        if dry {
            " (server dry run: nothing was changed)"
        } else {
            ""
        }
    );
    for r in rows.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(out, "error: {}", r.error.as_deref().unwrap_or_default());
    }
    out
}

/// The verb of a change worth recording (`created`, `configured`,
/// `pruned`); `None` for an unchanged or failed object.
pub fn changed(action: Action) -> Option<&'static str> {
    match action {
        Action::Created => Some("created"),
        Action::Configured => Some("configured"),
        Action::Pruned => Some("pruned"),
        Action::Unchanged | Action::Failed => None,
    }
}

/// The Kubernetes Event (`events.k8s.io/v1`) recording a change, in the
/// object's namespace (a Namespace's own), so that `kubectl get events -n
/// NS` shows who changed what and when.
pub fn event(r: &Row, now: Timestamp) -> Event {
    let namespace = r.namespace.clone().unwrap_or_else(|| r.name.clone());
    let api_version = if r.kind == "Namespace" {
        "v1"
    } else {
        "networking.k8s.io/v1"
    };
    let verb = changed(r.result).unwrap_or("unchanged");
    let object = match &r.namespace {
        Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
        None => format!("{} {}", r.kind, r.name),
    };
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", r.name)),
            namespace: Some(namespace),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(
            if r.result == Action::Pruned {
                "Delete"
            } else {
                "Apply"
            }
            .into(),
        ),
        reason: Some(
            match r.result {
                Action::Created => "Created",
                Action::Configured => "Configured",
                _ => "Pruned",
            }
            .into(),
        ),
        note: Some(format!(
            "floe-guard bootstrap {verb} {object} (field manager {FIELD_MANAGER})"
        )),
        regarding: Some(ObjectReference {
            api_version: Some(api_version.into()),
            kind: Some(r.kind.into()),
            name: Some(r.name.clone()),
            namespace: r.namespace.clone(),
            ..Default::default()
        }),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some("floe-guard-bootstrap".into()),
        type_: Some("Normal".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: Option<&str>, name: &str, result: Action, error: Option<&str>) -> Row {
        Row {
            kind: if ns.is_some() {
                "NetworkPolicy"
            } else {
                "Namespace"
            },
            namespace: ns.map(Into::into),
            name: name.into(),
            result,
            error: error.map(Into::into),
        }
    }

    #[test]
    fn the_table_aligns_columns_counts_results_and_lists_errors() {
        let rows = [
            row(None, "floe-jobs", Action::Created, None),
            row(
                Some("floe-jobs"),
                "floe-default-deny",
                Action::Unchanged,
                None,
            ),
            row(
                Some("floe-jobs"),
                "floe-allow-egress",
                Action::Failed,
                Some("boom"),
            ),
        ];
        let t = table(&rows, true);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "KIND           NAMESPACE  NAME               RESULT"
        );
        assert_eq!(
            lines[1],
            "Namespace      -          floe-jobs          created"
        );
        assert!(t.contains(
            "3 objects: 1 created, 1 unchanged, 1 failed (server dry run: nothing was changed)"
        ));
        assert!(t.ends_with("error: boom\n"));
    }

    #[test]
    fn an_event_names_the_object_the_change_and_the_field_manager() {
        let r = row(
            Some("floe-jobs"),
            "floe-default-deny",
            Action::Configured,
            None,
        );
        let e = event(&r, Timestamp::UNIX_EPOCH);
        assert_eq!(e.metadata.namespace.as_deref(), Some("floe-jobs"));
        assert_eq!(e.reason.as_deref(), Some("Configured"));
        assert_eq!(e.action.as_deref(), Some("Apply"));
        assert_eq!(
            e.note.as_deref(),
            Some(
                "floe-guard bootstrap configured NetworkPolicy floe-jobs/floe-default-deny (field manager floe-guard)"
            )
        );
        let regarding = e.regarding.unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("NetworkPolicy"));
        assert_eq!(
            regarding.api_version.as_deref(),
            Some("networking.k8s.io/v1")
        );
        let ns = event(
            &row(None, "floe-jobs", Action::Created, None),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(ns.metadata.namespace.as_deref(), Some("floe-jobs"));
        assert_eq!(ns.regarding.unwrap().namespace, None);
        assert_eq!(changed(Action::Unchanged), None);
        assert_eq!(changed(Action::Pruned), Some("pruned"));
    }
}
