//! `floe-guard network …`: generate, validate and explain NetworkPolicies.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::{ConfigArg, Outcome, TextOrJson};
use crate::config::{Config, Protocol};
use crate::kube::client::Kube;
use crate::network::files::{self, HEADER, SUMMARY_FILE};
use crate::network::reach::{self, Endpoint, Flow, Pod, Side, Verdict};
use crate::network::rules::Labels;
use crate::network::{DNS_NAMESPACE, DNS_POD_LABEL, Generated, NAMESPACE_NAME_LABEL, validate};

/// `floe-guard network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Write the default-deny NetworkPolicies and their summary for every managed namespace.
    Generate(GenerateArgs),
    /// Check that policy files are exactly what the config generates and are valid.
    Validate(ValidateArgs),
    /// Show what the policies allow: a namespace matrix, or the decision on one flow.
    Explain(ExplainArgs),
    /// For every namespace: PSS labels, default-deny, floe policies, pods violating `enforce`.
    Audit(super::cluster::AuditArgs),
    /// Expected (generated) vs deployed floe-managed policies and namespace labels.
    Diff(super::cluster::DiffArgs),
    /// Detect the cluster's CNI and whether it enforces NetworkPolicies.
    CheckCni(super::cluster::CheckCniArgs),
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

/// `floe-guard network explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The floe manifest.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Explain the policies in this directory instead of the config's
    /// (the config, even from FLOE_GUARD_CONFIG, is then not read).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Source: `NS`, `NS/key=value,…` (pod labels), either with `@IP`, or an external IP.
    #[arg(long, value_name = "NS[/LABELS][@IP]|IP", requires = "to")]
    pub from: Option<String>,
    /// Destination, same forms as --from.
    #[arg(long, value_name = "NS[/LABELS][@IP]|IP", requires = "from")]
    pub to: Option<String>,
    /// Destination port and protocol (TCP by default), e.g. 8181 or 53/UDP;
    /// without it, every allowed port is listed.
    #[arg(long, value_name = "PORT[/PROTO]", requires = "to")]
    pub port: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

/// Runs a `network` subcommand.
pub fn run(command: NetworkCommand) -> anyhow::Result<Outcome> {
    match command {
        NetworkCommand::Generate(a) => generate(a),
        NetworkCommand::Validate(a) => validate(a),
        NetworkCommand::Explain(a) => explain(a),
        NetworkCommand::Audit(a) => super::cluster::audit(a),
        NetworkCommand::Diff(a) => super::cluster::diff(a),
        NetworkCommand::CheckCni(a) => super::cluster::check_cni(a),
    }
}

fn generated(config: &Config) -> anyhow::Result<Generated> {
    Ok(crate::network::generate(config)?)
}

fn generate(a: GenerateArgs) -> anyhow::Result<Outcome> {
    let g = generated(&a.config.load()?)?;
    let out = files::render(&g);
    remove_stale(&a.out, &out)?;
    files::write(&a.out, &out)?;
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

/// Removes policy files an earlier run generated that this run does not.
fn remove_stale(dir: &Path, keep: &[files::OutputFile]) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".yaml")
            && std::fs::read_to_string(e.path()).is_ok_and(|t| t.starts_with(HEADER));
        if ours && !keep.iter().any(|f| f.name == name) {
            std::fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    Ok(())
}

fn validate(a: ValidateArgs) -> anyhow::Result<Outcome> {
    let g = generated(&a.config.load()?)?;
    let on_disk = files::read_dir(&a.dir)?;
    let summary_path = a.dir.join(SUMMARY_FILE);
    let summary = std::fs::read_to_string(&summary_path).ok();
    let mut problems: Vec<String> = validate::compare(&g, &on_disk, summary.as_deref())
        .iter()
        .map(ToString::to_string)
        .collect();
    if a.server_dry_run {
        let policies: Vec<NetworkPolicy> = g.policies().cloned().collect();
        problems.extend(server_dry_run(&policies, &a.cluster)?);
    }
    match a.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dir": a.dir.display().to_string(),
                "valid": problems.is_empty(),
                "problems": problems,
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
    Ok(if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

/// Has the API server validate each policy with a dry-run server-side apply
/// (works whether the policy exists or not); returns its rejections.
fn server_dry_run(
    policies: &[NetworkPolicy],
    cluster: &ClusterArgs,
) -> anyhow::Result<Vec<String>> {
    use kube::api::{Api, Patch, PatchParams};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = kube_client(cluster).await?;
        let params = PatchParams::apply("floe-guard").force().dry_run();
        let mut rejected = Vec::new();
        for p in policies {
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            let name = p.metadata.name.as_deref().unwrap_or_default();
            let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
            match api.patch(name, &params, &Patch::Apply(p)).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) => rejected.push(format!(
                    "{ns}/{name}: the API server rejects it: {}",
                    status.message
                )),
                Err(e) => bail!("cluster unreachable: {e}"),
            }
        }
        Ok(rejected)
    })
}

