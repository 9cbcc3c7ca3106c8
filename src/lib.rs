//! floe-guard: network and pod security for the floe data platform.
//!
//! A pure core (configuration, pod hardening, namespace validation, Pod
//! Security Standards, NetworkPolicy generation) and thin I/O shells (server,
//! cluster client, certificates, CLI).

pub mod admission;
pub mod certs;
pub mod cli;
pub mod config;
pub mod pss;
pub mod yaml;
pub mod harden;
pub mod namespace;
pub mod server;
