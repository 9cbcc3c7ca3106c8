//! Reading certificates back: PEM blocks (rustls-pki-types' `PemObject`),
//! validity, names and whether a key belongs to a certificate.
//!
//! Rule: PEM is read leniently, as `rustls-pemfile` did: text outside blocks
//! and blocks of other types are skipped, and reading stops at the first
//! malformed CERTIFICATE block (a `caBundle` with a broken tail keeps its
//! valid head).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// The DER of each CERTIFICATE block, up to the first malformed one.
pub fn pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem)
        .map_while(Result::ok)
        .map(|der| der.to_vec())
        .collect()
}

/// The DER of the first CERTIFICATE block (empty when there is none).
pub(crate) fn first_der(pem: &str) -> Vec<u8> {
    pem_certs(pem.as_bytes())
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// A certificate as PEM (64-character lines, LF).
pub(crate) fn pem(der: &[u8]) -> String {
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
pub(crate) fn key_matches(key_pem: &str, cert: &X509Certificate<'_>) -> bool {
    rcgen::KeyPair::from_pem(key_pem)
        .is_ok_and(|key| key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref())
}

/// The DNS names and IP addresses of a certificate's subjectAltName.
pub(crate) fn cert_sans(cert: &X509Certificate<'_>) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertInfo {
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

impl CertInfo {
    pub(crate) fn of(cert: &X509Certificate<'_>) -> CertInfo {
        CertInfo {
            not_before: system_time(cert.validity().not_before.timestamp()),
            not_after: system_time(cert.validity().not_after.timestamp()),
        }
    }

    pub(crate) fn parse(der: &[u8]) -> Option<CertInfo> {
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
pub(crate) fn date(t: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .map(|ts| ts.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn minute(t: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Whole days from `from` to `to` (0 when `to` is earlier).
pub(crate) fn days_between(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from).map_or(0, |d| d.as_secs() / 86_400)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::certs::{Bundle, SanList};
    use rustls_pki_types::PrivateKeyDer;

    /// An ECDSA P-256 key in SEC1 form (`EC PRIVATE KEY`), as cert-manager
    /// and `openssl ecparam -genkey` write it, and its self-signed
    /// certificate for `sec1.example`, valid until 2126.
    pub(crate) const SEC1_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIIPuabvIVkWo7nI+niYfOI3Im628z2JPpFDhbjSkJMjtoAoGCCqGSM49
AwEHoUQDQgAE+oVH1SPWQYZNwOsZkjhKQ0nFUld8HJzziH3iNNwPiqw/tWQ2y0h8
7Si1Z/mVlZQA5Fn8Ar+iWRPOrSDbaZ/TIw==
-----END EC PRIVATE KEY-----
";
    /// The certificate of [`SEC1_KEY`].
    pub(crate) const SEC1_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBnzCCAUSgAwIBAgIUL/jNo1dIzSnQe7q5R/GLeYZtqrwwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMc2VjMS5leGFtcGxlMCAXDTI2MTIwNDIzMTg0OFoYDzIxMjYx
MTEwMjMxODQ4WjAXMRUwEwYDVQQDDAxzZWMxLmV4YW1wbGUwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAT6hUfVI9ZBhk3A6xmSOEpDScVSV3wcnPOIfeI03A+KrD+1
ZDbLSHztKLVn+ZWVlADkWfwCv6JZE86tINtpn9Mjo2wwajAdBgNVHQ4EFgQUSxjb
znGM/6ywipjPL51d4JkaUBYwHwYDVR0jBBgwFoAUSxjbznGM/6ywipjPL51d4Jka
UBYwDwYDVR0TAQH/BAUwAwEB/zAXBgNVHREEEDAOggxzZWMxLmV4YW1wbGUwCgYI
KoZIzj0EAwIDSQAwRgIhALCEIUU2/xbY1iac0H40bdhuCzyHR0N9D/LVZaqYvLG6
AiEA/5cZ3gAKh0j0OtX9P3GuHR9xIqYUmnCxb3zbIpg/Eo4=
-----END CERTIFICATE-----
";

    fn bundle() -> Bundle {
        Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 30).unwrap()
    }

    #[test]
    fn garbage_holds_no_certificate() {
        for garbage in [
            &b""[..],
            b"not PEM at all",
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        ] {
            assert!(pem_certs(garbage).is_empty(), "{garbage:?}");
        }
    }

    #[test]
    fn a_chain_yields_every_certificate_in_order_and_skips_other_blocks() {
        let (a, b) = (bundle(), bundle());
        let text = format!(
            "leading text\n{}{}{}trailing text\n{}",
            a.tls_crt, a.tls_key, a.ca_crt, SEC1_CERT
        );
        assert_eq!(
            pem_certs(text.as_bytes()),
            [
                first_der(&a.tls_crt),
                first_der(&a.ca_crt),
                first_der(SEC1_CERT)
            ]
        );
        // Reading stops at the first malformed block, keeping the head.
        let broken = format!(
            "{}-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n{}",
            a.ca_crt, b.ca_crt
        );
        assert_eq!(pem_certs(broken.as_bytes()), [first_der(&a.ca_crt)]);
        // What `pem` writes reads back.
        let der = first_der(&b.ca_crt);
        assert_eq!(pem_certs(pem(&der).as_bytes()), [der]);
        assert_eq!(pem(&first_der(&b.ca_crt)), b.ca_crt);
    }

    #[test]
    fn pkcs8_keys_as_rcgen_writes_them_and_sec1_keys_as_cert_manager_writes_them_load() {
        let b = bundle();
        assert!(b.tls_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(matches!(
            PrivateKeyDer::from_pem_slice(b.tls_key.as_bytes()),
            Ok(PrivateKeyDer::Pkcs8(_))
        ));
        assert!(matches!(
            PrivateKeyDer::from_pem_slice(SEC1_KEY.as_bytes()),
            Ok(PrivateKeyDer::Sec1(_))
        ));
        assert!(PrivateKeyDer::from_pem_slice(b"garbage").is_err());
        assert!(PrivateKeyDer::from_pem_slice(b.tls_crt.as_bytes()).is_err());
        // The key matches its own certificate only.
        let der = first_der(&b.tls_crt);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(key_matches(&b.tls_key, &cert));
        assert!(!key_matches(&bundle().tls_key, &cert));
    }
}
