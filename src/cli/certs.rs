//! `floe-guard certs generate`: a CA and a serving certificate for the
//! webhook Service, as files or as a cert-manager-style TLS Secret.
//!
//! `floe-guard certs install`: the I/O shell of [`crate::certs::rotate`]:
//! read both Secrets and both webhook configurations through [`Kube`], plan,
//! write, print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};

use super::network::ClusterArgs;
use super::{Outcome, block_on};
use crate::certs::rotate::{self, Current, Step, Target, WebhookKind};
use crate::certs::secret::tls_secret;
use crate::certs::{Bundle, MAX_DAYS, SanList};
use crate::kube::client::{ClusterError, Kube};

/// `floe-guard certs …`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a CA and a serving certificate for the webhook Service
    /// (SANs: S, S.NS, S.NS.svc, S.NS.svc.cluster.local).
    Generate(GenerateArgs),
    /// Create or renew the serving certificate Secret and the CA Secret in
    /// the cluster, write the CA into both webhook configurations' caBundle,
    /// and rotate the CA with an overlap (idempotent).
    Install(InstallArgs),
}

/// `floe-guard certs generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Name of the webhook Service.
    #[arg(long, default_value = "floe-guard")]
    service: String,
    /// Namespace of the webhook Service.
    #[arg(long, short = 'n', default_value = "floe-guard")]
    namespace: String,
    /// Directory for `ca.crt`, `tls.crt` and `tls.key` (created if absent).
    #[arg(long, default_value = "certs", value_name = "DIR")]
    out: PathBuf,
    /// Validity of the CA and the serving certificate, days.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Write files, or print a `kubernetes.io/tls` Secret as YAML.
    #[arg(short = 'o', long, value_enum, default_value_t = CertsOutput::Files)]
    output: CertsOutput,
    /// Name of the Secret printed by `-o secret`.
    #[arg(long, default_value = "floe-guard-tls")]
    secret_name: String,
}

/// Output of `certs generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CertsOutput {
    /// `ca.crt`, `tls.crt`, `tls.key` in `--out`.
    Files,
    /// The Secret YAML on standard output.
    Secret,
}

/// A validity in days: 1 to [`MAX_DAYS`].
fn days() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS))
}

/// `floe-guard certs install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Name of the webhook Service (the certificate's names derive from it).
    #[arg(long, default_value = "floe-guard")]
    service: String,
    /// Namespace of the Service and of both Secrets.
    #[arg(long, short = 'n', default_value = "floe-guard")]
    namespace: String,
    /// Name of the serving Secret (`ca.crt`, `tls.crt`, `tls.key`), mounted
    /// by the webhook pods.
    #[arg(long, default_value = "floe-guard-tls")]
    secret: String,
    /// Name of the CA Secret (the CA's certificate and key), read only by
    /// `certs install`.
    #[arg(long, default_value = "floe-guard-ca")]
    ca_secret: String,
    /// Name of the Mutating- and ValidatingWebhookConfiguration to patch.
    #[arg(long, default_value = "floe-guard")]
    webhook: String,
    /// Validity of a serving certificate, days (renewed when 30, or a third,
    /// are left; never beyond the CA).
    #[arg(long, default_value_t = 365, value_parser = days())]
    days: u32,
    /// Validity of a new CA, days. The CA is replaced, with an overlap, when
    /// less than twice the renewal window is left.
    #[arg(long, default_value_t = rotate::DEFAULT_CA_DAYS, value_parser = days())]
    ca_days: u32,
    /// How long a superseded CA stays trusted beside its successor (e.g.
    /// `1h`, `30m`): longer than the kubelet takes to update the pods' Secret
    /// volume. A run after it drops the old CA from every caBundle.
    #[arg(long, default_value = "1h", value_parser = rotate::parse_overlap)]
    ca_overlap: Duration,
    /// Replace the CA now: the new CA is trusted beside the old one, the
    /// serving certificate is reissued by it, and a run after the overlap
    /// drops the old CA.
    #[arg(long)]
    rotate_ca: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Runs `floe-guard certs …`.
pub fn run(command: CertsCommand) -> anyhow::Result<Outcome> {
    match command {
        CertsCommand::Generate(a) => generate(a),
        CertsCommand::Install(a) => block_on(install(a)),
    }
}