async fn kube_client(cluster: &ClusterArgs) -> anyhow::Result<kube::Client> {
    let kube = Kube::connect(cluster.kubeconfig.as_deref(), cluster.context.as_deref()).await?;
    Ok(kube.client())
}

/// The policies to explain, the namespaces of the matrix, and (from a
/// config) the generated rules for naming purposes.
fn explain_input(
    a: &ExplainArgs,
) -> anyhow::Result<(Vec<NetworkPolicy>, Vec<String>, Option<Generated>)> {
    let mut namespaces = BTreeSet::new();
    let (policies, g) = match &a.dir {
        Some(dir) => {
            let policies = files::policies_of(dir, &files::read_dir(dir)?)?;
            if policies.is_empty() {
                bail!("{}: no NetworkPolicy found", dir.display());
            }
            for p in &policies {
                namespaces.extend(p.metadata.namespace.clone());
                let spec = p.spec.iter();
                let peers = spec.clone().flat_map(|s| {
                    s.ingress
                        .iter()
                        .flatten()
                        .flat_map(|r| r.from.iter().flatten())
                });
                let peers = peers.chain(spec.flat_map(|s| {
                    s.egress
                        .iter()
                        .flatten()
                        .flat_map(|r| r.to.iter().flatten())
                }));
                for peer in peers {
                    if let Some(ns) = peer
                        .namespace_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .and_then(|l| l.get(NAMESPACE_NAME_LABEL))
                    {
                        namespaces.insert(ns.clone());
                    }
                }
            }
            (policies, None)
        }
        None => {
            let config = a.config.load()?;
            let g = generated(&config)?;
            namespaces.extend(config.managed_namespaces().into_iter().map(|m| m.name));
            namespaces.insert(g.ingress_namespace.clone());
            (g.policies().cloned().collect(), Some(g))
        }
    };
    namespaces.insert(DNS_NAMESPACE.into());
    namespaces.insert("default".into());
    Ok((policies, namespaces.into_iter().collect(), g))
}

/// The address standing for "the internet" in the matrix (TEST-NET-3).
const INTERNET: &str = "203.0.113.10";

/// The pod standing for a namespace in the matrix: the DNS pod in
/// `kube-system`, an unlabelled pod elsewhere.
fn representative(ns: &str) -> Endpoint {
    let labels = if ns == DNS_NAMESPACE {
        Labels::from([(DNS_POD_LABEL.0.into(), DNS_POD_LABEL.1.into())])
    } else {
        Labels::new()
    };
    Endpoint::Pod(Pod::new(ns, labels))
}

fn parse_endpoint(s: &str) -> anyhow::Result<Endpoint> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Endpoint::External(ip));
    }
    let (rest, ip) = match s.split_once('@') {
        Some((rest, ip)) => (
            rest,
            Some(
                ip.parse::<IpAddr>()
                    .map_err(|_| anyhow!("{s:?}: {ip:?} is not an IP address"))?,
            ),
        ),
        None => (s, None),
    };
    let (ns, labels) = rest.split_once('/').unwrap_or((rest, ""));
    if !crate::config::is_dns_label(ns) {
        bail!(
            "{s:?}: expected NS[/key=value,…][@IP] or an IP address; {ns:?} is not a namespace name"
        );
    }
    let mut map = Labels::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("{s:?}: pod label {pair:?} is not key=value"))?;
        map.insert(k.into(), v.into());
    }
    let mut pod = Pod::new(ns, map);
    pod.ip = ip;
    Ok(Endpoint::Pod(pod))
}

