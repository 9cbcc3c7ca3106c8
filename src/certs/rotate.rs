//! `certs install`: what to write so that the webhook's serving certificate
//! exists, is renewed in time, and is trusted by the API server.
//!
//! Pure: [`plan`] takes the current Secret and webhook configurations and
//! "now", and returns the ordered writes (the keys it generates are the only
//! side effect). The CLI performs them.
//!
//! Rules:
//! - the Secret (`kubernetes.io/tls`; `ca.crt`, `tls.crt`, `tls.key` as
//!   cert-manager writes them, plus `ca.key`, the CA's key, so that renewals
//!   keep the CA) is created when absent;
//! - the CA is reused while it outlives a fresh serving certificate by the
//!   renewal window; otherwise (missing, foreign, mismatched or near expiry)
//!   a new CA is made;
//! - the serving certificate is renewed when fewer than [`RENEW_BEFORE_DAYS`]
//!   days (a third of its validity for short ones) remain, when its names
//!   differ from the Service's, or when it does not match its key or CA;
//! - every webhook entry of both configurations gets the same `caBundle`: the
//!   current CA first, then each CA already trusted that is still valid and
//!   not newer than the CA the Secret held (so the previous CA stays during a
//!   rotation, expired ones are dropped, and a CA whose key was never stored
//!   is dropped too);
//! - order: a new Secret is written before `caBundle` (no pod serves before
//!   it exists); on renewal `caBundle` is patched first, so the new
//!   certificate is trusted before any pod serves it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::generate::{Bundle, Ca, CertError, SanList};

/// The serving certificate is renewed when fewer days than this remain.
pub const RENEW_BEFORE_DAYS: u32 = 30;
/// Shortest validity of a CA that `certs install` generates, days.
pub const CA_MIN_DAYS: u32 = 3650;
/// The Secret type of a TLS Secret.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
/// Secret key of the CA certificate.
pub const CA_CRT: &str = "ca.crt";
/// Secret key of the CA's private key (kept so that renewals reuse the CA).
pub const CA_KEY: &str = "ca.key";
/// Secret key of the serving certificate.
pub const TLS_CRT: &str = "tls.crt";
/// Secret key of the serving certificate's private key.
pub const TLS_KEY: &str = "tls.key";

/// What `certs install` manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The webhook Service (the certificate's names derive from it).
    pub service: String,
    /// Namespace of the Service and of the Secret.
    pub namespace: String,
    /// Name of the TLS Secret.
    pub secret: String,
    /// Name of both the Mutating- and the ValidatingWebhookConfiguration.
    pub webhook: String,
    /// Validity of a serving certificate, days.
    pub days: u32,
}

/// The objects as read from the cluster (`None`: not found).
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The TLS Secret.
    pub secret: Option<Secret>,
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
    /// The API resource (plural, lowercase), as RBAC rules name it.
    pub fn resource(self) -> &'static str {
        match self {
            WebhookKind::Mutating => "mutatingwebhookconfigurations",
            WebhookKind::Validating => "validatingwebhookconfigurations",
        }
    }

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
    /// Create the Secret (POST).
    CreateSecret {
        /// The Secret to create.
        secret: Box<Secret>,
        /// One line for the operator.
        summary: String,
    },
    /// Replace the Secret (PUT, with the resourceVersion that was read).
    ReplaceSecret {
        /// The Secret to write.
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
    // The Secret holds private keys: show the summary only.
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
    /// The `caBundle` every webhook entry should carry (PEM).
    pub bundle: Vec<u8>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The Secret exists with another type, which cannot be changed.
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
    let secret_name = format!("{}/{}", target.namespace, target.secret);
    let secret = decide_secret(current.secret.as_ref(), target, now)?;

    // The previous CA bounds which other CAs stay trusted (see module docs).
    let previous_ca = current
        .secret
        .as_ref()
        .and_then(|s| secret_value(s, CA_CRT))
        .and_then(|pem| pem_certs(pem).into_iter().next())
        .and_then(|der| CertInfo::parse(&der).map(|info| (der, info)));
    let mut candidates: Vec<Vec<u8>> = previous_ca.iter().map(|(der, _)| der.clone()).collect();
    for (_, ca_bundle) in webhook_entries(current) {
        candidates.extend(pem_certs(ca_bundle));
    }
    let (cas, dropped) = bundle_cas(
        &secret.ca_der,
        previous_ca.as_ref().map(|(_, info)| info.not_before),
        candidates,
        now,
    );
    let bundle: Vec<u8> = cas.iter().flat_map(|der| pem(der).into_bytes()).collect();

    let mut patches = Vec::new();
    let mut unchanged = Vec::new();
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
            .filter(|(_, ca_bundle)| *ca_bundle != bundle.as_slice())
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
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bundle);
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
                n => format!("; dropped {n} expired or unused CA(s)"),
            };
            patches.push(Step::PatchWebhooks {
                kind,
                name: target.webhook.clone(),
                patch,
                summary: format!(
                    "{what}: caBundle set on {} ({} CA(s){trimmed})",
                    stale.join(", "),
                    cas.len(),
                ),
            });
        }
    }

    let mut steps = Vec::new();
    match secret.write {
        SecretWrite::Keep => {
            unchanged.insert(
                0,
                format!("secret {secret_name}: up to date ({})", secret.status),
            );
            steps.extend(patches);
        }
        SecretWrite::Create(s) => {
            steps.push(Step::CreateSecret {
                secret: Box::new(s),
                summary: format!("secret {secret_name}: created ({})", secret.status),
            });
            steps.extend(patches);
        }
        SecretWrite::Replace(s, why) => {
            steps.extend(patches);
            steps.push(Step::ReplaceSecret {
                secret: Box::new(s),
                summary: format!("secret {secret_name}: {why} ({})", secret.status),
            });
        }
    }
    Ok(Plan {
        steps,
        unchanged,
        bundle,
    })
}

