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
//! | [`json`], [`json_out`] | the fast JSON decoder and writer of the hot path |
//! | [`kube`] | shell: the one Kubernetes client (retries, field manager, errors) |
//! | [`server`] | shell: HTTPS, deadlines, limits, metrics |
//! | [`logs`] | shell: the log line format and the server's batched writer |
//! | [`cli`] | shell: one file per command: parse → call the core → print → exit code |
//!
//! # The request flow of the webhook
//!
//! ```text
//!  kube-apiserver ──TLS──▶ server::tls ──▶ server::http (limits, deadline, content type)
//!                                              │ body bytes
//!                                              ▼
//!                          admission::review(endpoint, body, &Config)
//!                           ├─ decode   lean structs (admission/decode.rs, via json)
//!                           ├─ decide   /mutate: harden::harden → pss::check
//!                           │           /validate: namespace::validate
//!                           └─ encode   AdmissionReview response, base64 JSON Patch
//!                                              │
//!  kube-apiserver ◀──TLS── server::http ◀──────┘ (+ logs, metrics)
//! ```

pub mod admission;
pub mod allocator;
mod bootstrap;
pub mod certs;
pub mod cli;
pub mod config;
pub mod harden;
pub mod json;
pub mod json_out;
mod kube;
pub mod logs;
pub mod manifests;
pub mod namespace;
pub mod network;
pub mod pss;
pub mod server;
pub mod yaml;
