//! The two decisions of [`super::plan`]: which CA signs (kept, moved out of
//! the serving Secret, or new), and whether the serving certificate is kept,
//! cleaned of a CA key, or reissued.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;

use super::{
    CA_CRT, Current, LEGACY_CA_KEY, PlanError, TLS_CRT, TLS_KEY, Target, ca_status, has_legacy_key,
    issued, renew_before, serving_text, stored_key, stored_leaf,
};
use crate::certs::generate::{Bundle, Ca, SanList};
use crate::certs::inspect::{
    CertInfo, cert_sans, date, days_between, first_der, key_matches, minute, pem_certs,
};
use crate::certs::secret;

/// The CA that signs after this run.
pub(super) struct CaDecision {
    pub(super) ca: Ca,
    /// Its certificate (DER).
    pub(super) der: Vec<u8>,
    /// Whether it is made in this run.
    pub(super) new: bool,
    /// The CA Secret to write, if it changes.
    pub(super) write: Option<Secret>,
    /// One line on the CA.
    pub(super) status: String,
    /// What the operator should know about `--rotate-ca`.
    pub(super) note: Option<String>,
    /// `notBefore` of the CA the Secrets held: newer CAs in a `caBundle`
    /// were never stored and are dropped.
    pub(super) previous_not_before: Option<SystemTime>,
}

/// Whether the serving Secret is kept or written.
pub(super) enum ServingDecision {
    Keep {
        status: String,
        /// When the current CA issued the stored serving certificate.
        issued_by_current: SystemTime,
    },
    Write {
        secret: Box<Secret>,
        why: String,
        /// The serving certificate the pods may still serve (DER).
        stored_leaf: Option<Vec<u8>>,
    },
}

impl ServingDecision {
    /// Whether the CA `ca_der` signed the serving certificate the pods may
    /// still serve (a Secret volume is updated about a minute after a write).
    pub(super) fn signed_by_stored(&self, ca_der: &[u8]) -> bool {
        let ServingDecision::Write {
            stored_leaf: Some(leaf),
            ..
        } = self
        else {
            return false;
        };
        let (Ok((_, leaf)), Ok((_, ca))) = (
            x509_parser::parse_x509_certificate(leaf),
            x509_parser::parse_x509_certificate(ca_der),
        ) else {
            return false;
        };
        leaf.verify_signature(Some(ca.public_key())).is_ok()
    }
}

/// One renewal window for the CA and the serving certificate.
fn window(target: &Target) -> Duration {
    renew_before(target.days.min(target.ca_days))
}

/// A stored CA reloaded for signing.
struct Stored {
    ca: Ca,
    der: Vec<u8>,
    info: CertInfo,
}

/// Reloads a CA that floe-guard made, from its certificate and key, or says
/// why it cannot sign.
fn reload(cert_pem: Option<&str>, key_pem: Option<&str>, key_name: &str) -> Result<Stored, String> {
    let cert_pem = cert_pem.ok_or("no CA certificate is stored")?;
    let der = first_der(cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| "the stored CA is not a valid X.509 certificate")?;
    if !cert.is_ca() {
        return Err("the stored CA certificate is not a CA".into());
    }
    if cert.subject().to_string() != Ca::subject() {
        return Err(format!(
            "the stored CA ({}) was not made by floe-guard",
            cert.subject()
        ));
    }
    let key_pem = key_pem.ok_or(format!("the Secret has no {key_name}"))?;
    if !key_matches(key_pem, &cert) {
        return Err(format!("its {key_name} does not match the CA certificate"));
    }
    let info = CertInfo::of(&cert);
    let ca = Ca::from_pem(cert_pem, key_pem, info.not_before, info.not_after)
        .map_err(|e| format!("its {key_name} cannot be loaded: {e}"))?;
    Ok(Stored { ca, der, info })
}