/// How many days before expiry a certificate of `days` is renewed:
/// [`RENEW_BEFORE_DAYS`], or a third of its validity when that is shorter.
pub fn renew_before(days: u32) -> Duration {
    let window = u64::from(RENEW_BEFORE_DAYS) * 86_400;
    Duration::from_secs(window.min(u64::from(days) * 86_400 / 3))
}

/// Validity of a new CA for serving certificates of `days`: at least
/// [`CA_MIN_DAYS`], and long enough that the first renewal still reuses it.
pub fn ca_days(days: u32) -> u32 {
    CA_MIN_DAYS.max(days.saturating_mul(2).saturating_add(RENEW_BEFORE_DAYS))
}

enum SecretWrite {
    Keep,
    Create(Secret),
    /// The Secret to write and what changed.
    Replace(Secret, String),
}

struct SecretDecision {
    write: SecretWrite,
    /// DER of the CA that signs the serving certificate afterwards.
    ca_der: Vec<u8>,
    /// Validity of the certificates afterwards, for the summary.
    status: String,
}

fn decide_secret(
    secret: Option<&Secret>,
    target: &Target,
    now: SystemTime,
) -> Result<SecretDecision, PlanError> {
    let sans = SanList::for_service(&target.service, &target.namespace);
    let Some(secret) = secret else {
        let ca = Ca::generate(ca_days(target.days), now)?;
        let bundle = ca.issue(&sans, target.days, now)?;
        return Ok(SecretDecision {
            ca_der: first_der(&ca.cert_pem),
            status: status(&ca, &bundle, "new CA"),
            write: SecretWrite::Create(new_secret(target, &ca, &bundle)),
        });
    };
    let found = secret.type_.as_deref().unwrap_or("Opaque");
    if found != TLS_SECRET_TYPE {
        return Err(PlanError::SecretType {
            name: format!("{}/{}", target.namespace, target.secret),
            found: found.to_owned(),
        });
    }
    let window = renew_before(target.days);
    match reusable_ca(secret, target.days, now) {
        Ok(ca) => match serving_problem(secret, &ca, &sans, window, now) {
            None => {
                let leaf = secret_value(secret, TLS_CRT)
                    .and_then(|pem| pem_certs(pem).into_iter().next())
                    .and_then(|der| CertInfo::parse(&der));
                let leaf_until = leaf.map_or(now, |l| l.not_after);
                Ok(SecretDecision {
                    ca_der: ca.der.clone(),
                    status: format!(
                        "serving certificate valid until {}, {} days left; CA until {}",
                        date(leaf_until),
                        days_between(now, leaf_until),
                        date(ca.info.not_after),
                    ),
                    write: SecretWrite::Keep,
                })
            }
            Some(why) => {
                let bundle = ca.ca.issue(&sans, target.days, now)?;
                Ok(SecretDecision {
                    ca_der: ca.der.clone(),
                    status: format!(
                        "serving certificate valid until {}; same CA, valid until {}",
                        date(bundle.not_after),
                        date(ca.info.not_after),
                    ),
                    write: SecretWrite::Replace(
                        updated_secret(secret, &ca.ca, &bundle),
                        format!("serving certificate renewed: {why}"),
                    ),
                })
            }
        },
        Err(why) => {
            let ca = Ca::generate(ca_days(target.days), now)?;
            let bundle = ca.issue(&sans, target.days, now)?;
            Ok(SecretDecision {
                ca_der: first_der(&ca.cert_pem),
                status: status(&ca, &bundle, "new CA"),
                write: SecretWrite::Replace(
                    updated_secret(secret, &ca, &bundle),
                    format!("new CA and serving certificate: {why}"),
                ),
            })
        }
    }
}

