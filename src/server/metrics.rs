//! Prometheus metrics: lock-free counters, rendered as text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::admission::Endpoint;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 11] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0,
];
const WEBHOOKS: [&str; 2] = ["mutate", "validate"];
const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "unknown"];
const RESULTS: [&str; 3] = ["allowed", "denied", "rejected"];
/// HTTP status codes counted for rejected requests (anything else is `other`).
const REJECT_CODES: [&str; 6] = ["400", "408", "413", "415", "500", "other"];

/// How one admission request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, allowed.
    Allowed,
    /// Answered, denied.
    Denied,
    /// Not answered with a review: an HTTP error status.
    Rejected(u16),
}

/// The server's metrics. Every field is an atomic: recording never blocks.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[[AtomicU64; RESULTS.len()]; OPERATIONS.len()]; WEBHOOKS.len()],
    rejections: [[AtomicU64; REJECT_CODES.len()]; WEBHOOKS.len()],
    latency_buckets: [[AtomicU64; BUCKETS.len()]; WEBHOOKS.len()],
    latency_count: [AtomicU64; WEBHOOKS.len()],
    latency_sum_ns: [AtomicU64; WEBHOOKS.len()],
    patch_operations: AtomicU64,
    patch_bytes: AtomicU64,
    cert_not_after: AtomicI64,
    cert_reloads: AtomicU64,
    cert_reload_failures: AtomicU64,
    cert_reload_failing: AtomicU64,
    connections: AtomicI64,
    tls_handshake_failures: AtomicU64,
    ready: AtomicU64,
    /// Audit mode: reviews that would have been denied, by rule. Locked only
    /// for such reviews, never on the enforcing path.
    would_deny: Mutex<BTreeMap<String, u64>>,
}

fn webhook(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Mutate | Endpoint::MutateAudit => 0,
        Endpoint::Validate => 1,
    }
}

