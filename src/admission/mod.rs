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
mod tests {
    use super::*;
    use base64::Engine as _;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::{Value, json};

    fn pod_review(operation: &str, namespace: &str, object: Value) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": namespace, "operation": operation,
                "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
                "object": object, "oldObject": null, "dryRun": false
            }
        })
    }

    fn job_pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "j-", "namespace": "floe-jobs",
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                    "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]},
            "spec": {"containers": [{"name": "main", "image": "x"}]}})
    }

    fn call(endpoint: Endpoint, review: &Value) -> (Value, ReviewLog) {
        let r = super::review(
            endpoint,
            &serde_json::to_vec(review).unwrap(),
            &Config::default(),
        )
        .expect("a well-formed answer");
        (serde_json::from_slice(&r.body).unwrap(), r.log)
    }

    #[test]
    fn a_job_pod_gets_a_base64_json_patch_and_the_uid_back() {
        let (out, log) = call(
            Endpoint::Mutate,
            &pod_review("CREATE", "floe-jobs", job_pod()),
        );
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(out["kind"], "AdmissionReview");
        let resp = &out["response"];
        assert_eq!(resp["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(resp["allowed"], true);
        assert_eq!(resp["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(resp["patch"].as_str().expect("patch is a base64 string"))
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
        let mut pod = job_pod();
        json_patch::patch(&mut pod, &patch).unwrap();
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(log.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(
            (
                log.kind.as_str(),
                log.operation.as_str(),
                log.namespace.as_str(),
                log.name.as_str()
            ),
            ("Pod", "CREATE", "floe-jobs", "j-")
        );
        assert!(log.allowed && log.patch_ops == patch.0.len() && log.patch_bytes > 0);
    }

    #[test]
    fn out_of_scope_and_update_are_allowed_without_patch() {
        for (op, ns) in [
            ("CREATE", "default"),
            ("UPDATE", "floe-jobs"),
            ("DELETE", "floe-jobs"),
        ] {
            let mut review = pod_review(op, ns, job_pod());
            if op == "DELETE" {
                review["request"]["object"] = Value::Null;
            }
            let (out, _) = call(Endpoint::Mutate, &review);
            assert_eq!(out["response"]["allowed"], true, "{op} {ns}");
            assert!(out["response"].get("patch").is_none(), "{op} {ns}");
            assert!(out["response"].get("patchType").is_none(), "{op} {ns}");
        }
    }

    #[test]
    fn an_insecure_pod_is_denied_with_403_and_the_reasons() {
        let mut pod = job_pod();
        pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
        let (out, log) = call(Endpoint::Mutate, &pod_review("CREATE", "floe-jobs", pod));
        let resp = &out["response"];
        assert_eq!(resp["allowed"], false);
        assert_eq!(resp["status"]["code"], 403);
        assert_eq!(resp["status"]["reason"], "Forbidden");
        assert!(
            resp["status"]["message"]
                .as_str()
                .unwrap()
                .contains("privileged is true")
        );
        assert!(!log.allowed);
    }

    #[test]
    fn a_wrong_kind_is_answered_with_400_and_the_uid() {
        let mut review = pod_review("CREATE", "floe-jobs", job_pod());
        review["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        let (out, _) = call(Endpoint::Mutate, &review);
        assert_eq!(
            out["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(out["response"]["status"]["code"], 400);
        assert!(
            out["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("apps/v1 Deployment")
        );
    }

    #[test]
    fn an_undecodable_object_is_answered_by_uid_naming_the_field() {
        let mut review = pod_review("CREATE", "floe-jobs", job_pod());
        review["request"]["object"]["spec"]["containers"] = json!("not a list");
        let (out, _) = call(Endpoint::Mutate, &review);
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(out["response"]["status"]["code"], 400);
        let msg = out["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains("request.object.spec.containers"), "{msg}");
    }

    #[test]
    fn bodies_that_are_not_v1_reviews_are_bad_requests() {
        let cfg = Config::default();
        let bad = |body: &[u8]| super::review(Endpoint::Mutate, body, &cfg).unwrap_err().0;
        assert!(bad(b"").contains("not an AdmissionReview"));
        assert!(bad(b"{not json").contains("not an AdmissionReview"));
        assert!(bad(b"[1,2]").contains("not an AdmissionReview"));
        assert!(
            bad(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .contains("no `request`")
        );
        assert!(bad(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#)
            .contains("admission.k8s.io/v1beta1"));
        assert!(
            bad(br#"{"apiVersion":"v1","kind":"Pod"}"#).contains("expected kind AdmissionReview")
        );
        assert!(bad(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#)
            .contains("uid"));
    }

    /// The decision on the lean decoding equals the one on the full Pod (with
    /// the unknown volume sources found in the JSON, as the offline commands
    /// decode), for every upstream PSS fixture and the cases the corpus lacks
    /// (a volume source this build does not know, floe-guard's own writable
    /// volumes), at both levels and both `on_insecure` modes.
    #[test]
    fn lean_decoding_decides_like_full_decoding() {
        let dir = std::env::var_os("FLOE_GUARD_PSS_CONFORMANCE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/pss")
            });
        let mut objects = Vec::new();
        if dir.is_dir() {
            for level in ["baseline", "restricted"] {
                for verdict in ["pass", "fail"] {
                    let d = dir.join(level).join("v1.37").join(verdict);
                    for f in std::fs::read_dir(d).unwrap() {
                        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
                        objects.push(serde_yaml_ng::from_str::<Value>(&text).unwrap());
                    }
                }
            }
            assert_eq!(objects.len(), 148);
        } else {
            // Under CI a missing corpus fails rather than skips.
            assert!(
                std::env::var_os("CI").is_none(),
                "the PSS conformance corpus is missing at {}",
                dir.display()
            );
            eprintln!(
                "SKIPPED (corpus part): PSS conformance corpus not found at {}",
                dir.display()
            );
        }
        let extra = [
            json!({"volumes": [{"name": "new", "fancyDisk": {"size": 1}}]}),
            json!({"volumes": [{"name": "c", "configMap": {"name": "c"}, "fancyDisk": {}},
                {"name": "n", "fancyDisk": null}]}),
            json!({"volumes": [{"name": "floe-writable-tmp", "emptyDir": {"sizeLimit": "1024Mi"}},
                {"name": "floe-writable-home-floe", "emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}},
                {"name": "floe-writable-home-floe-2", "emptyDir": null}]}),
        ];
        for spec in extra {
            let mut spec = spec;
            spec["containers"] = json!([{"name": "main", "image": "x"}]);
            objects.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p"}, "spec": spec}));
        }
        let mut override_cfg = Config::default();
        override_cfg.security.pod_security.on_insecure = crate::config::OnInsecure::Override;
        for mut object in objects {
            object["metadata"]["ownerReferences"] =
                job_pod()["metadata"]["ownerReferences"].clone();
            let full: Pod = serde_json::from_value(object.clone()).unwrap();
            let full_unknown = super::unknown_volume_sources(&object["spec"]).unwrap();
            let (lean, lean_unknown) = serde_json::from_value::<PodObject>(object)
                .unwrap()
                .into_pod(0);
            assert_eq!(full_unknown, lean_unknown);
            for l in [crate::pss::Level::Baseline, crate::pss::Level::Restricted] {
                assert_eq!(
                    crate::pss::check_with(
                        &full.metadata,
                        full.spec.as_ref().unwrap(),
                        &full_unknown,
                        l
                    ),
                    crate::pss::check_with(
                        &lean.metadata,
                        lean.spec.as_ref().unwrap(),
                        &lean_unknown,
                        l
                    )
                );
            }
            for cfg in [&Config::default(), &override_cfg] {
                let req = PodRequest {
                    namespace: "floe-jobs",
                    operation: Operation::Create,
                    username: "u",
                };
                let (mut a, mut b) = (full.clone(), lean.clone());
                assert_eq!(
                    harden::harden(&mut a, &full_unknown, &req, cfg),
                    harden::harden(&mut b, &lean_unknown, &req, cfg)
                );
            }
        }
    }

    fn ns_review(operation: &str, labels: Value) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Namespace"},
                "name": "floe-jobs", "operation": operation, "userInfo": {"username": "alice"},
                "object": {"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "floe-jobs", "labels": labels}},
            }
        })
    }

    #[test]
    fn namespaces_are_validated_on_create_and_update() {
        let good = json!({"pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted"});
        let (out, _) = call(Endpoint::Validate, &ns_review("CREATE", good.clone()));
        assert_eq!(out["response"]["allowed"], true);
        assert!(out["response"].get("patch").is_none());
        let mut weakened = good.clone();
        weakened
            .as_object_mut()
            .unwrap()
            .remove("pod-security.kubernetes.io/enforce");
        let (out, log) = call(Endpoint::Validate, &ns_review("UPDATE", weakened));
        assert_eq!(out["response"]["allowed"], false);
        assert_eq!(out["response"]["status"]["code"], 403);
        let msg = out["response"]["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains("enforce is missing") && msg.contains("kubectl label namespace floe-jobs"),
            "{msg}"
        );
        assert_eq!(
            (log.kind.as_str(), log.name.as_str()),
            ("Namespace", "floe-jobs")
        );
        let mut delete = ns_review("DELETE", json!({}));
        delete["request"]["object"] = Value::Null;
        assert_eq!(
            call(Endpoint::Validate, &delete).0["response"]["allowed"],
            true
        );
    }
}
