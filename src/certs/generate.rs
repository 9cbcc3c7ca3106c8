//! Certificate generation: a private CA and a serving certificate signed by
//! it, as PEM strings laid out like a cert-manager TLS Secret (`ca.crt`,
//! `tls.crt`, `tls.key`).
//!
//! Pure: keys are generated in memory (ECDSA P-256, ring); nothing is written.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// Longest validity [`Bundle::generate`] accepts, days (ten years).
pub const MAX_DAYS: u32 = 3650;

/// How far `notBefore` lies in the past, to tolerate clock skew between nodes.
pub(crate) const BACKDATE: Duration = Duration::from_secs(3600);

/// Why a bundle could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The certificate would name nothing.
    #[error("no DNS name or IP address to put in the certificate")]
    NoNames,
    /// A DNS name that is not a lowercase RFC 1123 subdomain.
    #[error(
        "invalid DNS name {0:?}: expected lowercase RFC 1123 labels (a-z, 0-9, '-') separated by dots"
    )]
    InvalidDnsName(String),
    /// A validity outside `1..=MAX_DAYS`.
    #[error("invalid validity {0} days: expected 1..={MAX_DAYS}")]
    InvalidDays(u32),
    /// rcgen or the key generator failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The subject alternative names of a serving certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanList {
    /// DNS names, in order; the first is also the subject common name.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
}

impl SanList {
    /// Sorts each name into an IP address (when it parses as one) or a DNS
    /// name, keeping order and dropping duplicates.
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut sans = Self::default();
        for name in names {
            sans.push(name.as_ref());
        }
        sans
    }

    /// The names of a Kubernetes Service (see [`service_names`]).
    pub fn for_service(service: &str, namespace: &str) -> Self {
        Self::from_names(service_names(service, namespace))
    }

    /// Adds `localhost`, `127.0.0.1` and `::1` (for local runs and tests).
    pub fn with_localhost(mut self) -> Self {
        for name in ["localhost", "127.0.0.1", "::1"] {
            self.push(name);
        }
        self
    }

    /// Adds one name (an IP address or a DNS name), unless already present.
    pub fn push(&mut self, name: &str) {
        match name.parse::<IpAddr>() {
            Ok(ip) if !self.ips.contains(&ip) => self.ips.push(ip),
            Ok(_) => {}
            Err(_) if !self.dns_names.iter().any(|n| n == name) => {
                self.dns_names.push(name.to_owned())
            }
            Err(_) => {}
        }
    }
}

