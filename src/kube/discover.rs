//! Discovery of the cluster facts the config leaves out: lists what
//! [`crate::bootstrap::facts`] decides from. A read that RBAC refuses leaves
//! its fact unknown (with a warning); any other failure is fatal.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceCIDR;

use super::client::{ClusterError, Kube};
use crate::bootstrap::facts;
use crate::config::Config;
use crate::network::ClusterFacts;

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
        let r = kube.list_cluster::<ServiceCIDR>(None).await;
        let services = optional("the service CIDRs", r, &mut warnings).await?;
        (nodes, services)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Discovery {
        facts: facts::facts(&slices, &nodes, &service_cidrs),
        warnings,
    })
}
