//! `certs install`: what to write so that the webhook's serving certificate
//! exists, is renewed in time, is trusted by the API server, and so that a
//! CA is rotated without a failed admission.
//!
//! Pure: [`plan`] takes the current Secrets and webhook configurations and
//! "now", and returns the ordered writes (the keys it generates are the only
//! side effect). The CLI performs them.
//!
//! Rules:
//! - two `kubernetes.io/tls` Secrets: the serving Secret (`ca.crt`,
//!   `tls.crt`, `tls.key`, mounted by the webhook pods) and the CA Secret
//!   (the CA as `tls.crt`/`tls.key`, read only by `certs install`). A CA key
//!   that an earlier release kept in the serving Secret (`ca.key`) is moved
//!   to the CA Secret;
//! - the CA lives [`Target::ca_days`] days; it is reused while more than
//!   twice the serving certificate's renewal window remains, and replaced
//!   when it is missing, foreign, mismatched, nearly expired, or on
//!   `--rotate-ca` (unless it was itself made less than the overlap ago, so
//!   that a retried Job does not rotate twice);
//! - the serving certificate is renewed when fewer than [`renew_before`]
//!   remain, when its names differ from the Service's, when it does not
//!   match its key or the CA; it never outlives its CA;
//! - every webhook entry of both configurations gets the same `caBundle`:
//!   the current CA first, then each CA already trusted (or held by a
//!   Secret) that is unexpired, not newer than the CA the Secrets held, and
//!   either signed the serving certificate the pods may still serve or is
//!   inside the overlap window: [`Target::overlap`] after the current CA's
//!   first serving certificate was issued. After the window it is dropped;
//! - order: the CA Secret first (a CA is never trusted before its key is
//!   stored); a new serving Secret before `caBundle` (no pod serves before it
//!   exists); on renewal `caBundle` first, so that the new certificate is
//!   trusted before any pod serves it.

use std::time::{Duration, SystemTime};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::generate::{BACKDATE, Ca, CertError};
use super::inspect::{CertInfo, date, first_der, minute, pem, pem_certs};
use super::secret::{self, CA_CRT, LEGACY_CA_KEY, TLS_CRT, TLS_KEY, TLS_SECRET_TYPE};

mod decide;

use decide::{CaDecision, ServingDecision, ca_decision, serving_decision};

/// The serving certificate is renewed when fewer days than this remain.
pub const RENEW_BEFORE_DAYS: u32 = 30;
/// Default lifetime of a CA that `certs install` makes, days.
pub const DEFAULT_CA_DAYS: u32 = 365;
/// Default time a superseded CA stays trusted beside its successor: longer
/// than the kubelet takes to update a Secret volume (about a minute) plus
/// the server's reload poll.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(3600);

/// What `certs install` manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The webhook Service (the certificate's names derive from it).
    pub service: String,
    /// Namespace of the Service and of both Secrets.
    pub namespace: String,
    /// Name of the serving Secret.
    pub secret: String,
    /// Name of the CA Secret.
    pub ca_secret: String,
    /// Name of both the Mutating- and the ValidatingWebhookConfiguration.
    pub webhook: String,
    /// Validity of a serving certificate, days.
    pub days: u32,
    /// Validity of a new CA, days.
    pub ca_days: u32,
    /// How long a superseded CA stays trusted after its successor's first
    /// serving certificate.
    pub overlap: Duration,
    /// Replace the CA now (`--rotate-ca`).
    pub rotate_ca: bool,
}

/// The objects as read from the cluster (`None`: not found).
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The serving Secret.
    pub secret: Option<Secret>,
    /// The CA Secret.
    pub ca_secret: Option<Secret>,
    /// floe-guard's MutatingWebhookConfiguration.
    pub mutating: Option<MutatingWebhookConfiguration>,
    /// floe-guard's ValidatingWebhookConfiguration.
    pub validating: Option<ValidatingWebhookConfiguration>,
}

/// Which webhook configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// `MutatingWebhookConfiguration`.
    Mutating,
    /// `ValidatingWebhookConfiguration`.
    Validating,
}

