//! Checking policy files: strict schema and API validation of each object,
//! and semantic comparison with what the config generates.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::Generated;
use super::files::{LoadedFile, SUMMARY_FILE, policy_files};
use crate::config::is_dns_label;

/// One way the files on disk differ from what the config generates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A file the config generates is not on disk.
    MissingFile(String),
    /// A YAML/JSON file on disk that the config does not generate.
    UnexpectedFile(String),
    /// A document that is not a valid NetworkPolicy.
    Invalid {
        /// File name.
        file: String,
        /// 1-based document index.
        document: usize,
        /// What is wrong.
        problem: String,
    },
    /// A policy the config generates is missing from its file.
    MissingPolicy {
        /// File name.
        file: String,
        /// `namespace/name`.
        policy: String,
    },
    /// A policy in the file that the config does not generate.
    UnexpectedPolicy {
        /// File name.
        file: String,
        /// `namespace/name`.
        policy: String,
    },
    /// A policy whose meaning differs.
    Changed {
        /// File name.
        file: String,
        /// `namespace/name`.
        policy: String,
        /// Line diff of the canonical forms (`-` expected, `+` on disk).
        diff: Vec<String>,
    },
    /// The summary does not match the config.
    StaleSummary,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::MissingFile(n) => write!(f, "missing file {n}"),
            Difference::UnexpectedFile(n) => write!(f, "unexpected file {n}"),
            Difference::Invalid {
                file,
                document,
                problem,
            } => write!(f, "invalid {file} (document {document}): {problem}"),
            Difference::MissingPolicy { file, policy } => {
                write!(f, "missing policy {policy} in {file}")
            }
            Difference::UnexpectedPolicy { file, policy } => {
                write!(f, "unexpected policy {policy} in {file}")
            }
            Difference::Changed { file, policy, diff } => {
                write!(
                    f,
                    "changed policy {policy} in {file} (- generated, + on disk):"
                )?;
                for l in diff {
                    write!(f, "\n    {l}")?;
                }
                Ok(())
            }
            Difference::StaleSummary => write!(f, "{SUMMARY_FILE} does not match the config"),
        }
    }
}

/// Compares the files of a directory (and its summary text, if present)
/// with what `g` generates. Empty when they match.
pub fn compare(g: &Generated, on_disk: &[LoadedFile], summary: Option<&str>) -> Vec<Difference> {
    let mut out = Vec::new();
    let expected = policy_files(g);
    for f in on_disk {
        if !expected.contains_key(&f.name) {
            out.push(Difference::UnexpectedFile(f.name.clone()));
        }
    }
    for (name, policies) in &expected {
        let Some(file) = on_disk.iter().find(|f| f.name == *name) else {
            out.push(Difference::MissingFile(name.clone()));
            continue;
        };
        let mut actual: BTreeMap<String, NetworkPolicy> = BTreeMap::new();
        for (i, doc) in file.documents.iter().enumerate() {
            let problems = schema_problems(doc);
            if !problems.is_empty() {
                out.extend(problems.into_iter().map(|problem| Difference::Invalid {
                    file: name.clone(),
                    document: i + 1,
                    problem,
                }));
                continue;
            }
            let p: NetworkPolicy =
                serde_json::from_value(doc.clone()).expect("schema-checked document");
            actual.insert(id(&p), p);
        }
        for p in policies {
            let policy = id(p);
            match actual.remove(&policy) {
                None => out.push(Difference::MissingPolicy {
                    file: name.clone(),
                    policy,
                }),
                Some(a) => {
                    let (want, got) = (canonical(p), canonical(&a));
                    if want != got {
                        out.push(Difference::Changed {
                            file: name.clone(),
                            policy,
                            diff: line_diff(&to_yaml(&want), &to_yaml(&got)),
                        });
                    }
                }
            }
        }
        out.extend(
            actual
                .into_keys()
                .map(|policy| Difference::UnexpectedPolicy {
                    file: name.clone(),
                    policy,
                }),
        );
    }
    match summary {
        None => out.push(Difference::MissingFile(SUMMARY_FILE.into())),
        Some(text) if text != super::summary::markdown(g) => out.push(Difference::StaleSummary),
        Some(_) => {}
    }
    out
}

