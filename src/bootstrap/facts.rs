//! The cluster facts `bootstrap`, `network diff` and `validate` discover
//! for the values the config leaves out: the API server endpoints, the pod
//! and service CIDRs. Pure: the shells list the objects, this decides.

use std::collections::BTreeSet;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{NetworkPolicy, ServiceCIDR};

use crate::config::{ApiServer, Cidr, Port};
use crate::network::ClusterFacts;

/// The API server endpoints from the `default/kubernetes` EndpointSlices:
/// every ready address (as a /32 or /128) and every port. `None` when the
/// slices name no address or no port.
pub fn api_server_from(slices: &[EndpointSlice]) -> Option<ApiServer> {
    let mut cidrs = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for s in slices {
        for e in s.endpoints.iter().flatten() {
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for a in &e.addresses {
                if let Ok(ip) = a.parse::<std::net::IpAddr>() {
                    cidrs.insert(IpNet::from(ip));
                }
            }
        }
        for p in s.ports.iter().flatten() {
            if let Some(port) = p.port.and_then(|p| u16::try_from(p).ok()) {
                ports.insert(port);
            }
        }
    }
    (!cidrs.is_empty() && !ports.is_empty()).then(|| ApiServer {
        cidrs: cidrs.into_iter().map(Cidr).collect(),
        ports: ports.into_iter().map(Port).collect(),
    })
}

/// The pod CIDRs (every node's `spec.podCIDRs`, else `spec.podCIDR`) and the
/// service CIDRs (the `ServiceCIDR` objects; `None` when the API server does
/// not serve them, and then only the pod CIDRs). `None` when no node has a
/// pod CIDR: excluding only the service range would give false assurance.
pub fn cluster_cidrs_from(
    nodes: &[Node],
    service_cidrs: Option<&[ServiceCIDR]>,
) -> Option<Vec<Cidr>> {
    let mut pods = BTreeSet::new();
    for n in nodes {
        let spec = n.spec.as_ref();
        let cidrs = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
        let cidrs = if cidrs.is_empty() {
            spec.and_then(|s| s.pod_cidr.clone()).into_iter().collect()
        } else {
            cidrs
        };
        pods.extend(cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()));
    }
    if pods.is_empty() {
        return None;
    }
    let services = service_cidrs
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.spec.iter().flat_map(|s| s.cidrs.iter().flatten()))
        .filter_map(|c| c.parse::<IpNet>().ok());
    let all: BTreeSet<IpNet> = pods
        .into_iter()
        .chain(services)
        .map(|n| n.trunc())
        .collect();
    Some(
        IpNet::aggregate(&all.into_iter().collect())
            .into_iter()
            .map(Cidr)
            .collect(),
    )
}

/// The facts bootstrap discovered, for the values the config leaves out.
pub fn facts(
    slices: &[EndpointSlice],
    nodes: &[Node],
    service_cidrs: Option<&[ServiceCIDR]>,
) -> ClusterFacts {
    ClusterFacts {
        cluster_cidrs: cluster_cidrs_from(nodes, service_cidrs),
        api_server: api_server_from(slices),
    }
}

/// Why the service CIDR is unknown on a cluster that does not serve the
/// ServiceCIDR API, what it means for the generated policies, and the
/// config key that settles it. `kubernetes_ip` is the `kubernetes` Service's
/// ClusterIP (one address inside the range), `pods` the pod CIDRs found.
pub fn service_cidr_unknown(kubernetes_ip: Option<&str>, pods: Option<&[Cidr]>) -> String {
    let inside = kubernetes_ip.map_or_else(String::new, |ip| {
        format!(
            " (the `kubernetes` Service's ClusterIP {ip} lies inside it, but not its prefix length)"
        )
    });
    let now = match pods {
        Some(p) => {
            let p: Vec<String> = p.iter().map(ToString::to_string).collect();
            format!(
                "external HTTPS egress excepts the pod CIDRs {} but not the service range",
                p.join(", ")
            )
        }
        None => "external HTTPS egress excepts neither the pod nor the service range".into(),
    };
    format!(
        "the service CIDR cannot be discovered: this API server does not serve \
         networking.k8s.io/v1 ServiceCIDR (Kubernetes before 1.33) and kube-apiserver's \
         --service-cluster-ip-range is not readable through the API{inside}. So {now}: on \
         CNIs that match ipBlock before service translation, a pod allowed external HTTPS \
         may reach ClusterIP Services on 443. Set security.network_policies.cluster_cidrs \
         to the pod and service CIDRs (e.g. [10.244.0.0/16, 10.96.0.0/12]) to close this"
    )
}