/// The four DNS names under which a Service is reached in-cluster:
/// `S`, `S.NS`, `S.NS.svc`, `S.NS.svc.cluster.local`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A CA and a serving certificate it signed, PEM-encoded, with the key names
/// of a cert-manager TLS Secret.
#[derive(Clone)]
pub struct Bundle {
    /// `ca.crt`: the CA certificate (the webhook configuration's `caBundle`).
    pub ca_crt: String,
    /// `tls.crt`: the serving certificate.
    pub tls_crt: String,
    /// `tls.key`: the serving certificate's private key (PKCS#8).
    pub tls_key: String,
    /// When the serving certificate expires (`notAfter`).
    pub not_after: SystemTime,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_crt", &self.ca_crt)
            .field("tls_crt", &self.tls_crt)
            .field("tls_key", &"<redacted>")
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl Bundle {
    /// Generates a fresh CA (ECDSA P-256, path length 0) and a serving
    /// certificate for `sans`, both valid from an hour ago for `days` days.
    pub fn generate(sans: &SanList, days: u32) -> Result<Bundle, CertError> {
        check_sans(sans)?;
        check_days(days)?;
        let now = SystemTime::now();
        Ca::generate(days, now)?.issue(sans, days, now)
    }

    /// The Secret data: `(key, PEM)` for `ca.crt`, `tls.crt` and `tls.key`.
    pub fn secret_data(&self) -> [(&'static str, &str); 3] {
        [
            ("ca.crt", &self.ca_crt),
            ("tls.crt", &self.tls_crt),
            ("tls.key", &self.tls_key),
        ]
    }
}

/// Common name of every CA floe-guard generates; [`Ca::from_pem`] reloads
/// only such CAs.
const CA_COMMON_NAME: &str = "floe-guard CA";
/// Organization of every CA floe-guard generates.
const CA_ORGANIZATION: &str = "floe";

/// A private CA that can issue serving certificates: its certificate and its
/// key, PEM-encoded.
#[derive(Clone)]
pub struct Ca {
    /// The CA certificate (`ca.crt`).
    pub cert_pem: String,
    /// The CA's private key (PKCS#8).
    pub key_pem: String,
    /// When the CA expires: no certificate it issues outlives it.
    pub not_after: SystemTime,
    params: CertificateParams,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Ca {
    /// Generates a CA (ECDSA P-256, path length 0) valid from an hour before
    /// `now` for `days` days (any positive number: a CA may outlive
    /// [`MAX_DAYS`]).
    pub fn generate(days: u32, now: SystemTime) -> Result<Ca, CertError> {
        if days == 0 {
            return Err(CertError::InvalidDays(days));
        }
        let not_after = whole_seconds(now + days_duration(days));
        let params = ca_params(now - BACKDATE, not_after);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after,
            params,
        })
    }

    /// Reloads a CA that [`Ca::generate`] made, from its certificate (valid
    /// from `not_before` to `not_after`, as read from it) and its key. The
    /// caller checks that they belong together.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Ca, CertError> {
        KeyPair::from_pem(key_pem)?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            not_after,
            params: ca_params(not_before, not_after),
        })
    }

    /// The subject of every CA floe-guard generates, as RFC 4514 text
    /// (`CN=floe-guard CA, O=floe`), to recognise a reloadable CA.
    pub fn subject() -> String {
        format!("CN={CA_COMMON_NAME}, O={CA_ORGANIZATION}")
    }

    /// Issues a serving certificate for `sans`, valid from an hour before
    /// `now` for `days` days but not beyond the CA, with a fresh key.
    pub fn issue(&self, sans: &SanList, days: u32, now: SystemTime) -> Result<Bundle, CertError> {
        check_sans(sans)?;
        check_days(days)?;
        let not_before = now - BACKDATE;
        let not_after = whole_seconds((now + days_duration(days)).min(self.not_after));

        let mut leaf = CertificateParams::default();
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        let common_name = match sans.dns_names.first() {
            Some(name) => name.clone(),
            None => sans.ips[0].to_string(),
        };
        leaf.distinguished_name
            .push(DnType::CommonName, common_name);
        leaf.subject_alt_names = sans
            .dns_names
            .iter()
            .map(|n| Ok(rcgen::SanType::DnsName(n.as_str().try_into()?)))
            .chain(sans.ips.iter().map(|ip| Ok(rcgen::SanType::IpAddress(*ip))))
            .collect::<Result<_, rcgen::Error>>()?;
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = not_before.into();
        leaf.not_after = not_after.into();
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let issuer = Issuer::new(self.params.clone(), KeyPair::from_pem(&self.key_pem)?);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

        Ok(Bundle {
            ca_crt: self.cert_pem.clone(),
            tls_crt: leaf_cert.pem(),
            tls_key: leaf_key.serialize_pem(),
            not_after,
        })
    }
}

/// The parameters of a floe-guard CA valid from `not_before` to `not_after`.
fn ca_params(not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    ca.distinguished_name
        .push(DnType::OrganizationName, CA_ORGANIZATION);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before.into();
    ca.not_after = not_after.into();
    ca
}

/// `t` to the second, as a certificate encodes it.
fn whole_seconds(t: SystemTime) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
}

fn days_duration(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}

fn check_sans(sans: &SanList) -> Result<(), CertError> {
    if sans.dns_names.is_empty() && sans.ips.is_empty() {
        return Err(CertError::NoNames);
    }
    match sans.dns_names.iter().find(|n| !is_dns_name(n)) {
        Some(bad) => Err(CertError::InvalidDnsName(bad.clone())),
        None => Ok(()),
    }
}

fn check_days(days: u32) -> Result<(), CertError> {
    if days == 0 || days > MAX_DAYS {
        return Err(CertError::InvalidDays(days));
    }
    Ok(())
}

