//! The typed configuration: the `domains:` and `security:` sections of a floe
//! `manifest.yaml`, with built-in defaults and strict validation.
//!
//! Every value is checked while it is read, so an error always names the file,
//! the key path (`security.pod_security.jobs_level`) and the reason.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

use crate::pss::Level;

/// Namespace of the platform services (Polaris, OTel, MinIO, Dagster…).
pub const PLATFORM_NAMESPACE: &str = "floe-platform";
/// Namespace where job pods run.
pub const JOBS_NAMESPACE: &str = "floe-jobs";
/// Label that marks a namespace as part of floe (and so managed).
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Label carried by every object floe generates: the prune and diff key.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] and [`PART_OF_LABEL`].
pub const FLOE: &str = "floe";

/// The whole configuration floe-guard reads from `manifest.yaml`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Data domains; each gets the namespace `floe-{domain}-domain`.
    #[serde(deserialize_with = "domains")]
    pub domains: Vec<String>,
    /// The `security:` section.
    pub security: Security,
}

/// The `security:` section.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// NetworkPolicy generation.
    pub network_policies: NetworkPolicies,
    /// Pod hardening and Pod Security Standards labels.
    pub pod_security: PodSecurity,
}

/// `security.network_policies`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkPolicies {
    /// Generate and install NetworkPolicies at all.
    pub enabled: bool,
    /// Namespace of the ingress controller allowed to reach exposed services.
    #[serde(deserialize_with = "dns_label")]
    pub ingress_namespace: String,
    /// Pod and service CIDRs of the cluster, excluded from external HTTPS;
    /// `None` means "discover at bootstrap".
    pub cluster_cidrs: Option<Vec<Cidr>>,
    /// Kubernetes API server endpoints for platform egress; `None` means
    /// "discover at bootstrap".
    pub api_server: Option<ApiServer>,
    /// Egress to the internet on 443.
    pub external_https: ExternalHttps,
    /// Extra egress for `floe-jobs`.
    pub jobs_egress_allow: Vec<EgressAllow>,
    /// Extra egress for `floe-platform`.
    pub platform_egress_allow: Vec<EgressAllow>,
    /// Extra egress for every domain namespace.
    pub domain_egress_allow: Vec<EgressAllow>,
    /// A Prometheus (or other scraper) allowed to reach the metrics ports
    /// of `floe-platform` and the domain namespaces; none when absent.
    pub monitoring: Option<Monitoring>,
}

/// `security.network_policies.monitoring`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Namespace of the scraper.
    #[serde(deserialize_with = "dns_label")]
    pub namespace: String,
    /// Labels of the scraper's pods (every pod of the namespace when absent).
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// The metrics ports scraped (container ports, TCP).
    #[serde(deserialize_with = "non_empty")]
    pub ports: Vec<Port>,
}

impl Default for NetworkPolicies {
    fn default() -> Self {
        Self {
            enabled: true,
            ingress_namespace: "ingress-nginx".into(),
            cluster_cidrs: None,
            api_server: None,
            external_https: ExternalHttps::default(),
            jobs_egress_allow: Vec::new(),
            platform_egress_allow: Vec::new(),
            domain_egress_allow: Vec::new(),
            monitoring: None,
        }
    }
}

/// `security.network_policies.api_server`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiServer {
    /// Addresses of the API server endpoints.
    #[serde(deserialize_with = "non_empty")]
    pub cidrs: Vec<Cidr>,
    /// Ports of the API server endpoints.
    #[serde(default = "api_server_ports", deserialize_with = "non_empty")]
    pub ports: Vec<Port>,
}

fn api_server_ports() -> Vec<Port> {
    vec![Port(443), Port(6443)]
}

/// `security.network_policies.external_https`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalHttps {
    /// Allow egress to `0.0.0.0/0` on TCP 443.
    pub enabled: bool,
    /// Addresses excluded besides the cluster CIDRs (cloud metadata by default).
    pub except: Vec<Cidr>,
}

impl Default for ExternalHttps {
    fn default() -> Self {
        Self {
            enabled: true,
            except: vec![Cidr("169.254.169.254/32".parse().expect("valid CIDR"))],
        }
    }
}

