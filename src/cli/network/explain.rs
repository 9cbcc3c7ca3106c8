//! `floe-guard network explain`: what the config's (or a directory's)
//! policies allow, as a matrix or for one flow; the answers are computed by
//! [`crate::network::explain`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

use super::super::{ConfigArg, Outcome, TextOrJson};
use super::generated;
use crate::network::explain::{self, Matrix};
use crate::network::files;
use crate::network::reach::{self, Flow};
use crate::network::{DNS_NAMESPACE, Generated};

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
            namespaces.extend(explain::namespaces_of(&policies));
            (policies, None)
        }
        None => {
            let config = a.config.load()?;
            let g = generated(&config)?;
            namespaces.extend(config.managed_namespaces().into_iter().map(|m| m.name));
            namespaces.insert(g.ingress_namespace.clone());
            namespaces.extend(g.monitoring.as_ref().map(|m| m.namespace.clone()));
            (g.policies().cloned().collect(), Some(g))
        }
    };
    namespaces.insert(DNS_NAMESPACE.into());
    namespaces.insert("default".into());
    Ok((policies, namespaces.into_iter().collect(), g))
}

pub(super) fn explain(a: ExplainArgs) -> anyhow::Result<Outcome> {
    let (policies, namespaces, g) = explain_input(&a)?;
    let (Some(from), Some(to)) = (&a.from, &a.to) else {
        let m = Matrix::compute(&policies, &namespaces);
        match a.output {
            TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&m.json())?),
            TextOrJson::Text => print!("{}", m.text()),
        }
        return Ok(Outcome::Clean);
    };
    let (from, to) = (explain::parse_endpoint(from)?, explain::parse_endpoint(to)?);
    let Some(port) = &a.port else {
        let probes = explain::probe_ports(&policies);
        let ports = explain::allowed_ports(&policies, &probes, &from, &to);
        match a.output {
            TextOrJson::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"from": from, "to": to, "allowed_ports": ports})
                )?
            ),
            TextOrJson::Text => println!("{}", explain::ports_line(&from, &to, &ports)),
        }
        return Ok(Outcome::from_findings(ports.is_empty()));
    };
    let (port, protocol) = explain::parse_port(port)?;
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
        TextOrJson::Text => print!("{}", explain::verdict_text(&flow, &verdict, g.as_ref())),
    }
    Ok(Outcome::from_findings(!verdict.allowed))
}
