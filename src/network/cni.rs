//! `network check-cni`: which CNI the cluster runs, recognised from its
//! DaemonSets and `kube-system` pods (names, containers, images, arguments),
//! and whether it enforces NetworkPolicies.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde::Serialize;

/// Whether NetworkPolicies are enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Enforcement {
    /// The CNI (or its policy engine) enforces them.
    Enforced,
    /// They are accepted by the API server but have no effect.
    NotEnforced {
        /// What to do about it.
        remediation: String,
    },
    /// floe-guard cannot tell.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// The verdict of `check-cni`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniReport {
    /// The CNI and policy engine recognised, if any.
    pub cni: Option<String>,
    /// The workload it was recognised from, with its image.
    pub evidence: Option<String>,
    /// Whether NetworkPolicies are enforced.
    pub enforcement: Enforcement,
}

impl CniReport {
    /// One line for the summary of `bootstrap`, `network diff` and
    /// `network validate`: whether the policies are enforced, and by what.
    pub fn summary(&self) -> String {
        let cni = self.cni.as_deref().unwrap_or("the CNI");
        match &self.enforcement {
            Enforcement::Enforced => format!("NetworkPolicies are enforced by {cni}"),
            Enforcement::NotEnforced { remediation } => {
                format!("NetworkPolicies are installed but not enforced by {cni}: {remediation}")
            }
            Enforcement::Unknown { reason } => format!(
                "cannot tell whether NetworkPolicies are enforced: {reason} (--skip-cni-check skips this check)"
            ),
        }
    }

    /// The report for people: the CNI, the evidence, and whether policies
    /// are enforced (with the remediation when they are not).
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(cni) = &self.cni {
            out.push_str(&format!("CNI: {cni}\n"));
        }
        if let Some(e) = &self.evidence {
            out.push_str(&format!("found: {e}\n"));
        }
        match &self.enforcement {
            Enforcement::Enforced => out.push_str("NetworkPolicies: enforced\n"),
            Enforcement::NotEnforced { remediation } => out.push_str(&format!(
                "NetworkPolicies: NOT enforced\nremediation: {remediation}\n"
            )),
            Enforcement::Unknown { .. } => {}
        }
        out
    }
}

/// A DaemonSet or pod, reduced to what identifies a CNI.
struct Workload<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    spec: &'a PodSpec,
}

impl Workload<'_> {
    fn containers(&self) -> impl Iterator<Item = &Container> {
        self.spec
            .containers
            .iter()
            .chain(self.spec.init_containers.iter().flatten())
    }

    fn image_containing(&self, s: &str) -> Option<&str> {
        self.containers()
            .filter_map(|c| c.image.as_deref())
            .find(|i| i.contains(s))
    }

    fn has_arg(&self, container: &Container, arg: &str) -> bool {
        container
            .args
            .iter()
            .flatten()
            .chain(container.command.iter().flatten())
            .any(|a| a == arg)
    }

    fn describe(&self) -> String {
        let image = self
            .spec
            .containers
            .first()
            .and_then(|c| c.image.as_deref())
            .unwrap_or("?");
        format!(
            "{} {}/{}, image {image}",
            self.kind, self.namespace, self.name
        )
    }
}

fn workloads<'a>(daemonsets: &'a [DaemonSet], pods: &'a [Pod]) -> Vec<Workload<'a>> {
    let ds = daemonsets.iter().filter_map(|d| {
        Some(Workload {
            kind: "DaemonSet",
            namespace: d.metadata.namespace.as_deref().unwrap_or_default(),
            name: d.metadata.name.as_deref()?,
            spec: d.spec.template.spec.as_ref()?,
        })
    });
    let pods = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some("kube-system"))
        .filter_map(|p| {
            Some(Workload {
                kind: "Pod",
                namespace: "kube-system",
                name: p.metadata.name.as_deref()?,
                spec: p.spec.as_ref()?,
            })
        });
    ds.chain(pods).collect()
}

/// The first release of kind whose kindnetd enforces NetworkPolicies
/// (v0.24.0) ships the image tagged `v20240813-…`.
const KINDNET_POLICY_SINCE: u32 = 20240813;

fn not_enforced(remediation: &str) -> Enforcement {
    Enforcement::NotEnforced {
        remediation: remediation.into(),
    }
}

/// One recognised CNI: its name and what it means for NetworkPolicies.
type Verdict = (String, Enforcement);