fn id(p: &NetworkPolicy) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

fn to_yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).expect("JSON values serialize")
}

/// Lines of `a` missing from `b` (`- `) and lines of `b` missing from `a` (`+ `),
/// in order ([`super::diff::line_ops`]).
fn line_diff(a: &str, b: &str) -> Vec<String> {
    super::diff::line_ops(a, b)
        .into_iter()
        .filter(|(op, _)| *op != ' ')
        .map(|(op, line)| format!("{op} {line}"))
        .collect()
}

/// A form of a policy in which two policies are equal exactly when they
/// mean the same: defaults made explicit (`policyTypes`, `protocol`),
/// absent and empty lists alike, rules, peers, ports and selector
/// requirements sorted and deduplicated, CIDRs normalized.
pub fn canonical(p: &NetworkPolicy) -> Value {
    let default_spec = NetworkPolicySpec::default();
    let spec = p.spec.as_ref().unwrap_or(&default_spec);
    let has_egress = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
    let mut types: Vec<String> = spec.policy_types.clone().unwrap_or_else(|| {
        let mut t = vec!["Ingress".to_string()];
        if has_egress {
            t.push("Egress".into());
        }
        t
    });
    types.sort();
    types.dedup();
    let rules = |peers: Vec<Option<&Vec<NetworkPolicyPeer>>>,
                 ports: Vec<Option<&Vec<NetworkPolicyPort>>>| {
        sorted(
            peers
                .into_iter()
                .zip(ports)
                .map(|(peers, ports)| {
                    json!({
                        "peers": sorted(peers.iter().copied().flatten().map(canonical_peer).collect()),
                        "ports": sorted(ports.iter().copied().flatten().map(canonical_port).collect()),
                    })
                })
                .collect(),
        )
    };
    let ingress = spec.ingress.iter().flatten();
    let egress = spec.egress.iter().flatten();
    json!({
        "namespace": p.metadata.namespace,
        "name": p.metadata.name,
        "labels": p.metadata.labels.clone().unwrap_or_default(),
        "annotations": p.metadata.annotations.clone().unwrap_or_default(),
        "podSelector": canonical_selector(spec.pod_selector.as_ref()),
        "policyTypes": types,
        "ingress": rules(
            ingress.clone().map(|r| r.from.as_ref()).collect(),
            ingress.map(|r| r.ports.as_ref()).collect()
        ),
        "egress": rules(
            egress.clone().map(|r| r.to.as_ref()).collect(),
            egress.map(|r| r.ports.as_ref()).collect()
        ),
    })
}

fn sorted(values: Vec<Value>) -> Value {
    let set: BTreeMap<String, Value> = values.into_iter().map(|v| (v.to_string(), v)).collect();
    Value::Array(set.into_values().collect())
}

fn canonical_selector(sel: Option<&LabelSelector>) -> Value {
    let Some(sel) = sel else {
        return json!({"matchLabels": {}, "matchExpressions": []});
    };
    let exprs = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            let values: BTreeSet<&String> = e.values.iter().flatten().collect();
            json!({"key": e.key, "operator": e.operator, "values": values})
        })
        .collect();
    json!({
        "matchLabels": sel.match_labels.clone().unwrap_or_default(),
        "matchExpressions": sorted(exprs),
    })
}

fn canonical_net(s: &str) -> String {
    s.parse::<IpNet>()
        .map_or_else(|_| s.to_string(), |n| n.trunc().to_string())
}

fn canonical_peer(p: &NetworkPolicyPeer) -> Value {
    if let Some(b) = &p.ip_block {
        let except: BTreeSet<String> = b
            .except
            .iter()
            .flatten()
            .map(|e| canonical_net(e))
            .collect();
        return json!({"ipBlock": {"cidr": canonical_net(&b.cidr), "except": except}});
    }
    // With a namespaceSelector, an absent podSelector selects every pod, as `{}` does.
    let pods = match (&p.namespace_selector, &p.pod_selector) {
        (Some(_), None) => canonical_selector(Some(&LabelSelector::default())),
        (_, pods) => pods
            .as_ref()
            .map_or(Value::Null, |s| canonical_selector(Some(s))),
    };
    json!({
        "namespaceSelector": p.namespace_selector.as_ref().map_or(Value::Null, |s| canonical_selector(Some(s))),
        "podSelector": pods,
    })
}

