//! `floe-guard bootstrap`: create or label the managed namespaces and
//! server-side apply the generated NetworkPolicies (optionally pruning the
//! stale ones). Arguments, progress and output; the decisions are in
//! [`crate::bootstrap`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::bail;
use clap::{Args, ValueEnum};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

use super::network::ClusterArgs;
use super::{ConfigArg, Outcome, block_on};
use crate::bootstrap::report::{self, Row};
use crate::bootstrap::{self, Action};
use crate::config::Config;
use crate::kube::client::{ClusterError, Kube, Scoped, to_json};
use crate::kube::discover::discover;
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

/// Shows progress on a terminal (standard error), nothing otherwise.
struct Progress {
    on: bool,
    total: usize,
    done: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        if self.on {
            eprint!("\r\x1b[K[{}/{}] {what}", self.done, self.total);
        }
    }

    fn finish(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

async fn apply_one<K: Scoped>(
    kube: &Kube,
    obj: &K,
    dry_run: bool,
    force: bool,
) -> Result<Action, ClusterError> {
    let meta = kube::Resource::meta(obj);
    let name = meta.name.as_deref().unwrap_or_default();
    let before = kube.get::<K>(meta.namespace.as_deref(), name).await?;
    let after = kube.apply(obj, dry_run, force).await?;
    Ok(bootstrap::classify(
        before.map(|b| to_json(&b)).as_ref(),
        &to_json(&after),
    ))
}

/// `floe-guard bootstrap`.
pub fn bootstrap(a: BootstrapArgs) -> anyhow::Result<Outcome> {
    let cfg = a.config.load()?;
    let namespaces = bootstrap::desired_namespaces(&cfg);
    if a.dry_run == DryRun::Client {
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
        if a.prune {
            eprintln!("note: --prune needs the cluster: nothing is pruned with --dry-run=client");
        }
        return Ok(Outcome::Clean);
    }
    let dry = a.dry_run == DryRun::Server;
    let rows = block_on(async {
        let (kube, g) = connect_and_generate(&a.cluster, &cfg).await?;
        let policies: Vec<&NetworkPolicy> = g.policies().collect();
        let mut progress = Progress {
            on: std::io::stderr().is_terminal(),
            total: namespaces.len() + policies.len(),
            done: 0,
        };
        let mut rows = Vec::new();
        let mut dry_created = BTreeSet::new();
        for ns in &namespaces {
            let name = ns.metadata.name.clone().unwrap_or_default();
            progress.step(&format!("namespace {name}"));
            let r = apply_one(&kube, ns, dry, a.force_conflicts).await;
            if dry && matches!(r, Ok(Action::Created)) {
                dry_created.insert(name.clone());
            }
            rows.push(row("Namespace", None, name, r)?);
        }
        for p in policies {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            progress.step(&format!("networkpolicy {ns}/{name}"));
            // In a dry run, a namespace that does not exist yet cannot hold
            // anything: its policies would be created with it.
            let r = if dry_created.contains(&ns) {
                Ok(Action::Created)
            } else {
                apply_one(&kube, p, dry, a.force_conflicts).await
            };
            rows.push(row("NetworkPolicy", Some(ns), name, r)?);
        }
        if a.prune {
            let managed: Vec<String> = cfg
                .managed_namespaces()
                .into_iter()
                .map(|m| m.name)
                .collect();
            let mut deployed = Vec::new();
            for ns in managed.iter().filter(|ns| !dry_created.contains(*ns)) {
                let selector = bootstrap::managed_selector();
                deployed.extend(
                    kube.list::<NetworkPolicy>(Some(ns), Some(&selector))
                        .await?,
                );
            }
            let stale = bootstrap::stale_policies(&deployed, &g, &managed);
            progress.total += stale.len();
            for (ns, name) in stale {
                progress.step(&format!("prune networkpolicy {ns}/{name}"));
                let r = kube
                    .delete::<NetworkPolicy>(Some(&ns), &name, dry)
                    .await
                    .map(|()| Action::Pruned);
                rows.push(row("NetworkPolicy", Some(ns), name, r)?);
            }
        }
        progress.finish();
        Ok(rows)
    })?;
    let failed = rows.iter().filter(|r| r.result == Action::Failed).count();
    match a.output {
        TableOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"dry_run": dry, "objects": rows}))?
        ),
        TableOrJson::Table => print!("{}", report::table(&rows, dry)),
    }
    if failed > 0 {
        bail!("{failed} of {} objects failed", rows.len());
    }
    Ok(Outcome::Clean)
}

/// A row for a result; errors that make every further call pointless
/// (unreachable, unauthorized) stop the run instead.
fn row(
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    r: Result<Action, ClusterError>,
) -> anyhow::Result<Row> {
    let (result, error) = match r {
        Ok(a) => (a, None),
        Err(
            e @ (ClusterError::Unreachable(_)
            | ClusterError::Unauthorized { .. }
            | ClusterError::NoConfig(_)),
        ) => {
            return Err(e.into());
        }
        Err(e) => (Action::Failed, Some(e.to_string())),
    };
    Ok(Row {
        kind,
        namespace,
        name,
        result,
        error,
    })
}
