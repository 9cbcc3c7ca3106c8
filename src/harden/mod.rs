//! Pod hardening: the mutation semantics of DESIGN "Mutation semantics".
//!
//! [`harden`] turns a pod into its hardened form in place and returns the
//! decision: allow with a minimal RFC 6902 patch (valid against the request
//! object), or deny naming every offending field. The patch only adds what is
//! absent and replaces what is insecure, so hardening a hardened pod yields
//! no patch.

mod context;
#[cfg(test)]
mod tests;
mod writable;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Pod, PodSpec};

use crate::admission::patch::JsonPatch;
use crate::config::{Config, OnInsecure, Scope};
use crate::pss::{self, UnknownSource};
use context::{Hardener, PodFills};
pub use writable::clashing_paths;

/// The admission operation of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// CREATE: pods are hardened.
    Create,
    /// UPDATE of `pods/ephemeralcontainers` (`kubectl debug`): the ephemeral
    /// containers not named in `existing` (those of `oldObject`) are
    /// hardened; nothing else can change.
    AddEphemeral {
        /// The names of the ephemeral containers the pod had before.
        existing: &'a [String],
    },
    /// CREATE of a workload: its pod template is hardened as the pods it
    /// will create, which a Job controls.
    CreateTemplate(Template),
    /// Any other UPDATE, DELETE, CONNECT: never patched.
    Other,
}

/// A workload whose pod template is hardened at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// `batch/v1` Job: `.spec.template`.
    Job,
    /// `batch/v1` CronJob: `.spec.jobTemplate.spec.template`.
    CronJob,
}

impl Template {
    /// The reference tokens of the pod template in the workload.
    pub fn tokens(self) -> &'static [&'static str] {
        match self {
            Template::Job => &["spec", "template"],
            Template::CronJob => &["spec", "jobTemplate", "spec", "template"],
        }
    }

    /// The workload's kind.
    pub fn kind(self) -> &'static str {
        match self {
            Template::Job => "Job",
            Template::CronJob => "CronJob",
        }
    }

    /// `text` with every pod field path (`spec.…`, at the start or after a
    /// space or parenthesis) named where it is in the workload
    /// (`spec.template.spec.…`).
    pub fn name_paths(self, text: &str) -> String {
        let mut prefix = self.tokens().join(".");
        prefix.push('.');
        let mut out = String::with_capacity(text.len() + prefix.len());
        let mut rest = text;
        let mut at_boundary = true;
        while let Some(c) = rest.chars().next() {
            if at_boundary && rest.starts_with("spec.") {
                out.push_str(&prefix);
            }
            out.push(c);
            at_boundary = matches!(c, ' ' | '(' | '\n');
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// Who asks for what, besides the pod itself.
#[derive(Debug, Clone, Copy)]
pub struct PodRequest<'a> {
    /// The namespace the pod is created in.
    pub namespace: &'a str,
    /// The admission operation.
    pub operation: Operation<'a>,
    /// The requesting user (`userInfo.username`), for exemptions.
    pub username: &'a str,
}

/// The hardening decision for one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Admit, after applying `patch` (empty when nothing needs changing).
    Allow {
        /// RFC 6902 operations against the request object.
        patch: JsonPatch,
        /// Messages for the user (`response.warnings`).
        warnings: Vec<String>,
        /// `response.auditAnnotations`.
        audit: BTreeMap<String, String>,
    },
    /// Reject, with one reason per offending field or PSS violation.
    Deny {
        /// Every problem found.
        reasons: Vec<String>,
        /// The rule of each reason: the insecure field (`privileged`,
        /// `seccompProfile`…) or the PSS check (`hostPathVolumes`…).
        rules: Vec<String>,
    },
}

impl Decision {
    fn untouched() -> Self {
        Decision::Allow {
            patch: JsonPatch::new(),
            warnings: Vec::new(),
            audit: BTreeMap::new(),
        }
    }

    fn exempt(why: &str) -> Self {
        Decision::Allow {
            patch: JsonPatch::new(),
            warnings: Vec::new(),
            audit: BTreeMap::from([("exempt".to_string(), why.to_string())]),
        }
    }

