//! Discovery of the cluster facts the config leaves out: lists what
//! [`crate::bootstrap::facts`] decides from. A read that RBAC refuses leaves
//! its fact unknown (with a warning); any other failure is fatal. Also the
//! CNI check that the cluster commands share.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceCIDR;

use super::client::{ClusterError, Kube};
use crate::bootstrap::facts;
use crate::config::Config;
use crate::network::ClusterFacts;
use crate::network::cni::{self, CniReport, Enforcement};

/// What discovery found, and the warnings about what it could not read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovery {
    /// The facts found.
    pub facts: ClusterFacts,
    /// One line per fact that could not be read, and why.
    pub warnings: Vec<String>,
}

/// A read that RBAC may refuse: refused is a warning (the value stays
/// unknown), anything else is fatal.
async fn optional<T>(
    what: &str,
    r: Result<Vec<T>, ClusterError>,
    warnings: &mut Vec<String>,
) -> Result<Vec<T>, ClusterError> {
    match r {
        Err(e @ ClusterError::Forbidden { .. }) => {
            warnings.push(format!("cannot discover {what}: {e}"));
            Ok(Vec::new())
        }
        r => r,
    }
}

/// The API server endpoints and cluster CIDRs the config leaves out.
pub async fn discover(kube: &Kube, cfg: &Config) -> Result<Discovery, ClusterError> {
    let np = &cfg.security.network_policies;
    let mut warnings = Vec::new();
    if !np.enabled {
        return Ok(Discovery::default());
    }
    let slices = if np.api_server.is_none() {
        let r = kube
            .list::<EndpointSlice>(
                Some("default"),
                Some("kubernetes.io/service-name=kubernetes"),
            )
            .await;
        optional("the API server endpoints", r, &mut warnings).await?
    } else {
        Vec::new()
    };
    let (nodes, service_cidrs) = if np.cluster_cidrs.is_none() {
        let r = kube.list_cluster::<Node>(None).await;
        let nodes = optional("the pod CIDRs", r, &mut warnings).await?;
        let r = kube.list_cluster_if_served::<ServiceCIDR>(None).await;
        let services = match r {
            Ok(Some(s)) => Some(s),
            Ok(None) => None,
            r => Some(
                optional(
                    "the service CIDRs",
                    r.map(Option::unwrap_or_default),
                    &mut warnings,
                )
                .await?,
            ),
        };
        (nodes, services)
    } else {
        (Vec::new(), Some(Vec::new()))
    };
    let facts = facts::facts(&slices, &nodes, service_cidrs.as_deref());
    if service_cidrs.is_none() {
        let ip = kubernetes_service_ip(kube).await;
        warnings.push(facts::service_cidr_unknown(
            ip.as_deref(),
            facts.cluster_cidrs.as_deref(),
        ));
    }
    Ok(Discovery { facts, warnings })
}

/// The `default/kubernetes` Service's ClusterIP, when it can be read.
async fn kubernetes_service_ip(kube: &Kube) -> Option<String> {
    let svc = kube
        .get::<Service>(Some("default"), "kubernetes")
        .await
        .ok()??;
    svc.spec?.cluster_ip
}

/// The cluster's CNI and whether it enforces NetworkPolicies, from the
/// DaemonSets (all namespaces, else `kube-system` when RBAC allows only
/// that) and the `kube-system` pods.
pub async fn cni(kube: &Kube) -> Result<CniReport, ClusterError> {
    let daemonsets = match kube.list::<DaemonSet>(None, None).await {
        Err(ClusterError::Forbidden { .. }) => {
            kube.list::<DaemonSet>(Some("kube-system"), None).await?
        }
        r => r?,
    };
    let pods = kube.list::<Pod>(Some("kube-system"), None).await?;
    Ok(cni::classify(&daemonsets, &pods))
}

/// The CNI check of `bootstrap`, `network diff` and `network validate
/// --server-dry-run`: a check that RBAC refuses is "cannot tell", not a
/// failure of the command.
pub async fn cni_or_unknown(kube: &Kube) -> Result<CniReport, ClusterError> {
    match cni(kube).await {
        Err(e @ ClusterError::Forbidden { .. }) => Ok(CniReport {
            cni: None,
            evidence: None,
            enforcement: Enforcement::Unknown {
                reason: e.to_string(),
            },
        }),
        r => r,
    }
}
