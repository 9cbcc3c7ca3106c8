//! The commands that act on a live cluster: `bootstrap`, `network audit`,
//! `network diff`, `network check-cni`. Arguments, I/O and output; the
//! decisions are in [`crate::cluster`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{NetworkPolicy, ServiceCIDR};
use serde::Serialize;
use serde_json::json;

use super::network::ClusterArgs;
use super::{ConfigArg, Outcome, TextOrJson};
use crate::bootstrap::{self, Action};
use crate::config::Config;
use crate::kube::client::{ClusterError, Kube, Scoped, to_json};
use crate::network::reports::ReportApi;
use crate::network::{ClusterFacts, Generated};
use crate::network::{audit, cni, diff, findings};

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

/// Output of `network audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// An aligned table.
    Table,
    /// JSON.
    Json,
    /// A Markdown table.
    Markdown,
    /// Policy reports (YAML), in the API `--report-api` names.
    Reports,
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
    /// The policy report API of `-o reports` and `--apply-reports`.
    #[arg(long, value_enum, default_value_t = ReportApi::OpenReports)]
    pub report_api: ReportApi,
    /// Also write the findings to the cluster as policy reports (one
    /// `floe-guard-audit` per namespace, one cluster-wide), replacing the
    /// previous run's.
    #[arg(long)]
    pub apply_reports: bool,
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

fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

async fn connect(c: &ClusterArgs) -> Result<Kube, ClusterError> {
    Kube::connect(c.kubeconfig.as_deref(), c.context.as_deref()).await
}

/// A discovery read that RBAC may refuse: refused is a warning (the value
/// stays unknown), anything else is fatal.
async fn optional<T>(what: &str, r: Result<Vec<T>, ClusterError>) -> Result<Vec<T>, ClusterError> {
    match r {
        Err(e @ ClusterError::Forbidden { .. }) => {
            eprintln!("warning: cannot discover {what}: {e}");
            Ok(Vec::new())
        }
        r => r,
    }
}

/// The API server endpoints and cluster CIDRs the config leaves out.
async fn discover(kube: &Kube, cfg: &Config) -> Result<ClusterFacts, ClusterError> {
    let np = &cfg.security.network_policies;
    if !np.enabled {
        return Ok(ClusterFacts::default());
    }
    let slices = if np.api_server.is_none() {
        let r = kube
            .list::<EndpointSlice>(
                Some("default"),
                Some("kubernetes.io/service-name=kubernetes"),
            )
            .await;
        optional("the API server endpoints", r).await?
    } else {
        Vec::new()
    };
    let (nodes, service_cidrs) = if np.cluster_cidrs.is_none() {
        let nodes = optional("the pod CIDRs", kube.list_cluster::<Node>(None).await).await?;
        let services = optional(
            "the service CIDRs",
            kube.list_cluster::<ServiceCIDR>(None).await,
        )
        .await?;
        (nodes, services)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(bootstrap::facts(&slices, &nodes, &service_cidrs))
}

/// The generated policies with the discovered facts, and notes on what is unknown.
fn generate_with(cfg: &Config, facts: &ClusterFacts) -> anyhow::Result<Generated> {
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

/// One line of the bootstrap result.
#[derive(Debug, Serialize)]
struct Row {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    result: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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
        let kube = connect(&a.cluster).await?;
        let facts = discover(&kube, &cfg).await?;
        let g = generate_with(&cfg, &facts)?;
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
            for ns in &managed {
                if dry_created.contains(ns) {
                    continue;
                }
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
        TableOrJson::Table => print!("{}", bootstrap_table(&rows, dry)),
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

fn bootstrap_table(rows: &[Row], dry: bool) -> String {
    let w_ns = rows
        .iter()
        .filter_map(|r| r.namespace.as_ref().map(String::len))
        .max()
        .unwrap_or(0)
        .max("NAMESPACE".len());
    let w_name = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = format!(
        "{:<13}  {:<w_ns$}  {:<w_name$}  RESULT\n",
        "KIND", "NAMESPACE", "NAME"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<13}  {:<w_ns$}  {:<w_name$}  {}",
            r.kind,
            r.namespace.as_deref().unwrap_or("-"),
            r.name,
            r.result
        );
    }
    let mut counts: Vec<(Action, usize)> = Vec::new();
    for r in rows {
        match counts.iter_mut().find(|(a, _)| *a == r.result) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.result, 1)),
        }
    }
    counts.sort();
    let summary: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    let _ = writeln!(
        out,
        "\n{} objects: {}{}",
        rows.len(),
        summary.join(", "),
        if dry {
            " (server dry run: nothing was changed)"
        } else {
            ""
        }
    );
    for r in rows.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(out, "error: {}", r.error.as_deref().unwrap_or_default());
    }
    out
}

