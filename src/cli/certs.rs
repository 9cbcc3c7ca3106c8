//! `floe-guard certs generate`: a CA and a serving certificate for the
//! webhook Service, as files or as a cert-manager-style TLS Secret.
//!
//! `floe-guard certs install`: the I/O shell of [`crate::certs::rotate`]:
//! read the Secret and both webhook configurations, plan, write.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CertsGenerateArgs, CertsInstallArgs, CertsOutput, Outcome};
use crate::certs::rotate::{self, Current, Step, Target, WebhookKind};
use crate::certs::{Bundle, SanList};
use crate::kube::client::Kube;

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

/// How many times `certs install` re-reads and re-plans after a write lost a
/// race with another writer (409 Conflict / AlreadyExists).
const INSTALL_ATTEMPTS: u32 = 3;

/// `floe-guard certs install`.
pub fn install(a: CertsInstallArgs) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(install_async(a))
}

async fn install_async(a: CertsInstallArgs) -> anyhow::Result<Outcome> {
    let kube = Kube::connect(a.kubeconfig.as_deref(), a.context.as_deref()).await?;
    let (client, url) = (kube.client(), kube.url().trim_end_matches('/').to_owned());
    let target = Target {
        service: a.service,
        namespace: a.namespace,
        secret: a.secret,
        webhook: a.webhook,
        days: a.days,
    };
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), &target.namespace);
    let mutating: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client.clone());
    let validating: kube::Api<ValidatingWebhookConfiguration> = kube::Api::all(client);
    let api = Apis {
        secrets,
        mutating,
        validating,
        target: &target,
        url,
    };
    for attempt in 1..=INSTALL_ATTEMPTS {
        let current = api.read().await?;
        let plan = rotate::plan(&current, &target, std::time::SystemTime::now())?;
        if plan.steps.is_empty() {
            println!("nothing to change");
            for line in &plan.unchanged {
                println!("  {line}");
            }
            return Ok(Outcome::Clean);
        }
        match api.write(&plan.steps).await {
            Ok(()) => {
                for line in &plan.unchanged {
                    println!("{line}");
                }
                return Ok(Outcome::Clean);
            }
            Err(WriteError::Race(what)) if attempt < INSTALL_ATTEMPTS => {
                println!("{what} changed meanwhile; reading it again");
            }
            Err(WriteError::Race(what)) => {
                anyhow::bail!("{what} kept changing during {INSTALL_ATTEMPTS} attempts; run again")
            }
            Err(WriteError::Failed(e)) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// The API handles of `certs install`.
struct Apis<'a> {
    secrets: kube::Api<k8s_openapi::api::core::v1::Secret>,
    mutating: kube::Api<MutatingWebhookConfiguration>,
    validating: kube::Api<ValidatingWebhookConfiguration>,
    target: &'a Target,
    /// The API server's URL, for messages.
    url: String,
}

/// Why a write failed.
enum WriteError {
    /// Another writer got there first (the named object); read and plan again.
    Race(String),
    /// Anything else.
    Failed(anyhow::Error),
}

impl Apis<'_> {
    async fn read(&self) -> anyhow::Result<Current> {
        let t = self.target;
        let secret = self
            .secrets
            .get_opt(&t.secret)
            .await
            .map_err(|e| api_error(e, "get", &self.url, &secret_ref(t)))?;
        let mutating =
            self.mutating.get_opt(&t.webhook).await.map_err(|e| {
                api_error(e, "get", &self.url, &webhook_ref(WebhookKind::Mutating, t))
            })?;
        let validating = self.validating.get_opt(&t.webhook).await.map_err(|e| {
            api_error(
                e,
                "get",
                &self.url,
                &webhook_ref(WebhookKind::Validating, t),
            )
        })?;
        Ok(Current {
            secret,
            mutating,
            validating,
        })
    }

    /// Performs the steps in order, printing each one once done.
    async fn write(&self, steps: &[Step]) -> Result<(), WriteError> {
        let t = self.target;
        let post = kube::api::PostParams {
            field_manager: Some("floe-guard".into()),
            ..Default::default()
        };
        let patch_params = kube::api::PatchParams {
            field_manager: Some("floe-guard".into()),
            ..Default::default()
        };
        for step in steps {
            let result = match step {
                Step::CreateSecret { secret, .. } => self
                    .secrets
                    .create(&post, secret)
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.url, "create", &secret_ref(t))),
                Step::ReplaceSecret { secret, .. } => self
                    .secrets
                    .replace(&t.secret, &post, secret)
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.url, "update", &secret_ref(t))),
                Step::PatchWebhooks {
                    kind, name, patch, ..
                } => {
                    let patch = kube::api::Patch::Strategic(patch);
                    match kind {
                        WebhookKind::Mutating => self
                            .mutating
                            .patch(name, &patch_params, &patch)
                            .await
                            .map(drop),
                        WebhookKind::Validating => self
                            .validating
                            .patch(name, &patch_params, &patch)
                            .await
                            .map(drop),
                    }
                    .map_err(|e| classify(e, &self.url, "patch", &webhook_ref(*kind, t)))
                }
            };
            result?;
            println!("{}", step.summary());
        }
        Ok(())
    }
}

