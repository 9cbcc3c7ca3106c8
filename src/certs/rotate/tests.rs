//! The plan, step by step, with the clock moved by hand: what is written,
//! in which order, and that whatever the pods serve at any moment is trusted
//! by every `caBundle` at that moment.

use super::*;
use crate::certs::generate::{Bundle, SanList};
use crate::certs::inspect::cert_sans;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, ValidatingWebhook, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);
/// The writes of a CA rotation, in order: the new CA stored, trusted beside
/// the old one, then signing the serving certificate.
const ROTATION: [&str; 4] = [
    "replace-ca",
    "patch-mutating",
    "patch-validating",
    "replace",
];

/// Now, to the second (as certificates encode it).
fn now() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// The manifests' Job: 90-day serving certificates, a one-year CA, an hour
/// of overlap.
fn target() -> Target {
    Target {
        service: "floe-guard".into(),
        namespace: "floe-guard".into(),
        secret: "floe-guard-tls".into(),
        ca_secret: "floe-guard-ca".into(),
        webhook: "floe-guard".into(),
        days: 90,
        ca_days: DEFAULT_CA_DAYS,
        overlap: DEFAULT_OVERLAP,
        rotate_ca: false,
    }
}

fn rotate() -> Target {
    Target {
        rotate_ca: true,
        ..target()
    }
}

fn entry_config() -> WebhookClientConfig {
    WebhookClientConfig::default()
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
            client_config: entry_config(),
            ..MutatingWebhook::default()
        })
        .collect();
    Current {
        mutating: Some(MutatingWebhookConfiguration {
            metadata: meta("11"),
            webhooks: Some(mutating),
        }),
        validating: Some(ValidatingWebhookConfiguration {
            metadata: meta("12"),
            webhooks: Some(vec![ValidatingWebhook {
                name: "namespaces.floe-guard.floe.dev".into(),
                client_config: entry_config(),
                ..ValidatingWebhook::default()
            }]),
        }),
        ..Current::default()
    }
}

