//! The commands that act on a live cluster: `bootstrap`, `network audit`,
//! `network diff` and `network check-cni`.
//!
//! The decisions are pure functions over k8s-openapi objects: what to apply
//! and prune ([`plan`]), default-deny detection and pod checks ([`audit`]),
//! drift ([`diff`]), CNI classification ([`cni`]). [`client`] is the thin
//! shell around kube: connection, retries with backoff, and one-line errors.

pub mod audit;
pub mod client;
pub mod cni;
pub mod diff;
pub mod plan;

/// Field manager of every server-side apply floe-guard makes.
pub const FIELD_MANAGER: &str = "floe-guard";