    /// The message of a denial: every reason, one per line.
    pub fn deny_message(reasons: &[String]) -> String {
        let mut m = String::from("floe-guard denied the pod:");
        for r in reasons {
            let _ = write!(m, "\n- {r}");
        }
        m
    }
}

/// Capabilities a restricted pod may add.
const ALLOWED_ADD: &str = "NET_BIND_SERVICE";

/// Why a pod is left untouched, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `pod_security.enabled: false`.
    Disabled,
    /// Neither a CREATE nor new ephemeral containers: a pod spec is
    /// immutable afterwards.
    NotCreate,
    /// Not in `floe-jobs` or a domain namespace.
    NotJobNamespace,
    /// Exempt by configuration (`username`, `namespace` or `runtimeClass`).
    Exempt(&'static str),
    /// `scope: job-pods` and no Job controls the pod.
    NotJobPod,
}

impl Skip {
    /// A sentence for people.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::Disabled => "pod_security.enabled is false",
            Skip::NotCreate => {
                "only CREATE and new ephemeral containers are hardened (a pod spec is immutable afterwards)"
            }
            Skip::NotJobNamespace => "the namespace is not floe-jobs or a domain namespace",
            Skip::Exempt("username") => "the requesting user is exempt by configuration",
            Skip::Exempt("namespace") => "the namespace is exempt by configuration",
            Skip::Exempt(_) => "the runtime class is exempt by configuration",
            Skip::NotJobPod => "scope is job-pods and no Job controls the pod (ownerReferences)",
        }
    }
}

/// Whether the pod is left untouched, and why.
pub fn skip(pod: &Pod, req: &PodRequest, cfg: &Config) -> Option<Skip> {
    let ps = &cfg.security.pod_security;
    let ex = &ps.exemptions;
    let runtime_class = pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref());
    if !ps.enabled {
        Some(Skip::Disabled)
    } else if req.operation == Operation::Other {
        Some(Skip::NotCreate)
    } else if !cfg.is_job_namespace(req.namespace) {
        Some(Skip::NotJobNamespace)
    } else if ex.usernames.iter().any(|u| u == req.username) {
        Some(Skip::Exempt("username"))
    } else if ex.namespaces.iter().any(|n| n == req.namespace) {
        Some(Skip::Exempt("namespace"))
    } else if runtime_class.is_some_and(|rc| ex.runtime_classes.iter().any(|x| x == rc)) {
        Some(Skip::Exempt("runtimeClass"))
    } else if ps.scope == Scope::JobPods
        && !matches!(req.operation, Operation::CreateTemplate(_))
        && !owned_by_job(pod)
    {
        Some(Skip::NotJobPod)
    } else {
        None
    }
}

/// Whether a Job controls the pod.
fn owned_by_job(pod: &Pod) -> bool {
    pod.metadata.owner_references.iter().flatten().any(|o| {
        o.kind == "Job" && o.api_version.starts_with("batch/") && o.controller == Some(true)
    })
}