/// The `except` entries of `live`'s ipBlocks that `desired` no longer has:
/// applying `desired` would widen what the policy allows. Bootstrap refuses
/// that when the CIDRs came from (incomplete) discovery, not from the config.
pub fn dropped_exceptions(live: &NetworkPolicy, desired: &NetworkPolicy) -> Vec<String> {
    let excepts = |p: &NetworkPolicy| -> BTreeSet<String> {
        p.spec
            .iter()
            .flat_map(|s| s.egress.iter().flatten())
            .flat_map(|r| r.to.iter().flatten())
            .filter_map(|peer| peer.ip_block.as_ref())
            .flat_map(|b| b.except.iter().flatten().cloned())
            .collect()
    };
    let keep = excepts(desired);
    excepts(live)
        .into_iter()
        .filter(|e| !keep.contains(e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::api::networking::v1::ServiceCIDRSpec;

    #[test]
    fn api_server_comes_from_ready_endpoints() {
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: Some(vec![
                Endpoint {
                    addresses: vec!["172.18.0.2".into()],
                    ..Default::default()
                },
                Endpoint {
                    addresses: vec!["172.18.0.9".into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(false),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ports: Some(vec![EndpointPort {
                port: Some(6443),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let api = api_server_from(&[slice]).unwrap();
        assert_eq!(api.cidrs, vec![Cidr("172.18.0.2/32".parse().unwrap())]);
        assert_eq!(api.ports, vec![Port(6443)]);
        assert_eq!(api_server_from(&[]), None);
    }

    #[test]
    fn cluster_cidrs_aggregate_node_pod_ranges_and_service_range() {
        let node = |c: &str| Node {
            spec: Some(NodeSpec {
                pod_cidr: Some(c.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let svc = ServiceCIDR {
            spec: Some(ServiceCIDRSpec {
                cidrs: Some(vec!["10.96.0.0/12".into()]),
            }),
            ..Default::default()
        };
        let got = cluster_cidrs_from(
            &[node("10.244.0.0/24"), node("10.244.1.0/24")],
            Some(std::slice::from_ref(&svc)),
        );
        let want: Vec<Cidr> = ["10.96.0.0/12", "10.244.0.0/23"]
            .iter()
            .map(|c| Cidr(c.parse().unwrap()))
            .collect();
        assert_eq!(got, Some(want));
        assert_eq!(
            cluster_cidrs_from(&[Node::default()], Some(&[svc][..])),
            None
        );
        // Without the ServiceCIDR API: the pod CIDRs alone.
        assert_eq!(
            cluster_cidrs_from(&[node("10.244.0.0/24")], None),
            Some(vec![Cidr("10.244.0.0/24".parse().unwrap())])
        );
    }

    #[test]
    fn the_unknown_service_cidr_note_says_what_it_means_and_which_key_to_set() {
        let pods = [Cidr("10.244.0.0/16".parse().unwrap())];
        let n = service_cidr_unknown(Some("10.96.0.1"), Some(&pods));
        assert!(n.contains("Kubernetes before 1.33"), "{n}");
        assert!(n.contains("ClusterIP 10.96.0.1 lies inside it"), "{n}");
        assert!(n.contains("excepts the pod CIDRs 10.244.0.0/16 but not the service range"));
        assert!(n.contains("security.network_policies.cluster_cidrs"));
        assert!(service_cidr_unknown(None, None).contains("neither the pod nor the service"));
    }

    #[test]
    fn dropping_an_exception_is_seen_adding_one_is_not() {
        let policy = |except: &[&str]| -> NetworkPolicy {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": {
                "podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": except}}]}]}}))
            .unwrap()
        };
        let live = policy(&["10.96.0.0/12", "10.244.0.0/16"]);
        assert_eq!(
            dropped_exceptions(&live, &policy(&["10.244.0.0/16"])),
            ["10.96.0.0/12"]
        );
        assert!(dropped_exceptions(&policy(&[]), &live).is_empty());
    }
}
