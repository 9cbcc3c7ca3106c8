//! What the admission benches share: the payload directory.

use std::path::PathBuf;

/// `../shared/bench/payloads` (API-server-shaped review bodies), or
/// `$FLOE_GUARD_BENCH_PAYLOADS`.
pub fn payloads() -> PathBuf {
    std::env::var_os("FLOE_GUARD_BENCH_PAYLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/payloads")
        })
}
