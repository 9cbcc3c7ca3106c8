//! Pod hardening: the mutation semantics of DESIGN "Mutation semantics".
//!
//! [`harden`] turns a pod into its hardened form in place and returns the
//! decision: allow with a minimal RFC 6902 patch (valid against the request
//! object), or deny naming every offending field. The patch only adds what is
//! absent and replaces what is insecure, so hardening a hardened pod yields
//! no patch.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Value, json};

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
        patch: Vec<PatchOperation>,
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
            patch: Vec::new(),
            warnings: Vec::new(),
            audit: BTreeMap::new(),
        }
    }

    fn exempt(why: &str) -> Self {
        Decision::Allow {
            patch: Vec::new(),
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
        ops: Vec::new(),
        insecure: Vec::new(),
        warnings: Vec::new(),
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
                json!(false),
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

    let level = cfg
        .managed_namespace(req.namespace)
        .map_or(ps.jobs_level, |n| n.level);
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
    ops: Vec<PatchOperation>,
    /// Insecure explicit values (replaced in the pod and the patch).
    insecure: Vec<String>,
    warnings: Vec<String>,
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

impl Hardener<'_> {
    fn add(&mut self, path: &[&str], value: Value) {
        self.ops.push(PatchOperation::Add(AddOperation {
            path: pointer(path),
            value,
        }));
    }

    fn replace(&mut self, path: &[&str], value: Value, what: String, container: Option<&str>) {
        self.ops.push(PatchOperation::Replace(ReplaceOperation {
            path: pointer(path),
            value,
        }));
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
            self.add(&base, to_value(&fresh));
            *sc = Some(fresh);
            return;
        };
        match sc.run_as_non_root {
            None => {
                sc.run_as_non_root = Some(true);
                self.add(&[base[0], base[1], "runAsNonRoot"], json!(true));
            }
            Some(false) => {
                sc.run_as_non_root = Some(true);
                self.replace(
                    &[base[0], base[1], "runAsNonRoot"],
                    json!(true),
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
                self.add(&[base[0], base[1], field], json!(value));
            }
        }
        if sc.run_as_user == Some(0) {
            sc.run_as_user = Some(ps.run_as_user);
            self.replace(
                &[base[0], base[1], "runAsUser"],
                json!(ps.run_as_user),
                "spec.securityContext.runAsUser is 0 (root)".into(),
                None,
            );
        }
        self.seccomp(
            &mut sc.seccomp_profile,
            &base,
            "spec.securityContext",
            None,
            true,
        );
    }

    /// Fills an absent pod-level seccomp profile (`fill`), replaces `Unconfined`.
    fn seccomp(
        &mut self,
        slot: &mut Option<SeccompProfile>,
        base: &[&str],
        at: &str,
        container: Option<&str>,
        fill: bool,
    ) {
        let path: Vec<&str> = base.iter().copied().chain(["seccompProfile"]).collect();
        match slot {
            None if fill => {
                *slot = Some(runtime_default());
                self.add(&path, to_value(&runtime_default()));
            }
            Some(p) if p.type_ == "Unconfined" => {
                *slot = Some(runtime_default());
                self.replace(
                    &path,
                    to_value(&runtime_default()),
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
        let i = index.to_string();
        let base = ["spec", list, &i, "securityContext"];
        let at = format!("spec.{list}[{i}].securityContext");
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
                self.add(&base, to_value(&fresh));
                *sc = Some(fresh);
            }
            return;
        };
        let field = |f: &'static str| -> [&str; 5] { [base[0], base[1], base[2], base[3], f] };
        if sc.run_as_non_root == Some(false) {
            sc.run_as_non_root = Some(true);
            self.replace(
                &field("runAsNonRoot"),
                json!(true),
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
                json!(false),
                format!("{at}.privileged is true"),
                Some(name),
            );
        }
        if sc.run_as_user == Some(0) {
            sc.run_as_user = Some(self.ps.run_as_user);
            self.replace(
                &field("runAsUser"),
                json!(self.ps.run_as_user),
                format!("{at}.runAsUser is 0 (root)"),
                Some(name),
            );
        }
        match sc.allow_privilege_escalation {
            None => {
                sc.allow_privilege_escalation = Some(false);
                self.add(&field("allowPrivilegeEscalation"), json!(false));
            }
            Some(true) => {
                sc.allow_privilege_escalation = Some(false);
                self.replace(
                    &field("allowPrivilegeEscalation"),
                    json!(false),
                    format!("{at}.allowPrivilegeEscalation is true"),
                    Some(name),
                );
            }
            Some(false) => {}
        }
        self.capabilities(&mut sc.capabilities, &base, &at, name);
        match sc.read_only_root_filesystem {
            None => {
                sc.read_only_root_filesystem = Some(true);
                self.add(&field("readOnlyRootFilesystem"), json!(true));
            }
            Some(false) => self.warnings.push(format!(
                "container {name:?}: {at}.readOnlyRootFilesystem is false; kept as set, the container can write to its image"
            )),
            Some(true) => {}
        }
        self.seccomp(&mut sc.seccomp_profile, &base, &at, Some(name), false);
    }

    fn capabilities(
        &mut self,
        caps: &mut Option<Capabilities>,
        base: &[&str],
        at: &str,
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
            self.add(&path(&["capabilities"]), to_value(&fresh));
            *caps = Some(fresh);
            return;
        };
        match caps.drop.as_mut() {
            None => {
                caps.drop = Some(vec!["ALL".into()]);
                self.add(&path(&["capabilities", "drop"]), json!(["ALL"]));
            }
            Some(drop) if !drop.iter().any(|c| c == "ALL") => {
                drop.push("ALL".into());
                self.add(&path(&["capabilities", "drop", "-"]), json!("ALL"));
            }
            Some(_) => {}
        }
        if let Some(add) = caps.add.as_mut() {
            let bad: Vec<String> = add.iter().filter(|c| *c != ALLOWED_ADD).cloned().collect();
            if !bad.is_empty() {
                add.retain(|c| c == ALLOWED_ADD);
                self.replace(
                    &path(&["capabilities", "add"]),
                    to_value(&*add),
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
            let value = to_value(&volume);
            match spec.volumes.as_mut() {
                Some(v) => {
                    v.push(volume);
                    self.add(&["spec", "volumes", "-"], value);
                }
                None => {
                    spec.volumes = Some(vec![volume]);
                    self.add(&["spec", "volumes"], json!([value]));
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
            for (list, i, mounts) in lists {
                if !lacks(mounts) {
                    continue;
                }
                let i = i.to_string();
                let value = to_value(&mount);
                match mounts.as_mut() {
                    Some(m) => {
                        m.push(mount.clone());
                        self.ops.push(PatchOperation::Add(AddOperation {
                            path: pointer(&["spec", list, &i, "volumeMounts", "-"]),
                            value,
                        }));
                    }
                    None => {
                        *mounts = Some(vec![mount.clone()]);
                        self.ops.push(PatchOperation::Add(AddOperation {
                            path: pointer(&["spec", list, &i, "volumeMounts"]),
                            value: json!([value]),
                        }));
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

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("Kubernetes types serialize")
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