/// `floe-guard network audit`.
pub fn audit(a: AuditArgs) -> anyhow::Result<Outcome> {
    let cfg = a.config.load()?;
    let (report, policy_reports) = block_on(async {
        let kube = connect(&a.cluster).await?;
        let namespaces = kube.list_cluster::<Namespace>(None).await?;
        let policies = kube.list::<NetworkPolicy>(None, None).await?;
        let pods = kube.list::<Pod>(None, None).await?;
        let report = audit::audit(&cfg, &namespaces, &policies, &pods);
        let found = super::reports::build(&cfg, &report, a.report_api);
        if a.apply_reports {
            super::reports::apply(&kube, a.report_api, &found).await?;
        }
        Ok((report, found))
    })?;
    let mut warnings: Vec<String> = report
        .iter()
        .flat_map(audit::NamespaceAudit::warnings)
        .collect();
    warnings.extend(
        findings::cluster_findings(&cfg, &report)
            .iter()
            .filter(|f| f.verdict == findings::Verdict::Fail)
            .map(|f| format!("{}: {}", f.subject.name, f.text())),
    );
    let violating: usize = report.iter().map(|n| n.violating_pods.len()).sum();
    match a.output {
        AuditOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"namespaces": report, "warnings": warnings}))?
        ),
        AuditOutput::Table => print!("{}", audit_text(&report, &warnings, false)),
        AuditOutput::Markdown => print!("{}", audit_text(&report, &warnings, true)),
        AuditOutput::Reports => print!("{}", super::reports::yaml(&policy_reports)?),
    }
    Ok(if warnings.is_empty() && violating == 0 {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

fn audit_text(report: &[audit::NamespaceAudit], warnings: &[String], markdown: bool) -> String {
    let header = [
        "NAMESPACE",
        "MANAGED",
        "ENFORCE",
        "AUDIT",
        "WARN",
        "DENY-INGRESS",
        "DENY-EGRESS",
        "FLOE-POLICIES",
        "VIOLATING-PODS",
    ];
    let yes = |v: &Vec<String>| if v.is_empty() { "no" } else { "yes" };
    let rows: Vec<[String; 9]> = report
        .iter()
        .map(|n| {
            let label = |l: &Option<String>| l.clone().unwrap_or_else(|| "-".into());
            [
                n.name.clone(),
                if n.managed { "yes" } else { "no" }.into(),
                label(&n.enforce),
                label(&n.audit),
                label(&n.warn),
                yes(&n.default_deny_ingress).into(),
                yes(&n.default_deny_egress).into(),
                n.floe_policies.len().to_string(),
                n.violating_pods.len().to_string(),
            ]
        })
        .collect();
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for r in &rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
    } else {
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(header[i].len())
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let cells: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(header.to_vec()));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    let bullet = if markdown { "- " } else { "  " };
    let violating: Vec<&audit::NamespaceAudit> = report
        .iter()
        .filter(|n| !n.violating_pods.is_empty())
        .collect();
    if !violating.is_empty() {
        let _ = writeln!(
            out,
            "\n{}Pods violating their namespace's enforce level:",
            if markdown { "### " } else { "" }
        );
        for n in violating {
            for p in &n.violating_pods {
                let _ = writeln!(
                    out,
                    "{bullet}{}/{} ({}): {}",
                    n.name,
                    p.name,
                    n.checked_level,
                    p.violations.join("; ")
                );
            }
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "\n{}Warnings:", if markdown { "### " } else { "" });
        for w in warnings {
            let _ = writeln!(out, "{bullet}{w}");
        }
    }
    out
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
        let kube = connect(&a.cluster).await?;
        let facts = discover(&kube, &cfg).await?;
        let g = generate_with(&cfg, &facts)?;
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
        TextOrJson::Text if drift.is_empty() => println!(
            "no drift: {} namespaces and {policies} NetworkPolicies match the config",
            expected_ns.len()
        ),
        TextOrJson::Text => {
            for d in &drift {
                let what = match d.kind {
                    diff::DriftKind::Missing => "missing",
                    diff::DriftKind::Extra => "extra",
                    diff::DriftKind::Changed => "changed",
                };
                println!("{what}: {}\n{}", d.object, d.diff);
            }
            println!(
                "{} drifted objects (`floe-guard bootstrap --prune` restores the config)",
                drift.len()
            );
        }
    }
    Ok(if drift.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

/// `floe-guard network check-cni`.
pub fn check_cni(a: CheckCniArgs) -> anyhow::Result<Outcome> {
    let report = block_on(async {
        let kube = connect(&a.cluster).await?;
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
        if let Some(cni) = &report.cni {
            println!("CNI: {cni}");
        }
        if let Some(e) = &report.evidence {
            println!("found: {e}");
        }
        match &report.enforcement {
            cni::Enforcement::Enforced => println!("NetworkPolicies: enforced"),
            cni::Enforcement::NotEnforced { remediation } => {
                println!("NetworkPolicies: NOT enforced\nremediation: {remediation}");
            }
            cni::Enforcement::Unknown { .. } => {}
        }
    }
    match report.enforcement {
        cni::Enforcement::Enforced => Ok(Outcome::Clean),
        cni::Enforcement::NotEnforced { .. } => Ok(Outcome::Finding),
        cni::Enforcement::Unknown { reason } => Err(anyhow!(
            "cannot tell whether NetworkPolicies are enforced: {reason}"
        )),
    }
}