/// What the API server holds after one write.
fn apply_step(current: &mut Current, step: &Step) {
    match step {
        Step::CreateSecret { secret, .. } | Step::ReplaceSecret { secret, .. } => {
            let slot = match secret.metadata.name.as_deref() {
                Some("floe-guard-ca") => &mut current.ca_secret,
                _ => &mut current.secret,
            };
            *slot = Some((**secret).clone());
        }
        Step::PatchWebhooks { kind, patch, .. } => {
            for w in patch["webhooks"].as_array().unwrap() {
                let name = w["name"].as_str().unwrap();
                let bundle = base64::engine::general_purpose::STANDARD
                    .decode(w["clientConfig"]["caBundle"].as_str().unwrap())
                    .unwrap();
                let config = match kind {
                    WebhookKind::Mutating => current
                        .mutating
                        .as_mut()
                        .unwrap()
                        .webhooks
                        .iter_mut()
                        .flatten()
                        .find(|e| e.name == name)
                        .map(|e| &mut e.client_config),
                    WebhookKind::Validating => current
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

/// Applies the plan one write at a time and checks after each write that
/// every certificate the pods may serve (the one they served before, and
/// the one in the serving Secret now) is trusted by every `caBundle`.
fn apply(current: &Current, plan: &Plan, at: SystemTime) -> Current {
    let mut next = current.clone();
    let served_before = current
        .secret
        .as_ref()
        .map(|_| data(current, TLS_CRT).to_vec());
    for step in &plan.steps {
        apply_step(&mut next, step);
        let mut served: Vec<Vec<u8>> = served_before.iter().cloned().collect();
        if next.secret.is_some() {
            served.push(data(&next, TLS_CRT).to_vec());
        }
        for bundle in bundles(&next).iter().filter(|b| !b.is_empty()) {
            for leaf in &served {
                assert!(
                    trusted(bundle, leaf, at),
                    "after {:?} a served certificate is not trusted",
                    step.summary()
                );
            }
        }
    }
    next
}

fn data<'a>(current: &'a Current, key: &str) -> &'a [u8] {
    secret::value(current.secret.as_ref().unwrap(), key).unwrap()
}

fn ca_cert(current: &Current) -> Vec<u8> {
    first_der(secret::text(current.ca_secret.as_ref().unwrap(), TLS_CRT).unwrap())
}

/// Every caBundle of both configurations.
fn bundles(current: &Current) -> Vec<Vec<u8>> {
    webhook_entries(current)
        .into_iter()
        .map(|(_, b)| b.to_vec())
        .collect()
}

/// Whether a client trusting `bundle` accepts `leaf_pem` for its first DNS
/// name at `at`.
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
    let der = pem_certs(leaf_pem).remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let dns = cert_sans(&cert).0.into_iter().next().unwrap();
    let leaf = CertificateDer::from(der.clone());
    let name = ServerName::try_from(dns).unwrap();
    let at = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], at)
        .is_ok()
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.steps
        .iter()
        .map(|s| match s {
            Step::CreateSecret { secret, .. } if is_ca(secret) => "create-ca",
            Step::CreateSecret { .. } => "create",
            Step::ReplaceSecret { secret, .. } if is_ca(secret) => "replace-ca",
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

fn is_ca(secret: &Secret) -> bool {
    secret.metadata.name.as_deref() == Some("floe-guard-ca")
}

/// Plans and applies at `at`.
fn run(current: &Current, target: &Target, at: SystemTime) -> (Plan, Current) {
    let p = plan(current, target, at).unwrap();
    let next = apply(current, &p, at);
    (p, next)
}

/// A fresh install at `now`, applied.
fn installed(now: SystemTime) -> Current {
    run(&cluster(0), &target(), now).1
}

#[test]
fn fresh_install_creates_the_ca_secret_the_serving_secret_then_sets_every_ca_bundle() {
    let now = now();
    let before = cluster(1);
    let (p, after) = run(&before, &target(), now);
    assert_eq!(
        kinds(&p),
        ["create-ca", "create", "patch-mutating", "patch-validating"]
    );
    assert!(
        p.steps[0]
            .summary()
            .starts_with("secret floe-guard/floe-guard-ca: created (new CA, valid until "),
        "{}",
        p.steps[0].summary()
    );
    assert!(
        p.steps[1].summary().starts_with(
            "secret floe-guard/floe-guard-tls: created (serving certificate valid until "
        ),
        "{}",
        p.steps[1].summary()
    );
    // The serving Secret holds no CA key; the CA Secret holds the CA.
    let serving = after.secret.as_ref().unwrap();
    assert_eq!(serving.type_.as_deref(), Some(TLS_SECRET_TYPE));
    assert_eq!(
        serving.data.as_ref().unwrap().keys().collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    let ca = after.ca_secret.as_ref().unwrap();
    assert_eq!(
        ca.data.as_ref().unwrap().keys().collect::<Vec<_>>(),
        ["tls.crt", "tls.key"]
    );
    assert_eq!(pem_certs(data(&after, CA_CRT)), [ca_cert(&after)]);
    // The CA lives the configured year, not ten.
    let info = CertInfo::parse(&ca_cert(&after)).unwrap();
    assert_eq!(
        info.not_after.duration_since(now).unwrap(),
        DEFAULT_CA_DAYS * DAY
    );
    // Both entries of the mutating configuration, with the read
    // resourceVersion as a precondition.
    let Step::PatchWebhooks { patch, summary, .. } = &p.steps[2] else {
        unreachable!()
    };
    assert_eq!(patch["metadata"]["resourceVersion"], "11");
    assert_eq!(patch["webhooks"].as_array().unwrap().len(), 2);
    assert_eq!(
        summary,
        "mutatingwebhookconfiguration floe-guard: caBundle set on pods0.floe-guard.floe.dev, pods1.floe-guard.floe.dev (1 CA(s))"
    );
    for bundle in bundles(&after) {
        assert_eq!(bundle, p.bundle);
        assert_eq!(pem_certs(&bundle), [ca_cert(&after)]);
    }
}

#[test]
fn a_second_run_changes_nothing_and_says_so() {
    let now = now();
    let after = installed(now);
    let again = plan(&after, &target(), now + DAY).unwrap();
    assert!(again.steps.is_empty(), "{:?}", again.steps);
    assert!(again.notes.is_empty(), "{:?}", again.notes);
    assert_eq!(again.unchanged.len(), 4);
    assert!(
        again.unchanged[0].starts_with(
            "secret floe-guard/floe-guard-tls: up to date (serving certificate valid until "
        ) && again.unchanged[0].contains(", 89 days left; CA made "),
        "{}",
        again.unchanged[0]
    );
    assert!(
        again.unchanged[1].starts_with(
            "mutatingwebhookconfiguration floe-guard: caBundle up to date on 1 webhook(s)"
        ),
        "{}",
        again.unchanged[1]
    );
    assert!(
        again.unchanged[3].starts_with("secret floe-guard/floe-guard-ca: up to date (CA made "),
        "{}",
        again.unchanged[3]
    );
}

#[test]
fn a_serving_certificate_near_expiry_is_renewed_with_the_same_ca() {
    let t0 = now();
    let before = installed(t0);
    let later = t0 + 65 * DAY;
    let (p, after) = run(&before, &target(), later);
    // caBundle already trusts the CA: only the serving Secret changes.
    assert_eq!(kinds(&p), ["replace"]);
    assert!(
        p.steps[0]
            .summary()
            .contains("serving certificate renewed: it expires on ")
            && p.steps[0].summary().contains("(25 days left)"),
        "{}",
        p.steps[0].summary()
    );
    assert_eq!(after.ca_secret, before.ca_secret);
    assert_eq!(data(&after, CA_CRT), data(&before, CA_CRT));
    assert_ne!(data(&after, TLS_KEY), data(&before, TLS_KEY));
    for bundle in bundles(&after) {
        assert!(trusted(&bundle, data(&after, TLS_CRT), later + 60 * DAY));
    }
    // The reloaded CA signs with its own identifiers: the renewed
    // certificate's authorityKeyIdentifier is the CA's subjectKeyIdentifier
    // (Go's verifier, the API server's, prefers parents by key id).
    use x509_parser::extensions::ParsedExtension;
    let key_ids = |der: &[u8]| {
        let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
        let (mut ski, mut aki) = (None, None);
        for e in c.extensions() {
            match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => {}
            }
        }
        (ski, aki)
    };
    let (_, leaf_aki) = key_ids(&pem_certs(data(&after, TLS_CRT))[0]);
    let (ca_ski, _) = key_ids(&ca_cert(&after));
    assert!(leaf_aki.is_some());
    assert_eq!(leaf_aki, ca_ski);
    // The Secret is replaced, not recreated: its metadata is kept.
    let Step::ReplaceSecret { secret, .. } = &p.steps[0] else {
        unreachable!()
    };
    assert_eq!(secret.metadata, before.secret.as_ref().unwrap().metadata);
    assert!(plan(&after, &target(), later).unwrap().steps.is_empty());
}

#[test]
fn rotate_ca_trusts_both_cas_through_the_overlap_then_drops_the_old_one() {
    let t0 = now();
    let before = installed(t0);
    let t1 = t0 + 10 * DAY;
    // 1. The new CA is stored first, trusted beside the old one, and only
    //    then signs the serving certificate (`apply` checks each write).
    let (p, rotated) = run(&before, &rotate(), t1);
    assert_eq!(kinds(&p), ROTATION);
    assert!(
        p.steps[0]
            .summary()
            .starts_with("secret floe-guard/floe-guard-ca: new CA (--rotate-ca), valid until "),
        "{}",
        p.steps[0].summary()
    );
    assert!(
        p.steps[1].summary().ends_with("(2 CA(s))"),
        "{}",
        p.steps[1].summary()
    );
    assert!(
        p.steps[3]
            .summary()
            .contains("serving certificate renewed: signed by the new CA"),
        "{}",
        p.steps[3].summary()
    );
    assert_eq!(
        p.notes,
        [format!(
            "1 superseded CA(s) stay trusted until {}: run certs install again after that to drop them",
            minute(t1 + HOUR)
        )]
    );
    let (old_ca, new_ca) = (ca_cert(&before), ca_cert(&rotated));
    assert_ne!(old_ca, new_ca);
    assert_eq!(pem_certs(&p.bundle), [new_ca.clone(), old_ca.clone()]);

    // 2. A retried Job inside the overlap rotates nothing more.
    let again = plan(&rotated, &rotate(), t1 + HOUR / 2).unwrap();
    assert!(again.steps.is_empty(), "{:?}", again.steps);
    assert!(
        again.notes[0].starts_with("--rotate-ca: the CA was made at "),
        "{:?}",
        again.notes
    );
    assert!(
        plan(&rotated, &target(), t1 + HOUR / 2)
            .unwrap()
            .steps
            .is_empty()
    );

    // 3. After the overlap, the old CA leaves every caBundle.
    let t2 = t1 + HOUR + Duration::from_secs(60);
    let (p, done) = run(&rotated, &target(), t2);
    assert_eq!(kinds(&p), ["patch-mutating", "patch-validating"]);
    assert!(
        p.steps[0]
            .summary()
            .ends_with("(1 CA(s); dropped 1 expired, superseded or unknown CA(s))"),
        "{}",
        p.steps[0].summary()
    );
    for bundle in bundles(&done) {
        assert_eq!(pem_certs(&bundle), std::slice::from_ref(&new_ca));
        assert!(!trusted(&bundle, data(&before, TLS_CRT), t2));
    }
    assert!(plan(&done, &target(), t2).unwrap().steps.is_empty());
}

#[test]
fn a_ca_near_expiry_is_rotated_the_same_way() {
    let t0 = now();
    let mut state = installed(t0);
    let first_ca = ca_cert(&state);
    // Renewals every 65 days keep the serving certificate fresh with the
    // same CA; with 55 days left (< 2 × 30) the CA is replaced.
    for day in [65, 130, 195, 260] {
        state = run(&state, &target(), t0 + day * DAY).1;
    }
    let old_ca = ca_cert(&state);
    assert_eq!(old_ca, first_ca);
    let t1 = t0 + 310 * DAY;
    let (p, rotated) = run(&state, &target(), t1);
    assert_eq!(kinds(&p), ROTATION);
    assert!(
        p.steps[0].summary().contains("new CA (the CA expires on "),
        "{}",
        p.steps[0].summary()
    );
    assert_ne!(ca_cert(&rotated), old_ca);
    let (_, done) = run(&rotated, &target(), t1 + 2 * HOUR);
    for bundle in bundles(&done) {
        assert_eq!(pem_certs(&bundle), [ca_cert(&rotated)]);
    }
}

#[test]
fn a_serving_certificate_never_outlives_its_ca() {
    let t0 = now();
    let short_ca = Target {
        days: 365,
        ca_days: 100,
        ..target()
    };
    let (_, after) = run(&cluster(0), &short_ca, t0);
    let leaf = CertInfo::parse(&pem_certs(data(&after, TLS_CRT))[0]).unwrap();
    let ca = CertInfo::parse(&ca_cert(&after)).unwrap();
    assert_eq!(leaf.not_after, ca.not_after);
    // Reused while more than twice the window (2 × 30 days) is left.
    assert!(
        plan(&after, &short_ca, t0 + 39 * DAY)
            .unwrap()
            .steps
            .is_empty()
    );
    assert_eq!(
        kinds(&plan(&after, &short_ca, t0 + 41 * DAY).unwrap()),
        ROTATION
    );
}

#[test]
fn a_ca_key_in_the_serving_secret_moves_to_the_ca_secret() {
    // As earlier releases wrote it: the CA key beside the serving pair.
    let t0 = now();
    let mut legacy = installed(t0);
    let ca = legacy.ca_secret.take().unwrap();
    let key = secret::text(&ca, TLS_KEY).unwrap().to_owned();
    secret::set(legacy.secret.as_mut().unwrap(), &[(LEGACY_CA_KEY, &key)]);
    let (p, after) = run(&legacy, &target(), t0 + DAY);
    assert_eq!(kinds(&p), ["create-ca", "replace"]);
    assert!(
        p.steps[0]
            .summary()
            .contains("CA moved here from the ca.key of secret floe-guard/floe-guard-tls"),
        "{}",
        p.steps[0].summary()
    );
    // Same CA and serving pair; no CA key left where the pods mount from.
    assert_eq!(ca_cert(&after), ca_cert(&installed_like(&ca)));
    assert_eq!(data(&after, TLS_CRT), data(&legacy, TLS_CRT));
    assert!(secret::value(after.secret.as_ref().unwrap(), LEGACY_CA_KEY).is_none());
    assert!(plan(&after, &target(), t0 + DAY).unwrap().steps.is_empty());
}

fn installed_like(ca_secret: &Secret) -> Current {
    Current {
        ca_secret: Some(ca_secret.clone()),
        ..Current::default()
    }
}

#[test]
fn a_ca_never_stored_is_dropped_and_an_older_one_kept_only_through_the_overlap() {
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
    let p = plan(&current, &target(), now + HOUR / 2).unwrap();
    assert_eq!(
        pem_certs(&p.bundle),
        [ca_cert(&current), first_der(&older.cert_pem)]
    );
    // The validating configuration lacks the older CA: both are patched.
    assert_eq!(kinds(&p), ["patch-mutating", "patch-validating"]);
    assert!(
        p.steps[0]
            .summary()
            .ends_with("dropped 2 expired, superseded or unknown CA(s))"),
        "{}",
        p.steps[0].summary()
    );
    let p = plan(&current, &target(), now + 2 * HOUR).unwrap();
    assert_eq!(pem_certs(&p.bundle), [ca_cert(&current)]);
}

#[test]
fn a_changed_service_name_renews_the_certificate_with_the_same_ca() {
    let now = now();
    let before = installed(now);
    let renamed = Target {
        service: "guard".into(),
        ..target()
    };
    let (p, after) = run(&before, &renamed, now);
    assert_eq!(kinds(&p), ["replace"]);
    assert!(
        p.steps[0].summary().contains(
            "it names floe-guard, floe-guard.floe-guard, floe-guard.floe-guard.svc, floe-guard.floe-guard.svc.cluster.local, not guard, guard.floe-guard, guard.floe-guard.svc, guard.floe-guard.svc.cluster.local"
        ),
        "{}",
        p.steps[0].summary()
    );
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
fn a_secret_from_certs_generate_gets_a_ca_secret_and_its_old_ca_stays_trusted_meanwhile() {
    let now = now();
    let generated =
        Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 365).unwrap();
    let mut current = cluster(0);
    let mut s = secret::tls_secret(&generated, "floe-guard-tls", "floe-guard");
    s.metadata.resource_version = Some("7".into());
    current.secret = Some(s);
    let (p, after) = run(&current, &target(), now);
    assert_eq!(
        kinds(&p),
        ["create-ca", "patch-mutating", "patch-validating", "replace"]
    );
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
    }
    assert!(plan(&after, &target(), now).unwrap().steps.is_empty());
}

#[test]
fn a_serving_key_that_does_not_match_is_replaced() {
    let now = now();
    let mut current = installed(now);
    let other = Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 365).unwrap();
    secret::set(
        current.secret.as_mut().unwrap(),
        &[(TLS_KEY, &other.tls_key)],
    );
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
    for ca in [false, true] {
        let mut current = cluster(0);
        let opaque = Some(Secret {
            type_: Some("Opaque".into()),
            ..Secret::default()
        });
        let name = if ca {
            current.ca_secret = opaque;
            "floe-guard-ca"
        } else {
            current.secret = opaque;
            "floe-guard-tls"
        };
        let err = plan(&current, &target(), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "secret floe-guard/{name} has type \"Opaque\", not kubernetes.io/tls, and a Secret's type cannot be changed: delete it and run again"
            )
        );
    }
}