/// One extra egress allowance: either to a CIDR or to pods of a namespace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressAllow {
    /// A name for the rule (shown in the summary).
    #[serde(deserialize_with = "dns_label")]
    pub name: String,
    /// Destination addresses (exclusive with `namespace`).
    #[serde(default)]
    pub cidr: Option<Cidr>,
    /// Destination namespace (exclusive with `cidr`).
    #[serde(default, deserialize_with = "opt_dns_label")]
    pub namespace: Option<String>,
    /// Destination pods in `namespace` (all pods when absent).
    #[serde(default)]
    pub pod_labels: Option<BTreeMap<String, String>>,
    /// Destination port.
    pub port: Port,
    /// Transport protocol.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol as NetworkPolicy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    TCP,
    /// UDP.
    UDP,
    /// SCTP.
    SCTP,
}

impl Protocol {
    /// The name as it appears in Kubernetes objects.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::TCP => "TCP",
            Protocol::UDP => "UDP",
            Protocol::SCTP => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `security.pod_security`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodSecurity {
    /// Harden pods and validate namespace labels at all.
    pub enabled: bool,
    /// PSS `enforce` level of `floe-jobs`.
    pub jobs_level: Level,
    /// PSS `enforce` level of `floe-platform`.
    pub platform_level: Level,
    /// PSS `enforce` level of the domain namespaces.
    pub domain_level: Level,
    /// `runAsUser` given to pods that set none.
    #[serde(deserialize_with = "non_root_id")]
    pub run_as_user: i64,
    /// `runAsGroup` given to pods that set none.
    #[serde(deserialize_with = "id")]
    pub run_as_group: i64,
    /// `fsGroup` given to pods that set none.
    #[serde(deserialize_with = "id")]
    pub fs_group: i64,
    /// Paths that get a writable `emptyDir` in every container.
    pub writable_paths: Vec<AbsolutePath>,
    /// `sizeLimit` of each writable `emptyDir` (a Kubernetes quantity).
    pub writable_size_limit: Option<Quantity>,
    /// Which pods in job namespaces are hardened.
    pub scope: Scope,
    /// What to do with explicitly insecure values.
    pub on_insecure: OnInsecure,
    /// Requests that are never hardened.
    pub exemptions: Exemptions,
    /// Namespaces that may run without Pod Security labels or enforce
    /// `privileged` (`network audit` flags any other that does).
    pub system_namespaces: Vec<String>,
    /// The oldest Pod Security policy version a managed namespace may pin
    /// with a `*-version` label (`v1.N`); absent: only `latest`.
    pub min_version: Option<MinVersion>,
    /// `enforce`, or `audit`: what would be denied is admitted unchanged,
    /// reported in warnings, an audit annotation and a metric. A namespace
    /// labelled `floe.dev/enforcement: audit` is audited in either mode.
    pub mode: Mode,
    /// In audit mode, whether the hardening patch is still applied.
    pub audit_patch: bool,
    /// Usernames or groups that may set or remove the
    /// `floe.dev/enforcement` label of a managed namespace.
    pub enforcement_admins: Vec<String>,
}

impl Default for PodSecurity {
    fn default() -> Self {
        Self {
            enabled: true,
            jobs_level: Level::Restricted,
            platform_level: Level::Baseline,
            domain_level: Level::Restricted,
            run_as_user: 1000,
            run_as_group: 1000,
            fs_group: 1000,
            writable_paths: vec![
                AbsolutePath("/tmp".into()),
                AbsolutePath("/home/floe".into()),
            ],
            writable_size_limit: Some(Quantity("1Gi".into())),
            scope: Scope::JobPods,
            on_insecure: OnInsecure::Deny,
            exemptions: Exemptions::default(),
            system_namespaces: [
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "floe-guard",
            ]
            .map(String::from)
            .to_vec(),
            min_version: None,
            mode: Mode::Enforce,
            audit_patch: true,
            enforcement_admins: vec!["system:masters".into()],
        }
    }
}

/// `security.pod_security.mode`: deny what is insecure, or only report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Deny.
    #[default]
    Enforce,
    /// Admit unchanged, and report what would be denied.
    Audit,
}

/// Which pods of a job namespace are hardened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Pods owned by a Job.
    #[default]
    JobPods,
    /// Every pod.
    AllPods,
}

/// What happens to an explicitly insecure value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnInsecure {
    /// Deny the pod, naming each offending field.
    #[default]
    Deny,
    /// Replace the value and warn.
    Override,
}