/// Whether `name` is a lowercase RFC 1123 subdomain (at most 253 characters,
/// labels of 1 to 63 `a-z0-9-` not starting or ending with `-`).
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
    }

    fn bundle() -> Bundle {
        let sans = SanList::for_service("floe-guard", "floe-guard").with_localhost();
        Bundle::generate(&sans, 30).expect("bundle")
    }

    #[test]
    fn service_names_are_the_four_in_cluster_names() {
        assert_eq!(
            service_names("floe-guard", "floe-guard"),
            [
                "floe-guard",
                "floe-guard.floe-guard",
                "floe-guard.floe-guard.svc",
                "floe-guard.floe-guard.svc.cluster.local",
            ]
        );
    }

    #[test]
    fn san_list_sorts_ips_from_names_and_drops_duplicates() {
        let sans = SanList::from_names(["a.b", "10.0.0.1", "a.b", "::1", "10.0.0.1"]);
        assert_eq!(sans.dns_names, ["a.b"]);
        assert_eq!(
            sans.ips,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn serving_certificate_carries_exactly_the_requested_sans() {
        let b = bundle();
        let leaf = der(&b.tls_crt);
        let (_, cert) = X509Certificate::from_der(&leaf).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns.push(n.to_string()),
                GeneralName::IPAddress(ip) => ips.push(ip.to_vec()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!(
            dns,
            [
                "floe-guard",
                "floe-guard.floe-guard",
                "floe-guard.floe-guard.svc",
                "floe-guard.floe-guard.svc.cluster.local",
                "localhost",
            ]
        );
        assert_eq!(
            ips,
            [
                vec![127, 0, 0, 1],
                [0; 15].iter().copied().chain([1]).collect()
            ]
        );
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
    }

    #[test]
    fn serving_certificate_is_signed_by_the_ca_and_verifies_like_a_client_would() {
        let b = bundle();
        let (ca_der, leaf_der) = (der(&b.ca_crt), der(&b.tls_crt));
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
        assert!(ca.is_ca());
        assert_eq!(leaf.issuer(), ca.subject());
        leaf.verify_signature(Some(ca.public_key())).unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .unwrap();
        for name in ["floe-guard.floe-guard.svc", "localhost", "127.0.0.1"] {
            let name = ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&leaf_der, &[], &name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        let other = ServerName::try_from("evil.example").unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf_der, &[], &other, &[], UnixTime::now())
                .is_err()
        );
    }

    #[test]
    fn key_matches_certificate_and_validity_is_the_requested_days() {
        let b = bundle();
        let leaf_der = der(&b.tls_crt);
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
        let key = KeyPair::from_pem(&b.tls_key).unwrap();
        assert_eq!(key.algorithm(), &PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            key.public_key_raw(),
            leaf.public_key().subject_public_key.data.as_ref()
        );
        assert!(PrivateKeyDer::from_pem_slice(b.tls_key.as_bytes()).is_ok());

        let not_after = leaf.validity().not_after.timestamp();
        let not_before = leaf.validity().not_before.timestamp();
        let expected = b
            .not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(not_after, expected);
        assert_eq!(not_after - not_before, 30 * 86_400 + 3600);
        assert_eq!(
            b.secret_data().map(|(k, _)| k),
            ["ca.crt", "tls.crt", "tls.key"]
        );
    }

    #[test]
    fn each_bundle_has_its_own_keys() {
        let (a, b) = (bundle(), bundle());
        assert_ne!(a.ca_crt, b.ca_crt);
        assert_ne!(a.tls_key, b.tls_key);
    }

    #[test]
    fn bad_inputs_are_rejected_with_the_reason() {
        let none = SanList::default();
        assert!(matches!(
            Bundle::generate(&none, 1),
            Err(CertError::NoNames)
        ));
        let upper = SanList::from_names(["Floe.Svc"]);
        assert_eq!(
            Bundle::generate(&upper, 1).unwrap_err().to_string(),
            "invalid DNS name \"Floe.Svc\": expected lowercase RFC 1123 labels (a-z, 0-9, '-') separated by dots"
        );
        for bad in ["", "a..b", "-a", "a-", "a_b", &"x".repeat(64)] {
            let sans = SanList::from_names([bad]);
            assert!(
                matches!(
                    Bundle::generate(&sans, 1),
                    Err(CertError::InvalidDnsName(_))
                ),
                "{bad:?}"
            );
        }
        let ok = SanList::from_names(["127.0.0.1"]);
        assert!(matches!(
            Bundle::generate(&ok, 0),
            Err(CertError::InvalidDays(0))
        ));
        assert!(matches!(
            Bundle::generate(&ok, MAX_DAYS + 1),
            Err(CertError::InvalidDays(_))
        ));
        assert!(Bundle::generate(&ok, MAX_DAYS).is_ok());
    }
}