/// Decides which CA signs.
pub(super) fn ca_decision(
    current: &Current,
    target: &Target,
    now: SystemTime,
) -> Result<CaDecision, PlanError> {
    let ca_secret = current.ca_secret.as_ref();
    let (stored, moved) = match ca_secret {
        Some(s) => (
            reload(secret::text(s, TLS_CRT), secret::text(s, TLS_KEY), TLS_KEY),
            false,
        ),
        None if has_legacy_key(current) => (
            reload(
                serving_text(current, CA_CRT),
                serving_text(current, LEGACY_CA_KEY),
                LEGACY_CA_KEY,
            ),
            true,
        ),
        None => (Err("no CA yet".to_owned()), false),
    };
    let previous_not_before = match &stored {
        Ok(s) => Some(s.info.not_before),
        Err(_) => ca_secret
            .and_then(|s| secret::value(s, TLS_CRT))
            .or_else(|| {
                current
                    .secret
                    .as_ref()
                    .and_then(|s| secret::value(s, CA_CRT))
            })
            .and_then(|pem| pem_certs(pem).into_iter().next())
            .and_then(|der| CertInfo::parse(&der))
            .map(|info| info.not_before),
    };
    let mut note = None;
    let why_new = match &stored {
        Err(why) => Some(why.clone()),
        Ok(s) if s.info.not_before > now => Some(format!(
            "the CA is not valid before {}",
            date(s.info.not_before)
        )),
        Ok(s) if s.info.not_after < now + 2 * window(target) => {
            Some(format!("the CA expires on {}", date(s.info.not_after)))
        }
        Ok(s) if target.rotate_ca && now < issued(&s.info) + target.overlap => {
            note = Some(format!(
                "--rotate-ca: the CA was made at {}, less than the overlap ago; not rotated again",
                minute(issued(&s.info))
            ));
            None
        }
        Ok(_) if target.rotate_ca => Some("--rotate-ca".to_owned()),
        Ok(_) => None,
    };
    let ca_ref = format!("{}/{}", target.namespace, target.secret);
    Ok(match (why_new, stored) {
        (None, Ok(s)) => CaDecision {
            status: match moved {
                true => format!(
                    "CA moved here from the ca.key of secret {ca_ref}; {}",
                    ca_status(&s.ca, &s.info)
                ),
                false => ca_status(&s.ca, &s.info),
            },
            write: moved.then(|| {
                secret::ca_secret(
                    &s.ca.cert_pem,
                    &s.ca.key_pem,
                    &target.ca_secret,
                    &target.namespace,
                )
            }),
            ca: s.ca,
            der: s.der,
            new: false,
            note,
            previous_not_before,
        },
        (why, _) => {
            let ca = Ca::generate(target.ca_days, now)?;
            let write = match ca_secret {
                Some(s) => {
                    let mut s = secret::rewritten(s);
                    secret::set(&mut s, &[(TLS_CRT, &ca.cert_pem), (TLS_KEY, &ca.key_pem)]);
                    s
                }
                None => secret::ca_secret(
                    &ca.cert_pem,
                    &ca.key_pem,
                    &target.ca_secret,
                    &target.namespace,
                ),
            };
            let why = why.unwrap_or_default();
            CaDecision {
                der: first_der(&ca.cert_pem),
                status: match ca_secret {
                    None => format!("new CA, valid until {}", date(ca.not_after)),
                    Some(_) => format!("new CA ({why}), valid until {}", date(ca.not_after)),
                },
                write: Some(write),
                ca,
                new: true,
                note,
                previous_not_before,
            }
        }
    })
}

/// Decides whether the serving Secret is kept, cleaned or reissued.
pub(super) fn serving_decision(
    current: &Current,
    target: &Target,
    ca: &CaDecision,
    now: SystemTime,
) -> Result<ServingDecision, PlanError> {
    let sans = SanList::for_service(&target.service, &target.namespace);
    let stored = stored_leaf(current);
    let problem = match &current.secret {
        None => Some(String::new()),
        Some(_) if ca.new => Some("signed by the new CA".to_owned()),
        Some(_) => serving_problem(current, ca, &sans, window(target), now),
    };
    let issue = |why: &str| -> Result<ServingDecision, PlanError> {
        let bundle: Bundle = ca.ca.issue(&sans, target.days, now)?;
        let mut s = match &current.secret {
            Some(s) => secret::rewritten(s),
            None => secret::tls_secret(&bundle, &target.secret, &target.namespace),
        };
        secret::set_serving(&mut s, &bundle);
        let until = format!("serving certificate valid until {}", date(bundle.not_after));
        Ok(ServingDecision::Write {
            secret: Box::new(s),
            why: match why {
                "" => until,
                why => format!("serving certificate renewed: {why} ({until})"),
            },
            stored_leaf: stored.clone(),
        })
    };
    if let Some(why) = problem {
        return issue(&why);
    }
    let Some(s) = &current.secret else {
        return issue("");
    };
    let ca_pem = ca.ca.cert_pem.as_str();
    if has_legacy_key(current)
        || pem_certs(secret::value(s, CA_CRT).unwrap_or_default()) != pem_certs(ca_pem.as_bytes())
    {
        let mut clean = secret::rewritten(s);
        secret::set(&mut clean, &[(CA_CRT, ca_pem)]);
        if let Some(data) = clean.data.as_mut() {
            data.remove(LEGACY_CA_KEY);
        }
        return Ok(ServingDecision::Write {
            secret: Box::new(clean),
            why: format!(
                "ca.crt set to the current CA and no CA key kept (it lives in secret {}/{} only)",
                target.namespace, target.ca_secret
            ),
            stored_leaf: stored,
        });
    }
    let info = stored.as_deref().and_then(CertInfo::parse);
    let (not_after, issued_at) = info.map_or((now, now), |i| (i.not_after, issued(&i)));
    Ok(ServingDecision::Keep {
        status: format!(
            "serving certificate valid until {}, {} days left; {}",
            date(not_after),
            days_between(now, not_after),
            ca.status
        ),
        issued_by_current: issued_at,
    })
}

/// Why the stored serving certificate must be reissued, if it must.
fn serving_problem(
    current: &Current,
    ca: &CaDecision,
    sans: &SanList,
    window: Duration,
    now: SystemTime,
) -> Option<String> {
    let Some(der) = stored_leaf(current) else {
        return Some("the Secret has no tls.crt".into());
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Some("its tls.crt is not a valid X.509 certificate".into());
    };
    if !stored_key(current).is_some_and(|k| key_matches(k, &cert)) {
        return Some("its tls.key does not match tls.crt".into());
    }
    let Ok((_, ca_cert)) = x509_parser::parse_x509_certificate(&ca.der) else {
        return Some("the CA is not a valid X.509 certificate".into());
    };
    if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
        return Some("its tls.crt was not signed by the current CA".into());
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