impl WebhookKind {
    /// The singular lowercase name used in messages (as kubectl does).
    fn singular(self) -> &'static str {
        match self {
            WebhookKind::Mutating => "mutatingwebhookconfiguration",
            WebhookKind::Validating => "validatingwebhookconfiguration",
        }
    }
}

/// One write, in the order [`Plan::steps`] lists them.
#[derive(Clone)]
pub enum Step {
    /// Create a Secret (POST).
    CreateSecret {
        /// The Secret to create (its metadata names it).
        secret: Box<Secret>,
        /// One line for the operator.
        summary: String,
    },
    /// Replace a Secret (PUT, with the resourceVersion that was read).
    ReplaceSecret {
        /// The Secret to write (its metadata names it).
        secret: Box<Secret>,
        /// One line for the operator.
        summary: String,
    },
    /// Strategic-merge-patch `caBundle` of the named webhook entries, with the
    /// resourceVersion that was read as a precondition.
    PatchWebhooks {
        /// Which configuration.
        kind: WebhookKind,
        /// Its name.
        name: String,
        /// The patch body.
        patch: serde_json::Value,
        /// One line for the operator.
        summary: String,
    },
}

impl Step {
    /// The line that tells the operator what this step does.
    pub fn summary(&self) -> &str {
        match self {
            Step::CreateSecret { summary, .. }
            | Step::ReplaceSecret { summary, .. }
            | Step::PatchWebhooks { summary, .. } => summary,
        }
    }
}

impl std::fmt::Debug for Step {
    // The Secrets hold private keys: show the summary only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Step").field(&self.summary()).finish()
    }
}

/// The outcome of [`plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// The writes, in the order they must be made; empty when all is current.
    pub steps: Vec<Step>,
    /// One line for each object left as it is.
    pub unchanged: Vec<String>,
    /// What the operator should know (e.g. when superseded CAs are dropped).
    pub notes: Vec<String>,
    /// The `caBundle` every webhook entry should carry (PEM).
    pub bundle: Vec<u8>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A Secret exists with another type, which cannot be changed.
    #[error(
        "secret {name} has type {found:?}, not {TLS_SECRET_TYPE}, and a Secret's type cannot be changed: delete it and run again"
    )]
    SecretType {
        /// `namespace/name`.
        name: String,
        /// Its type.
        found: String,
    },
    /// Certificate generation failed.
    #[error(transparent)]
    Cert(#[from] CertError),
}

/// Decides what to write, given the current objects and `now`.
pub fn plan(current: &Current, target: &Target, now: SystemTime) -> Result<Plan, PlanError> {
    for (s, name) in [
        (&current.secret, &target.secret),
        (&current.ca_secret, &target.ca_secret),
    ] {
        let found = s.as_ref().map(|s| s.type_.as_deref().unwrap_or("Opaque"));
        if let Some(found) = found.filter(|t| *t != TLS_SECRET_TYPE) {
            return Err(PlanError::SecretType {
                name: format!("{}/{name}", target.namespace),
                found: found.to_owned(),
            });
        }
    }
    let ca = ca_decision(current, target, now)?;
    let serving = serving_decision(current, target, &ca, now)?;
    let (bundle_ders, dropped, kept_until) = bundle_cas(current, &ca, &serving, target, now);
    let bundle: Vec<u8> = bundle_ders
        .iter()
        .flat_map(|der| pem(der).into_bytes())
        .collect();

    let mut notes: Vec<String> = ca.note.iter().cloned().collect();
    if let Some(until) = kept_until.filter(|_| bundle_ders.len() > 1) {
        notes.push(format!(
            "{} superseded CA(s) stay trusted until {}: run certs install again after that to drop them",
            bundle_ders.len() - 1,
            minute(until)
        ));
    }
    let mut unchanged = Vec::new();
    let patches = patches(
        current,
        target,
        &bundle,
        bundle_ders.len(),
        dropped,
        &mut unchanged,
    );

    let mut steps = Vec::new();
    let ca_name = format!("{}/{}", target.namespace, target.ca_secret);
    match ca.write {
        None => unchanged.push(format!("secret {ca_name}: up to date ({})", ca.status)),
        Some(s) if current.ca_secret.is_none() => steps.push(Step::CreateSecret {
            secret: Box::new(s),
            summary: format!("secret {ca_name}: created ({})", ca.status),
        }),
        Some(s) => steps.push(Step::ReplaceSecret {
            secret: Box::new(s),
            summary: format!("secret {ca_name}: {}", ca.status),
        }),
    }
    let name = format!("{}/{}", target.namespace, target.secret);
    match serving {
        ServingDecision::Keep { status, .. } => {
            unchanged.insert(0, format!("secret {name}: up to date ({status})"));
            steps.extend(patches);
        }
        ServingDecision::Write { secret, why, .. } if current.secret.is_none() => {
            steps.push(Step::CreateSecret {
                secret,
                summary: format!("secret {name}: created ({why})"),
            });
            steps.extend(patches);
        }
        ServingDecision::Write { secret, why, .. } => {
            steps.extend(patches);
            steps.push(Step::ReplaceSecret {
                secret,
                summary: format!("secret {name}: {why}"),
            });
        }
    }
    Ok(Plan {
        steps,
        unchanged,
        notes,
        bundle,
    })
}