fn status(ca: &Ca, bundle: &Bundle, label: &str) -> String {
    let ca_until = CertInfo::parse(&first_der(&ca.cert_pem)).map(|i| i.not_after);
    format!(
        "serving certificate valid until {}; {label} valid until {}",
        date(bundle.not_after),
        ca_until.map_or_else(|| "?".to_owned(), date),
    )
}

/// The Secret's CA, reloaded for signing.
struct ExistingCa {
    ca: Ca,
    der: Vec<u8>,
    info: CertInfo,
}

/// The Secret's CA when it can sign the next serving certificate, or why not.
fn reusable_ca(secret: &Secret, days: u32, now: SystemTime) -> Result<ExistingCa, String> {
    let cert_pem = secret_value(secret, CA_CRT).ok_or("the Secret has no ca.crt")?;
    let der = pem_certs(cert_pem)
        .into_iter()
        .next()
        .ok_or("its ca.crt holds no PEM certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| "its ca.crt is not a valid X.509 certificate")?;
    if !cert.is_ca() {
        return Err("its ca.crt is not a CA certificate".into());
    }
    if cert.subject().to_string() != Ca::subject() {
        return Err(format!(
            "its CA ({}) was not made by floe-guard",
            cert.subject()
        ));
    }
    let key_pem = secret_value(secret, CA_KEY).ok_or("the Secret has no ca.key")?;
    let key_pem = std::str::from_utf8(key_pem).map_err(|_| "its ca.key is not PEM")?;
    if !key_matches(key_pem, &cert) {
        return Err("its ca.key does not match ca.crt".into());
    }
    let info = CertInfo::of(&cert);
    if info.not_before > now {
        return Err(format!(
            "its CA is not valid before {}",
            date(info.not_before)
        ));
    }
    let needed = Duration::from_secs(u64::from(days) * 86_400) + renew_before(days);
    if info.not_after < now + needed {
        return Err(format!(
            "the CA expires on {}, too soon to sign a {days}-day certificate",
            date(info.not_after)
        ));
    }
    let cert_pem = std::str::from_utf8(cert_pem).map_err(|_| "its ca.crt is not PEM")?;
    let ca = Ca::from_pem(cert_pem, key_pem, info.not_before, info.not_after)
        .map_err(|e| format!("its ca.key cannot be loaded: {e}"))?;
    Ok(ExistingCa { ca, der, info })
}

/// Why the Secret's serving certificate must be renewed, if it must.
fn serving_problem(
    secret: &Secret,
    ca: &ExistingCa,
    sans: &SanList,
    window: Duration,
    now: SystemTime,
) -> Option<String> {
    let Some(der) = secret_value(secret, TLS_CRT).and_then(|pem| pem_certs(pem).into_iter().next())
    else {
        return Some("the Secret has no tls.crt".into());
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Some("its tls.crt is not a valid X.509 certificate".into());
    };
    let key = secret_value(secret, TLS_KEY).and_then(|k| std::str::from_utf8(k).ok());
    if !key.is_some_and(|k| key_matches(k, &cert)) {
        return Some("its tls.key does not match tls.crt".into());
    }
    let Ok((_, ca_cert)) = x509_parser::parse_x509_certificate(&ca.der) else {
        return Some("its ca.crt is not a valid X.509 certificate".into());
    };
    if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
        return Some("its tls.crt was not signed by ca.crt".into());
    }
    let info = CertInfo::of(&cert);
    if info.not_before > now {
        return Some(format!("it is not valid before {}", date(info.not_before)));
    }
    if info.not_after < now + window {
        return Some(format!(
            "it expires on {} ({} days left)",
            date(info.not_after),
            days_between(now, info.not_after)
        ));
    }
    let (dns, ips) = cert_sans(&cert);
    let want_dns: BTreeSet<String> = sans.dns_names.iter().cloned().collect();
    let want_ips: BTreeSet<IpAddr> = sans.ips.iter().copied().collect();
    if dns != want_dns || ips != want_ips {
        let names: Vec<String> = dns
            .iter()
            .cloned()
            .chain(ips.iter().map(IpAddr::to_string))
            .collect();
        return Some(format!(
            "it names {}, not {}",
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            },
            sans.dns_names.join(", ")
        ));
    }
    None
}

/// The CAs of the bundle (the current one first) and how many candidates
/// were dropped (expired, unparsable, or newer than the previous CA).
fn bundle_cas(
    current: &[u8],
    previous_not_before: Option<SystemTime>,
    candidates: Vec<Vec<u8>>,
    now: SystemTime,
) -> (Vec<Vec<u8>>, usize) {
    let mut cas = vec![current.to_vec()];
    let mut dropped = BTreeSet::new();
    for der in candidates {
        if cas.contains(&der) || dropped.contains(&der) {
            continue;
        }
        let keep = CertInfo::parse(&der).is_some_and(|info| {
            info.not_after > now && previous_not_before.is_none_or(|nb| info.not_before <= nb)
        });
        if keep {
            cas.push(der);
        } else {
            dropped.insert(der);
        }
    }
    (cas, dropped.len())
}