impl Metrics {
    /// Records one admission request: its operation (as in the review, or
    /// empty when unknown), how it ended, its duration and its patch.
    pub fn record(
        &self,
        endpoint: Endpoint,
        operation: &str,
        outcome: Outcome,
        seconds: f64,
        patch: (usize, usize),
    ) {
        let w = webhook(endpoint);
        let op = OPERATIONS[..4]
            .iter()
            .position(|o| *o == operation)
            .unwrap_or(4);
        let result = match outcome {
            Outcome::Allowed => 0,
            Outcome::Denied => 1,
            Outcome::Rejected(code) => {
                let c = REJECT_CODES
                    .iter()
                    .position(|c| c.parse() == Ok(code))
                    .unwrap_or(REJECT_CODES.len() - 1);
                self.rejections[w][c].fetch_add(1, Relaxed);
                2
            }
        };
        self.requests[w][op][result].fetch_add(1, Relaxed);
        if let Some(b) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.latency_buckets[w][b].fetch_add(1, Relaxed);
        }
        self.latency_count[w].fetch_add(1, Relaxed);
        self.latency_sum_ns[w].fetch_add((seconds * 1e9) as u64, Relaxed);
        self.patch_operations.fetch_add(patch.0 as u64, Relaxed);
        self.patch_bytes.fetch_add(patch.1 as u64, Relaxed);
    }

    /// Counts, in audit mode, each rule that would have denied a review.
    pub fn would_deny(&self, rules: &[String]) {
        if rules.is_empty() {
            return;
        }
        let mut counts = self.would_deny.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules {
            *counts.entry(rule.clone()).or_default() += 1;
        }
    }

    fn render_would_deny(&self, w: &mut String) {
        let name = "floe_guard_audit_would_deny_total";
        header(
            w,
            name,
            "counter",
            "Audit mode: findings that enforcement would have denied, by rule (insecure field or PSS check).",
        );
        let counts = self.would_deny.lock().unwrap_or_else(|e| e.into_inner());
        for (rule, n) in counts.iter() {
            let _ = writeln!(w, "{name}{{rule=\"{rule}\"}} {n}");
        }
    }

    /// Sets the serving certificate's expiry (`notAfter`, Unix seconds).
    pub fn set_cert_not_after(&self, unix_seconds: i64) {
        self.cert_not_after.store(unix_seconds, Relaxed);
    }

    /// Records a certificate reload attempt.
    pub fn cert_reload(&self, ok: bool) {
        if ok {
            self.cert_reloads.fetch_add(1, Relaxed);
        } else {
            self.cert_reload_failures.fetch_add(1, Relaxed);
        }
        self.cert_reload_failing.store(u64::from(!ok), Relaxed);
    }

    /// Counts a connection opened (`+1`) or closed (`-1`).
    pub fn connections(&self, delta: i64) {
        self.connections.fetch_add(delta, Relaxed);
    }

    /// Counts a failed or timed-out TLS handshake.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    /// Sets the readiness gauge.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(u64::from(ready), Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(8192);
        let w = &mut s;
        header(
            w,
            "floe_guard_admission_requests_total",
            "counter",
            "Admission requests by webhook, operation and result (rejected: answered with an HTTP error).",
        );
        for (wi, wh) in WEBHOOKS.iter().enumerate() {
            for (oi, op) in OPERATIONS.iter().enumerate() {
                for (ri, res) in RESULTS.iter().enumerate() {
                    let v = self.requests[wi][oi][ri].load(Relaxed);
                    let _ = writeln!(
                        w,
                        "floe_guard_admission_requests_total{{webhook=\"{wh}\",operation=\"{op}\",result=\"{res}\"}} {v}"
                    );
                }
            }
        }
        header(
            w,
            "floe_guard_admission_rejections_total",
            "counter",
            "Admission requests answered with an HTTP error, by webhook and status code.",
        );
        for (wi, wh) in WEBHOOKS.iter().enumerate() {
            for (ci, code) in REJECT_CODES.iter().enumerate() {
                let v = self.rejections[wi][ci].load(Relaxed);
                let _ = writeln!(
                    w,
                    "floe_guard_admission_rejections_total{{webhook=\"{wh}\",code=\"{code}\"}} {v}"
                );
            }
        }
        header(
            w,
            "floe_guard_admission_duration_seconds",
            "histogram",
            "Time from request to response, body read included.",
        );
        for (wi, wh) in WEBHOOKS.iter().enumerate() {
            let mut cumulative = 0;
            for (bi, le) in BUCKETS.iter().enumerate() {
                cumulative += self.latency_buckets[wi][bi].load(Relaxed);
                let _ = writeln!(
                    w,
                    "floe_guard_admission_duration_seconds_bucket{{webhook=\"{wh}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = self.latency_count[wi].load(Relaxed);
            let sum = self.latency_sum_ns[wi].load(Relaxed) as f64 / 1e9;
            let _ = writeln!(
                w,
                "floe_guard_admission_duration_seconds_bucket{{webhook=\"{wh}\",le=\"+Inf\"}} {count}\n\
                 floe_guard_admission_duration_seconds_sum{{webhook=\"{wh}\"}} {sum}\n\
                 floe_guard_admission_duration_seconds_count{{webhook=\"{wh}\"}} {count}"
            );
        }
        let gauges: [(&str, &str, &str, String); 9] = [
            (
                "floe_guard_patch_operations_total",
                "counter",
                "JSONPatch operations returned by the mutating webhook.",
                self.patch_operations.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_patch_bytes_total",
                "counter",
                "JSONPatch bytes (before base64) returned by the mutating webhook.",
                self.patch_bytes.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_certificate_expiry_timestamp_seconds",
                "gauge",
                "notAfter of the serving certificate, Unix seconds.",
                self.cert_not_after.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_certificate_reloads_total",
                "counter",
                "Serving certificate changes loaded from disk.",
                self.cert_reloads.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_certificate_reload_failures_total",
                "counter",
                "Changed certificate files that could not be loaded (the previous certificate stays).",
                self.cert_reload_failures.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_certificate_reload_failing",
                "gauge",
                "1 while the certificate files on disk cannot be loaded.",
                self.cert_reload_failing.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_connections",
                "gauge",
                "Open client connections.",
                self.connections.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_tls_handshake_failures_total",
                "counter",
                "TLS handshakes that failed or timed out.",
                self.tls_handshake_failures.load(Relaxed).to_string(),
            ),
            (
                "floe_guard_ready",
                "gauge",
                "1 when ready to serve admission requests.",
                self.ready.load(Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            header(w, name, kind, help);
            let _ = writeln!(w, "{name} {value}");
        }
        header(w, "floe_guard_build_info", "gauge", "Build information.");
        let _ = writeln!(
            w,
            "floe_guard_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        self.render_would_deny(w);
        s
    }
}

fn header(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_show_up_under_their_labels() {
        let m = Metrics::default();
        m.record(
            Endpoint::Mutate,
            "CREATE",
            Outcome::Allowed,
            0.0002,
            (7, 300),
        );
        m.record(Endpoint::Mutate, "CREATE", Outcome::Denied, 0.003, (0, 0));
        m.record(Endpoint::Validate, "", Outcome::Rejected(413), 0.5, (0, 0));
        m.set_cert_not_after(1_900_000_000);
        let text = m.render();
        for line in [
            "floe_guard_admission_requests_total{webhook=\"mutate\",operation=\"CREATE\",result=\"allowed\"} 1",
            "floe_guard_admission_requests_total{webhook=\"mutate\",operation=\"CREATE\",result=\"denied\"} 1",
            "floe_guard_admission_requests_total{webhook=\"validate\",operation=\"unknown\",result=\"rejected\"} 1",
            "floe_guard_admission_rejections_total{webhook=\"validate\",code=\"413\"} 1",
            "floe_guard_admission_duration_seconds_bucket{webhook=\"mutate\",le=\"0.00025\"} 1",
            "floe_guard_admission_duration_seconds_bucket{webhook=\"mutate\",le=\"0.005\"} 2",
            "floe_guard_admission_duration_seconds_bucket{webhook=\"mutate\",le=\"+Inf\"} 2",
            "floe_guard_admission_duration_seconds_count{webhook=\"validate\"} 1",
            "floe_guard_patch_operations_total 7",
            "floe_guard_patch_bytes_total 300",
            "floe_guard_certificate_expiry_timestamp_seconds 1900000000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