/// `security.pod_security.exemptions`, as Pod Security Admission defines them.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exemptions {
    /// Authenticated usernames whose requests are not hardened.
    pub usernames: Vec<String>,
    /// Namespaces whose pods are not hardened.
    pub namespaces: Vec<String>,
    /// Runtime class names whose pods are not hardened.
    pub runtime_classes: Vec<String>,
}

/// What a managed namespace is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// `floe-platform`.
    Platform,
    /// `floe-jobs`.
    Jobs,
    /// `floe-{domain}-domain`.
    Domain(String),
}

/// A namespace floe manages, with its role and PSS `enforce` level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNamespace {
    /// The namespace name.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// The configured PSS `enforce` level.
    pub level: Level,
}

impl Config {
    /// The namespace of a data domain.
    pub fn domain_namespace(domain: &str) -> String {
        format!("floe-{domain}-domain")
    }

    /// Every namespace floe manages: platform, jobs, then the domains.
    pub fn managed_namespaces(&self) -> Vec<ManagedNamespace> {
        let ps = &self.security.pod_security;
        let mut out = vec![
            ManagedNamespace {
                name: PLATFORM_NAMESPACE.into(),
                role: Role::Platform,
                level: ps.platform_level,
            },
            ManagedNamespace {
                name: JOBS_NAMESPACE.into(),
                role: Role::Jobs,
                level: ps.jobs_level,
            },
        ];
        out.extend(self.domains.iter().map(|d| ManagedNamespace {
            name: Self::domain_namespace(d),
            role: Role::Domain(d.clone()),
            level: ps.domain_level,
        }));
        out
    }

    /// The managed namespace of that name, if any.
    pub fn managed_namespace(&self, name: &str) -> Option<ManagedNamespace> {
        self.managed_namespaces()
            .into_iter()
            .find(|n| n.name == name)
    }

    /// Whether pods in this namespace are job pods' home (`floe-jobs` or a domain).
    pub fn is_job_namespace(&self, name: &str) -> bool {
        name == JOBS_NAMESPACE || self.is_domain_namespace(name)
    }

    fn is_domain_namespace(&self, name: &str) -> bool {
        name.strip_prefix("floe-")
            .and_then(|r| r.strip_suffix("-domain"))
            .is_some_and(|d| self.domains.iter().any(|x| x == d))
    }

    /// The configured PSS `enforce` level of a managed namespace (no allocation:
    /// this runs on the admission hot path).
    pub fn level_of(&self, name: &str) -> Option<Level> {
        let ps = &self.security.pod_security;
        match name {
            PLATFORM_NAMESPACE => Some(ps.platform_level),
            JOBS_NAMESPACE => Some(ps.jobs_level),
            _ if self.is_domain_namespace(name) => Some(ps.domain_level),
            _ => None,
        }
    }

    /// Parses and validates a manifest; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let err = |path: String, reason: String| ConfigError {
            origin: origin.to_string(),
            path,
            reason,
        };
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let config: Option<Config> = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let reason = e.into_inner().to_string();
            // The YAML error repeats the path as a prefix: say it once.
            let reason = match reason.split_once(": ") {
                Some((head, rest)) if !head.is_empty() && path.starts_with(head) => {
                    rest.to_string()
                }
                _ => reason,
            };
            err(path, reason)
        })?;
        let config = config.unwrap_or_default();
        config.check().map_err(|(path, reason)| err(path, reason))?;
        Ok(config)
    }

    /// Loads the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            path: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_yaml(&text, &origin)
    }

    /// Loads `path` when given, else the built-in defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    /// Checks that span several keys (the single values were checked when read).
    fn check(&self) -> Result<(), (String, String)> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, d) in self.domains.iter().enumerate() {
            if !seen.insert(d) {
                return Err((format!("domains[{i}]"), format!("duplicate domain {d:?}")));
            }
        }
        if let Some((i, j, name)) =
            crate::harden::clashing_paths(&self.security.pod_security.writable_paths)
        {
            let paths = &self.security.pod_security.writable_paths;
            return Err((
                format!("security.pod_security.writable_paths[{j}]"),
                format!(
                    "{:?} and {:?} could both get the volume name {name}: rename one",
                    paths[i].0, paths[j].0
                ),
            ));
        }
        let np = &self.security.network_policies;
        for (key, rules) in [
            ("jobs_egress_allow", &np.jobs_egress_allow),
            ("platform_egress_allow", &np.platform_egress_allow),
            ("domain_egress_allow", &np.domain_egress_allow),
        ] {
            let mut names = std::collections::BTreeSet::new();
            for (i, r) in rules.iter().enumerate() {
                let at = format!("security.network_policies.{key}[{i}]");
                match (&r.cidr, &r.namespace) {
                    (Some(_), Some(_)) => {
                        return Err((at, "give either `cidr` or `namespace`, not both".into()));
                    }
                    (None, None) => {
                        return Err((at, "give a destination: `cidr` or `namespace`".into()));
                    }
                    (Some(_), None) if r.pod_labels.is_some() => {
                        return Err((
                            format!("{at}.pod_labels"),
                            "`pod_labels` needs `namespace` (pods are not selected by CIDR)".into(),
                        ));
                    }
                    _ => {}
                }
                if !names.insert(&r.name) {
                    return Err((
                        format!("{at}.name"),
                        format!("duplicate rule name {:?}", r.name),
                    ));
                }
            }
        }
        if let Some(m) = &np.monitoring
            && self.is_job_namespace(&m.namespace)
        {
            return Err((
                "security.network_policies.monitoring.namespace".into(),
                format!(
                    "{:?} runs jobs: the scraper must live in its own namespace (or floe-platform)",
                    m.namespace
                ),
            ));
        }
        Ok(())
    }
}

