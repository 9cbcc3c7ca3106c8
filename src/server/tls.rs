//! TLS: the rustls server configuration and a certificate resolver whose
//! certificate is swapped atomically when the files on disk change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::metrics::Metrics;

/// Where the serving certificate comes from.
#[derive(Clone)]
pub enum TlsSource {
    /// PEM files (cert-manager's `tls.crt` / `tls.key`), watched for changes.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// PEM strings held in memory (`serve --self-signed`); never reloaded.
    Pem {
        /// Certificate chain, leaf first.
        cert: String,
        /// Private key.
        key: String,
    },
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files { cert, key } => f
                .debug_struct("Files")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            Self::Pem { .. } => f.write_str("Pem(<in memory>)"),
        }
    }
}

/// A loaded certificate with its expiry.
struct Loaded {
    key: Arc<CertifiedKey>,
    not_after: i64,
}

/// Parses a PEM chain and key into a rustls `CertifiedKey`, checking that the
/// key belongs to the leaf certificate.
fn load_pem(cert: &[u8], key: &[u8], provider: &CryptoProvider) -> anyhow::Result<Loaded> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("bad certificate PEM: {e}"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| anyhow!("no CERTIFICATE block in the certificate PEM"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| anyhow!("cannot parse the certificate: {e}"))?;
    let not_after = parsed.validity().not_after.timestamp();
    let key =
        PrivateKeyDer::from_pem_slice(key).map_err(|e| anyhow!("bad private key PEM: {e}"))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| anyhow!("certificate and key do not fit: {e}"))?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
    })
}

/// The current serving certificate, shared by every handshake.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .map_or_else(|p| p.into_inner().clone(), |k| k.clone()),
        )
    }
}

/// Reads certificate and key, for the first load and for each reload poll.
fn read_files(cert: &Path, key: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let c = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    Ok((c, k))
}

/// Loads the first certificate; for files, returns a task that polls them
/// every `interval` and swaps the certificate when their content changes. A
/// change that does not load keeps the previous certificate, logs an error and
/// sets `floe_guard_certificate_reload_failing`.
pub fn cert_store(
    source: &TlsSource,
    interval: Duration,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(
    Arc<CertStore>,
    Option<impl Future<Output = ()> + Send + use<>>,
)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match source {
        TlsSource::Pem { cert, key } => {
            let loaded = load_pem(cert.as_bytes(), key.as_bytes(), &provider)
                .context("in-memory certificate")?;
            metrics.set_cert_not_after(loaded.not_after);
            let store = Arc::new(CertStore {
                current: RwLock::new(loaded.key),
            });
            Ok((store, None))
        }
        TlsSource::Files { cert, key } => {
            let (mut last_cert, mut last_key) = read_files(cert, key)?;
            let loaded = load_pem(&last_cert, &last_key, &provider)
                .with_context(|| format!("cannot load {} / {}", cert.display(), key.display()))?;
            metrics.set_cert_not_after(loaded.not_after);
            let store = Arc::new(CertStore {
                current: RwLock::new(loaded.key),
            });
            let (cert, key, shared) = (cert.clone(), key.clone(), store.clone());
            let watch = async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let (c, k) = match read_files(&cert, &key) {
                        Ok(files) => files,
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "certificate reload failed; keeping the current certificate");
                            metrics.cert_reload(false);
                            continue;
                        }
                    };
                    if c == last_cert && k == last_key {
                        continue;
                    }
                    match load_pem(&c, &k, &provider) {
                        Ok(loaded) => {
                            *shared.current.write().unwrap_or_else(|p| p.into_inner()) = loaded.key;
                            metrics.set_cert_not_after(loaded.not_after);
                            metrics.cert_reload(true);
                            tracing::info!(
                                cert = %cert.display(),
                                not_after = loaded.not_after,
                                "serving certificate reloaded"
                            );
                        }
                        Err(e) => {
                            tracing::error!(
                                cert = %cert.display(),
                                error = %format!("{e:#}"),
                                "certificate reload failed; keeping the current certificate"
                            );
                            metrics.cert_reload(false);
                        }
                    }
                    (last_cert, last_key) = (c, k);
                }
            };
            Ok((store, Some(watch)))
        }
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3 only, ALPN `h2` and
/// `http/1.1`, certificates from `store`.
pub fn server_config(store: Arc<CertStore>) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::inspect::tests::{SEC1_CERT, SEC1_KEY};
    use crate::certs::{Bundle, SanList};

    fn load(cert: &str, key: &str) -> anyhow::Result<Loaded> {
        load_pem(
            cert.as_bytes(),
            key.as_bytes(),
            &rustls::crypto::ring::default_provider(),
        )
    }

    #[test]
    fn pkcs8_and_sec1_keys_load_and_a_chain_keeps_every_certificate() {
        let b = Bundle::generate(&SanList::from_names(["localhost"]), 2).unwrap();
        // rcgen writes PKCS#8; cert-manager and openssl write SEC1 for ECDSA.
        assert!(load(&b.tls_crt, &b.tls_key).is_ok());
        assert!(load(SEC1_CERT, SEC1_KEY).is_ok());
        let chain = format!("{}{}", b.tls_crt, b.ca_crt);
        assert_eq!(load(&chain, &b.tls_key).unwrap().key.cert.len(), 2);
    }

    #[test]
    fn garbage_and_mismatched_pem_are_errors_naming_the_part() {
        let b = Bundle::generate(&SanList::from_names(["localhost"]), 2).unwrap();
        let err = |cert: &str, key: &str| format!("{:#}", load(cert, key).err().unwrap());
        assert_eq!(
            err("", &b.tls_key),
            "no CERTIFICATE block in the certificate PEM"
        );
        assert!(
            err(
                "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                &b.tls_key
            )
            .starts_with("bad certificate PEM: ")
        );
        assert!(err(&b.tls_crt, "garbage").starts_with("bad private key PEM: "));
        assert!(err(&b.tls_crt, SEC1_KEY).starts_with("certificate and key do not fit: "));
    }
}
