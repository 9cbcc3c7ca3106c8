//! `network explain`: what a set of policies allows, as a namespace matrix
//! (every port open from a representative pod of each namespace to each
//! other, and to and from "the internet"), or the decision on one flow with
//! the rules that decide it. Answers come from [`reach`], never from the
//! config's intent, so files edited by hand are explained as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::reach::{self, Endpoint, Flow, Pod, Side, Verdict};
use super::rules::Labels;
use super::{DNS_NAMESPACE, DNS_POD_LABEL, Generated, NAMESPACE_NAME_LABEL};
use crate::config::Protocol;

/// The address standing for "the internet" in the matrix (TEST-NET-3).
pub const INTERNET: &str = "203.0.113.10";

/// A `--from`, `--to` or `--port` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(String);

/// The namespaces a set of policies lives in or names in its peers
/// (`kubernetes.io/metadata.name` selectors).
pub fn namespaces_of(policies: &[NetworkPolicy]) -> BTreeSet<String> {
    let mut namespaces = BTreeSet::new();
    for p in policies {
        namespaces.extend(p.metadata.namespace.clone());
        let peers = peers_of(p);
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
    namespaces
}

/// Every peer of a policy's ingress (`from`) and egress (`to`) rules.
pub fn peers_of(p: &NetworkPolicy) -> impl Iterator<Item = &NetworkPolicyPeer> {
    let spec = p.spec.iter();
    let from = spec.clone().flat_map(|s| {
        s.ingress
            .iter()
            .flatten()
            .flat_map(|r| r.from.iter().flatten())
    });
    from.chain(spec.flat_map(|s| {
        s.egress
            .iter()
            .flatten()
            .flat_map(|r| r.to.iter().flatten())
    }))
}

/// The pod standing for a namespace in the matrix: the DNS pod in
/// `kube-system`, an unlabelled pod elsewhere.
pub fn representative(ns: &str) -> Endpoint {
    let labels = if ns == DNS_NAMESPACE {
        Labels::from([(DNS_POD_LABEL.0.into(), DNS_POD_LABEL.1.into())])
    } else {
        Labels::new()
    };
    Endpoint::Pod(Pod::new(ns, labels))
}

/// Reads `NS`, `NS/key=value,…` (pod labels), either with `@IP`, or an IP.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, QueryError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Endpoint::External(ip));
    }
    let (rest, ip) = match s.split_once('@') {
        Some((rest, ip)) => (
            rest,
            Some(
                ip.parse::<IpAddr>()
                    .map_err(|_| QueryError(format!("{s:?}: {ip:?} is not an IP address")))?,
            ),
        ),
        None => (s, None),
    };
    let (ns, labels) = rest.split_once('/').unwrap_or((rest, ""));
    if !crate::config::is_dns_label(ns) {
        return Err(QueryError(format!(
            "{s:?}: expected NS[/key=value,…][@IP] or an IP address; {ns:?} is not a namespace name"
        )));
    }
    let mut map = Labels::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| QueryError(format!("{s:?}: pod label {pair:?} is not key=value")))?;
        map.insert(k.into(), v.into());
    }
    let mut pod = Pod::new(ns, map);
    pod.ip = ip;
    Ok(Endpoint::Pod(pod))
}

/// Reads `PORT[/PROTO]` (TCP by default).
pub fn parse_port(s: &str) -> Result<(u16, Protocol), QueryError> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "TCP"));
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        QueryError(format!(
            "--port {s:?}: expected a port 1..65535, optionally /TCP, /UDP or /SCTP"
        ))
    })?;
    let proto = match proto.to_ascii_uppercase().as_str() {
        "TCP" => Protocol::TCP,
        "UDP" => Protocol::UDP,
        "SCTP" => Protocol::SCTP,
        other => {
            return Err(QueryError(format!(
                "--port {s:?}: unknown protocol {other:?} (TCP, UDP or SCTP)"
            )));
        }
    };
    Ok((port, proto))
}

