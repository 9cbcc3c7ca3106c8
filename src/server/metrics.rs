//! Prometheus metrics with `prometheus-client`, rendered in the Prometheus
//! text format 0.0.4. Every series exists from the start (at zero), so a
//! scrape shows each webhook, operation, result and status code.
//!
//! Library first (`docs/performance.md`): recording a review costs well under
//! the 1 µs a hand-written exposition would have to save.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    webhook: &'static str,
    operation: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    webhook: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The server's metrics: handles into one registry. Recording takes no lock
/// that a scrape holds for long.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    duration: Family<WebhookLabel, Histogram>,
    patch_operations: Counter,
    patch_bytes: Counter,
    cert_not_after: Gauge,
    cert_reloads: Counter,
    cert_reload_failures: Counter,
    cert_reload_failing: Gauge,
    connections: Gauge,
    tls_handshake_failures: Counter,
    ready: Gauge,
    /// Audit mode: findings that enforcement would have denied, by rule.
    would_deny: Family<RuleLabel, Counter>,
}

fn webhook(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Mutate | Endpoint::MutateAudit => WEBHOOKS[0],
        Endpoint::Validate => WEBHOOKS[1],
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            rejections: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            patch_operations: Counter::default(),
            patch_bytes: Counter::default(),
            cert_not_after: Gauge::default(),
            cert_reloads: Counter::default(),
            cert_reload_failures: Counter::default(),
            cert_reload_failing: Gauge::default(),
            connections: Gauge::default(),
            tls_handshake_failures: Counter::default(),
            ready: Gauge::default(),
            would_deny: Family::default(),
        };
        for webhook in WEBHOOKS {
            for operation in OPERATIONS {
                for result in RESULTS {
                    let _ = m.requests.get_or_create(&RequestLabels {
                        webhook,
                        operation,
                        result,
                    });
                }
            }
            for code in REJECT_CODES {
                let _ = m
                    .rejections
                    .get_or_create(&RejectionLabels { webhook, code });
            }
            let _ = m.duration.get_or_create(&WebhookLabel { webhook });
        }
        m.register()
    }
}

impl Metrics {
    /// Registers every metric under its name (counters get `_total`).
    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "floe_guard_audit_would_deny",
            "Audit mode: findings that enforcement would have denied, by rule (insecure field or PSS check).",
            self.would_deny.clone(),
        );
        r.register(
            "floe_guard_admission_requests",
            "Admission requests by webhook, operation and result (rejected: answered with an HTTP error).",
            self.requests.clone(),
        );
        r.register(
            "floe_guard_admission_rejections",
            "Admission requests answered with an HTTP error, by webhook and status code.",
            self.rejections.clone(),
        );
        r.register(
            "floe_guard_admission_duration_seconds",
            "Time from request to response, body read included.",
            self.duration.clone(),
        );
        r.register(
            "floe_guard_patch_operations",
            "JSONPatch operations returned by the mutating webhook.",
            self.patch_operations.clone(),
        );
        r.register(
            "floe_guard_patch_bytes",
            "JSONPatch bytes (before base64) returned by the mutating webhook.",
            self.patch_bytes.clone(),
        );
        r.register(
            "floe_guard_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, Unix seconds.",
            self.cert_not_after.clone(),
        );
        r.register(
            "floe_guard_certificate_reloads",
            "Serving certificate changes loaded from disk.",
            self.cert_reloads.clone(),
        );
        r.register(
            "floe_guard_certificate_reload_failures",
            "Changed certificate files that could not be loaded (the previous certificate stays).",
            self.cert_reload_failures.clone(),
        );
        r.register(
            "floe_guard_certificate_reload_failing",
            "1 while the certificate files on disk cannot be loaded.",
            self.cert_reload_failing.clone(),
        );
        r.register(
            "floe_guard_connections",
            "Open client connections.",
            self.connections.clone(),
        );
        r.register(
            "floe_guard_tls_handshake_failures",
            "TLS handshakes that failed or timed out.",
            self.tls_handshake_failures.clone(),
        );
        r.register(
            "floe_guard_ready",
            "1 when ready to serve admission requests.",
            self.ready.clone(),
        );
        r.register(
            "floe_guard_build",
            "Build information.",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        self
    }

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
        let webhook = webhook(endpoint);
        let operation = OPERATIONS[..4]
            .iter()
            .find(|o| **o == operation)
            .unwrap_or(&OPERATIONS[4]);
        let result = match outcome {
            Outcome::Allowed => RESULTS[0],
            Outcome::Denied => RESULTS[1],
            Outcome::Rejected(status) => {
                let code = REJECT_CODES
                    .iter()
                    .find(|c| c.parse() == Ok(status))
                    .unwrap_or(&REJECT_CODES[REJECT_CODES.len() - 1]);
                self.rejections
                    .get_or_create(&RejectionLabels { webhook, code })
                    .inc();
                RESULTS[2]
            }
        };
        self.requests
            .get_or_create(&RequestLabels {
                webhook,
                operation,
                result,
            })
            .inc();
        self.duration
            .get_or_create(&WebhookLabel { webhook })
            .observe(seconds);
        self.patch_operations.inc_by(patch.0 as u64);
        self.patch_bytes.inc_by(patch.1 as u64);
    }

    /// Sets the serving certificate's expiry (`notAfter`, Unix seconds).
    pub fn set_cert_not_after(&self, unix_seconds: i64) {
        self.cert_not_after.set(unix_seconds);
    }

    /// Records a certificate reload attempt.
    pub fn cert_reload(&self, ok: bool) {
        if ok {
            self.cert_reloads.inc();
        } else {
            self.cert_reload_failures.inc();
        }
        self.cert_reload_failing.set(i64::from(!ok));
    }

    /// Counts a connection opened (`+1`) or closed (`-1`).
    pub fn connections(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// Counts a failed or timed-out TLS handshake.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// Sets the readiness gauge.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Audit mode: counts each rule a review would have been denied for.
    pub fn would_deny(&self, rules: &[String]) {
        for rule in rules {
            self.would_deny
                .get_or_create(&RuleLabel { rule: rule.clone() })
                .inc();
        }
    }

    /// The Prometheus text exposition (format 0.0.4, served as
    /// [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(8192);
        prometheus_text::encode(&mut s, &self.registry).expect("writing to a String");
        s
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

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
        for line in [
            "# TYPE floe_guard_admission_requests_total counter",
            "# TYPE floe_guard_admission_duration_seconds histogram",
            "floe_guard_admission_rejections_total{webhook=\"mutate\",code=\"500\"} 0",
            "floe_guard_build_info{version=\"0.1.0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
