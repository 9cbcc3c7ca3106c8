//! Memory bounded by construction: the body budget and the connection cap
//! are derived from the container's memory limit, so that the server's peak
//! stays under it whatever its clients send.
//!
//! Of the limit, a quarter goes to request bodies held at once, three
//! eighths to open connections at [`CONNECTION_BYTES`] each (TLS buffers,
//! the HTTP/1.1 read buffer or the HTTP/2 flow-control windows, the task),
//! and the rest is left to the process itself, the reviews being computed,
//! and the allocator's slack. Measured in `docs/hostile-input.md`.

use std::path::Path;

/// The memory limit assumed when neither `--memory-limit` nor a cgroup
/// gives one: the shipped Deployment's limit.
pub const DEFAULT_MEMORY_LIMIT: u64 = 128 * 1024 * 1024;

/// What one open connection is allowed in the derivation, bytes: rustls'
/// record buffers (up to 2 × 16 KiB when busy), hyper's HTTP/1.1 read buffer
/// (capped at 16 KiB) or the HTTP/2 receive window (64 KiB per connection,
/// filled only while a handler is not reading), and the connection's task.
/// An idle TLS connection costs much less (see `docs/hostile-input.md`).
pub const CONNECTION_BYTES: u64 = 48 * 1024;

/// The limits derived from a memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of request bodies held at once.
    pub body_budget: usize,
    /// Open connections; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Limits {
    /// The limits for `memory_limit` bytes; the budget always holds at least
    /// one body of `max_body_bytes`.
    pub fn for_memory(memory_limit: u64, max_body_bytes: usize) -> Self {
        let budget = (memory_limit / 4).max(max_body_bytes as u64);
        let connections = (memory_limit * 3 / 8 / CONNECTION_BYTES).clamp(64, 65_536);
        Self {
            body_budget: usize::try_from(budget).unwrap_or(usize::MAX),
            max_connections: connections as usize,
        }
    }
}

/// Parses a byte quantity: a number of bytes, optionally with a Kubernetes
/// binary (`Ki`, `Mi`, `Gi`) or decimal (`k`, `M`, `G`) suffix.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte quantity (e.g. 134217728, 128Mi)"))?;
    let unit: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit {suffix:?} in {text:?} (use Ki, Mi, Gi, k, M or G)"
            ));
        }
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// The memory limit of this process's cgroup (v2 `memory.max`, else v1
/// `memory.limit_in_bytes`), if it has one.
pub fn cgroup_memory_limit() -> Option<u64> {
    read_limit(Path::new("/sys/fs/cgroup/memory.max"))
        .or_else(|| read_limit(Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes")))
}

/// A cgroup limit file's value; `max` and the v1 "unlimited" figure
/// (about 2^63) are no limit.
fn read_limit(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse::<u64>().ok().filter(|n| *n < 1 << 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_limit_gives_a_32_mib_budget_and_1024_connections() {
        let l = Limits::for_memory(128 << 20, 3 << 20);
        assert_eq!(l.body_budget, 32 << 20);
        assert_eq!(l.max_connections, 1024);
    }

    #[test]
    fn a_small_limit_still_admits_one_maximum_body_and_some_connections() {
        let l = Limits::for_memory(8 << 20, 3 << 20);
        assert_eq!(l.body_budget, 3 << 20);
        assert_eq!(l.max_connections, 64);
    }

    #[test]
    fn quantities_parse_as_kubernetes_writes_them() {
        assert_eq!(parse_bytes("134217728"), Ok(134_217_728));
        assert_eq!(parse_bytes("128Mi"), Ok(128 << 20));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(parse_bytes("64k"), Ok(64_000));
        assert!(parse_bytes("12MB").unwrap_err().contains("unknown unit"));
        assert!(
            parse_bytes("Mi")
                .unwrap_err()
                .contains("not a byte quantity")
        );
        assert!(
            parse_bytes("99999999999999Gi")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn unlimited_cgroups_are_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.max");
        std::fs::write(&f, "max\n").unwrap();
        assert_eq!(read_limit(&f), None);
        std::fs::write(&f, "9223372036854771712\n").unwrap();
        assert_eq!(read_limit(&f), None);
        std::fs::write(&f, "134217728\n").unwrap();
        assert_eq!(read_limit(&f), Some(128 << 20));
    }
}