/// A configuration that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid config {origin}{}: {reason}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
pub struct ConfigError {
    /// The file (or `<built-in>`, `<stdin>`).
    pub origin: String,
    /// The key path, e.g. `security.pod_security.jobs_level`.
    pub path: String,
    /// Why it was rejected.
    pub reason: String,
}

/// A TCP/UDP/SCTP port, 1..=65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(de::Error::custom(format!(
                "port {n} is out of range 1..65535"
            ))),
        }
    }
}

/// An IP network in canonical form (no host bits set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(pub IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let net: IpNet = s.parse().map_err(|_| {
            de::Error::custom(format!(
                "invalid CIDR {s:?}: expected an address and prefix length such as 10.0.0.0/8"
            ))
        })?;
        if net.trunc() != net {
            return Err(de::Error::custom(format!(
                "CIDR {s:?} has host bits set: did you mean {}?",
                net.trunc()
            )));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An absolute, normalized container path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbsolutePath(pub String);

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !s.starts_with('/') {
            return Err(de::Error::custom(format!(
                "path {s:?} is relative: writable paths must be absolute"
            )));
        }
        if s == "/" {
            return Err(de::Error::custom(
                "\"/\" cannot be a writable path: it would hide the whole image",
            ));
        }
        if s.split('/').any(|p| p == ".." || p == ".") || s.contains("//") || s.ends_with('/') {
            return Err(de::Error::custom(format!(
                "path {s:?} is not normalized (no `.`, `..`, `//` or trailing `/`)"
            )));
        }
        Ok(AbsolutePath(s))
    }
}

/// A Pod Security Admission policy version `v1.N` (N is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinVersion(pub u32);

impl MinVersion {
    /// `v1.N` (no sign, no leading zero), else `None`.
    pub fn parse(v: &str) -> Option<Self> {
        let n = v.strip_prefix("v1.")?;
        let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        (digits && (n == "0" || !n.starts_with('0')))
            .then(|| n.parse().ok().map(MinVersion))
            .flatten()
    }
}

impl fmt::Display for MinVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.0)
    }
}

impl<'de> Deserialize<'de> for MinVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MinVersion::parse(&s).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid policy version {s:?}: expected v1.N, e.g. v1.30 (omit the key to require latest)"
            ))
        })
    }
}

/// A Kubernetes resource quantity such as `1Gi` or `500M`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        let number_ok = !number.is_empty()
            && number.matches('.').count() <= 1
            && !number.starts_with('.')
            && !number.ends_with('.');
        const SUFFIXES: &[&str] = &[
            "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
        ];
        if number_ok && SUFFIXES.contains(&suffix) {
            Ok(Quantity(s))
        } else {
            Err(de::Error::custom(format!(
                "invalid quantity {s:?}: expected e.g. 512Mi or 1Gi"
            )))
        }
    }
}

/// Whether `s` is an RFC 1123 DNS label (what namespace names must be).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_label<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if is_dns_label(&s) {
        Ok(s)
    } else {
        Err(de::Error::custom(format!(
            "{s:?} is not a valid name: lowercase letters, digits and '-', at most 63 characters"
        )))
    }
}