/// An endpoint as `--from`/`--to` take it.
pub fn show_endpoint(e: &Endpoint) -> String {
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

/// A port worth probing: protocol, number, and whether it stands for "any
/// port the policies do not name".
pub type Probe = (Protocol, u16, bool);

/// Ports worth probing: every numeric port the policies name, plus, per
/// protocol, one port they do not name (standing for "any other port").
pub fn probe_ports(policies: &[NetworkPolicy]) -> Vec<Probe> {
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

/// The ports allowed from `from` to `to`, as `all`, or `TCP 8181, 9000`,
/// `UDP 53`, `TCP any`…; empty when nothing is allowed.
pub fn allowed_ports(
    policies: &[NetworkPolicy],
    probes: &[Probe],
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

/// `A -> B: TCP 8181; UDP 53`, or `nothing allowed`.
pub fn ports_line(from: &Endpoint, to: &Endpoint, ports: &[String]) -> String {
    format!(
        "{} -> {}: {}",
        show_endpoint(from),
        show_endpoint(to),
        if ports.is_empty() {
            "nothing allowed".into()
        } else {
            ports.join("; ")
        }
    )
}

/// The decision on one flow and the rule of each side that decides it
/// (with the purposes merged into it, when the policies are `g`'s).
pub fn verdict_text(flow: &Flow, v: &Verdict, g: Option<&Generated>) -> String {
    let mut out = format!(
        "{} -> {} {} {}: {}\n",
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
        let _ = writeln!(out, "  {direction}: {text}");
    }
    out
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

/// What a representative pod of each namespace may reach in every other,
/// and to and from the internet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// Row and column names: the namespaces, then `internet`.
    pub names: Vec<String>,
    /// `(from, to, allowed ports)` for every pair but internet → internet.
    pub cells: Vec<(String, String, Vec<String>)>,
}

impl Matrix {
    /// Evaluates every pair of `namespaces` (and the internet).
    pub fn compute(policies: &[NetworkPolicy], namespaces: &[String]) -> Matrix {
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
        let mut cells = Vec::new();
        for from in &names {
            for to in &names {
                if from == "internet" && to == "internet" {
                    continue;
                }
                let ports = allowed_ports(policies, &probes, &endpoint(from), &endpoint(to));
                cells.push((from.clone(), to.clone(), ports));
            }
        }
        Matrix { names, cells }
    }

    /// The matrix as JSON.
    pub fn json(&self) -> Value {
        let cells: Vec<_> = self
            .cells
            .iter()
            .map(|(f, t, p)| json!({"from": f, "to": t, "allowed": p}))
            .collect();
        json!({"namespaces": self.names, "internet": INTERNET, "flows": cells})
    }

    /// The matrix as text: one block per source namespace.
    pub fn text(&self) -> String {
        let mut out = format!(
            "What an unlabelled pod of each row's namespace may reach in each column's namespace \
             (kube-system: the kube-dns pod; internet: {INTERNET}):\n\n"
        );
        let text = |p: &Vec<String>| {
            if p.is_empty() {
                "-".to_string()
            } else {
                p.join("; ")
            }
        };
        let width = self.names.iter().map(String::len).max().unwrap_or(0);
        for from in &self.names {
            let _ = writeln!(out, "{from}");
            for (_, to, ports) in self.cells.iter().filter(|(f, _, _)| f == from) {
                let _ = writeln!(out, "  -> {to:<width$}  {}", text(ports));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn generated() -> (Generated, Vec<NetworkPolicy>) {
        let g = crate::network::generate(&Config::default()).unwrap();
        let p = g.policies().cloned().collect();
        (g, p)
    }

    #[test]
    fn endpoints_read_back_as_they_are_shown() {
        for s in [
            "floe-jobs",
            "floe-jobs/app=x,tier=y",
            "floe-jobs@10.0.0.1",
            "1.2.3.4",
        ] {
            assert_eq!(show_endpoint(&parse_endpoint(s).unwrap()), s);
        }
        assert!(
            parse_endpoint("Floe")
                .unwrap_err()
                .0
                .contains("not a namespace")
        );
        assert!(
            parse_endpoint("a/b")
                .unwrap_err()
                .0
                .contains("not key=value")
        );
        assert!(parse_endpoint("a@x").unwrap_err().0.contains("not an IP"));
    }

    #[test]
    fn ports_default_to_tcp_and_refuse_zero_and_unknown_protocols() {
        assert_eq!(parse_port("53/udp").unwrap(), (53, Protocol::UDP));
        assert_eq!(parse_port("8181").unwrap(), (8181, Protocol::TCP));
        assert!(parse_port("0").is_err());
        assert!(
            parse_port("80/ICMP")
                .unwrap_err()
                .0
                .contains("unknown protocol")
        );
    }

    #[test]
    fn probes_name_every_port_and_one_port_standing_for_the_rest() {
        let (_, policies) = generated();
        let probes = probe_ports(&policies);
        assert!(probes.contains(&(Protocol::TCP, 8181, false)));
        assert!(probes.contains(&(Protocol::UDP, 53, false)));
        let others: Vec<_> = probes.iter().filter(|p| p.2).collect();
        assert_eq!(others.len(), 3);
        assert!(
            others
                .iter()
                .all(|(_, port, _)| *port != 8181 && *port != 53)
        );
    }

    #[test]
    fn jobs_reach_platform_services_only_and_dns() {
        let (_, policies) = generated();
        let probes = probe_ports(&policies);
        let ports = allowed_ports(
            &policies,
            &probes,
            &representative("floe-jobs"),
            &representative("floe-platform"),
        );
        assert_eq!(ports, ["TCP 4317, 4318, 8181, 9000"]);
        let dns = allowed_ports(
            &policies,
            &probes,
            &representative("floe-jobs"),
            &representative("kube-system"),
        );
        assert_eq!(dns, ["TCP 53", "UDP 53"]);
        let none = allowed_ports(
            &policies,
            &probes,
            &representative("floe-platform"),
            &representative("floe-jobs"),
        );
        assert!(none.is_empty());
        assert_eq!(
            ports_line(
                &representative("floe-platform"),
                &representative("floe-jobs"),
                &none
            ),
            "floe-platform -> floe-jobs: nothing allowed"
        );
    }

    #[test]
    fn a_verdict_names_the_rule_and_its_purpose() {
        let (g, policies) = generated();
        let flow = Flow {
            from: representative("floe-jobs"),
            to: representative("floe-platform"),
            port: 8181,
            protocol: Protocol::TCP,
        };
        let v = reach::evaluate(&policies, &flow);
        let text = verdict_text(&flow, &v, Some(&g));
        assert!(
            text.starts_with("floe-jobs -> floe-platform TCP 8181: allowed\n"),
            "{text}"
        );
        assert!(text.contains("Polaris"), "{text}");
    }

    #[test]
    fn the_matrix_covers_every_pair_but_internet_to_itself() {
        let (_, policies) = generated();
        let ns: Vec<String> = namespaces_of(&policies).into_iter().collect();
        assert!(ns.contains(&"kube-system".to_string()));
        let m = Matrix::compute(&policies, &ns);
        let n = m.names.len();
        assert_eq!(m.cells.len(), n * n - 1);
        assert!(m.text().contains("floe-jobs\n  -> "));
        assert_eq!(m.json()["internet"], INTERNET);
    }
}
