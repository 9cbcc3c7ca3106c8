//! The upstream Pod Security Admission fixtures in `../shared/conformance/pss`
//! (or `FLOE_GUARD_PSS_CONFORMANCE`), found in one place.

use std::path::PathBuf;

/// The corpus directory, or `None` (with a note on stderr) when it is absent
/// outside CI. Under CI (the `CI` environment variable set) a missing corpus
/// fails the test instead of silently skipping it.
pub fn pss_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOE_GUARD_PSS_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/pss")
        });
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
