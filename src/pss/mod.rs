//! Pod Security Standards evaluator (`baseline`, `restricted`), newest policy version.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A Pod Security Standards level, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Unrestricted.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practices.
    Restricted,
}

impl Level {
    /// The level's name as used in namespace labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(format!(
                "invalid level {s:?}: expected privileged, baseline or restricted"
            )),
        }
    }
}

/// One failed check of the standard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The upstream check ID, e.g. `runAsNonRoot` or `restrictedVolumes`.
    pub check: &'static str,
    /// The offending field, e.g. `spec.containers[0].securityContext.privileged`.
    pub path: String,
    /// The container concerned, when the field belongs to one.
    pub container: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Evaluates a pod against `level`; an empty list means it satisfies the level.
pub fn check(
    _meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    _spec: &k8s_openapi::api::core::v1::PodSpec,
    _level: Level,
) -> Vec<Violation> {
    todo!("PSS evaluator")
}
