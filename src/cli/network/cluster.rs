//! `network audit`, `network diff` and `network check-cni`: the network
//! commands that read a live cluster. Arguments, I/O and output; the
//! decisions are in [`crate::network`].

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

use super::super::bootstrap::connect_and_generate;
use super::super::{ConfigArg, Outcome, TextOrJson, block_on};
use super::ClusterArgs;
use crate::bootstrap;
use crate::kube::client::ClusterError;
use crate::network::{audit, cni, diff, drift};

/// Output of `network audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// An aligned table.
    Table,
    /// JSON.
    Json,
    /// A Markdown table.
    Markdown,
}

/// `floe-guard network audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
}

/// `floe-guard network diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

/// `floe-guard network check-cni`.
#[derive(Debug, Args)]
pub struct CheckCniArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

/// `floe-guard network audit`.
pub fn audit(a: AuditArgs) -> anyhow::Result<Outcome> {
    let cfg = a.config.load()?;
    let report = block_on(async {
        let kube = a.cluster.connect().await?;
        let namespaces = kube.list_cluster::<Namespace>(None).await?;
        let policies = kube.list::<NetworkPolicy>(None, None).await?;
        let pods = kube.list::<Pod>(None, None).await?;
        Ok(audit::audit(&cfg, &namespaces, &policies, &pods))
    })?;
    let warnings: Vec<String> = report
        .iter()
        .flat_map(audit::NamespaceAudit::warnings)
        .collect();
    let violating: usize = report.iter().map(|n| n.violating_pods.len()).sum();
    match a.output {
        AuditOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"namespaces": report, "warnings": warnings}))?
        ),
        AuditOutput::Table => print!("{}", audit::table(&report, &warnings, false)),
        AuditOutput::Markdown => print!("{}", audit::table(&report, &warnings, true)),
    }
    Ok(Outcome::from_findings(
        !warnings.is_empty() || violating > 0,
    ))
}

/// `floe-guard network diff`.
pub fn diff(a: DiffArgs) -> anyhow::Result<Outcome> {
    let cfg = a.config.load()?;
    let expected_ns = bootstrap::desired_namespaces(&cfg);
    let managed: Vec<String> = cfg
        .managed_namespaces()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let (drift, policies) = block_on(async {
        let (kube, g) = connect_and_generate(&a.cluster, &cfg).await?;
        let mut deployed_ns = Vec::new();
        for name in &managed {
            deployed_ns.extend(kube.get::<Namespace>(None, name).await?);
        }
        let deployed = kube
            .list::<NetworkPolicy>(None, Some(&bootstrap::managed_selector()))
            .await?;
        let mut drift = diff::namespaces(&expected_ns, &deployed_ns);
        drift.extend(diff::policies(g.policies(), &deployed, &managed));
        Ok((drift, g.policies().count()))
    })?;
    match a.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"drift": drift}))?
        ),
        TextOrJson::Text => print!("{}", drift::text(&drift, expected_ns.len(), policies)),
    }
    Ok(Outcome::from_findings(!drift.is_empty()))
}

/// `floe-guard network check-cni`.
pub fn check_cni(a: CheckCniArgs) -> anyhow::Result<Outcome> {
    let report = block_on(async {
        let kube = a.cluster.connect().await?;
        let daemonsets = match kube.list::<DaemonSet>(None, None).await {
            Err(ClusterError::Forbidden { .. }) => {
                kube.list::<DaemonSet>(Some("kube-system"), None).await?
            }
            r => r?,
        };
        let pods = kube.list::<Pod>(Some("kube-system"), None).await?;
        Ok(cni::classify(&daemonsets, &pods))
    })?;
    if a.output == TextOrJson::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    match report.enforcement {
        cni::Enforcement::Enforced => Ok(Outcome::Clean),
        cni::Enforcement::NotEnforced { .. } => Ok(Outcome::Finding),
        cni::Enforcement::Unknown { reason } => Err(anyhow!(
            "cannot tell whether NetworkPolicies are enforced: {reason}"
        )),
    }
}