/// The `caBundle` patches of both configurations; configurations left as
/// they are get a line in `unchanged`.
fn patches(
    current: &Current,
    target: &Target,
    bundle: &[u8],
    cas: usize,
    dropped: usize,
    unchanged: &mut Vec<String>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for kind in [WebhookKind::Mutating, WebhookKind::Validating] {
        let what = format!("{} {}", kind.singular(), target.webhook);
        let Some((resource_version, entries)) = config_entries(current, kind) else {
            unchanged.push(format!(
                "{what}: not found, caBundle not set (run again once it exists; the chart's post-install Job does)"
            ));
            continue;
        };
        let stale: Vec<&str> = entries
            .iter()
            .filter(|(_, ca_bundle)| *ca_bundle != bundle)
            .map(|(name, _)| *name)
            .collect();
        if entries.is_empty() {
            unchanged.push(format!("{what}: has no webhooks"));
        } else if stale.is_empty() {
            unchanged.push(format!(
                "{what}: caBundle up to date on {} webhook(s)",
                entries.len()
            ));
        } else {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
            let webhooks: Vec<_> = stale
                .iter()
                .map(|name| json!({"name": name, "clientConfig": {"caBundle": encoded}}))
                .collect();
            let mut patch = json!({ "webhooks": webhooks });
            if let Some(rv) = resource_version {
                patch["metadata"] = json!({ "resourceVersion": rv });
            }
            let trimmed = match dropped {
                0 => String::new(),
                n => format!("; dropped {n} expired, superseded or unknown CA(s)"),
            };
            steps.push(Step::PatchWebhooks {
                kind,
                name: target.webhook.clone(),
                patch,
                summary: format!(
                    "{what}: caBundle set on {} ({cas} CA(s){trimmed})",
                    stale.join(", "),
                ),
            });
        }
    }
    steps
}

/// Parses `--ca-overlap`: a duration such as `1h`, `30m` or `90s`.
pub fn parse_overlap(s: &str) -> Result<Duration, String> {
    let d: k8s_openapi::jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("expected a duration such as 1h or 30m: {e}"))?;
    Duration::try_from(d).map_err(|_| "a duration cannot be negative".to_owned())
}

/// How long before expiry a certificate of `days` is renewed:
/// [`RENEW_BEFORE_DAYS`], or a third of its validity when that is shorter.
pub fn renew_before(days: u32) -> Duration {
    let window = u64::from(RENEW_BEFORE_DAYS) * 86_400;
    Duration::from_secs(window.min(u64::from(days) * 86_400 / 3))
}

/// When a certificate was issued: its `notBefore` plus the backdating that
/// [`Ca`] applies for clock skew.
fn issued(info: &CertInfo) -> SystemTime {
    info.not_before + BACKDATE
}

