//! Pod hardening: the mutation semantics of DESIGN "Mutation semantics".
//!
//! [`harden`] turns a pod into its hardened form in place and returns the
//! decision: allow with a minimal RFC 6902 patch (valid against the request
//! object), or deny naming every offending field. The patch only adds what is
//! absent and replaces what is insecure, so hardening a hardened pod yields
//! no patch.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::value::RawValue;

use crate::admission::patch::JsonPatch;
use crate::config::{Config, OnInsecure, PodSecurity, Scope};
use crate::pss;

/// The admission operation of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// CREATE: pods are hardened.
    Create,
    /// UPDATE, DELETE, CONNECT: never patched.
    Other,
}

/// Who asks for what, besides the pod itself.
#[derive(Debug, Clone, Copy)]
pub struct PodRequest<'a> {
    /// The namespace the pod is created in.
    pub namespace: &'a str,
    /// The admission operation.
    pub operation: Operation,
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
    /// Not a CREATE: a pod spec is immutable afterwards.
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
            Skip::NotCreate => "only CREATE is hardened (a pod spec is immutable afterwards)",
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
    } else if req.operation != Operation::Create {
        Some(Skip::NotCreate)
    } else if !cfg.is_job_namespace(req.namespace) {
        Some(Skip::NotJobNamespace)
    } else if ex.usernames.iter().any(|u| u == req.username) {
        Some(Skip::Exempt("username"))
    } else if ex.namespaces.iter().any(|n| n == req.namespace) {
        Some(Skip::Exempt("namespace"))
    } else if runtime_class.is_some_and(|rc| ex.runtime_classes.iter().any(|x| x == rc)) {
        Some(Skip::Exempt("runtimeClass"))
    } else if ps.scope == Scope::JobPods && !owned_by_job(pod) {
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
pub fn harden(pod: &mut Pod, req: &PodRequest, cfg: &Config) -> Decision {
    match skip(pod, req, cfg) {
        Some(Skip::Exempt(what)) => return Decision::exempt(what),
        Some(_) => return Decision::untouched(),
        None => {}
    }
    let ps = &cfg.security.pod_security;
    let mut h = Hardener {
        ps,
        ops: JsonPatch::new(),
        insecure: Vec::new(),
        warnings: Vec::new(),
        fresh_container_context: None,
    };
    let Some(spec) = pod.spec.as_mut() else {
        return Decision::Deny {
            reasons: vec!["the pod has no spec".into()],
        };
    };
    let windows = spec.os.as_ref().is_some_and(|os| os.name == "windows");

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
    for (i, c) in spec.containers.iter_mut().enumerate() {
        h.container(&mut c.security_context, "containers", i, &c.name, windows);
    }
    for (i, c) in spec.init_containers.iter_mut().flatten().enumerate() {
        h.container(
            &mut c.security_context,
            "initContainers",
            i,
            &c.name,
            windows,
        );
    }
    for (i, c) in spec.ephemeral_containers.iter_mut().flatten().enumerate() {
        h.container(
            &mut c.security_context,
            "ephemeralContainers",
            i,
            &c.name,
            windows,
        );
    }
    if !windows {
        h.writable_paths(spec);
    }

    let level = cfg.level_of(req.namespace).unwrap_or(ps.jobs_level);
    let remaining = pss::check(
        &pod.metadata,
        pod.spec.as_ref().expect("spec checked above"),
        level,
    );
    let mut reasons = Vec::new();
    if ps.on_insecure == OnInsecure::Deny {
        reasons.append(&mut h.insecure);
    }
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
    if !reasons.is_empty() {
        return Decision::Deny { reasons };
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

/// Accumulates the patch and findings while hardening one pod.
struct Hardener<'c> {
    ps: &'c PodSecurity,
    ops: JsonPatch,
    /// Insecure explicit values (replaced in the pod and the patch).
    insecure: Vec<String>,
    warnings: Vec<String>,
    /// A container's fresh `securityContext`, serialized.
    fresh_container_context: Option<Box<RawValue>>,
}

/// `spec.containers[0].securityContext`, for messages (written only when
/// there is one).
struct ContainerAt<'a> {
    list: &'a str,
    index: usize,
}

impl fmt::Display for ContainerAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spec.{}[{}].securityContext", self.list, self.index)
    }
}

