//! The test data from `../shared` (beside the repository): the upstream Pod
//! Security Admission fixtures and the benchmark AdmissionReview bodies.

use std::path::PathBuf;

/// `shared/` beside the repository root (this crate is `crates/fastjson`).
fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(path)
}

/// The PSS fixtures (`../shared/conformance/pss`, or
/// `FLOE_GUARD_PSS_CONFORMANCE`), or `None` (with a note on stderr) when
/// absent outside CI. Under CI (the `CI` environment variable set) a missing
/// corpus fails the test instead of silently skipping it.
pub fn pss_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOE_GUARD_PSS_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared("conformance/pss"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the PSS conformance corpus is missing at {} (CI is set, so this fails rather than skips)",
        dir.display()
    );
    eprintln!(
        "SKIPPED: PSS conformance corpus not found at {}",
        dir.display()
    );
    None
}

/// The benchmark payloads (`../shared/bench/payloads`, or
/// `FLOE_GUARD_BENCH_PAYLOADS`), or `None` (with a note on stderr).
pub fn payloads_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOE_GUARD_BENCH_PAYLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared("bench/payloads"));
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!("SKIPPED: payloads not found at {}", dir.display());
    None
}
