//! The admission hot path: decode an `admission.k8s.io/v1` AdmissionReview,
//! decide (pod hardening or namespace validation), encode the response.

mod decode;
mod encode;
pub mod patch;

use std::collections::BTreeMap;

use crate::config::{Config, Mode};
use crate::harden::{self, Decision, Operation, PodRequest, Template};
use crate::namespace;
use crate::pss::UnknownSource;
use decode::{
    CronJobObject, Decoded, JobObject, NamespaceObject, PodObject, Request, Workload, decode,
};
use encode::encode;
use patch::JsonPatch;
use serde::Deserialize as _;

/// The only AdmissionReview version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Which webhook a review was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/mutate`: Pods (and Job/CronJob pod templates), hardened.
    Mutate,
    /// `/mutate-audit`: as `/mutate`, in audit mode (the webhook entry for
    /// namespaces labelled `floe.dev/enforcement: audit`).
    MutateAudit,
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
    /// Audit mode: the rules that would have denied the request.
    pub would_deny: Vec<String>,
}

/// A body that is not an AdmissionReview this webhook can answer (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

/// Decodes, decides and encodes one review.
///
/// A body that is not an `admission.k8s.io/v1` AdmissionReview with a
/// `request.uid` is a [`BadReview`]; anything else gets a well-formed answer
/// that echoes the uid (a request the webhook cannot handle is denied with
/// code 400 and the reason).
pub fn review(endpoint: Endpoint, body: &[u8], config: &Config) -> Result<Reviewed, BadReview> {
    match endpoint {
        Endpoint::Mutate | Endpoint::MutateAudit => {
            let audit = endpoint == Endpoint::MutateAudit
                || config.security.pod_security.mode == Mode::Audit;
            let config = &Mutation { config, audit };
            // Pods are the hot path: decoded as such first; the rare Job or
            // CronJob is decoded again with its own lean struct.
            let pods = decode::<PodObject>(body)?;
            match pods {
                Decoded::Request(req) if req.kind.group == "batch" => {
                    match req.kind.kind.as_str() {
                        "Job" => decode::<JobObject>(body)
                            .map(|r| answer(r, |req| mutate_template(req, Template::Job, config))),
                        "CronJob" => decode::<CronJobObject>(body).map(|r| {
                            answer(r, |req| mutate_template(req, Template::CronJob, config))
                        }),
                        _ => Ok(answer(Decoded::Request(req), |req| mutate(req, config))),
                    }
                }
                pods => Ok(answer(pods, |req| mutate(req, config))),
            }
        }
        Endpoint::Validate => {
            decode::<NamespaceObject>(body).map(|r| answer(r, |req| validate(req, body, config)))
        }
    }
}

/// The volume sources of a pod spec (JSON) that this build does not know,
/// found as the webhook finds them: for decoders that drop unknown keys
/// (k8s-openapi's, in the offline commands), so that `restricted` denies
/// them there too.
pub fn unknown_volume_sources(spec: &serde_json::Value) -> Result<Vec<UnknownSource>, String> {
    match spec.get("volumes") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(volumes) => Vec::<decode::VolumeFields>::deserialize(volumes)
            .map(|v| decode::unknown_sources(&v))
            .map_err(|e| format!("spec.volumes: {e}")),
    }
}

/// What a decision produces, before encoding.
struct Answer {
    allowed: bool,
    code: u16,
    message: String,
    patch: Option<JsonPatch>,
    warnings: Vec<String>,
    audit: BTreeMap<String, String>,
    would_deny: Vec<String>,
}

/// The configuration of a mutation, and whether it is audited.
struct Mutation<'c> {
    config: &'c Config,
    /// Report what would be denied instead of denying.
    audit: bool,
}

impl Answer {
    fn allow() -> Self {
        Self::new(true, 200, String::new())
    }

    fn deny(code: u16, message: String) -> Self {
        Self::new(false, code, message)
    }

    fn new(allowed: bool, code: u16, message: String) -> Self {
        Answer {
            allowed,
            code,
            message,
            patch: None,
            warnings: Vec::new(),
            audit: BTreeMap::new(),
            would_deny: Vec::new(),
        }
    }
}

fn answer<O>(decoded: Decoded<O>, decide: impl FnOnce(&mut Request<O>) -> Answer) -> Reviewed {
    let (log, answer) = match decoded {
        Decoded::Malformed { uid, message } => (
            ReviewLog {
                uid,
                ..ReviewLog::default()
            },
            Answer::deny(400, message),
        ),
        Decoded::Request(mut req) => {
            let mut answer = decide(&mut req);
            let log = ReviewLog {
                would_deny: std::mem::take(&mut answer.would_deny),
                kind: req.kind.kind,
                operation: req.operation,
                namespace: req.namespace.unwrap_or_default(),
                name: req.name.unwrap_or_default(),
                uid: req.uid,
                ..ReviewLog::default()
            };
            (log, answer)
        }
    };
    encode(log, answer)
}

