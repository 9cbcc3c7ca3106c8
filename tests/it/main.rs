//! The integration tests, one binary: a module per area, helpers in
//! [`support`].

mod support;

mod certs_install;
mod cluster_audit;
mod cluster_bootstrap;
mod cluster_cni;
mod cluster_diff;
mod cluster_errors;
mod harden_fixtures;
mod network_cli;
mod network_flows;
mod network_golden;
mod network_merge;
mod network_semantics;
mod network_validate;
mod prop_admission;
mod pss_alloc;
mod pss_cli;
mod pss_conformance;
mod reliability_faults;
mod reliability_hostile;
mod reliability_manifests;
mod reliability_security;
mod server_admission;
mod server_lifecycle;
