//! `floe-guard certs generate`: a CA and a serving certificate for the
//! webhook Service, as files or as a cert-manager-style TLS Secret.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CertsGenerateArgs, CertsOutput, Outcome};
use crate::certs::{Bundle, SanList};

/// `floe-guard certs generate`.
pub fn generate(a: CertsGenerateArgs) -> anyhow::Result<Outcome> {
    let sans = SanList::for_service(&a.service, &a.namespace);
    let bundle = Bundle::generate(&sans, a.days)?;
    match a.output {
        CertsOutput::Secret => {
            let secret = tls_secret(&bundle, &a.secret_name, &a.namespace);
            print!("{}", serde_yaml_ng::to_string(&secret)?);
        }
        CertsOutput::Files => {
            write_files(&bundle, &a.out)?;
            println!(
                "wrote {dir}/ca.crt, {dir}/tls.crt, {dir}/tls.key (mode 0600) for {names}, valid {days} days",
                dir = a.out.display(),
                names = sans.dns_names.join(", "),
                days = a.days,
            );
        }
    }
    Ok(Outcome::Clean)
}

/// The bundle as a `kubernetes.io/tls` Secret with cert-manager's keys
/// (`ca.crt`, `tls.crt`, `tls.key`).
pub fn tls_secret(bundle: &Bundle, name: &str, namespace: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "floe-guard".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(
            bundle
                .secret_data()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Writes `ca.crt` and `tls.crt` (0644) and `tls.key` (0600, from creation
/// on) into `dir`, creating it if needed.
fn write_files(bundle: &Bundle, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, pem) in bundle.secret_data() {
        let mode = if name == "tls.key" { 0o600 } else { 0o644 };
        write_with_mode(&dir.join(name), pem.as_bytes(), mode)?;
    }
    Ok(())
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = || format!("cannot write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(fail)?;
    // `mode` applies only to a new file: narrow an existing one too.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(fail)?;
    file.write_all(bytes).with_context(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn bundle() -> Bundle {
        Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 30).expect("bundle")
    }

    #[test]
    fn secret_has_the_cert_manager_layout() {
        let b = bundle();
        let s = tls_secret(&b, "floe-guard-tls", "floe-guard");
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("floe-guard"));
        let data = s.data.expect("data");
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["ca.crt", "tls.crt", "tls.key"]
        );
        assert_eq!(data["tls.key"].0, b.tls_key.as_bytes());
        // `data` is base64 in YAML, as the API expects.
        let yaml = serde_yaml_ng::to_string(&tls_secret(&b, "x", "y")).expect("yaml");
        assert!(yaml.contains("tls.crt: LS0tLS1CRUdJTi"), "{yaml}");
    }

    #[test]
    fn files_are_written_with_a_private_key_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("nested/certs");
        let b = bundle();
        write_files(&b, &out).expect("write");
        // Overwriting a world-readable key narrows it.
        std::fs::set_permissions(out.join("tls.key"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        write_files(&b, &out).expect("rewrite");
        let mode = |n: &str| {
            std::fs::metadata(out.join(n))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("tls.key"), 0o600);
        assert_eq!(mode("tls.crt"), 0o644);
        assert_eq!(
            std::fs::read_to_string(out.join("ca.crt")).expect("read"),
            b.ca_crt
        );
    }
}
