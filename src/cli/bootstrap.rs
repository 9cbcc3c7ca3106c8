//! `floe-guard bootstrap`: create or label the managed namespaces and
//! server-side apply the generated NetworkPolicies (optionally pruning the
//! stale ones), then check the CNI. Arguments, progress and output; the
//! decisions are in [`crate::bootstrap`], the writes in [`crate::kube::apply`].

use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::bail;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::network::ClusterArgs;
use super::{ConfigArg, Outcome, block_on};
use crate::bootstrap::report;
use crate::bootstrap::{self, Action};
use crate::config::Config;
use crate::kube::apply::{self, Plan};
use crate::kube::client::{ClusterError, Kube, to_json};
use crate::kube::discover::{self, discover};
use crate::network::cni::Enforcement;
use crate::network::{ClusterFacts, Generated};

/// `--dry-run` of `bootstrap`, as kubectl names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Apply for real.
    None,
    /// Print the objects as YAML; no cluster needed.
    Client,
    /// Have the API server run every step without persisting (dryRun=All).
    Server,
}

/// Output of `bootstrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    /// A result table.
    Table,
    /// JSON.
    Json,
}

/// `floe-guard bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `client` prints what would be applied; `server` has the API server
    /// check everything without persisting.
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Delete floe-managed NetworkPolicies (in managed namespaces) that the
    /// config no longer generates.
    #[arg(long)]
    pub prune: bool,
    /// Take over fields that another field manager owns (server-side apply `force`).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Output format of the result.
    #[arg(short = 'o', long, value_enum, default_value_t = TableOrJson::Table)]
    pub output: TableOrJson,
    #[command(flatten)]
    pub cni_check: CniCheckArg,
}

/// The generated policies with the discovered facts, and notes on what is unknown.
pub(super) fn generate_with(cfg: &Config, facts: &ClusterFacts) -> anyhow::Result<Generated> {
    let g = crate::network::generate_with(cfg, facts)?;
    if g.enabled && g.api_server.is_none() {
        eprintln!("note: API server endpoints unknown: floe-platform gets no API server egress");
    }
    if g.enabled && g.cluster_cidrs.is_none() {
        eprintln!(
            "note: cluster CIDRs unknown: external HTTPS does not except the pod and service networks"
        );
    }
    Ok(g)
}

/// Connects, discovers the facts the config leaves out (printing what could
/// not be read) and generates the policies.
pub(super) async fn connect_and_generate(
    cluster: &ClusterArgs,
    cfg: &Config,
) -> anyhow::Result<(Kube, Generated)> {
    let kube = cluster.connect().await?;
    let found = discover(&kube, cfg).await?;
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    let g = generate_with(cfg, &found.facts)?;
    Ok((kube, g))
}

/// `--skip-cni-check`, shared by the commands that run the CNI check.
#[derive(Debug, Clone, Copy, Args)]
pub struct CniCheckArg {
    /// Do not check whether the CNI enforces NetworkPolicies (for clusters
    /// where it cannot be detected).
    #[arg(long)]
    pub skip_cni_check: bool,
}

impl CniCheckArg {
    /// Runs the CNI check unless skipped: the summary line, and whether it
    /// is a finding (policies installed but not enforced).
    pub async fn run(self, kube: &Kube) -> Result<Option<(String, bool)>, ClusterError> {
        if self.skip_cni_check {
            return Ok(None);
        }
        let report = discover::cni_or_unknown(kube).await?;
        let finding = matches!(report.enforcement, Enforcement::NotEnforced { .. });
        Ok(Some((report.summary(), finding)))
    }
}

/// `floe-guard bootstrap`.
pub fn bootstrap(a: BootstrapArgs) -> anyhow::Result<Outcome> {
    let BootstrapArgs {
        config,
        cluster,
        dry_run,
        prune,
        force_conflicts,
        output,
        cni_check,
    } = a;
    let cfg = config.load()?;
    let namespaces = bootstrap::desired_namespaces(&cfg);
    if dry_run == DryRun::Client {
        let g = generate_with(&cfg, &ClusterFacts::default())?;
        let mut out = String::new();
        for doc in namespaces
            .iter()
            .map(to_json)
            .chain(g.policies().map(to_json))
        {
            writeln!(out, "---\n{}", serde_yaml_ng::to_string(&doc)?.trim_end())?;
        }
        print!("{out}");
        if prune {
            eprintln!("note: --prune needs the cluster: nothing is pruned with --dry-run=client");
        }
        return Ok(Outcome::Clean);
    }
    let dry = dry_run == DryRun::Server;
    let managed: Vec<String> = cfg
        .managed_namespaces()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let terminal = std::io::stderr().is_terminal();
    let (rows, cni) = block_on(async {
        let (kube, g) = connect_and_generate(&cluster, &cfg).await?;
        let np = &cfg.security.network_policies;
        let plan = Plan {
            namespaces: &namespaces,
            generated: &g,
            managed: &managed,
            dry_run: dry,
            force: force_conflicts,
            prune,
            guard_exceptions: np.cluster_cidrs.is_none(),
        };
        let rows = apply::run(&kube, &plan, |what, done, total| {
            if terminal {
                eprint!("\r\x1b[K[{done}/{total}] {what}");
            }
        })
        .await?;
        if terminal {
            eprint!("\r\x1b[K");
        }
        let cni = if np.enabled {
            cni_check.run(&kube).await?
        } else {
            None
        };
        Ok((rows, cni))
    })?;
    let failed = rows.iter().filter(|r| r.result == Action::Failed).count();
    match output {
        TableOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dry_run": dry,
                "objects": rows,
                "cni": cni.as_ref().map(|(line, _)| line),
            }))?
        ),
        TableOrJson::Table => {
            print!("{}", report::table(&rows, dry));
            if let Some((line, _)) = &cni {
                println!("{line}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} objects failed", rows.len());
    }
    Ok(Outcome::from_findings(cni.is_some_and(|(_, f)| f)))
}
