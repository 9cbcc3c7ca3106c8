//! `floe-guard network …`: generate, validate and explain NetworkPolicies;
//! the commands that read a live cluster are in [`cluster`].

mod cluster;
mod explain;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

use super::bootstrap::CniCheckArg;
use super::{ConfigArg, Outcome, TextOrJson, block_on};
use crate::config::Config;
use crate::kube::client::{ClusterError, Kube};
use crate::network::files::{self, SUMMARY_FILE};
use crate::network::{Generated, validate};

/// `floe-guard network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Write the default-deny NetworkPolicies and their summary for every managed namespace.
    Generate(GenerateArgs),
    /// Check that policy files are exactly what the config generates and are valid.
    Validate(ValidateArgs),
    /// Show what the policies allow: a namespace matrix, or the decision on one flow.
    Explain(explain::ExplainArgs),
    /// For every namespace: PSS labels, default-deny, floe policies, pods violating `enforce`.
    Audit(cluster::AuditArgs),
    /// Expected (generated) vs deployed floe-managed policies and namespace labels.
    Diff(cluster::DiffArgs),
    /// Detect the cluster's CNI and whether it enforces NetworkPolicies.
    CheckCni(cluster::CheckCniArgs),
}

/// `floe-guard network generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The floe manifest.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "target/network")]
    pub out: PathBuf,
}

/// `floe-guard network validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The floe manifest.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Directory written by `network generate`.
    #[arg(long, value_name = "DIR", default_value = "target/network")]
    pub dir: PathBuf,
    /// Also have the cluster validate every policy (server-side apply, dryRun=All).
    #[arg(long)]
    pub server_dry_run: bool,
    /// Which cluster to ask.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// With --server-dry-run.
    #[command(flatten)]
    pub cni_check: CniCheckArg,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// Connects to the cluster these arguments name.
    pub async fn connect(&self) -> Result<Kube, ClusterError> {
        Kube::connect(self.kubeconfig.as_deref(), self.context.as_deref()).await
    }
}

/// Runs a `network` subcommand.
pub fn run(command: NetworkCommand) -> anyhow::Result<Outcome> {
    match command {
        NetworkCommand::Generate(a) => generate(a),
        NetworkCommand::Validate(a) => validate(a),
        NetworkCommand::Explain(a) => explain::explain(a),
        NetworkCommand::Audit(a) => cluster::audit(a),
        NetworkCommand::Diff(a) => cluster::diff(a),
        NetworkCommand::CheckCni(a) => cluster::check_cni(a),
    }
}

pub(super) fn generated(config: &Config) -> anyhow::Result<Generated> {
    Ok(crate::network::generate(config)?)
}

fn generate(a: GenerateArgs) -> anyhow::Result<Outcome> {
    let g = generated(&a.config.load()?)?;
    let out = files::render(&g);
    for name in files::remove_stale(&a.out, &out)? {
        let path = a.out.join(name);
        tracing::info!(target: "floe_guard::audit", action = "removed", file = %path.display(), "network generate removed {}", path.display());
    }
    files::write(&a.out, &out)?;
    for f in &out {
        let path = a.out.join(&f.name);
        tracing::info!(target: "floe_guard::audit", action = "wrote", file = %path.display(), bytes = f.text.len(), "network generate wrote {}", path.display());
    }
    println!("wrote {} files to {}", out.len(), a.out.display());
    if !g.enabled {
        eprintln!("note: NetworkPolicies are disabled in the config: only the summary was written");
    }
    if g.enabled && g.api_server.is_none() {
        eprintln!(
            "note: API server unknown: floe-platform gets no API server egress until bootstrap discovers it"
        );
    }
    if g.enabled && g.cluster_cidrs.is_none() {
        eprintln!(
            "note: cluster CIDRs unknown: external HTTPS does not except the pod and service networks (see {SUMMARY_FILE})"
        );
    }
    Ok(Outcome::Clean)
}

fn validate(a: ValidateArgs) -> anyhow::Result<Outcome> {
    let g = generated(&a.config.load()?)?;
    let on_disk = files::read_dir(&a.dir)?;
    let summary = std::fs::read_to_string(a.dir.join(SUMMARY_FILE)).ok();
    let mut problems: Vec<String> = validate::compare(&g, &on_disk, summary.as_deref())
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut cni = None;
    if a.server_dry_run {
        let policies: Vec<NetworkPolicy> = g.policies().cloned().collect();
        let (rejected, check) = block_on(server_dry_run(&policies, &a.cluster, a.cni_check))?;
        problems.extend(rejected);
        cni = check;
    }
    let unenforced = cni.as_ref().is_some_and(|(_, f)| *f);
    match a.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dir": a.dir.display().to_string(),
                "valid": problems.is_empty(),
                "problems": problems,
                "cni": cni.as_ref().map(|(line, _)| line),
            }))?
        ),
        TextOrJson::Text if problems.is_empty() => println!(
            "{}: {} files match the config and are valid{}",
            a.dir.display(),
            on_disk.len() + usize::from(summary.is_some()),
            if a.server_dry_run {
                " (the API server accepts every policy)"
            } else {
                ""
            }
        ),
        TextOrJson::Text => {
            println!(
                "{}: {} problems (regenerate with `floe-guard network generate`):",
                a.dir.display(),
                problems.len()
            );
            for p in &problems {
                println!("  - {p}");
            }
        }
    }
    if let (TextOrJson::Text, Some((line, _))) = (a.output, &cni) {
        println!("{line}");
    }
    Ok(Outcome::from_findings(!problems.is_empty() || unenforced))
}

/// Has the API server validate each policy with a dry-run server-side apply
/// (works whether the policy exists or not); returns its rejections.
/// Then runs the CNI check.
async fn server_dry_run(
    policies: &[NetworkPolicy],
    cluster: &ClusterArgs,
    cni_check: CniCheckArg,
) -> anyhow::Result<(Vec<String>, Option<(String, bool)>)> {
    let kube = cluster.connect().await?;
    let mut rejected = Vec::new();
    for p in policies {
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        let name = p.metadata.name.as_deref().unwrap_or_default();
        match kube.apply(p, true, true).await {
            Ok(_) => {}
            Err(
                e @ (ClusterError::Unreachable(_)
                | ClusterError::Unauthorized { .. }
                | ClusterError::NoConfig(_)),
            ) => return Err(e.into()),
            Err(ClusterError::Api { message, .. }) => {
                rejected.push(format!("{ns}/{name}: the API server rejects it: {message}"));
            }
            Err(e) => rejected.push(format!("{ns}/{name}: {e}")),
        }
    }
    Ok((rejected, cni_check.run(&kube).await?))
}