#[test]
fn missing_webhook_configurations_are_reported_not_fatal() {
    // The chart's pre-install run: nothing of the release exists yet.
    let now = now();
    let p = plan(&Current::default(), &target(), now).unwrap();
    assert_eq!(kinds(&p), ["create-ca", "create"]);
    assert_eq!(
        p.unchanged,
        [
            "mutatingwebhookconfiguration floe-guard: not found, caBundle not set (run again once it exists; the chart's post-install Job does)",
            "validatingwebhookconfiguration floe-guard: not found, caBundle not set (run again once it exists; the chart's post-install Job does)",
        ]
    );
    // The post-install run: only caBundle is left to do.
    let pre = apply(&Current::default(), &p, now);
    let mut current = cluster(0);
    current.secret = pre.secret;
    current.ca_secret = pre.ca_secret;
    let post = plan(&current, &target(), now).unwrap();
    assert_eq!(kinds(&post), ["patch-mutating", "patch-validating"]);
}

#[test]
fn short_validities_are_renewed_in_their_last_third_only() {
    assert_eq!(renew_before(365), 30 * DAY);
    assert_eq!(renew_before(9), 3 * DAY);
    let short = Target {
        days: 9,
        ..target()
    };
    let now = now();
    let (_, after) = run(&cluster(0), &short, now);
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
}

#[test]
fn the_overlap_is_a_duration_such_as_1h_or_30m() {
    assert_eq!(parse_overlap("1h"), Ok(HOUR));
    assert_eq!(parse_overlap("30m"), Ok(HOUR / 2));
    assert_eq!(parse_overlap("2s"), Ok(Duration::from_secs(2)));
    assert!(
        parse_overlap("soon")
            .unwrap_err()
            .starts_with("expected a duration")
    );
    assert!(parse_overlap("-1h").is_err());
}