fn parse_port(s: &str) -> anyhow::Result<(u16, Protocol)> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "TCP"));
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        anyhow!("--port {s:?}: expected a port 1..65535, optionally /TCP, /UDP or /SCTP")
    })?;
    let proto = match proto.to_ascii_uppercase().as_str() {
        "TCP" => Protocol::TCP,
        "UDP" => Protocol::UDP,
        "SCTP" => Protocol::SCTP,
        other => bail!("--port {s:?}: unknown protocol {other:?} (TCP, UDP or SCTP)"),
    };
    Ok((port, proto))
}

fn show_endpoint(e: &Endpoint) -> String {
    match e {
        Endpoint::External(ip) => ip.to_string(),
        Endpoint::Pod(p) => {
            let mut s = p.namespace.clone();
            if !p.labels.is_empty() {
                let l: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s = format!("{s}/{}", l.join(","));
            }
            if let Some(ip) = p.ip {
                s = format!("{s}@{ip}");
            }
            s
        }
    }
}

/// Ports worth probing: every numeric port the policies name, plus, per
/// protocol, one port they do not name (standing for "any other port").
fn probe_ports(policies: &[NetworkPolicy]) -> Vec<(Protocol, u16, bool)> {
    let mut named: BTreeMap<Protocol, BTreeSet<u16>> = BTreeMap::new();
    let mut ranges: Vec<(i32, i32)> = Vec::new();
    for spec in policies.iter().filter_map(|p| p.spec.as_ref()) {
        let ports = spec
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.ports.iter().flatten())
            .chain(
                spec.egress
                    .iter()
                    .flatten()
                    .flat_map(|r| r.ports.iter().flatten()),
            );
        for p in ports {
            let proto = match p.protocol.as_deref().unwrap_or("TCP") {
                "UDP" => Protocol::UDP,
                "SCTP" => Protocol::SCTP,
                _ => Protocol::TCP,
            };
            if let Some(IntOrString::Int(n)) = p.port
                && let Ok(port) = u16::try_from(n)
            {
                named.entry(proto).or_default().insert(port);
                if let Some(end) = p.end_port {
                    ranges.push((n, end));
                }
            }
        }
    }
    let mut out = Vec::new();
    for proto in [Protocol::TCP, Protocol::UDP, Protocol::SCTP] {
        let ports = named.remove(&proto).unwrap_or_default();
        let other = (1..=u16::MAX)
            .find(|p| {
                !ports.contains(p)
                    && !ranges
                        .iter()
                        .any(|(a, b)| (*a..=*b).contains(&i32::from(*p)))
            })
            .unwrap_or(1);
        out.extend(ports.iter().map(|p| (proto, *p, false)));
        out.push((proto, other, true));
    }
    out
}

/// The ports allowed from `from` to `to`, as `all`, `-` or `TCP 8181, 9000; UDP 53`.
fn allowed_ports(
    policies: &[NetworkPolicy],
    probes: &[(Protocol, u16, bool)],
    from: &Endpoint,
    to: &Endpoint,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut all = true;
    for proto in [Protocol::TCP, Protocol::UDP, Protocol::SCTP] {
        let allowed = |port: u16| {
            reach::evaluate(
                policies,
                &Flow {
                    from: from.clone(),
                    to: to.clone(),
                    port,
                    protocol: proto,
                },
            )
            .allowed
        };
        let other = probes
            .iter()
            .find(|(p, _, other)| *p == proto && *other)
            .is_some_and(|(_, port, _)| allowed(*port));
        if other {
            out.push(format!("{proto} any"));
            continue;
        }
        all = false;
        let ports: Vec<String> = probes
            .iter()
            .filter(|(p, port, other)| *p == proto && !other && allowed(*port))
            .map(|(_, port, _)| port.to_string())
            .collect();
        if !ports.is_empty() {
            out.push(format!("{proto} {}", ports.join(", ")));
        }
    }
    if all { vec!["all".into()] } else { out }
}