fn mutate(req: &mut Request<PodObject>, config: &Mutation) -> Answer {
    if (req.kind.group.as_str(), req.kind.kind.as_str()) != ("", "Pod") {
        return Answer::deny(
            400,
            format!(
                "floe-guard /mutate handles core/v1 Pods and batch/v1 Jobs and CronJobs, got {}/{} {}: check the webhook's rules",
                req.kind.group, req.kind.version, req.kind.kind
            ),
        );
    }
    let existing: Vec<String>;
    let operation = match (req.operation.as_str(), req.sub_resource.as_deref()) {
        ("CREATE", None | Some("")) => Operation::Create,
        ("UPDATE", Some("ephemeralcontainers")) => {
            let Some(old) = req.old_object.take() else {
                return Answer::deny(
                    400,
                    "an ephemeralcontainers UPDATE review without `request.oldObject`".into(),
                );
            };
            existing = old.ephemeral_container_names();
            Operation::AddEphemeral {
                existing: &existing,
            }
        }
        _ => Operation::Other,
    };
    let Some(object) = req.object.take() else {
        return if operation == Operation::Other {
            Answer::allow()
        } else {
            Answer::deny(
                400,
                format!("a {} review without `request.object`", req.operation),
            )
        };
    };
    if req.name.is_none() {
        req.name = object
            .metadata
            .name
            .clone()
            .or(object.metadata.generate_name.clone());
    }
    let namespace = req
        .namespace
        .as_deref()
        .or(object.metadata.namespace.as_deref())
        .unwrap_or_default()
        .to_string();
    decide_pod(
        object,
        &namespace,
        operation,
        &req.user_info.username,
        config,
    )
}

/// `/mutate` for a Job or CronJob: its pod template is hardened on CREATE,
/// as the pods it will create; anything else is allowed unchanged.
fn mutate_template<W: Workload>(
    req: &mut Request<W>,
    template: Template,
    config: &Mutation,
) -> Answer {
    if req.operation != "CREATE" || req.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return Answer::allow();
    }
    let Some(object) = req.object.take() else {
        return Answer::deny(400, "a CREATE review without `request.object`".into());
    };
    let (meta, pod) = object.split();
    if req.name.is_none() {
        req.name = meta.name.or(meta.generate_name);
    }
    let namespace = req.namespace.clone().or(meta.namespace).unwrap_or_default();
    let Some(pod) = pod else {
        let path = template.tokens().join(".");
        return Answer::deny(400, format!("the {} has no `{path}`", template.kind()));
    };
    let operation = Operation::CreateTemplate(template);
    decide_pod(pod, &namespace, operation, &req.user_info.username, config)
}

/// Hardens one pod (or pod template) and answers; in audit mode, what
/// would be denied is admitted unchanged and reported.
fn decide_pod(
    object: PodObject,
    namespace: &str,
    operation: Operation,
    username: &str,
    m: &Mutation,
) -> Answer {
    let ps = &m.config.security.pod_security;
    let (mut pod, unknown) = object.into_pod(ps.writable_paths.len());
    let pod_request = PodRequest {
        namespace,
        operation,
        username,
    };
    match harden::harden(&mut pod, &unknown, &pod_request, m.config) {
        Decision::Allow {
            patch,
            warnings,
            mut audit,
        } => {
            let patch = if m.audit && !ps.audit_patch {
                if !patch.is_empty() {
                    let n = patch.len();
                    audit.insert("would-patch".into(), format!("{n} JSONPatch operations"));
                }
                None
            } else {
                Some(patch)
            };
            Answer {
                patch,
                warnings,
                audit,
                ..Answer::allow()
            }
        }
        Decision::Deny { reasons, rules } if m.audit => Answer {
            warnings: reasons
                .iter()
                .map(|r| format!("floe-guard audit mode, would deny: {r}"))
                .collect(),
            audit: BTreeMap::from([("would-deny".to_string(), reasons.join("; "))]),
            would_deny: rules,
            ..Answer::allow()
        },
        Decision::Deny { reasons, .. } => Answer::deny(403, Decision::deny_message(&reasons)),
    }
}

fn validate(req: &mut Request<NamespaceObject>, body: &[u8], config: &Config) -> Answer {
    if (req.kind.group.as_str(), req.kind.kind.as_str()) != ("", "Namespace") {
        return Answer::deny(
            400,
            format!(
                "floe-guard /validate handles core/v1 Namespaces, got {}/{} {}: check the webhook's rules",
                req.kind.group, req.kind.version, req.kind.kind
            ),
        );
    }
    if !matches!(req.operation.as_str(), "CREATE" | "UPDATE") {
        return Answer::allow();
    }
    let Some(object) = req.object.take() else {
        return Answer::deny(
            400,
            format!("a {} review without `request.object`", req.operation),
        );
    };
    let meta = object.metadata;
    let name = req
        .name
        .get_or_insert_with(|| meta.name.or(meta.generate_name).unwrap_or_default());
    let old_labels = req
        .old_object
        .take()
        .map(|o| o.metadata.labels.unwrap_or_default());
    let labels = meta.labels.unwrap_or_default();
    let old_labels = old_labels.filter(|_| req.operation == "UPDATE");
    fn label(l: Option<&BTreeMap<String, String>>) -> Option<&str> {
        l.and_then(|l| l.get(namespace::ENFORCEMENT_LABEL))
            .map(String::as_str)
    }
    if let Some(why) = namespace::enforcement_change(
        label(Some(&labels)),
        label(old_labels.as_ref()),
        &req.user_info.username,
        || decode::user_groups(body),
        config,
    ) {
        return Answer::deny(403, format!("floe-guard denied namespace {name}: {why}"));
    }
    let verdict = namespace::validate_change(name, &labels, old_labels.as_ref(), config);
    if verdict.allowed() {
        Answer::allow()
    } else {
        Answer::deny(403, verdict.message(name))
    }
}

#[cfg(test)]
mod tests;
