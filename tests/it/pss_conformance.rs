//! The PSS evaluator against the upstream conformance corpus
//! (`k8s.io/pod-security-admission` test data, policy v1.37).
//!
//! Every fixture is run through the real binary (`floe-guard pss check`, exit 0
//! for pass fixtures, 3 for fail fixtures) and through the library, which must
//! agree and, for a fail fixture, report the check the file name names.
//!
//! The corpus lives outside the repository, in `../shared/conformance/pss`, or
//! wherever `FLOE_GUARD_PSS_CONFORMANCE` points; the test says it is skipped
//! when the folder is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use floe_guard::pss::{self, Level};

/// The policy version the corpus is read for.
const VERSION: &str = "v1.37";

/// Fixtures of the upstream v1.37 corpus: (level, pass|fail, count).
const EXPECTED: [(&str, &str, usize); 4] = [
    ("baseline", "pass", 15),
    ("baseline", "fail", 34),
    ("restricted", "pass", 23),
    ("restricted", "fail", 76),
];

/// Every upstream check ID of the newest policy version.
const CHECK_IDS: [&str; 19] = [
    "allowPrivilegeEscalation",
    "appArmorProfile",
    "capabilities_baseline",
    "capabilities_restricted",
    "hostNamespaces",
    "hostPathVolumes",
    "hostPorts",
    "hostProbesAndHostLifecycle",
    "privileged",
    "procMount",
    "procMount_restricted",
    "restrictedVolumes",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "seccompProfile_baseline",
    "seccompProfile_restricted",
    "sysctls",
    "windowsHostProcess",
];

/// The check a fixture exercises, from its file name (`runasnonroot2.yaml` →
/// `runAsNonRoot`), as evaluated at `level`: under restricted, a baseline check
/// that a restricted check overrides upstream is reported by the latter.
fn expected_check(file_name: &str, level: Level) -> &'static str {
    let stem = file_name.trim_end_matches(".yaml");
    let prefix = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let id = CHECK_IDS
        .iter()
        .copied()
        .find(|id| id.eq_ignore_ascii_case(prefix))
        .unwrap_or_else(|| panic!("{file_name}: no upstream check is named {prefix:?}"));
    match (level, id) {
        (Level::Restricted, "capabilities_baseline") => "capabilities_restricted",
        (Level::Restricted, "hostPathVolumes") => "restrictedVolumes",
        (Level::Restricted, "procMount") => "procMount_restricted",
        (Level::Restricted, "seccompProfile_baseline") => "seccompProfile_restricted",
        _ => id,
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn upstream_corpus_agrees() {
    let Some(root) = crate::support::corpus::pss_dir() else {
        return;
    };
    let binary = env!("CARGO_BIN_EXE_floe-guard");
    let mut failures = Vec::new();
    let mut total = 0;
    for (level_name, outcome, expected_count) in EXPECTED {
        let level: Level = level_name.parse().unwrap();
        let dir = root.join(level_name).join(VERSION).join(outcome);
        let files = yaml_files(&dir);
        assert!(
            files.len() >= expected_count,
            "{}: found {} fixtures, expected at least {expected_count}",
            dir.display(),
            files.len()
        );
        total += files.len();
        let must_pass = outcome == "pass";
        for file in files {
            let name = format!(
                "{level_name}/{outcome}/{}",
                file.file_name().unwrap().to_string_lossy()
            );

            let run = Command::new(binary)
                .args(["pss", "check", "--level", level_name, "-f"])
                .arg(&file)
                .output()
                .expect("run floe-guard");
            let want = if must_pass { 0 } else { 3 };
            if run.status.code() != Some(want) {
                failures.push(format!(
                    "{name}: binary exited {:?}, expected {want}\n{}{}",
                    run.status.code(),
                    String::from_utf8_lossy(&run.stdout),
                    String::from_utf8_lossy(&run.stderr)
                ));
            }

            let text = std::fs::read_to_string(&file).unwrap();
            let object = floe_guard::yaml::parse_one(&text, &name).unwrap();
            let (meta, spec, unknown) = floe_guard::yaml::pod_template(&object, &name).unwrap();
            let violations = pss::check_with(&meta, &spec, &unknown, level);
            if must_pass {
                if !violations.is_empty() {
                    failures.push(format!("{name}: library reports {violations:?}"));
                }
            } else {
                let file_name = file.file_name().unwrap().to_string_lossy();
                let check = expected_check(&file_name, level);
                if !violations.iter().any(|v| v.check == check) {
                    failures.push(format!(
                        "{name}: library does not report {check}: {violations:?}"
                    ));
                }
            }
        }
    }
    let expected_total: usize = EXPECTED.iter().map(|e| e.2).sum();
    assert!(
        total >= expected_total,
        "found {total} fixtures, expected at least {expected_total}"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} fixtures disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{total} PSS conformance fixtures agree");
}
