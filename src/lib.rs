//! floe-guard: network and pod security for the floe data platform.
//!
//! A pure core (configuration, pod hardening, namespace validation, Pod
//! Security Standards, NetworkPolicy generation) and thin I/O shells (server,
//! cluster client, certificates, CLI).

pub mod admission;
pub mod allocator;
pub mod certs;
pub mod certs_install;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod harden;
pub mod json;
pub mod json_out;
pub mod log_format;
pub mod log_writer;
pub mod namespace;
pub mod network;
pub mod patch;
pub mod pss;
pub mod server;
pub mod yaml;