/// An object `certs install` touches, for messages and RBAC hints.
struct ObjectRef {
    /// API group ("" for core).
    group: &'static str,
    /// Resource (plural).
    resource: &'static str,
    name: String,
    /// Namespace, for namespaced objects.
    namespace: Option<String>,
}

fn secret_ref(t: &Target) -> ObjectRef {
    ObjectRef {
        group: "",
        resource: "secrets",
        name: t.secret.clone(),
        namespace: Some(t.namespace.clone()),
    }
}

fn webhook_ref(kind: WebhookKind, t: &Target) -> ObjectRef {
    ObjectRef {
        group: "admissionregistration.k8s.io",
        resource: kind.resource(),
        name: t.webhook.clone(),
        namespace: None,
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.resource, self.name),
            None => write!(f, "{} {}", self.resource, self.name),
        }
    }
}

/// A write error: a lost race, or a one-line failure.
fn classify(e: kube::Error, url: &str, verb: &str, object: &ObjectRef) -> WriteError {
    match &e {
        kube::Error::Api(s) if s.code == 409 => WriteError::Race(object.to_string()),
        _ => WriteError::Failed(api_error(e, verb, url, object)),
    }
}

/// A one-line error for a failed call to the API server.
fn api_error(e: kube::Error, verb: &str, url: &str, object: &ObjectRef) -> anyhow::Error {
    match e {
        kube::Error::Api(s) if s.code == 403 => {
            // `create` cannot be restricted by name in RBAC.
            let names = match verb {
                "create" => String::new(),
                _ => format!(", resourceNames: [{}]", object.name),
            };
            let scope = match &object.namespace {
                Some(ns) => format!("Role in namespace {ns}"),
                None => "ClusterRole".to_owned(),
            };
            anyhow::anyhow!(
                "forbidden: cannot {verb} {object}; the {scope} bound to this identity needs the rule {{apiGroups: [\"{group}\"], resources: [{resource}]{names}, verbs: [{verb}]}} (API server: {message})",
                group = object.group,
                resource = object.resource,
                message = s.message,
            )
        }
        kube::Error::Api(s) if s.code == 401 => anyhow::anyhow!(
            "unauthorized: the API server at {url} rejected the credentials while trying to {verb} {object} ({})",
            s.message
        ),
        kube::Error::Api(s) => anyhow::anyhow!(
            "cannot {verb} {object}: {} ({} {})",
            s.message,
            s.code,
            s.reason
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            anyhow::anyhow!("cannot reach the API server at {url}: {}", root_cause(&e))
        }
        other => anyhow::anyhow!("cannot {verb} {object}: {}", root_cause(&other)),
    }
}

/// The innermost error of a chain (e.g. "Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
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