fn generate(a: GenerateArgs) -> anyhow::Result<Outcome> {
    let GenerateArgs {
        service,
        namespace,
        out,
        days,
        output,
        secret_name,
    } = a;
    let sans = SanList::for_service(&service, &namespace);
    let bundle = Bundle::generate(&sans, days)?;
    match output {
        CertsOutput::Secret => {
            let secret = tls_secret(&bundle, &secret_name, &namespace);
            print!("{}", serde_yaml_ng::to_string(&secret)?);
        }
        CertsOutput::Files => {
            write_files(&bundle, &out)?;
            println!(
                "wrote {dir}/ca.crt, {dir}/tls.crt, {dir}/tls.key (mode 0600) for {names}, valid {days} days",
                dir = out.display(),
                names = sans.dns_names.join(", "),
            );
        }
    }
    Ok(Outcome::Clean)
}

/// Writes `ca.crt` and `tls.crt` (0644) and `tls.key` (0600, from creation
/// on) into `dir`, creating it if needed.
fn write_files(bundle: &Bundle, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, pem) in bundle.secret_data() {
        let mode = if name == "tls.key" { 0o600 } else { 0o644 };
        let path = dir.join(name);
        let fail = || format!("cannot write {}", path.display());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .with_context(fail)?;
        // `mode` applies only to a new file: narrow an existing one too.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(fail)?;
        file.write_all(pem.as_bytes()).with_context(fail)?;
    }
    Ok(())
}

/// How many times `certs install` re-reads and re-plans after a write lost a
/// race with another writer (409 Conflict / AlreadyExists).
const INSTALL_ATTEMPTS: u32 = 3;

async fn install(a: InstallArgs) -> anyhow::Result<Outcome> {
    let InstallArgs {
        service,
        namespace,
        secret,
        ca_secret,
        webhook,
        days,
        ca_days,
        ca_overlap,
        rotate_ca,
        cluster,
    } = a;
    let kube = cluster.connect().await?;
    let target = Target {
        service,
        namespace,
        secret,
        ca_secret,
        webhook,
        days,
        ca_days,
        overlap: ca_overlap,
        rotate_ca,
    };
    for attempt in 1..=INSTALL_ATTEMPTS {
        let current = read(&kube, &target).await?;
        let plan = rotate::plan(&current, &target, SystemTime::now())?;
        let indent = if plan.steps.is_empty() {
            println!("nothing to change");
            "  "
        } else {
            ""
        };
        let object = match write(&kube, &plan.steps).await {
            Ok(()) => {
                for line in plan.unchanged.iter().chain(&plan.notes) {
                    println!("{indent}{line}");
                }
                return Ok(Outcome::Clean);
            }
            Err(ClusterError::Api {
                code: 409, object, ..
            }) => object,
            Err(e) => return Err(e.into()),
        };
        if attempt == INSTALL_ATTEMPTS {
            anyhow::bail!("{object} kept changing during {INSTALL_ATTEMPTS} attempts; run again");
        }
        println!("{object} changed meanwhile; reading it again");
    }
    unreachable!("the last attempt returns")
}

async fn read(kube: &Kube, t: &Target) -> Result<Current, ClusterError> {
    Ok(Current {
        secret: kube.get(Some(&t.namespace), &t.secret).await?,
        ca_secret: kube.get(Some(&t.namespace), &t.ca_secret).await?,
        mutating: kube.get(None, &t.webhook).await?,
        validating: kube.get(None, &t.webhook).await?,
    })
}

/// Performs the steps in order, printing each one once done.
async fn write(kube: &Kube, steps: &[Step]) -> Result<(), ClusterError> {
    for step in steps {
        match step {
            Step::CreateSecret { secret, .. } => drop(kube.create(secret.as_ref()).await?),
            Step::ReplaceSecret { secret, .. } => drop(kube.replace(secret.as_ref()).await?),
            Step::PatchWebhooks {
                kind, name, patch, ..
            } => match kind {
                WebhookKind::Mutating => drop(
                    kube.patch_strategic::<MutatingWebhookConfiguration>(name, patch)
                        .await?,
                ),
                WebhookKind::Validating => drop(
                    kube.patch_strategic::<ValidatingWebhookConfiguration>(name, patch)
                        .await?,
                ),
            },
        }
        println!("{}", step.summary());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_written_with_a_private_key_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("nested/certs");
        let b = Bundle::generate(&SanList::for_service("floe-guard", "floe-guard"), 30).unwrap();
        write_files(&b, &out).expect("write");
        // Overwriting a world-readable key narrows it.
        std::fs::set_permissions(out.join("tls.key"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        write_files(&b, &out).expect("rewrite");
        let mode = |n: &str| std::fs::metadata(out.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("tls.key"), 0o600);
        assert_eq!(mode("tls.crt"), 0o644);
        assert_eq!(
            std::fs::read_to_string(out.join("ca.crt")).unwrap(),
            b.ca_crt
        );
    }
}