fn opt_dns_label<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    dns_label(d).map(Some)
}

fn domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for name in &list {
        let ns = Config::domain_namespace(name);
        if !is_dns_label(name) || !is_dns_label(&ns) {
            return Err(de::Error::custom(format!(
                "domain {name:?} is not valid: lowercase letters, digits and '-', and {ns:?} must fit in 63 characters"
            )));
        }
    }
    Ok(list)
}

fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(v)
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = i64::deserialize(d)?;
    if (0..=i64::from(i32::MAX)).contains(&n) {
        Ok(n)
    } else {
        Err(de::Error::custom(format!(
            "{n} is not a valid id (0..2147483647)"
        )))
    }
}

fn non_root_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match id(d)? {
        0 => Err(de::Error::custom("0 is root: runAsUser must be non-zero")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(yaml: &str) -> ConfigError {
        Config::from_yaml(yaml, "manifest.yaml").expect_err("config must be rejected")
    }

    #[test]
    fn empty_file_and_missing_security_give_defaults() {
        assert_eq!(Config::from_yaml("", "m").unwrap(), Config::default());
        let c = Config::from_yaml("domains: [sales]\nplatform: {other: keys}\n", "m").unwrap();
        assert_eq!(c.domains, ["sales"]);
        assert_eq!(c.security, Security::default());
    }

    #[test]
    fn the_design_example_loads() {
        let text = r#"
domains: [sales, marketing]
security:
  network_policies:
    enabled: true
    ingress_namespace: ingress-nginx
    cluster_cidrs: [10.244.0.0/16, 10.96.0.0/12]
    api_server: {cidrs: [172.18.0.2/32], ports: [443, 6443]}
    external_https: {enabled: true, except: [169.254.169.254/32]}
    jobs_egress_allow:
      - {name: snowflake, cidr: 0.0.0.0/0, port: 443, protocol: TCP}
      - {name: warehouse, namespace: floe-platform, pod_labels: {app: trino}, port: 8080}
    platform_egress_allow: []
  pod_security:
    enabled: true
    jobs_level: restricted
    platform_level: baseline
    domain_level: restricted
    run_as_user: 1000
    run_as_group: 1000
    fs_group: 1000
    writable_paths: [/tmp, /home/floe]
    scope: job-pods
    on_insecure: deny
    exemptions: {usernames: [], namespaces: [], runtime_classes: []}
"#;
        let c = Config::from_yaml(text, "m").unwrap();
        let np = &c.security.network_policies;
        assert_eq!(np.cluster_cidrs.as_ref().unwrap().len(), 2);
        assert_eq!(
            np.api_server.as_ref().unwrap().ports,
            [Port(443), Port(6443)]
        );
        assert_eq!(
            np.jobs_egress_allow[1].pod_labels.as_ref().unwrap()["app"],
            "trino"
        );
        assert_eq!(np.jobs_egress_allow[1].protocol, Protocol::TCP);
        let names: Vec<_> = c.managed_namespaces().into_iter().map(|n| n.name).collect();
        assert_eq!(
            names,
            [
                "floe-platform",
                "floe-jobs",
                "floe-sales-domain",
                "floe-marketing-domain"
            ]
        );
        assert!(c.is_job_namespace("floe-sales-domain"));
        assert!(!c.is_job_namespace("floe-platform"));
        assert!(!c.is_job_namespace("floe-other-domain"));
    }

    #[test]
    fn bad_configs_name_the_key_path_and_reason() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "security:\n  pod_security:\n    jobs_level: strict\n",
                "security.pod_security.jobs_level",
                "unknown variant `strict`",
            ),
            (
                "security:\n  pod_security:\n    writable_paths: [tmp]\n",
                "security.pod_security.writable_paths[0]",
                "relative",
            ),
            (
                "security:\n  network_policies:\n    cluster_cidrs: [10.244.0.0/33]\n",
                "security.network_policies.cluster_cidrs[0]",
                "invalid CIDR",
            ),
            (
                "security:\n  network_policies:\n    cluster_cidrs: [10.244.1.0/16]\n",
                "security.network_policies.cluster_cidrs[0]",
                "host bits",
            ),
            (
                "security:\n  network_policies:\n    jobs_egress_allow:\n      - {name: x, cidr: 1.2.3.4/32, port: 70000}\n",
                "security.network_policies.jobs_egress_allow[0].port",
                "out of range",
            ),
            (
                "security:\n  network_policies:\n    api_server: {cidrs: [1.2.3.4/32], ports: [0]}\n",
                "security.network_policies.api_server.ports[0]",
                "out of range",
            ),
            (
                "security:\n  pod_security:\n    min_version: \"1.30\"\n",
                "security.pod_security.min_version",
                "expected v1.N",
            ),
            (
                "security:\n  pod_security:\n    writable_paths: [/tmp, /tmp-2]\n",
                "security.pod_security.writable_paths[1]",
                "could both get the volume name floe-writable-tmp-2",
            ),
            (
                "security:\n  pod_security:\n    colour: blue\n",
                "security.pod_security.colour",
                "unknown field `colour`",
            ),
            (
                "security:\n  pod_security:\n    run_as_user: 0\n",
                "security.pod_security.run_as_user",
                "root",
            ),
            (
                "security:\n  pod_security:\n    enabled: sometimes\n",
                "security.pod_security.enabled",
                "invalid type",
            ),
            (
                "security:\n  pod_security:\n    scope: everything\n",
                "security.pod_security.scope",
                "unknown variant",
            ),
            (
                "security:\n  pod_security:\n    on_insecure: ignore\n",
                "security.pod_security.on_insecure",
                "unknown variant",
            ),
            ("domains: [Sales]\n", "domains", "is not valid"),
            ("domains: [sales, sales]\n", "domains[1]", "duplicate"),
            (
                "security:\n  network_policies:\n    jobs_egress_allow:\n      - {name: x, port: 443}\n",
                "security.network_policies.jobs_egress_allow[0]",
                "give a destination",
            ),
            (
                "security:\n  network_policies:\n    jobs_egress_allow:\n      - {name: x, cidr: 0.0.0.0/0, namespace: a, port: 443}\n",
                "security.network_policies.jobs_egress_allow[0]",
                "not both",
            ),
            (
                "security:\n  network_policies:\n    jobs_egress_allow:\n      - {name: x, cidr: 0.0.0.0/0, port: 443, protocol: ICMP}\n",
                "security.network_policies.jobs_egress_allow[0].protocol",
                "unknown variant",
            ),
            (
                "security:\n  pod_security:\n    writable_size_limit: lots\n",
                "security.pod_security.writable_size_limit",
                "invalid quantity",
            ),
            (
                "security:\n  network_policies:\n    ingress_namespace: Ingress_Nginx\n",
                "security.network_policies.ingress_namespace",
                "not a valid name",
            ),
            (
                "security:\n  network_policies:\n    api_server: {cidrs: []}\n",
                "security.network_policies.api_server.cidrs",
                "must not be empty",
            ),
            ("security: [1, 2]\n", "security", "invalid type"),
            (
                "security:\n  network_policies:\n    monitoring: {namespace: monitoring, ports: []}\n",
                "security.network_policies.monitoring.ports",
                "must not be empty",
            ),
            (
                "security:\n  network_policies:\n    monitoring: {namespace: floe-jobs, ports: [9090]}\n",
                "security.network_policies.monitoring.namespace",
                "runs jobs",
            ),
            (
                "security:\n  network_policies:\n    domain_egress_allow:\n      - {name: x, port: 443}\n",
                "security.network_policies.domain_egress_allow[0]",
                "give a destination",
            ),
        ];
        for (yaml, path, reason) in cases {
            let e = error(yaml);
            assert_eq!(e.origin, "manifest.yaml");
            assert_eq!(&e.path, path, "for {yaml:?}: {e}");
            assert!(e.reason.contains(reason), "for {yaml:?}: {e}");
            let line = e.to_string();
            assert!(
                line.contains("manifest.yaml") && line.contains(path),
                "{line}"
            );
        }
    }

    #[test]
    fn yaml_syntax_errors_say_where() {
        let e = error("security:\n  pod_security: {enabled: true\n");
        assert!(e.reason.contains("line"), "{e}");
    }

    #[test]
    fn unreadable_file_is_reported_with_its_name() {
        let e = Config::load(Path::new("/nonexistent/manifest.yaml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/manifest.yaml"), "{e}");
        assert!(e.reason.contains("cannot read"));
    }
}
