//! floe-guard: network and pod security for the floe data platform.
//!
//! # Module map
//!
//! A pure core (no I/O, no async, no printing) and thin I/O shells.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | `manifest.yaml` → [`config::Config`], every key checked at load |
//! | [`harden`] | the pod hardening rules (fill absent, keep compliant, deny or override insecure) |
//! | [`namespace`] | the namespace Pod Security label rules |
//! | [`pss`] | the Pod Security Standards, one function per upstream check |
//! | [`network`] | everything behind `floe-guard network …`: generate, validate, reach, audit, diff, cni |
//! | [`bootstrap`] | what `bootstrap` wants to exist, and what is stale |
//! | [`certs`] | CA and serving certificate generation, and the install/rotation plan |
//! | [`manifests`] | the config-derived raw manifests: managed namespaces and least-privilege RBAC |
//! | [`admission`] | the webhook hot path: decode → decide → encode, and the JSON Patch text |
//! | [`kube`] | shell: the one Kubernetes client (retries, field manager, errors) |
//! | [`server`] | shell: HTTPS, deadlines, limits, metrics |
//! | [`logs`] | shell: the log line format |
//! | [`cli`] | shell: one file per command: parse → call the core → print → exit code |
//!
//! # The request flow of the webhook
//!
//! ```text
//!  kube-apiserver ──TLS──▶ server::tls ──▶ server::http (limits, deadline, content type)
//!                                              │ body bytes
//!                                              ▼
//!                          admission::review(endpoint, body, &Config)
//!                           ├─ decode   lean structs (admission/decode.rs, via fastjson)
//!                           ├─ decide   /mutate: harden::harden → pss::check
//!                           │           /validate: namespace::validate
//!                           └─ encode   AdmissionReview response, base64 JSON Patch
//!                                              │
//!  kube-apiserver ◀──TLS── server::http ◀──────┘ (+ logs, metrics)
//! ```

//! The JSON fast path (decoder, string writer) is the workspace crate
//! `fastjson` (`crates/fastjson`), which holds all the `unsafe` code and SIMD;
//! this crate has none.

#![forbid(unsafe_code)]

pub mod admission;
mod bootstrap;
pub mod certs;
pub mod cli;
pub mod config;
pub mod harden;
mod kube;
pub mod logs;
pub mod manifests;
pub mod namespace;
pub mod network;
pub mod pss;
pub mod server;
pub mod yaml;
