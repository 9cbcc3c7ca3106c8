//! Default-deny NetworkPolicies for every managed namespace, generated from
//! the config, and a reachability engine that evaluates NetworkPolicy v1
//! semantics to explain which flows they allow.
//!
//! The core is pure: [`generate`] turns a [`Config`](crate::config::Config)
//! into [`Generated`] policies; [`files`] renders them as files and reads
//! them back; [`summary`] writes the Markdown summary; [`reach`] answers
//! "may A talk to B on port P, and which rule decides"; [`validate`] compares
//! policies semantically and checks them against the API's validation rules.
//!
//! # How platform services are selected
//!
//! Inside `floe-platform` the generated rules select pods by **port only**
//! (every pod of the namespace, on the service's container port): Polaris
//! 8181, OTel Collector 4317/4318, MinIO 9000. The Helm charts deploying them
//! label their pods differently (`app.kubernetes.io/name: polaris`,
//! `opentelemetry-collector`, `app: minio`…) and the config has no key to
//! name those labels; a selector that misses would silently cut the jobs off,
//! while a port-only rule guarantees exactly what the spec states: jobs and
//! domains reach `floe-platform` on those ports and no other (the Dagster
//! webserver on 3000, Postgres on 5432… stay closed to them). The price: any
//! other `floe-platform` pod listening on one of those ports is reachable too.

pub mod audit;
pub mod cni;
pub mod diff;
pub mod drift;
pub mod explain;
pub mod files;
pub mod findings;
mod flows;
pub mod foreign;
mod generate;
pub mod reach;
pub mod reports;
pub mod rules;
pub mod summary;
pub mod validate;

pub use generate::{
    ClusterFacts, GenerateError, Generated, NamespacePolicies, PlannedPolicy, PolicyKind, generate,
    generate_with,
};

use crate::config::Protocol;

/// The immutable label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Label naming the data domain of a domain namespace's policies.
pub const DOMAIN_LABEL: &str = "floe.dev/domain";
/// Label naming the layer of a domain namespace's policies.
pub const LAYER_LABEL: &str = "floe.dev/layer";
/// Value of [`LAYER_LABEL`] on domain policies.
pub const DATA_LAYER: &str = "data";
/// Namespace of the cluster DNS.
pub const DNS_NAMESPACE: &str = "kube-system";
/// Label key and value of the cluster DNS pods (CoreDNS keeps `kube-dns`).
pub const DNS_POD_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// A service of `floe-platform` that other managed namespaces may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformService {
    /// Name shown in the summary.
    pub name: &'static str,
    /// Container port (what NetworkPolicy matches, not the Service port).
    pub port: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Whether domain namespaces may reach it (jobs always may).
    pub for_domains: bool,
}

/// The `floe-platform` services reachable from `floe-jobs` and the domains.
pub const PLATFORM_SERVICES: &[PlatformService] = &[
    PlatformService {
        name: "Polaris",
        port: 8181,
        protocol: Protocol::TCP,
        for_domains: true,
    },
    PlatformService {
        name: "OTel Collector (OTLP gRPC)",
        port: 4317,
        protocol: Protocol::TCP,
        for_domains: true,
    },
    PlatformService {
        name: "OTel Collector (OTLP HTTP)",
        port: 4318,
        protocol: Protocol::TCP,
        for_domains: true,
    },
    PlatformService {
        name: "MinIO",
        port: 9000,
        protocol: Protocol::TCP,
        for_domains: false,
    },
];