/// `(resourceVersion, [(webhook name, caBundle)])` of one configuration.
type Entries<'a> = (Option<&'a str>, Vec<(&'a str, &'a [u8])>);

fn config_entries(current: &Current, kind: WebhookKind) -> Option<Entries<'_>> {
    fn bytes(b: Option<&ByteString>) -> &[u8] {
        b.map_or(&[], |b| b.0.as_slice())
    }
    match kind {
        WebhookKind::Mutating => current.mutating.as_ref().map(|c| {
            (
                c.metadata.resource_version.as_deref(),
                c.webhooks
                    .iter()
                    .flatten()
                    .map(|w| (w.name.as_str(), bytes(w.client_config.ca_bundle.as_ref())))
                    .collect(),
            )
        }),
        WebhookKind::Validating => current.validating.as_ref().map(|c| {
            (
                c.metadata.resource_version.as_deref(),
                c.webhooks
                    .iter()
                    .flatten()
                    .map(|w| (w.name.as_str(), bytes(w.client_config.ca_bundle.as_ref())))
                    .collect(),
            )
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

/// A new Secret holding the CA (certificate and key) and the serving pair.
fn new_secret(target: &Target, ca: &Ca, bundle: &Bundle) -> Secret {
    let mut secret = Secret {
        metadata: ObjectMeta {
            name: Some(target.secret.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some([("app.kubernetes.io/name".to_owned(), "floe-guard".to_owned())].into()),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        ..Secret::default()
    };
    set_data(&mut secret, ca, bundle);
    secret
}

/// The current Secret (metadata, resourceVersion and other keys kept) with
/// the four certificate keys replaced. `managedFields` is left out so that
/// the API server keeps tracking field ownership itself.
fn updated_secret(current: &Secret, ca: &Ca, bundle: &Bundle) -> Secret {
    let mut secret = current.clone();
    secret.metadata.managed_fields = None;
    secret.string_data = None;
    set_data(&mut secret, ca, bundle);
    secret
}

fn set_data(secret: &mut Secret, ca: &Ca, bundle: &Bundle) {
    let data = secret.data.get_or_insert_with(Default::default);
    for (key, value) in [
        (CA_CRT, &bundle.ca_crt),
        (CA_KEY, &ca.key_pem),
        (TLS_CRT, &bundle.tls_crt),
        (TLS_KEY, &bundle.tls_key),
    ] {
        data.insert(key.to_owned(), ByteString(value.as_bytes().to_vec()));
    }
}

/// A non-empty value of the Secret's `data` (the API server never returns
/// `stringData`).
fn secret_value<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .filter(|v| !v.is_empty())
}

/// The DER of each CERTIFICATE block, up to the first malformed one.
pub fn pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    rustls_pemfile::certs(&mut &pem[..])
        .map_while(Result::ok)
        .map(|der| der.to_vec())
        .collect()
}

fn first_der(pem: &str) -> Vec<u8> {
    pem_certs(pem.as_bytes())
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// A certificate as PEM (64-character lines, LF).
fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Whether the PEM private key belongs to the certificate.
fn key_matches(key_pem: &str, cert: &X509Certificate<'_>) -> bool {
    rcgen::KeyPair::from_pem(key_pem)
        .is_ok_and(|key| key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref())
}

/// The DNS names and IP addresses of a certificate's subjectAltName.
fn cert_sans(cert: &X509Certificate<'_>) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => {
                    dns.insert((*n).to_owned());
                }
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ips.insert(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ips.insert(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// The validity of a certificate.
#[derive(Debug, Clone, Copy)]
struct CertInfo {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl CertInfo {
    fn of(cert: &X509Certificate<'_>) -> CertInfo {
        CertInfo {
            not_before: system_time(cert.validity().not_before.timestamp()),
            not_after: system_time(cert.validity().not_after.timestamp()),
        }
    }

    fn parse(der: &[u8]) -> Option<CertInfo> {
        x509_parser::parse_x509_certificate(der)
            .ok()
            .map(|(_, cert)| CertInfo::of(&cert))
    }
}

fn system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs()),
    }
}

/// `YYYY-MM-DD` (UTC).
fn date(t: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .map(|ts| ts.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Whole days from `from` to `to` (0 when `to` is earlier).
fn days_between(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from).map_or(0, |d| d.as_secs() / 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhook, ValidatingWebhook, WebhookClientConfig,
    };
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    const DAY: Duration = Duration::from_secs(86_400);

    /// Now, to the second (as certificates encode it).
    fn now() -> SystemTime {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn target() -> Target {
        Target {
            service: "floe-guard".into(),
            namespace: "floe-guard".into(),
            secret: "floe-guard-tls".into(),
            webhook: "floe-guard".into(),
            days: 365,
        }
    }

    fn entry_config(ca_bundle: &[u8]) -> WebhookClientConfig {
        WebhookClientConfig {
            ca_bundle: (!ca_bundle.is_empty()).then(|| ByteString(ca_bundle.to_vec())),
            ..WebhookClientConfig::default()
        }
    }

    /// Both configurations as the manifests install them (no caBundle), the
    /// mutating one with `extra` more entries.
    fn cluster(extra: usize) -> Current {
        let meta = |rv: &str| ObjectMeta {
            name: Some("floe-guard".into()),
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        };
        let mutating = (0..=extra)
            .map(|i| MutatingWebhook {
                name: format!("pods{i}.floe-guard.floe.dev"),
                client_config: entry_config(b""),
                ..MutatingWebhook::default()
            })
            .collect();
        Current {
            secret: None,
            mutating: Some(MutatingWebhookConfiguration {
                metadata: meta("11"),
                webhooks: Some(mutating),
            }),
            validating: Some(ValidatingWebhookConfiguration {
                metadata: meta("12"),
                webhooks: Some(vec![ValidatingWebhook {
                    name: "namespaces.floe-guard.floe.dev".into(),
                    client_config: entry_config(b""),
                    ..ValidatingWebhook::default()
                }]),
            }),
        }
    }

    /// What the API server would hold after the plan's writes.
    fn apply(current: &Current, plan: &Plan) -> Current {
        let mut next = current.clone();
        for step in &plan.steps {
            match step {
                Step::CreateSecret { secret, .. } | Step::ReplaceSecret { secret, .. } => {
                    next.secret = Some((**secret).clone());
                }
                Step::PatchWebhooks { kind, patch, .. } => {
                    for w in patch["webhooks"].as_array().unwrap() {
                        let name = w["name"].as_str().unwrap();
                        let bundle = base64::engine::general_purpose::STANDARD
                            .decode(w["clientConfig"]["caBundle"].as_str().unwrap())
                            .unwrap();
                        let config = match kind {
                            WebhookKind::Mutating => next
                                .mutating
                                .as_mut()
                                .unwrap()
                                .webhooks
                                .iter_mut()
                                .flatten()
                                .find(|e| e.name == name)
                                .map(|e| &mut e.client_config),
                            WebhookKind::Validating => next
                                .validating
                                .as_mut()
                                .unwrap()
                                .webhooks
                                .iter_mut()
                                .flatten()
                                .find(|e| e.name == name)
                                .map(|e| &mut e.client_config),
                        };
                        config.expect("patched entry exists").ca_bundle = Some(ByteString(bundle));
                    }
                }
            }
        }
        next
    }

    fn data<'a>(current: &'a Current, key: &str) -> &'a [u8] {
        secret_value(current.secret.as_ref().unwrap(), key).unwrap()
    }

    /// Every caBundle of both configurations.
    fn bundles(current: &Current) -> Vec<Vec<u8>> {
        webhook_entries(current)
            .into_iter()
            .map(|(_, b)| b.to_vec())
            .collect()
    }

    /// Whether a client trusting `bundle` accepts `leaf_pem` for the Service at `at`.
    fn trusted(bundle: &[u8], leaf_pem: &[u8], at: SystemTime) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        for der in pem_certs(bundle) {
            roots.add(CertificateDer::from(der)).unwrap();
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from(pem_certs(leaf_pem).remove(0));
        let name = ServerName::try_from("floe-guard.floe-guard.svc").unwrap();
        let at = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], at)
            .is_ok()
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::CreateSecret { .. } => "create",
                Step::ReplaceSecret { .. } => "replace",
                Step::PatchWebhooks {
                    kind: WebhookKind::Mutating,
                    ..
                } => "patch-mutating",
                Step::PatchWebhooks {
                    kind: WebhookKind::Validating,
                    ..
                } => "patch-validating",
            })
            .collect()
    }

    /// A fresh install at `now`, applied.
    fn installed(now: SystemTime) -> Current {
        let before = cluster(0);
        apply(&before, &plan(&before, &target(), now).unwrap())
    }

    #[test]
    fn fresh_install_creates_the_secret_then_sets_every_ca_bundle() {
        let now = now();
        let before = cluster(1);
        let p = plan(&before, &target(), now).unwrap();
        assert_eq!(kinds(&p), ["create", "patch-mutating", "patch-validating"]);
        let Step::CreateSecret { secret, summary } = &p.steps[0] else {
            unreachable!()
        };
        assert!(
            summary.starts_with(
                "secret floe-guard/floe-guard-tls: created (serving certificate valid until "
            ),
            "{summary}"
        );
        assert_eq!(secret.type_.as_deref(), Some(TLS_SECRET_TYPE));
        assert_eq!(secret.metadata.name.as_deref(), Some("floe-guard-tls"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("floe-guard"));
        assert_eq!(
            secret.data.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["ca.crt", "ca.key", "tls.crt", "tls.key"]
        );
        // Both entries of the mutating configuration, with the read
        // resourceVersion as a precondition.
        let Step::PatchWebhooks { patch, summary, .. } = &p.steps[1] else {
            unreachable!()
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "11");
        assert_eq!(patch["webhooks"].as_array().unwrap().len(), 2);
        assert_eq!(
            summary,
            "mutatingwebhookconfiguration floe-guard: caBundle set on pods0.floe-guard.floe.dev, pods1.floe-guard.floe.dev (1 CA(s))"
        );

        let after = apply(&before, &p);
        assert_eq!(
            p.bundle,
            pem(&pem_certs(data(&after, CA_CRT))[0]).into_bytes()
        );
        for bundle in bundles(&after) {
            assert_eq!(bundle, p.bundle);
            assert!(trusted(&bundle, data(&after, TLS_CRT), now));
        }
    }

    #[test]
    fn a_second_run_changes_nothing_and_says_so() {
        let now = now();
        let after = installed(now);
        let again = plan(&after, &target(), now + DAY).unwrap();
        assert!(again.steps.is_empty(), "{:?}", again.steps);
        assert_eq!(again.unchanged.len(), 3);
        assert!(
            again.unchanged[0].starts_with(
                "secret floe-guard/floe-guard-tls: up to date (serving certificate valid until "
            ),
            "{}",
            again.unchanged[0]
        );
        assert!(again.unchanged[0].contains(", 364 days left; CA until "));
        assert_eq!(
            again.unchanged[1],
            "mutatingwebhookconfiguration floe-guard: caBundle up to date on 1 webhook(s)"
        );
    }

    #[test]
    fn a_serving_certificate_near_expiry_is_renewed_with_the_same_ca() {
        let t0 = now();
        let before = installed(t0);
        let later = t0 + 340 * DAY;
        let p = plan(&before, &target(), later).unwrap();
        // caBundle already trusts the CA: only the Secret changes.
        assert_eq!(kinds(&p), ["replace"]);
        assert!(
            p.steps[0]
                .summary()
                .contains("serving certificate renewed: it expires on ")
                && p.steps[0].summary().contains("(25 days left)")
                && p.steps[0].summary().contains("same CA"),
            "{}",
            p.steps[0].summary()
        );
        let after = apply(&before, &p);
        assert_eq!(data(&after, CA_CRT), data(&before, CA_CRT));
        assert_eq!(data(&after, CA_KEY), data(&before, CA_KEY));
        assert_ne!(data(&after, TLS_CRT), data(&before, TLS_CRT));
        assert_ne!(data(&after, TLS_KEY), data(&before, TLS_KEY));
        // The renewed certificate verifies against the unchanged caBundle,
        // beyond the old certificate's expiry.
        for bundle in bundles(&after) {
            assert!(trusted(&bundle, data(&after, TLS_CRT), later + 100 * DAY));
        }
        assert!(!trusted(
            &bundles(&after)[0],
            data(&before, TLS_CRT),
            later + 100 * DAY
        ));
        // The reloaded CA signs with its own identifiers: the renewed
        // certificate's authorityKeyIdentifier is the CA's subjectKeyIdentifier
        // (Go's verifier, the API server's, prefers parents by key id).
        let (ca_der, leaf_der) = (
            pem_certs(data(&after, CA_CRT)).remove(0),
            pem_certs(data(&after, TLS_CRT)).remove(0),
        );
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (_, leaf_cert) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        let ski = ca_cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
                _ => None,
            })
            .unwrap();
        let aki = leaf_cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0)
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);
        assert_eq!(leaf_cert.issuer(), ca_cert.subject());
        // The Secret is replaced, not recreated: its metadata is kept.
        let Step::ReplaceSecret { secret, .. } = &p.steps[0] else {
            unreachable!()
        };
        assert_eq!(secret.metadata, before.secret.as_ref().unwrap().metadata);
        assert!(plan(&after, &target(), later).unwrap().steps.is_empty());
    }

    #[test]
    fn a_ca_near_expiry_is_rotated_with_old_and_new_ca_trusted_meanwhile() {
        let t0 = now();
        let installed = installed(t0);
        // Renewals kept the serving certificate fresh, with the same CA.
        let renewed_at = t0 + 3250 * DAY;
        let before = apply(
            &installed,
            &plan(&installed, &target(), renewed_at).unwrap(),
        );
        assert_eq!(data(&before, CA_CRT), data(&installed, CA_CRT));
        // The CA lives 3650 days; 390 left < 365 + 30 needed.
        let later = t0 + 3260 * DAY;
        let p = plan(&before, &target(), later).unwrap();
        // caBundle first (old + new), then the Secret: no pod ever serves a
        // certificate the API server does not trust.
        assert_eq!(kinds(&p), ["patch-mutating", "patch-validating", "replace"]);
        assert!(
            p.steps[2]
                .summary()
                .contains("new CA and serving certificate: the CA expires on "),
            "{}",
            p.steps[2].summary()
        );
        assert!(
            p.steps[0].summary().ends_with("(2 CA(s))"),
            "{}",
            p.steps[0].summary()
        );
        let after = apply(&before, &p);
        assert_ne!(data(&after, CA_CRT), data(&before, CA_CRT));
        let cas = pem_certs(&p.bundle);
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0], pem_certs(data(&after, CA_CRT))[0], "new CA first");
        assert_eq!(cas[1], pem_certs(data(&before, CA_CRT))[0], "old CA kept");
        for bundle in bundles(&after) {
            // Pods still serving the old certificate, and those with the new one.
            assert!(trusted(&bundle, data(&before, TLS_CRT), later));
            assert!(trusted(&bundle, data(&after, TLS_CRT), later));
        }
        // Idempotent: the old CA stays while it is valid.
        let again = plan(&after, &target(), later + DAY).unwrap();
        assert!(again.steps.is_empty(), "{:?}", again.steps);
    }

    #[test]
    fn expired_cas_are_trimmed_from_the_bundle() {
        let t0 = now();
        let rotated_at = t0 + 3260 * DAY;
        let before = installed(t0);
        let rotated = apply(&before, &plan(&before, &target(), rotated_at).unwrap());
        assert_eq!(pem_certs(&bundles(&rotated)[0]).len(), 2);
        // The old CA expired (3650 days after t0), at the run that also
        // renews the serving certificate of the rotation.
        let later = t0 + 3651 * DAY;
        let p = plan(&rotated, &target(), later).unwrap();
        assert_eq!(kinds(&p), ["patch-mutating", "patch-validating", "replace"]);
        assert!(
            p.steps[2].summary().contains("same CA"),
            "{}",
            p.steps[2].summary()
        );
        assert!(
            p.steps[0]
                .summary()
                .ends_with("(1 CA(s); dropped 1 expired or unused CA(s))"),
            "{}",
            p.steps[0].summary()
        );
        let after = apply(&rotated, &p);
        for bundle in bundles(&after) {
            assert_eq!(pem_certs(&bundle), pem_certs(data(&after, CA_CRT)));
            assert!(trusted(&bundle, data(&after, TLS_CRT), later));
        }
        assert!(plan(&after, &target(), later).unwrap().steps.is_empty());
    }

    #[test]
    fn a_ca_never_stored_is_dropped_and_an_older_valid_one_kept() {
        let now = now();
        let mut current = installed(now);
        let older = Ca::generate(3650, now - 10 * DAY).unwrap();
        let orphan = Ca::generate(3650, now + DAY).unwrap();
        let expired = Ca::generate(5, now - 10 * DAY).unwrap();
        let mut bundle = bundles(&current)[0].clone();
        for ca in [&older, &orphan, &expired] {
            bundle.extend_from_slice(ca.cert_pem.as_bytes());
        }
        bundle.extend_from_slice(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        let entry = &mut current
            .mutating
            .as_mut()
            .unwrap()
            .webhooks
            .as_mut()
            .unwrap()[0];
        entry.client_config.ca_bundle = Some(ByteString(bundle));
        let p = plan(&current, &target(), now + DAY).unwrap();
        assert_eq!(
            pem_certs(&p.bundle),
            [
                pem_certs(data(&current, CA_CRT))[0].clone(),
                first_der(&older.cert_pem)
            ]
        );
        // The validating configuration lacks the older CA: both are patched.
        assert_eq!(kinds(&p), ["patch-mutating", "patch-validating"]);
        assert!(
            p.steps[0]
                .summary()
                .ends_with("dropped 2 expired or unused CA(s))"),
            "{}",
            p.steps[0].summary()
        );
    }

    #[test]
    fn a_changed_service_name_renews_the_certificate_with_the_same_ca() {
        let now = now();
        let before = installed(now);
        let renamed = Target {
            service: "guard".into(),
            ..target()
        };
        let p = plan(&before, &renamed, now).unwrap();
        assert_eq!(kinds(&p), ["replace"]);
        assert!(
            p.steps[0].summary().contains(
                "it names floe-guard, floe-guard.floe-guard, floe-guard.floe-guard.svc, floe-guard.floe-guard.svc.cluster.local, not guard, guard.floe-guard, guard.floe-guard.svc, guard.floe-guard.svc.cluster.local"
            ),
            "{}",
            p.steps[0].summary()
        );
        let after = apply(&before, &p);
        assert_eq!(data(&after, CA_CRT), data(&before, CA_CRT));
        let der = pem_certs(data(&after, TLS_CRT)).remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let (dns, ips) = cert_sans(&cert);
        assert_eq!(
            dns.into_iter().collect::<Vec<_>>(),
            [
                "guard",
                "guard.floe-guard",
                "guard.floe-guard.svc",
                "guard.floe-guard.svc.cluster.local"
            ]
        );
        assert!(ips.is_empty());
        assert!(plan(&after, &renamed, now).unwrap().steps.is_empty());
    }

    #[test]
    fn a_secret_without_ca_key_gets_a_new_ca_and_its_old_ca_stays_trusted() {
        // As `certs generate -o secret` or another tool writes it.
        let now = now();
        let generated =
            Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 365).unwrap();
        let mut current = cluster(0);
        let mut secret = Secret {
            metadata: ObjectMeta {
                name: Some("floe-guard-tls".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            type_: Some(TLS_SECRET_TYPE.into()),
            ..Secret::default()
        };
        let data_map = secret.data.get_or_insert_with(Default::default);
        for (k, v) in generated.secret_data() {
            data_map.insert(k.into(), ByteString(v.as_bytes().to_vec()));
        }
        current.secret = Some(secret);
        let p = plan(&current, &target(), now).unwrap();
        assert_eq!(kinds(&p), ["patch-mutating", "patch-validating", "replace"]);
        assert!(
            p.steps[2].summary().contains("the Secret has no ca.key"),
            "{}",
            p.steps[2].summary()
        );
        let after = apply(&current, &p);
        assert_eq!(
            after
                .secret
                .as_ref()
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some("7")
        );
        for bundle in bundles(&after) {
            assert!(trusted(&bundle, generated.tls_crt.as_bytes(), now));
            assert!(trusted(&bundle, data(&after, TLS_CRT), now));
        }
        assert!(plan(&after, &target(), now).unwrap().steps.is_empty());
    }

    #[test]
    fn a_serving_key_that_does_not_match_is_replaced() {
        let now = now();
        let mut current = installed(now);
        let other =
            Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 365).unwrap();
        current
            .secret
            .as_mut()
            .unwrap()
            .data
            .as_mut()
            .unwrap()
            .insert(TLS_KEY.into(), ByteString(other.tls_key.into_bytes()));
        let p = plan(&current, &target(), now).unwrap();
        assert_eq!(kinds(&p), ["replace"]);
        assert!(
            p.steps[0]
                .summary()
                .contains("its tls.key does not match tls.crt")
        );
    }

    #[test]
    fn a_secret_of_another_type_is_an_error_naming_it() {
        let mut current = cluster(0);
        current.secret = Some(Secret {
            type_: Some("Opaque".into()),
            ..Secret::default()
        });
        let err = plan(&current, &target(), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret floe-guard/floe-guard-tls has type \"Opaque\", not kubernetes.io/tls, and a Secret's type cannot be changed: delete it and run again"
        );
    }

    #[test]
    fn missing_webhook_configurations_are_reported_not_fatal() {
        // The chart's pre-install run: nothing of the release exists yet.
        let now = now();
        let p = plan(&Current::default(), &target(), now).unwrap();
        assert_eq!(kinds(&p), ["create"]);
        assert_eq!(
            p.unchanged,
            [
                "mutatingwebhookconfiguration floe-guard: not found, caBundle not set (run again once it exists; the chart's post-install Job does)",
                "validatingwebhookconfiguration floe-guard: not found, caBundle not set (run again once it exists; the chart's post-install Job does)",
            ]
        );
        // The post-install run: only caBundle is left to do.
        let mut current = cluster(0);
        current.secret = apply(&Current::default(), &p).secret;
        let post = plan(&current, &target(), now).unwrap();
        assert_eq!(kinds(&post), ["patch-mutating", "patch-validating"]);
    }

    #[test]
    fn short_validities_are_renewed_in_their_last_third_only() {
        assert_eq!(renew_before(365), 30 * DAY);
        assert_eq!(renew_before(9), 3 * DAY);
        assert_eq!(ca_days(365), 3650);
        assert_eq!(ca_days(3650), 7330);
        let short = Target {
            days: 9,
            ..target()
        };
        let now = now();
        let before = cluster(0);
        let after = apply(&before, &plan(&before, &short, now).unwrap());
        assert!(
            plan(&after, &short, now + 5 * DAY)
                .unwrap()
                .steps
                .is_empty()
        );
        assert_eq!(
            kinds(&plan(&after, &short, now + 7 * DAY).unwrap()),
            ["replace"]
        );
        // The longest validity still reuses its CA.
        let long = Target {
            days: crate::certs::MAX_DAYS,
            ..target()
        };
        let after = apply(&before, &plan(&before, &long, now).unwrap());
        let renewed = plan(&after, &long, now + 3630 * DAY).unwrap();
        assert_eq!(kinds(&renewed), ["replace"]);
        assert!(renewed.steps[0].summary().contains("same CA"));
    }
}