/// `value` serialized, to add to the patch more than once.
fn raw<T: serde::Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("Kubernetes types serialize")
}

impl Hardener<'_> {
    fn replace<T: serde::Serialize + ?Sized>(
        &mut self,
        path: &[&str],
        value: &T,
        what: String,
        container: Option<&str>,
    ) {
        self.ops.replace(path, value);
        self.insecure.push(match container {
            Some(c) => format!("container {c:?}: {what}"),
            None => what,
        });
    }

    fn pod_security_context(&mut self, sc: &mut Option<PodSecurityContext>, windows: bool) {
        let ps = self.ps;
        let base = ["spec", "securityContext"];
        let Some(sc) = sc.as_mut() else {
            let mut fresh = PodSecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            };
            if !windows {
                fresh.run_as_user = Some(ps.run_as_user);
                fresh.run_as_group = Some(ps.run_as_group);
                fresh.fs_group = Some(ps.fs_group);
                fresh.seccomp_profile = Some(runtime_default());
            }
            self.ops.add(&base, &fresh);
            *sc = Some(fresh);
            return;
        };
        match sc.run_as_non_root {
            None => {
                sc.run_as_non_root = Some(true);
                self.ops.add(&[base[0], base[1], "runAsNonRoot"], &true);
            }
            Some(false) => {
                sc.run_as_non_root = Some(true);
                self.replace(
                    &[base[0], base[1], "runAsNonRoot"],
                    &true,
                    "spec.securityContext.runAsNonRoot is false".into(),
                    None,
                );
            }
            Some(true) => {}
        }
        if windows {
            return;
        }
        for (field, slot, value) in [
            ("runAsUser", &mut sc.run_as_user, ps.run_as_user),
            ("runAsGroup", &mut sc.run_as_group, ps.run_as_group),
            ("fsGroup", &mut sc.fs_group, ps.fs_group),
        ] {
            if slot.is_none() {
                *slot = Some(value);
                self.ops.add(&[base[0], base[1], field], &value);
            }
        }
        if sc.run_as_user == Some(0) {
            sc.run_as_user = Some(ps.run_as_user);
            self.replace(
                &[base[0], base[1], "runAsUser"],
                &ps.run_as_user,
                "spec.securityContext.runAsUser is 0 (root)".into(),
                None,
            );
        }
        self.seccomp(
            &mut sc.seccomp_profile,
            &base,
            &"spec.securityContext",
            None,
            true,
        );
    }

    /// Fills an absent pod-level seccomp profile (`fill`), replaces `Unconfined`.
    fn seccomp(
        &mut self,
        slot: &mut Option<SeccompProfile>,
        base: &[&str],
        at: &dyn fmt::Display,
        container: Option<&str>,
        fill: bool,
    ) {
        let path: Vec<&str> = base.iter().copied().chain(["seccompProfile"]).collect();
        match slot {
            None if fill => {
                *slot = Some(runtime_default());
                self.ops.add(&path, &runtime_default());
            }
            Some(p) if p.type_ == "Unconfined" => {
                *slot = Some(runtime_default());
                self.replace(
                    &path,
                    &runtime_default(),
                    format!("{at}.seccompProfile.type is Unconfined"),
                    container,
                );
            }
            _ => {}
        }
    }

    fn container(
        &mut self,
        sc: &mut Option<SecurityContext>,
        list: &str,
        index: usize,
        name: &str,
        windows: bool,
    ) {
        let mut digits = itoa::Buffer::new();
        let i = digits.format(index);
        let base = ["spec", list, i, "securityContext"];
        let at = &ContainerAt { list, index };
        let Some(sc) = sc.as_mut() else {
            if !windows {
                let fresh = SecurityContext {
                    allow_privilege_escalation: Some(false),
                    capabilities: Some(Capabilities {
                        add: None,
                        drop: Some(vec!["ALL".into()]),
                    }),
                    read_only_root_filesystem: Some(true),
                    ..Default::default()
                };
                // The same for every container: serialized once per pod.
                let value = self
                    .fresh_container_context
                    .get_or_insert_with(|| raw(&fresh));
                self.ops.add(&base, &**value);
                *sc = Some(fresh);
            }
            return;
        };
        let field = |f: &'static str| -> [&str; 5] { [base[0], base[1], base[2], base[3], f] };
        if sc.run_as_non_root == Some(false) {
            sc.run_as_non_root = Some(true);
            self.replace(
                &field("runAsNonRoot"),
                &true,
                format!("{at}.runAsNonRoot is false"),
                Some(name),
            );
        }
        if windows {
            return;
        }
        if sc.privileged == Some(true) {
            sc.privileged = Some(false);
            self.replace(
                &field("privileged"),
                &false,
                format!("{at}.privileged is true"),
                Some(name),
            );
        }
        if sc.run_as_user == Some(0) {
            sc.run_as_user = Some(self.ps.run_as_user);
            self.replace(
                &field("runAsUser"),
                &self.ps.run_as_user,
                format!("{at}.runAsUser is 0 (root)"),
                Some(name),
            );
        }
        match sc.allow_privilege_escalation {
            None => {
                sc.allow_privilege_escalation = Some(false);
                self.ops.add(&field("allowPrivilegeEscalation"), &false);
            }
            Some(true) => {
                sc.allow_privilege_escalation = Some(false);
                self.replace(
                    &field("allowPrivilegeEscalation"),
                    &false,
                    format!("{at}.allowPrivilegeEscalation is true"),
                    Some(name),
                );
            }
            Some(false) => {}
        }
        self.capabilities(&mut sc.capabilities, &base, at, name);
        match sc.read_only_root_filesystem {
            None => {
                sc.read_only_root_filesystem = Some(true);
                self.ops.add(&field("readOnlyRootFilesystem"), &true);
            }
            Some(false) => self.warnings.push(format!(
                "container {name:?}: {at}.readOnlyRootFilesystem is false; kept as set, the container can write to its image"
            )),
            Some(true) => {}
        }
        self.seccomp(&mut sc.seccomp_profile, &base, at, Some(name), false);
    }

    fn capabilities(
        &mut self,
        caps: &mut Option<Capabilities>,
        base: &[&str],
        at: &dyn fmt::Display,
        name: &str,
    ) {
        let path = |rest: &[&'static str]| -> Vec<&str> {
            base.iter().copied().chain(rest.iter().copied()).collect()
        };
        let Some(caps) = caps.as_mut() else {
            let fresh = Capabilities {
                add: None,
                drop: Some(vec!["ALL".into()]),
            };
            self.ops.add(&path(&["capabilities"]), &fresh);
            *caps = Some(fresh);
            return;
        };
        match caps.drop.as_mut() {
            None => {
                caps.drop = Some(vec!["ALL".into()]);
                self.ops.add(&path(&["capabilities", "drop"]), &["ALL"]);
            }
            Some(drop) if !drop.iter().any(|c| c == "ALL") => {
                drop.push("ALL".into());
                self.ops.add(&path(&["capabilities", "drop", "-"]), "ALL");
            }
            Some(_) => {}
        }
        if let Some(add) = caps.add.as_mut() {
            let bad: Vec<String> = add.iter().filter(|c| *c != ALLOWED_ADD).cloned().collect();
            if !bad.is_empty() {
                add.retain(|c| c == ALLOWED_ADD);
                self.replace(
                    &path(&["capabilities", "add"]),
                    &*add,
                    format!(
                        "{at}.capabilities.add has {} (only {ALLOWED_ADD} may be added)",
                        bad.join(", ")
                    ),
                    Some(name),
                );
            }
        }
    }

    /// Gives every container and init container a writable `emptyDir` at
    /// each configured path it does not mount already.
    fn writable_paths(&mut self, spec: &mut k8s_openapi::api::core::v1::PodSpec) {
        for path in &self.ps.writable_paths {
            let path = path.0.as_str();
            let lacks = |mounts: &Option<Vec<VolumeMount>>| {
                !mounts
                    .iter()
                    .flatten()
                    .any(|m| m.mount_path.trim_end_matches('/') == path)
            };
            let needed = spec.containers.iter().any(|c| lacks(&c.volume_mounts))
                || spec
                    .init_containers
                    .iter()
                    .flatten()
                    .any(|c| lacks(&c.volume_mounts));
            if !needed {
                continue;
            }
            let name = volume_name(path, spec.volumes.as_deref().unwrap_or_default());
            let volume = Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: self
                        .ps
                        .writable_size_limit
                        .as_ref()
                        .map(|q| Quantity(q.0.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match spec.volumes.as_mut() {
                Some(v) => {
                    self.ops.add(&["spec", "volumes", "-"], &volume);
                    v.push(volume);
                }
                None => {
                    self.ops.add(&["spec", "volumes"], &[&volume]);
                    spec.volumes = Some(vec![volume]);
                }
            }
            let mount = VolumeMount {
                name,
                mount_path: path.to_string(),
                ..Default::default()
            };
            let lists = spec
                .containers
                .iter_mut()
                .map(|c| &mut c.volume_mounts)
                .enumerate()
                .map(|(i, m)| ("containers", i, m))
                .chain(
                    spec.init_containers
                        .iter_mut()
                        .flatten()
                        .map(|c| &mut c.volume_mounts)
                        .enumerate()
                        .map(|(i, m)| ("initContainers", i, m)),
                );
            // The same for every container: serialized once.
            let value = raw(&mount);
            for (list, i, mounts) in lists {
                if !lacks(mounts) {
                    continue;
                }
                let mut digits = itoa::Buffer::new();
                let i = digits.format(i);
                match mounts.as_mut() {
                    Some(m) => {
                        self.ops
                            .add(&["spec", list, i, "volumeMounts", "-"], &*value);
                        m.push(mount.clone());
                    }
                    None => {
                        self.ops.add(&["spec", list, i, "volumeMounts"], &[&*value]);
                        *mounts = Some(vec![mount.clone()]);
                    }
                }
            }
        }
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

/// A deterministic volume name for a writable path (`/home/floe` →
/// `floe-writable-home-floe`), a valid DNS label that no existing volume has.
fn volume_name(path: &str, existing: &[Volume]) -> String {
    let mut slug: String = path
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.truncate(40);
    let slug = slug.trim_matches('-');
    let base = format!("floe-writable-{slug}");
    let base = base.trim_end_matches('-');
    let taken = |n: &str| existing.iter().any(|v| v.name == n);
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|k| format!("{base}-{k}"))
        .find(|n| !taken(n))
        .expect("an unused name exists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AbsolutePath, OnInsecure};
    use serde_json::{Value, json};

    fn job_pod(spec: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "j-", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": "j",
                "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]},
            "spec": spec,
        })
    }

    const REQ: PodRequest<'static> = PodRequest {
        namespace: "floe-jobs",
        operation: Operation::Create,
        username: "system:serviceaccount:kube-system:job-controller",
    };

    fn run(object: &Value, req: &PodRequest, cfg: &Config) -> Decision {
        let mut pod: Pod = serde_json::from_value(object.clone()).unwrap();
        harden(&mut pod, req, cfg)
    }

    /// Hardens, applies the patch to the object, and returns (patched, patch, warnings, audit).
    fn allowed(
        object: &Value,
        cfg: &Config,
    ) -> (Value, Vec<Value>, Vec<String>, BTreeMap<String, String>) {
        match run(object, &REQ, cfg) {
            Decision::Allow {
                patch,
                warnings,
                audit,
            } => {
                let mut out = object.clone();
                json_patch::patch(&mut out, &patch.operations()).expect("patch applies");
                let ops = serde_json::from_slice(patch.as_json()).unwrap();
                (out, ops, warnings, audit)
            }
            d => panic!("expected allow, got {d:?}"),
        }
    }

    fn reasons(object: &Value, cfg: &Config) -> Vec<String> {
        match run(object, &REQ, cfg) {
            Decision::Deny { reasons } => reasons,
            d => panic!("expected deny, got {d:?}"),
        }
    }

    fn no_writable() -> Config {
        let mut cfg = Config::default();
        cfg.security.pod_security.writable_paths.clear();
        cfg
    }

    #[test]
    fn absent_fields_are_filled_at_pod_and_container_level() {
        let pod = job_pod(json!({"containers": [{"name": "main", "image": "x"}]}));
        let (out, ops, warnings, audit) = allowed(&pod, &no_writable());
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert!(warnings.is_empty() && audit.is_empty());
        assert_eq!(
            out["spec"]["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                   "seccompProfile": {"type": "RuntimeDefault"}})
        );
        assert_eq!(
            out["spec"]["containers"][0]["securityContext"],
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                   "readOnlyRootFilesystem": true})
        );
    }

    #[test]
    fn compliant_explicit_values_are_kept_and_only_gaps_filled() {
        let pod = job_pod(json!({
            "securityContext": {"runAsUser": 2000, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
            "containers": [{"name": "main", "image": "x",
                "securityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["NET_BIND_SERVICE"]}}}]
        }));
        let (out, ops, _, _) = allowed(&pod, &no_writable());
        let paths: Vec<&str> = ops.iter().map(|o| o["path"].as_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/spec/securityContext/runAsNonRoot",
                "/spec/securityContext/runAsGroup",
                "/spec/securityContext/fsGroup",
                "/spec/containers/0/securityContext/allowPrivilegeEscalation",
                "/spec/containers/0/securityContext/capabilities/drop/-",
                "/spec/containers/0/securityContext/readOnlyRootFilesystem",
            ]
        );
        assert!(ops.iter().all(|o| o["op"] == "add"));
        assert_eq!(out["spec"]["securityContext"]["runAsUser"], 2000);
        assert_eq!(
            out["spec"]["securityContext"]["seccompProfile"]["type"],
            "Localhost"
        );
        let caps = &out["spec"]["containers"][0]["securityContext"]["capabilities"];
        assert_eq!(caps["drop"], json!(["NET_RAW", "ALL"]));
        assert_eq!(caps["add"], json!(["NET_BIND_SERVICE"]));
    }

    fn insecure_pod() -> Value {
        job_pod(json!({
            "hostPID": true,
            "securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"}},
            "initContainers": [{"name": "init", "image": "x",
                "securityContext": {"allowPrivilegeEscalation": true}}],
            "containers": [{"name": "main", "image": "x",
                "securityContext": {"privileged": true, "runAsUser": 0,
                    "capabilities": {"add": ["SYS_ADMIN", "NET_BIND_SERVICE"]}}}]
        }))
    }

    #[test]
    fn insecure_values_are_denied_naming_each_field_and_container() {
        let r = reasons(&insecure_pod(), &no_writable());
        let all = r.join("\n");
        for needle in [
            "spec.hostPID is true",
            "spec.securityContext.runAsNonRoot is false",
            "spec.securityContext.seccompProfile.type is Unconfined",
            "container \"init\": spec.initContainers[0].securityContext.allowPrivilegeEscalation is true",
            "container \"main\": spec.containers[0].securityContext.privileged is true",
            "container \"main\": spec.containers[0].securityContext.runAsUser is 0",
            "capabilities.add has SYS_ADMIN",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(r.len(), 7, "{all}");
    }

    #[test]
    fn override_replaces_insecure_values_and_reports_them() {
        let mut cfg = no_writable();
        cfg.security.pod_security.on_insecure = OnInsecure::Override;
        let (out, ops, warnings, audit) = allowed(&insecure_pod(), &cfg);
        let s = &out["spec"];
        assert_eq!(s["hostPID"], false);
        assert_eq!(s["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            s["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(
            s["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        let main = &s["containers"][0]["securityContext"];
        assert_eq!(main["privileged"], false);
        assert_eq!(main["runAsUser"], 1000);
        assert_eq!(main["capabilities"]["add"], json!(["NET_BIND_SERVICE"]));
        assert_eq!(ops.iter().filter(|o| o["op"] == "replace").count(), 7);
        assert_eq!(warnings.len(), 7, "{warnings:?}");
        assert!(audit["insecure-overridden"].contains("privileged is true"));
    }

    #[test]
    fn what_cannot_be_overridden_is_denied_by_the_pss_check() {
        let mut cfg = no_writable();
        cfg.security.pod_security.on_insecure = OnInsecure::Override;
        let pod = job_pod(json!({
            "containers": [{"name": "main", "image": "x"}],
            "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]
        }));
        let r = reasons(&pod, &cfg);
        assert!(
            r.iter()
                .any(|m| m.contains("spec.volumes[0]") && m.contains("cannot be overridden")),
            "{r:?}"
        );
    }

    #[test]
    fn read_only_root_filesystem_false_is_kept_with_a_warning() {
        let pod = job_pod(json!({"containers": [{"name": "main", "image": "x",
            "securityContext": {"readOnlyRootFilesystem": false}}]}));
        let (out, _, warnings, _) = allowed(&pod, &no_writable());
        assert_eq!(
            out["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            false
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("readOnlyRootFilesystem is false"));
    }

    #[test]
    fn writable_paths_get_one_empty_dir_each_without_name_collisions() {
        let pod = job_pod(json!({
            "containers": [
                {"name": "a", "image": "x", "volumeMounts": [{"name": "mine", "mountPath": "/tmp/"}]},
                {"name": "b", "image": "x"}
            ],
            "initContainers": [{"name": "i", "image": "x"}],
            "volumes": [{"name": "mine", "emptyDir": {}}, {"name": "floe-writable-tmp", "configMap": {"name": "c"}}]
        }));
        let (out, _, _, _) = allowed(&pod, &Config::default());
        let volumes = out["spec"]["volumes"].as_array().unwrap();
        let names: Vec<&str> = volumes
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "mine",
                "floe-writable-tmp",
                "floe-writable-tmp-2",
                "floe-writable-home-floe"
            ]
        );
        assert_eq!(volumes[2]["emptyDir"]["sizeLimit"], "1Gi");
        let mounts = |list: &str, i: usize| -> Vec<(String, String)> {
            out["spec"][list][i]["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap().into(),
                        m["mountPath"].as_str().unwrap().into(),
                    )
                })
                .collect()
        };
        let pair = |n: &str, p: &str| (n.to_string(), p.to_string());
        // Container a already mounts /tmp: only /home/floe is added to it.
        assert_eq!(
            mounts("containers", 0),
            [
                pair("mine", "/tmp/"),
                pair("floe-writable-home-floe", "/home/floe")
            ]
        );
        assert_eq!(
            mounts("containers", 1),
            [
                pair("floe-writable-tmp-2", "/tmp"),
                pair("floe-writable-home-floe", "/home/floe")
            ]
        );
        assert_eq!(
            mounts("initContainers", 0),
            [
                pair("floe-writable-tmp-2", "/tmp"),
                pair("floe-writable-home-floe", "/home/floe")
            ]
        );
        // And the result is stable.
        let Decision::Allow { patch, .. } = run(&out, &REQ, &Config::default()) else {
            panic!()
        };
        assert!(patch.is_empty(), "{patch:?}");
    }

    #[test]
    fn a_pod_without_volumes_gets_the_volumes_list_created() {
        let mut cfg = Config::default();
        cfg.security.pod_security.writable_paths = vec![AbsolutePath("/work/data".into())];
        cfg.security.pod_security.writable_size_limit = None;
        let pod = job_pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        let (out, ops, _, _) = allowed(&pod, &cfg);
        assert!(
            ops.iter()
                .any(|o| o["path"] == "/spec/volumes" && o["value"].is_array())
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "floe-writable-work-data", "emptyDir": {}}])
        );
        assert_eq!(
            out["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            "/work/data"
        );
    }

    #[test]
    fn ephemeral_containers_are_hardened() {
        let pod = job_pod(json!({"containers": [{"name": "a", "image": "x"}],
            "ephemeralContainers": [{"name": "debug", "image": "x"}]}));
        let (out, _, _, _) = allowed(&pod, &no_writable());
        assert_eq!(
            out["spec"]["ephemeralContainers"][0]["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert!(
            out["spec"]["ephemeralContainers"][0]
                .get("volumeMounts")
                .is_none()
        );
    }

    #[test]
    fn windows_pods_get_no_linux_only_fields() {
        let pod = job_pod(
            json!({"os": {"name": "windows"}, "containers": [{"name": "a", "image": "x"}]}),
        );
        let (out, ops, _, _) = allowed(&pod, &Config::default());
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert_eq!(
            out["spec"]["securityContext"],
            json!({"runAsNonRoot": true})
        );
        assert!(
            out["spec"]["containers"][0]
                .get("securityContext")
                .is_none()
        );
        assert!(out["spec"].get("volumes").is_none());
    }

    #[test]
    fn updates_are_never_patched() {
        let pod = job_pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        let req = PodRequest {
            operation: Operation::Other,
            ..REQ
        };
        assert_eq!(run(&pod, &req, &Config::default()), Decision::untouched());
    }

    #[test]
    fn scope_decides_which_pods_are_hardened() {
        let cfg = Config {
            domains: vec!["sales".into()],
            ..Config::default()
        };
        let job = job_pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        let mut bare = job.clone();
        bare["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let in_ns = |ns: &'static str| PodRequest {
            namespace: ns,
            ..REQ
        };
        let patched = |obj: &Value, req: &PodRequest, cfg: &Config| matches!(run(obj, req, cfg), Decision::Allow { ref patch, .. } if !patch.is_empty());
        assert!(patched(&job, &in_ns("floe-jobs"), &cfg));
        assert!(patched(&job, &in_ns("floe-sales-domain"), &cfg));
        assert!(!patched(&job, &in_ns("floe-platform"), &cfg));
        assert!(!patched(&job, &in_ns("default"), &cfg));
        assert!(!patched(&bare, &in_ns("floe-jobs"), &cfg));
        let mut all = cfg.clone();
        all.security.pod_security.scope = Scope::AllPods;
        assert!(patched(&bare, &in_ns("floe-jobs"), &all));
        assert!(!patched(&bare, &in_ns("default"), &all));
    }

    #[test]
    fn exemptions_come_from_config_only() {
        let mut pod = job_pod(
            json!({"runtimeClassName": "gvisor", "containers": [{"name": "a", "image": "x"}]}),
        );
        pod["metadata"]["annotations"] =
            json!({"floe.dev/exempt": "true", "pod-security.kubernetes.io/exempt": "true"});
        assert!(
            matches!(run(&pod, &REQ, &no_writable()), Decision::Allow { ref patch, .. } if !patch.is_empty())
        );
        for (field, value, why) in [
            ("usernames", REQ.username, "username"),
            ("namespaces", "floe-jobs", "namespace"),
            ("runtime_classes", "gvisor", "runtimeClass"),
        ] {
            let mut cfg = no_writable();
            let ex = &mut cfg.security.pod_security.exemptions;
            match field {
                "usernames" => ex.usernames.push(value.into()),
                "namespaces" => ex.namespaces.push(value.into()),
                _ => ex.runtime_classes.push(value.into()),
            }
            assert_eq!(run(&pod, &REQ, &cfg), Decision::exempt(why), "{field}");
        }
    }

    #[test]
    fn disabled_pod_security_touches_nothing() {
        let mut cfg = Config::default();
        cfg.security.pod_security.enabled = false;
        assert_eq!(run(&insecure_pod(), &REQ, &cfg), Decision::untouched());
    }

    #[test]
    fn volume_names_are_valid_dns_labels() {
        let long = format!("/{}", "Very_Long.Path/".repeat(10).trim_end_matches('/'));
        let name = volume_name(&long, &[]);
        assert!(crate::config::is_dns_label(&name), "{name}");
        assert_eq!(volume_name("/home/floe", &[]), "floe-writable-home-floe");
    }
}
