//! The admission hot path: decode an `admission.k8s.io/v1` AdmissionReview,
//! decide (pod hardening or namespace validation), encode the response.

use crate::config::Config;

/// Which webhook a review was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/mutate`: Pods, hardened.
    Mutate,
    /// `/validate`: Namespaces, validated.
    Validate,
}

/// An answered review: the response body and what to log and count.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The `AdmissionReview` response, JSON.
    pub body: Vec<u8>,
    /// The facts for logs and metrics.
    pub log: ReviewLog,
}

/// The facts of one review for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewLog {
    /// `request.uid`.
    pub uid: String,
    /// `request.kind.kind`.
    pub kind: String,
    /// `request.operation`.
    pub operation: String,
    /// `request.namespace` (empty for cluster-scoped objects).
    pub namespace: String,
    /// `request.name`, else the object's `generateName`.
    pub name: String,
    /// Whether the review was allowed.
    pub allowed: bool,
    /// Number of JSONPatch operations returned.
    pub patch_ops: usize,
    /// Size of the JSONPatch, bytes, before base64.
    pub patch_bytes: usize,
}

/// A body that is not an AdmissionReview this webhook can answer (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

/// Decodes, decides and encodes one review.
pub fn review(_endpoint: Endpoint, _body: &[u8], _config: &Config) -> Result<Reviewed, BadReview> {
    todo!("admission hot path")
}