fn recognise(w: &Workload<'_>) -> Option<Verdict> {
    let named = |names: &[&str]| {
        names
            .iter()
            .any(|n| w.name == *n || w.name.starts_with(&format!("{n}-")))
    };
    let enforced = |name: &str| Some((name.to_string(), Enforcement::Enforced));
    if named(&["anetd"]) {
        return enforced("GKE Dataplane V2 (Cilium)");
    }
    if named(&["cilium"]) && w.name != "cilium-operator"
        || w.image_containing("cilium/cilium:").is_some()
    {
        if w.image_containing("mcr.microsoft.com").is_some() {
            return enforced("Azure CNI powered by Cilium");
        }
        return enforced("Cilium");
    }
    if named(&["canal"]) {
        return enforced("Canal (Calico policy on Flannel)");
    }
    if named(&["calico-node"]) || w.image_containing("calico/node").is_some() {
        return enforced("Calico");
    }
    if named(&["antrea-agent"]) {
        return enforced("Antrea");
    }
    if named(&["azure-npm"]) {
        return enforced("Azure CNI with Azure Network Policy Manager");
    }
    if named(&["kube-network-policies"]) {
        return enforced("kube-network-policies");
    }
    if named(&["weave-net"]) {
        return Some(if w.containers().any(|c| c.name == "weave-npc") {
            ("Weave Net".into(), Enforcement::Enforced)
        } else {
            (
                "Weave Net (without weave-npc)".into(),
                not_enforced(
                    "add the weave-npc container to the weave-net DaemonSet, or move to a CNI that enforces NetworkPolicy (Calico, Cilium)",
                ),
            )
        });
    }
    if named(&["kube-router"]) {
        let off = w.containers().any(|c| w.has_arg(c, "--run-firewall=false"));
        return Some(if off {
            (
                "kube-router (firewall off)".into(),
                not_enforced(
                    "run kube-router with --run-firewall=true (its NetworkPolicy controller)",
                ),
            )
        } else {
            ("kube-router".into(), Enforcement::Enforced)
        });
    }
    if named(&["aws-node"]) {
        let agent = w.containers().find(|c| {
            c.image
                .as_deref()
                .is_some_and(|i| i.contains("aws-network-policy-agent"))
        });
        return Some(match agent {
            Some(c) if w.has_arg(c, "--enable-network-policy=true") => (
                "AWS VPC CNI with the network policy agent".into(),
                Enforcement::Enforced,
            ),
            _ => (
                "AWS VPC CNI (network policy agent disabled)".into(),
                not_enforced(
                    "enable it: set `enableNetworkPolicy: \"true\"` in the vpc-cni add-on configuration (VPC CNI ≥ 1.14), or install Calico in policy-only mode",
                ),
            ),
        });
    }
    if named(&["kindnet"])
        || w.image_containing("kindnetd").is_some()
        || w.image_containing("/kindnet:").is_some()
    {
        return Some(kindnet(w));
    }
    if named(&["kube-flannel-ds", "kube-flannel"]) || w.image_containing("flannel").is_some() {
        return Some((
            "Flannel".into(),
            not_enforced(
                "Flannel does not enforce NetworkPolicies: add Calico in policy-only mode (Canal) or move to Calico/Cilium",
            ),
        ));
    }
    if named(&["azure-cns", "azure-cni"]) {
        return Some((
            "Azure CNI (no network policy engine)".into(),
            not_enforced(
                "enable a network policy engine: `az aks update --network-policy cilium` (or azure/calico)",
            ),
        ));
    }
    None
}

fn kindnet(w: &Workload<'_>) -> Verdict {
    let image = w.image_containing("kindnet").unwrap_or_default();
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    // kindest/kindnetd:vYYYYMMDD-hash; the standalone kindnet (aojea) is v1.x, always enforcing.
    let date = tag
        .strip_prefix('v')
        .and_then(|t| t.get(..8))
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|d| *d > 20_000_000);
    let since_v1 = tag
        .strip_prefix('v')
        .and_then(|t| t.split('.').next()?.parse::<u32>().ok())
        .is_some_and(|m| (1..1000).contains(&m));
    match date {
        Some(d) if d >= KINDNET_POLICY_SINCE => ("kindnet".into(), Enforcement::Enforced),
        Some(_) => (
            "kindnet (before NetworkPolicy support)".into(),
            not_enforced(
                "upgrade kind to v0.24.0 or later (kindnetd enforces NetworkPolicies), or create the cluster with `disableDefaultCNI: true` and install Calico",
            ),
        ),
        None if since_v1 => ("kindnet".into(), Enforcement::Enforced),
        None => (
            "kindnet".into(),
            Enforcement::Unknown {
                reason: format!(
                    "cannot tell the kindnet version from image {image:?}: kind ≥ v0.24.0 enforces NetworkPolicies, older does not"
                ),
            },
        ),
    }
}

/// Classifies the CNI from the cluster's DaemonSets and `kube-system` pods.
/// A NetworkPolicy engine beside the CNI (Calico on AWS VPC CNI, say) wins.
pub fn classify(daemonsets: &[DaemonSet], pods: &[Pod]) -> CniReport {
    let ws = workloads(daemonsets, pods);
    let found: Vec<(Verdict, String)> = ws
        .iter()
        .filter_map(|w| recognise(w).map(|v| (v, w.describe())))
        .collect();
    let pick = found
        .iter()
        .find(|((_, e), _)| *e == Enforcement::Enforced)
        .or_else(|| found.first());
    match pick {
        Some(((cni, enforcement), evidence)) => CniReport {
            cni: Some(cni.clone()),
            evidence: Some(evidence.clone()),
            enforcement: enforcement.clone(),
        },
        None => {
            let mut seen: Vec<String> = ws
                .iter()
                .filter(|w| w.kind == "DaemonSet")
                .map(|w| format!("{}/{}", w.namespace, w.name))
                .collect();
            seen.dedup();
            CniReport {
                cni: None,
                evidence: None,
                enforcement: Enforcement::Unknown {
                    reason: if seen.is_empty() {
                        "no DaemonSet found: no known CNI is installed, or it is managed outside the cluster".into()
                    } else {
                        format!("no known CNI among the DaemonSets {}", seen.join(", "))
                    },
                },
            }
        }
    }
}