/// The CAs of the bundle (the current one first), how many candidates were
/// dropped, and until when the superseded ones kept stay trusted.
fn bundle_cas(
    current: &Current,
    ca: &CaDecision,
    serving: &ServingDecision,
    target: &Target,
    now: SystemTime,
) -> (Vec<Vec<u8>>, usize, Option<SystemTime>) {
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for (s, key) in [(&current.ca_secret, TLS_CRT), (&current.secret, CA_CRT)] {
        if let Some(pem) = s.as_ref().and_then(|s| secret::value(s, key)) {
            candidates.extend(pem_certs(pem));
        }
    }
    for (_, ca_bundle) in webhook_entries(current) {
        candidates.extend(pem_certs(ca_bundle));
    }
    // Superseded CAs stay for the overlap after the current CA's serving
    // certificate was first issued (now, when it is issued in this run).
    let since = match serving {
        ServingDecision::Keep {
            issued_by_current, ..
        } => *issued_by_current,
        ServingDecision::Write { .. } => now,
    };
    let until = since + target.overlap;
    let mut cas = vec![ca.der.clone()];
    let mut dropped = Vec::new();
    for der in candidates {
        if cas.contains(&der) || dropped.contains(&der) {
            continue;
        }
        let signed_served = serving.signed_by_stored(&der);
        let keep = CertInfo::parse(&der).is_some_and(|info| {
            info.not_after > now
                && ca
                    .previous_not_before
                    .is_none_or(|nb| info.not_before <= nb)
                && (now < until || signed_served)
        });
        if keep {
            cas.push(der);
        } else {
            dropped.push(der);
        }
    }
    (cas, dropped.len(), Some(until).filter(|u| *u > now))
}

/// `(resourceVersion, [(webhook name, caBundle)])` of one configuration.
type Entries<'a> = (Option<&'a str>, Vec<(&'a str, &'a [u8])>);

fn config_entries(current: &Current, kind: WebhookKind) -> Option<Entries<'_>> {
    fn bytes(b: Option<&ByteString>) -> &[u8] {
        b.map_or(&[], |b| b.0.as_slice())
    }
    fn entries<'a, W>(
        meta: &'a ObjectMeta,
        webhooks: Option<&'a [W]>,
        entry: impl Fn(&'a W) -> (&'a str, &'a [u8]),
    ) -> Entries<'a> {
        let found = webhooks.unwrap_or_default().iter().map(entry).collect();
        (meta.resource_version.as_deref(), found)
    }
    match kind {
        WebhookKind::Mutating => current.mutating.as_ref().map(|c| {
            entries(&c.metadata, c.webhooks.as_deref(), |w| {
                (w.name.as_str(), bytes(w.client_config.ca_bundle.as_ref()))
            })
        }),
        WebhookKind::Validating => current.validating.as_ref().map(|c| {
            entries(&c.metadata, c.webhooks.as_deref(), |w| {
                (w.name.as_str(), bytes(w.client_config.ca_bundle.as_ref()))
            })
        }),
    }
}

fn webhook_entries(current: &Current) -> Vec<(&str, &[u8])> {
    [WebhookKind::Mutating, WebhookKind::Validating]
        .into_iter()
        .filter_map(|kind| config_entries(current, kind))
        .flat_map(|(_, entries)| entries)
        .collect()
}

/// The CA as stored: its status line, for `unchanged`.
fn ca_status(ca: &Ca, info: &CertInfo) -> String {
    format!(
        "CA made {}, valid until {}",
        date(issued(info)),
        date(ca.not_after)
    )
}

/// A key of the serving Secret as text (for messages and reloading).
fn serving_text<'a>(current: &'a Current, key: &str) -> Option<&'a str> {
    current.secret.as_ref().and_then(|s| secret::text(s, key))
}

/// Whether the serving Secret still holds a CA key of an earlier release.
fn has_legacy_key(current: &Current) -> bool {
    serving_text(current, LEGACY_CA_KEY).is_some()
}

/// The serving certificate's DER as stored.
fn stored_leaf(current: &Current) -> Option<Vec<u8>> {
    serving_text(current, TLS_CRT)
        .map(first_der)
        .filter(|d| !d.is_empty())
}

/// The serving key as stored.
fn stored_key(current: &Current) -> Option<&str> {
    serving_text(current, TLS_KEY)
}

#[cfg(test)]
mod tests;
