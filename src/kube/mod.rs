//! The one Kubernetes client shell: connection, retries with backoff, the
//! field manager of every server-side apply, and one-line errors.

pub mod apply;
pub mod client;
pub mod discover;

/// Field manager of every server-side apply floe-guard makes.
pub const FIELD_MANAGER: &str = "floe-guard";