fn explain(a: ExplainArgs) -> anyhow::Result<Outcome> {
    let (policies, namespaces, g) = explain_input(&a)?;
    let (Some(from), Some(to)) = (&a.from, &a.to) else {
        return matrix(&policies, &namespaces, a.output);
    };
    let (from, to) = (parse_endpoint(from)?, parse_endpoint(to)?);
    let Some(port) = &a.port else {
        let probes = probe_ports(&policies);
        let ports = allowed_ports(&policies, &probes, &from, &to);
        match a.output {
            TextOrJson::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"from": from, "to": to, "allowed_ports": ports})
                )?
            ),
            TextOrJson::Text => println!(
                "{} -> {}: {}",
                show_endpoint(&from),
                show_endpoint(&to),
                if ports.is_empty() {
                    "nothing allowed".into()
                } else {
                    ports.join("; ")
                }
            ),
        }
        return Ok(if ports.is_empty() {
            Outcome::Finding
        } else {
            Outcome::Clean
        });
    };
    let (port, protocol) = parse_port(port)?;
    let flow = Flow {
        from,
        to,
        port,
        protocol,
    };
    let verdict = reach::evaluate(&policies, &flow);
    match a.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"flow": flow, "verdict": verdict}))?
        ),
        TextOrJson::Text => print_verdict(&flow, &verdict, g.as_ref()),
    }
    Ok(if verdict.allowed {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

fn print_verdict(flow: &Flow, v: &Verdict, g: Option<&Generated>) {
    println!(
        "{} -> {} {} {}: {}",
        show_endpoint(&flow.from),
        show_endpoint(&flow.to),
        flow.protocol,
        flow.port,
        if v.allowed { "allowed" } else { "denied" }
    );
    for (direction, side, endpoint) in [
        ("egress ", &v.egress, &flow.from),
        ("ingress", &v.ingress, &flow.to),
    ] {
        let text = match side {
            Side::External => format!(
                "{} is outside the cluster: no policy applies",
                show_endpoint(endpoint)
            ),
            Side::NotIsolated => "no policy selects the pod for this direction: allowed".into(),
            Side::Allowed { policy, rule } => {
                let purpose = g.and_then(|g| purposes(g, policy, direction.trim(), *rule));
                format!(
                    "allowed by {policy}, {} rule {}{}",
                    direction.trim(),
                    rule + 1,
                    purpose.map(|p| format!(" ({p})")).unwrap_or_default()
                )
            }
            Side::Denied { isolated_by } => format!(
                "denied: isolated by {} and no {} rule matches",
                isolated_by.join(", "),
                direction.trim()
            ),
        };
        println!("  {direction}: {text}");
    }
}

/// The purposes merged into a generated rule.
fn purposes(g: &Generated, policy: &str, direction: &str, rule: usize) -> Option<String> {
    let (ns, name) = policy.split_once('/')?;
    let planned = g
        .namespaces
        .iter()
        .find(|n| n.namespace == ns)?
        .policies
        .iter()
        .find(|p| p.policy.metadata.name.as_deref() == Some(name))?;
    let rules = if direction == "egress" {
        &planned.egress
    } else {
        &planned.ingress
    };
    let r = rules.get(rule)?;
    Some(r.purposes.iter().cloned().collect::<Vec<_>>().join(", "))
}

fn matrix(
    policies: &[NetworkPolicy],
    namespaces: &[String],
    output: TextOrJson,
) -> anyhow::Result<Outcome> {
    let probes = probe_ports(policies);
    let mut names: Vec<String> = namespaces.to_vec();
    names.push("internet".into());
    let endpoint = |n: &str| {
        if n == "internet" {
            Endpoint::External(INTERNET.parse().expect("valid address"))
        } else {
            representative(n)
        }
    };
    let mut cells: Vec<(String, String, Vec<String>)> = Vec::new();
    for from in &names {
        for to in &names {
            if from == "internet" && to == "internet" {
                continue;
            }
            let ports = allowed_ports(policies, &probes, &endpoint(from), &endpoint(to));
            cells.push((from.clone(), to.clone(), ports));
        }
    }
    if output == TextOrJson::Json {
        let cells: Vec<_> = cells
            .iter()
            .map(|(f, t, p)| json!({"from": f, "to": t, "allowed": p}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"namespaces": names, "internet": INTERNET, "flows": cells})
            )?
        );
        return Ok(Outcome::Clean);
    }
    println!(
        "What an unlabelled pod of each row's namespace may reach in each column's namespace \
         (kube-system: the kube-dns pod; internet: {INTERNET}):\n"
    );
    let text = |p: &Vec<String>| {
        if p.is_empty() {
            "-".to_string()
        } else {
            p.join("; ")
        }
    };
    let width = names.iter().map(String::len).max().unwrap_or(0);
    for from in &names {
        println!("{from}");
        for (_, to, ports) in cells.iter().filter(|(f, _, _)| f == from) {
            println!("  -> {to:<width$}  {}", text(ports));
        }
    }
    Ok(Outcome::Clean)
}
