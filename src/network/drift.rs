//! The report of `network diff`: what drifted, as people read it.

use std::fmt::Write as _;

use super::diff::{Drift, DriftKind};

/// The drift as text: each object with its diff, then a count and the fix;
/// or a line saying that `namespaces` and `policies` match the config.
pub fn text(drift: &[Drift], namespaces: usize, policies: usize) -> String {
    if drift.is_empty() {
        return format!(
            "no drift: {namespaces} namespaces and {policies} NetworkPolicies match the config\n"
        );
    }
    let mut out = String::new();
    for d in drift {
        let what = match d.kind {
            DriftKind::Missing => "missing",
            DriftKind::Extra => "extra",
            DriftKind::Changed => "changed",
        };
        let _ = writeln!(out, "{what}: {}\n{}", d.object, d.diff);
    }
    let _ = writeln!(
        out,
        "{} drifted objects (`floe-guard bootstrap --prune` restores the config)",
        drift.len()
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
        let t = text(&[d], 3, 7);
        assert!(t.starts_with("missing: NetworkPolicy floe-jobs/floe-default-deny\n--- a\n"));
        assert!(
            t.ends_with("1 drifted objects (`floe-guard bootstrap --prune` restores the config)\n")
        );
    }
}
