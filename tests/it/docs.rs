//! The operator's guide stays true: every ```` ```console ```` block of
//! `docs/*.md` (a `$ floe-guard …` line, its exit code as `? N`, its output)
//! is run against the built binary by `trycmd` and its output compared, so a
//! changed message or flag fails here (`TRYCMD=overwrite cargo test --test it
//! docs` rewrites the outputs). Cluster examples are ```` ```sh ```` blocks,
//! which trycmd does not run. And every relative link between the README,
//! `SECURITY.md`, `docs/` and the chart's README points at a file that exists
//! and, with `#anchor`, at a heading of it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_console_examples_of_the_docs_print_what_they_show() {
    trycmd::TestCases::new()
        .register_bin("floe-guard", Path::new(env!("CARGO_BIN_EXE_floe-guard")))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .case("docs/*.md");
}

/// The markdown files whose links are checked.
fn linked_files() -> Vec<PathBuf> {
    let mut files = vec![
        repo("README.md"),
        repo("SECURITY.md"),
        repo("charts/floe-guard/README.md"),
    ];
    let mut docs: Vec<_> = std::fs::read_dir(repo("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and
/// `_` removed, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The lines of a markdown file outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of a markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// The `](target)` link targets of a markdown file, outside code blocks and
/// code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        for mut rest in line.split('`').step_by(2) {
            while let Some(i) = rest.find("](") {
                rest = &rest[i + 2..];
                if let Some(end) = rest.find(')') {
                    out.push(rest[..end].to_string());
                    rest = &rest[end..];
                }
            }
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_of_the_docs_exists() {
    let mut broken = Vec::new();
    for file in linked_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, frag) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", file.display()));
            } else if !frag.is_empty() {
                let t = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&t).contains(frag) {
                    broken.push(format!("{}: {link}: no such heading", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_github() {
    assert_eq!(
        anchor(" Helm with cert-manager (recommended for production)"),
        "helm-with-cert-manager-recommended-for-production"
    );
    assert_eq!(anchor(" `network audit`"), "network-audit");
    let md = "# A b\n```\n# not a heading\n```\nsee [x](y.md#a-b) `](no)`\n";
    assert_eq!(anchors(md).into_iter().collect::<Vec<_>>(), ["a-b"]);
    assert_eq!(links(md), ["y.md#a-b"]);
}

/// The dotted paths of a YAML mapping's leaves (a non-empty mapping is
/// descended into; lists, scalars and `{}` are leaves).
fn leaf_keys(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_keys(&key, v, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn every_chart_value_is_documented_in_the_charts_readme() {
    let values: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo("charts/floe-guard/values.yaml")).unwrap(),
    )
    .unwrap();
    let readme = std::fs::read_to_string(repo("charts/floe-guard/README.md")).unwrap();
    let documented: BTreeSet<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    let mut keys = Vec::new();
    leaf_keys("", &values, &mut keys);
    assert!(keys.len() > 30, "{keys:?}");
    let missing: Vec<_> = keys
        .iter()
        .filter(|k| !documented.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "values.yaml keys missing from charts/floe-guard/README.md: {missing:?}"
    );
    let stale: Vec<_> = documented
        .iter()
        .filter(|d| !keys.iter().any(|k| k == *d))
        .collect();
    assert!(
        stale.is_empty(),
        "documented keys not in values.yaml: {stale:?}"
    );
}
