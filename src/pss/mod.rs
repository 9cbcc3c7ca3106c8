//! Pod Security Standards evaluator (`baseline`, `restricted`), newest policy version.
//!
//! Mirrors the checks of upstream `k8s.io/pod-security-admission` (`policy/check_*.go`)
//! at policy version v1.37, the version `latest` resolves to on a 1.37 API server.
//! Each check reports one [`Violation`] per offending field, under the upstream check
//! ID. The `restricted` level is every `baseline` check except the four that a
//! restricted check overrides upstream (`capabilities_baseline`, `hostPathVolumes`,
//! `procMount`, `seccompProfile_baseline`), plus the restricted checks.
//!
//! The pod is evaluated as the API server would hand it to admission: a volume
//! without any source counts as the `emptyDir` the API server defaults it to.
//! `restricted` volumes are an allow-list, as upstream: a volume whose source
//! this build does not know (a newer Kubernetes added the type) violates
//! `restrictedVolumes`. A typed `PodSpec` cannot hold such a source (its
//! decoder drops unknown keys), so the decoders report it as an
//! [`UnknownSource`] beside the spec ([`check_with`]).
//! A compliant pod costs no allocation.

mod baseline;
mod restricted;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSpec, Probe, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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

/// A volume source the typed `Volume` cannot hold: a key other than `name`
/// that this build does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSource {
    /// The volume's index in `spec.volumes`.
    pub volume: usize,
    /// The source's JSON key, e.g. `fancyDisk`.
    pub key: String,
}

/// Evaluates a typed pod against `level`; an empty list means it satisfies
/// the level. For a pod decoded from JSON, use [`check_with`] and the
/// decoder's unknown volume sources.
pub fn check(meta: &ObjectMeta, spec: &PodSpec, level: Level) -> Vec<Violation> {
    check_with(meta, spec, &[], level)
}

/// Evaluates a pod against `level`, with the volume sources its decoding
/// did not know (each violates `restrictedVolumes`).
pub fn check_with(
    meta: &ObjectMeta,
    spec: &PodSpec,
    unknown: &[UnknownSource],
    level: Level,
) -> Vec<Violation> {
    let checks: &[CheckFn] = match level {
        Level::Privileged => &[],
        Level::Baseline => &BASELINE,
        Level::Restricted => &RESTRICTED,
    };
    let mut out = Vec::new();
    for check in checks {
        check(meta, spec, &mut out);
    }
    if level == Level::Restricted {
        restricted::unknown_volumes(spec, unknown, &mut out);
    }
    out
}

/// One check: appends a violation per offending field.
type CheckFn = fn(&ObjectMeta, &PodSpec, &mut Vec<Violation>);

/// The baseline level, in the order of the published standard.
const BASELINE: [CheckFn; 12] = [
    baseline::host_namespaces,
    baseline::privileged,
    baseline::capabilities,
    baseline::host_path_volumes,
    baseline::host_ports,
    baseline::app_armor_profile,
    baseline::se_linux_options,
    baseline::proc_mount,
    baseline::seccomp_profile,
    baseline::sysctls,
    baseline::windows_host_process,
    baseline::host_probes_and_host_lifecycle,
];

/// The restricted level: baseline with its four overridden checks replaced by
/// their restricted counterparts, plus the restricted-only checks.
const RESTRICTED: [CheckFn; 15] = [
    baseline::host_namespaces,
    baseline::privileged,
    restricted::capabilities,
    restricted::volumes,
    baseline::host_ports,
    baseline::app_armor_profile,
    baseline::se_linux_options,
    restricted::proc_mount,
    restricted::seccomp_profile,
    baseline::sysctls,
    baseline::windows_host_process,
    baseline::host_probes_and_host_lifecycle,
    restricted::allow_privilege_escalation,
    restricted::run_as_non_root,
    restricted::run_as_user,
];

/// The fields of a container, init container or ephemeral container that the
/// checks read, with where the container sits in the pod spec.
struct Ctr<'a> {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    list: &'static str,
    index: usize,
    name: &'a str,
    security_context: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    probes: [(&'static str, Option<&'a Probe>); 3],
    lifecycle: Option<&'a Lifecycle>,
}

/// The checked fields of a `Container` or `EphemeralContainer` (same names).
macro_rules! ctr_of {
    ($list:expr, $index:expr, $c:expr) => {{
        let c = $c;
        Ctr {
            list: $list,
            index: $index,
            name: &c.name,
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            probes: [
                ("livenessProbe", c.liveness_probe.as_ref()),
                ("readinessProbe", c.readiness_probe.as_ref()),
                ("startupProbe", c.startup_probe.as_ref()),
            ],
            lifecycle: c.lifecycle.as_ref(),
        }
    }};
}

impl<'a> Ctr<'a> {
    fn of_container(list: &'static str, index: usize, c: &'a Container) -> Self {
        ctr_of!(list, index, c)
    }

    fn of_ephemeral(index: usize, c: &'a EphemeralContainer) -> Self {
        ctr_of!("ephemeralContainers", index, c)
    }

    /// A violation at `field` (relative to the container) of this container;
    /// the message is prefixed with `container "name"`.
    fn violation(
        &self,
        check: &'static str,
        field: impl fmt::Display,
        message: impl fmt::Display,
    ) -> Violation {
        Violation {
            check,
            path: format!("spec.{}[{}].{field}", self.list, self.index),
            container: Some(self.name.to_owned()),
            message: format!("container {:?} {message}", self.name),
        }
    }
}

/// Every container of the pod, as upstream visits them: init containers,
/// containers, then ephemeral containers.
fn containers(spec: &PodSpec) -> impl Iterator<Item = Ctr<'_>> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or_default();
    init.iter()
        .enumerate()
        .map(|(i, c)| Ctr::of_container("initContainers", i, c))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| Ctr::of_container("containers", i, c)),
        )
        .chain(
            ephemeral
                .iter()
                .enumerate()
                .map(|(i, c)| Ctr::of_ephemeral(i, c)),
        )
}

/// Who set a security context field: the pod, or one of its containers.
#[derive(Clone, Copy)]
enum Owner<'c, 'a> {
    Pod,
    Container(&'c Ctr<'a>),
}

impl Owner<'_, '_> {
    /// A violation at `securityContext.{field}` of the pod or container; the
    /// message is prefixed with `pod` or `container "name"`.
    fn violation(
        self,
        check: &'static str,
        field: impl fmt::Display,
        message: impl fmt::Display,
    ) -> Violation {
        match self {
            Owner::Pod => pod_violation(
                check,
                format!("spec.securityContext.{field}"),
                format_args!("pod {message}"),
            ),
            Owner::Container(c) => {
                c.violation(check, format_args!("securityContext.{field}"), message)
            }
        }
    }
}

/// A violation of a pod-level field.
fn pod_violation(check: &'static str, path: String, message: impl fmt::Display) -> Violation {
    Violation {
        check,
        path,
        container: None,
        message: message.to_string(),
    }
}

/// Whether the pod declares itself a Windows pod (`spec.os.name: windows`),
/// which the restricted Linux-only checks exempt since policy v1.25.
fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

/// Whether the pod runs in its own user namespace (`spec.hostUsers: false`),
/// which relaxes some checks since policy v1.35.
fn in_user_namespace(spec: &PodSpec) -> bool {
    spec.host_users == Some(false)
}

/// The seccomp profile types every level accepts when a profile is set.
fn valid_seccomp(profile_type: &str) -> bool {
    matches!(profile_type, "RuntimeDefault" | "Localhost")
}