fn canonical_port(p: &NetworkPolicyPort) -> Value {
    json!({
        "protocol": p.protocol.as_deref().unwrap_or("TCP"),
        "port": p.port,
        "endPort": p.end_port,
    })
}

/// Every reason `doc` is not a valid NetworkPolicy: fields the schema does
/// not know (strict), wrong types, and the checks the API server makes on
/// create. Empty when valid.
pub fn schema_problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if doc.get("apiVersion").and_then(Value::as_str) != Some("networking.k8s.io/v1") {
        out.push("apiVersion must be networking.k8s.io/v1".into());
    }
    if doc.get("kind").and_then(Value::as_str) != Some("NetworkPolicy") {
        out.push("kind must be NetworkPolicy".into());
    }
    let p: NetworkPolicy = match serde_json::from_value(doc.clone()) {
        Ok(p) => p,
        Err(e) => {
            out.push(format!("does not match the NetworkPolicy schema: {e}"));
            return out;
        }
    };
    let back = serde_json::to_value(&p).expect("a NetworkPolicy serializes");
    unknown_fields(doc, &back, "", &mut out);
    api_problems(&p, &mut out);
    out
}

fn unknown_fields(doc: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (doc, known) {
        (Value::Object(d), Value::Object(k)) => {
            for (key, v) in d {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(v, kv, &at, out),
                    None if v.is_null() => {}
                    None => out.push(format!("unknown field {at}")),
                }
            }
        }
        (Value::Array(d), Value::Array(k)) => {
            for (i, (dv, kv)) in d.iter().zip(k).enumerate() {
                unknown_fields(dv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The validation the API server applies to a NetworkPolicy on create.
fn api_problems(p: &NetworkPolicy, out: &mut Vec<String>) {
    match p.metadata.name.as_deref() {
        Some(n) if is_dns_subdomain(n) => {}
        Some(n) => out.push(format!("metadata.name {n:?} is not a DNS-1123 subdomain")),
        None => out.push("metadata.name is required".into()),
    }
    match p.metadata.namespace.as_deref() {
        Some(n) if is_dns_label(n) => {}
        Some(n) => out.push(format!("metadata.namespace {n:?} is not a DNS-1123 label")),
        None => out.push("metadata.namespace is required".into()),
    }
    for (k, v) in p.metadata.labels.iter().flatten() {
        label(k, v, "metadata.labels", out);
    }
    let Some(spec) = &p.spec else {
        return;
    };
    if let Some(s) = &spec.pod_selector {
        selector(s, "spec.podSelector", out);
    }
    let types = spec.policy_types.as_deref().unwrap_or_default();
    if types.len() > 2 {
        out.push("spec.policyTypes: at most 2 entries".into());
    }
    for t in types {
        if t != "Ingress" && t != "Egress" {
            out.push(format!(
                "spec.policyTypes: {t:?} is not one of Ingress, Egress"
            ));
        }
    }
    for (i, r) in spec.ingress.iter().flatten().enumerate() {
        let at = format!("spec.ingress[{i}]");
        rule(r.from.as_deref(), r.ports.as_deref(), &at, "from", out);
    }
    for (i, r) in spec.egress.iter().flatten().enumerate() {
        let at = format!("spec.egress[{i}]");
        rule(r.to.as_deref(), r.ports.as_deref(), &at, "to", out);
    }
}

fn rule(
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    at: &str,
    key: &str,
    out: &mut Vec<String>,
) {
    for (i, p) in ports.unwrap_or_default().iter().enumerate() {
        let at = format!("{at}.ports[{i}]");
        if let Some(proto) = &p.protocol
            && !["TCP", "UDP", "SCTP"].contains(&proto.as_str())
        {
            out.push(format!("{at}.protocol: {proto:?} is not TCP, UDP or SCTP"));
        }
        match (&p.port, p.end_port) {
            (Some(IntOrString::Int(n)), end) => {
                if !(1..=65535).contains(n) {
                    out.push(format!("{at}.port: {n} is not in 1..65535"));
                }
                if let Some(e) = end
                    && (e < *n || e > 65535)
                {
                    out.push(format!(
                        "{at}.endPort: {e} must be in {n}..65535 (at least port)"
                    ));
                }
            }
            (Some(IntOrString::String(name)), end) => {
                if !is_port_name(name) {
                    out.push(format!("{at}.port: {name:?} is not a valid port name"));
                }
                if end.is_some() {
                    out.push(format!("{at}.endPort: needs a numeric port"));
                }
            }
            (None, Some(_)) => out.push(format!("{at}.endPort: needs a numeric port")),
            (None, None) => {}
        }
    }
    for (i, p) in peers.unwrap_or_default().iter().enumerate() {
        let at = format!("{at}.{key}[{i}]");
        let selectors = p.pod_selector.is_some() || p.namespace_selector.is_some();
        match (&p.ip_block, selectors) {
            (None, false) => out.push(format!("{at}: must specify a peer")),
            (Some(_), true) => out.push(format!(
                "{at}: ipBlock cannot be combined with podSelector or namespaceSelector"
            )),
            (Some(b), false) => match b.cidr.parse::<IpNet>() {
                Err(_) => out.push(format!("{at}.ipBlock.cidr: {:?} is not a CIDR", b.cidr)),
                Ok(net) => {
                    for (j, e) in b.except.iter().flatten().enumerate() {
                        match e.parse::<IpNet>() {
                            Ok(x) if net.contains(&x) && x.prefix_len() > net.prefix_len() => {}
                            Ok(_) => out.push(format!(
                                "{at}.ipBlock.except[{j}]: {e} must be a strict subset of {}",
                                b.cidr
                            )),
                            Err(_) => {
                                out.push(format!("{at}.ipBlock.except[{j}]: {e:?} is not a CIDR"))
                            }
                        }
                    }
                }
            },
            (None, true) => {
                if let Some(s) = &p.pod_selector {
                    selector(s, &format!("{at}.podSelector"), out);
                }
                if let Some(s) = &p.namespace_selector {
                    selector(s, &format!("{at}.namespaceSelector"), out);
                }
            }
        }
    }
}

fn selector(s: &LabelSelector, at: &str, out: &mut Vec<String>) {
    for (k, v) in s.match_labels.iter().flatten() {
        label(k, v, &format!("{at}.matchLabels"), out);
    }
    for (i, e) in s.match_expressions.iter().flatten().enumerate() {
        let at = format!("{at}.matchExpressions[{i}]");
        if !is_qualified_name(&e.key) {
            out.push(format!("{at}.key: {:?} is not a valid label key", e.key));
        }
        let n = e.values.as_ref().map_or(0, Vec::len);
        match e.operator.as_str() {
            "In" | "NotIn" if n == 0 => out.push(format!("{at}.values: must not be empty")),
            "Exists" | "DoesNotExist" if n > 0 => {
                out.push(format!("{at}.values: must be empty for {}", e.operator))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => out.push(format!("{at}.operator: {op:?} is not a valid operator")),
        }
    }
}

fn label(k: &str, v: &str, at: &str, out: &mut Vec<String>) {
    if !is_qualified_name(k) {
        out.push(format!("{at}: {k:?} is not a valid label key"));
    }
    if !is_label_value(v) {
        out.push(format!("{at}.{k}: {v:?} is not a valid label value"));
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most `max` characters.
fn is_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_name_part(v, 63)
}

fn is_qualified_name(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name_part(name, 63),
        None => is_name_part(k, 63),
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// An IANA service name: at most 15 characters of `a-z0-9-`, a letter,
/// no leading, trailing or doubled `-`.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}
