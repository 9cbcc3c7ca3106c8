//! The Secrets that hold floe-guard's certificates, and how they are laid
//! out.
//!
//! Rule: the serving Secret has exactly cert-manager's keys (`ca.crt`,
//! `tls.crt`, `tls.key`) and never a private key of the CA; the CA's
//! certificate and key live in a Secret of their own (`tls.crt`/`tls.key`,
//! the layout of a cert-manager CA Issuer's Secret) that only `certs install`
//! reads. Both are `kubernetes.io/tls`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::generate::Bundle;

/// The Secret type of a TLS Secret.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
/// Secret key of the CA certificate in the serving Secret.
pub const CA_CRT: &str = "ca.crt";
/// Secret key under which earlier releases kept the CA's private key in the
/// serving Secret; `certs install` moves it out.
pub const LEGACY_CA_KEY: &str = "ca.key";
/// Secret key of a certificate (the serving one, or the CA in the CA Secret).
pub const TLS_CRT: &str = "tls.crt";
/// Secret key of a private key (the serving one, or the CA's in the CA Secret).
pub const TLS_KEY: &str = "tls.key";

/// An empty `kubernetes.io/tls` Secret labelled as floe-guard's.
fn empty(name: &str, namespace: &str, component: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/name".to_owned(), "floe-guard".to_owned()),
                (
                    "app.kubernetes.io/component".to_owned(),
                    component.to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        ..Secret::default()
    }
}

/// The bundle as a serving Secret (`ca.crt`, `tls.crt`, `tls.key`).
pub fn tls_secret(bundle: &Bundle, name: &str, namespace: &str) -> Secret {
    let mut secret = empty(name, namespace, "webhook");
    set_serving(&mut secret, bundle);
    secret
}

/// A CA Secret: the CA certificate as `tls.crt`, its key as `tls.key`.
pub(crate) fn ca_secret(cert_pem: &str, key_pem: &str, name: &str, namespace: &str) -> Secret {
    let mut secret = empty(name, namespace, "certs");
    set(&mut secret, &[(TLS_CRT, cert_pem), (TLS_KEY, key_pem)]);
    secret
}

/// `current` (metadata, resourceVersion and other keys kept) made ready to
/// be written back: `managedFields` and `stringData` left out, so that the
/// API server keeps tracking field ownership itself.
pub(crate) fn rewritten(current: &Secret) -> Secret {
    let mut secret = current.clone();
    secret.metadata.managed_fields = None;
    secret.string_data = None;
    secret
}

/// Sets the serving keys and removes a CA key left by earlier releases.
pub(crate) fn set_serving(secret: &mut Secret, bundle: &Bundle) {
    set(
        secret,
        &[
            (CA_CRT, &bundle.ca_crt),
            (TLS_CRT, &bundle.tls_crt),
            (TLS_KEY, &bundle.tls_key),
        ],
    );
    if let Some(data) = secret.data.as_mut() {
        data.remove(LEGACY_CA_KEY);
    }
}

/// Sets `data` keys to PEM values.
pub(crate) fn set(secret: &mut Secret, values: &[(&str, &str)]) {
    let data = secret.data.get_or_insert_with(Default::default);
    for (key, value) in values {
        data.insert((*key).to_owned(), ByteString(value.as_bytes().to_vec()));
    }
}

/// A non-empty value of the Secret's `data` (the API server never returns
/// `stringData`).
pub(crate) fn value<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .filter(|v| !v.is_empty())
}

/// A non-empty value of the Secret's `data` as text.
pub(crate) fn text<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    value(secret, key).and_then(|v| std::str::from_utf8(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::SanList;

    #[test]
    fn the_serving_secret_has_the_cert_manager_layout_and_no_ca_key() {
        let b = Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 30).unwrap();
        let mut s = tls_secret(&b, "floe-guard-tls", "floe-guard");
        assert_eq!(s.type_.as_deref(), Some(TLS_SECRET_TYPE));
        assert_eq!(s.metadata.namespace.as_deref(), Some("floe-guard"));
        let keys = |s: &Secret| s.data.as_ref().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&s), ["ca.crt", "tls.crt", "tls.key"]);
        assert_eq!(value(&s, TLS_KEY), Some(b.tls_key.as_bytes()));
        // `data` is base64 in YAML, as the API expects.
        let yaml = serde_yaml_ng::to_string(&s).unwrap();
        assert!(yaml.contains("tls.crt: LS0tLS1CRUdJTi"), "{yaml}");
        // A CA key left by an earlier release goes with the next write.
        set(&mut s, &[(LEGACY_CA_KEY, "key")]);
        set_serving(&mut s, &b);
        assert_eq!(keys(&s), ["ca.crt", "tls.crt", "tls.key"]);
    }

    #[test]
    fn the_ca_secret_holds_the_ca_as_tls_crt_and_tls_key() {
        let s = ca_secret("CERT", "KEY", "floe-guard-ca", "ns");
        assert_eq!(text(&s, TLS_CRT), Some("CERT"));
        assert_eq!(text(&s, TLS_KEY), Some("KEY"));
        assert_eq!(text(&s, CA_CRT), None);
        assert_eq!(s.type_.as_deref(), Some(TLS_SECRET_TYPE));
    }
}
