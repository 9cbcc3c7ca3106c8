//! The result of `bootstrap`: one row per object (what happened to it, or
//! why it failed) and the table people read.

use std::fmt::Write as _;

use serde::Serialize;

use super::Action;

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
}