/// Hardens `pod` in place and decides. On `Allow`, `pod` is the patched pod.
/// `unknown` are the volume sources the typed pod cannot hold (each
/// violates `restricted`).
pub fn harden(
    pod: &mut Pod,
    unknown: &[UnknownSource],
    req: &PodRequest,
    cfg: &Config,
) -> Decision {
    match skip(pod, req, cfg) {
        Some(Skip::Exempt(what)) => return Decision::exempt(what),
        Some(_) => return Decision::untouched(),
        None => {}
    }
    let ps = &cfg.security.pod_security;
    let template = match req.operation {
        Operation::CreateTemplate(t) => Some(t),
        _ => None,
    };
    let mut h = Hardener {
        ps,
        ops: JsonPatch::under(template.map_or(&[], Template::tokens)),
        insecure: Vec::new(),
        insecure_rules: Vec::new(),
        warnings: Vec::new(),
        fresh_container_context: None,
    };
    let Some(spec) = pod.spec.as_mut() else {
        return Decision::Deny {
            reasons: vec!["the pod has no spec".into()],
            rules: vec!["spec".into()],
        };
    };
    let windows = spec.os.as_ref().is_some_and(|os| os.name == "windows");
    // The containers under review: all of them, or only the new ephemeral ones.
    let mut new_ephemeral: Option<Vec<String>> = None;
    match req.operation {
        Operation::Create | Operation::CreateTemplate(_) => create(&mut h, spec, windows),
        Operation::AddEphemeral { existing } => {
            let fills = PodFills::missing_in(spec.security_context.as_ref(), ps, windows);
            let new = new_ephemeral.insert(Vec::new());
            for (i, c) in spec.ephemeral_containers.iter_mut().flatten().enumerate() {
                if !existing.contains(&c.name) {
                    let at = ("ephemeralContainers", i, c.name.as_str());
                    h.container(&mut c.security_context, at, windows, fills);
                    new.push(c.name.clone());
                }
            }
            if new.is_empty() {
                return Decision::untouched();
            }
        }
        Operation::Other => unreachable!("skip() leaves other operations untouched"),
    }

    let level = cfg.level_of(req.namespace).unwrap_or(ps.jobs_level);
    let mut remaining = pss::check_with(
        &pod.metadata,
        pod.spec.as_ref().expect("spec checked above"),
        unknown,
        level,
    );
    if let Some(new) = &new_ephemeral {
        // The pod as the new containers join it: pod-level findings and theirs.
        remaining.retain(|v| v.container.as_ref().is_none_or(|c| new.contains(c)));
    }
    let mut reasons = Vec::new();
    let mut rules = Vec::new();
    if ps.on_insecure == OnInsecure::Deny {
        reasons.append(&mut h.insecure);
        rules.append(&mut h.insecure_rules);
    }
    rules.extend(remaining.iter().map(|v| v.check.to_string()));
    reasons.extend(remaining.iter().map(|v| {
        format!(
            "{}: {} (PSS {level} check {}{})",
            v.path,
            v.message,
            v.check,
            if ps.on_insecure == OnInsecure::Override {
                ", cannot be overridden"
            } else {
                ""
            }
        )
    }));
    if let Some(t) = template {
        for text in reasons
            .iter_mut()
            .chain(&mut h.insecure)
            .chain(&mut h.warnings)
        {
            *text = t.name_paths(text);
        }
    }
    if !reasons.is_empty() {
        return Decision::Deny { reasons, rules };
    }
    let mut audit = BTreeMap::new();
    if !h.insecure.is_empty() {
        audit.insert("insecure-overridden".to_string(), h.insecure.join("; "));
        h.warnings.extend(
            h.insecure
                .iter()
                .map(|f| format!("floe-guard overrode an insecure value: {f}")),
        );
    }
    Decision::Allow {
        patch: h.ops,
        warnings: h.warnings,
        audit,
    }
}

/// The CREATE rules: the pod-level context, host namespaces, every
/// container, and the writable volumes.
fn create(h: &mut Hardener, spec: &mut PodSpec, windows: bool) {
    h.pod_security_context(&mut spec.security_context, windows);
    for (field, on) in [
        ("hostNetwork", &mut spec.host_network),
        ("hostPID", &mut spec.host_pid),
        ("hostIPC", &mut spec.host_ipc),
    ] {
        if *on == Some(true) {
            *on = Some(false);
            h.replace(
                &["spec", field],
                &false,
                format!("spec.{field} is true"),
                None,
            );
        }
    }
    let none = PodFills::default();
    for (i, c) in spec.containers.iter_mut().enumerate() {
        let at = ("containers", i, c.name.as_str());
        h.container(&mut c.security_context, at, windows, none);
    }
    for (i, c) in spec.init_containers.iter_mut().flatten().enumerate() {
        let at = ("initContainers", i, c.name.as_str());
        h.container(&mut c.security_context, at, windows, none);
    }
    for (i, c) in spec.ephemeral_containers.iter_mut().flatten().enumerate() {
        let at = ("ephemeralContainers", i, c.name.as_str());
        h.container(&mut c.security_context, at, windows, none);
    }
    if !windows {
        h.writable_paths(spec);
    }
}
