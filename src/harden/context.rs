//! The security-context rules: fill what is absent, keep what is compliant,
//! replace (and report) what is insecure, at pod and container level.

use std::fmt;

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};
use serde_json::value::RawValue;

use super::ALLOWED_ADD;
use crate::admission::patch::JsonPatch;
use crate::config::PodSecurity;

/// Accumulates the patch and findings while hardening one pod.
pub(super) struct Hardener<'c> {
    pub(super) ps: &'c PodSecurity,
    pub(super) ops: JsonPatch,
    /// Insecure explicit values (replaced in the pod and the patch).
    pub(super) insecure: Vec<String>,
    /// The field of each `insecure` entry (its rule, for metrics).
    pub(super) insecure_rules: Vec<String>,
    pub(super) warnings: Vec<String>,
    /// A container's fresh `securityContext`, serialized.
    pub(super) fresh_container_context: Option<Box<RawValue>>,
}

/// What a container must set itself because the pod level does not (an
/// ephemeral container added to a running pod, whose pod-level context can
/// no longer change): the pod-level values hardening would have filled.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PodFills {
    pub(super) run_as_non_root: bool,
    pub(super) run_as_user: Option<i64>,
    pub(super) run_as_group: Option<i64>,
    pub(super) seccomp: bool,
}

impl PodFills {
    /// The fills for containers of a pod with this pod-level context.
    pub(super) fn missing_in(
        sc: Option<&PodSecurityContext>,
        ps: &PodSecurity,
        windows: bool,
    ) -> Self {
        let sc = sc.cloned().unwrap_or_default();
        PodFills {
            run_as_non_root: sc.run_as_non_root.is_none(),
            run_as_user: (!windows && sc.run_as_user.is_none()).then_some(ps.run_as_user),
            run_as_group: (!windows && sc.run_as_group.is_none()).then_some(ps.run_as_group),
            seccomp: !windows && sc.seccomp_profile.is_none(),
        }
    }
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
pub(super) fn raw<T: serde::Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("Kubernetes types serialize")
}

impl Hardener<'_> {
    pub(super) fn replace<T: serde::Serialize + ?Sized>(
        &mut self,
        path: &[&str],
        value: &T,
        what: String,
        container: Option<&str>,
    ) {
        self.ops.replace(path, value);
        let field = match path {
            [.., field, "add"] => field,
            [.., field] => field,
            [] => &"",
        };
        self.insecure_rules.push(field.to_string());
        self.insecure.push(match container {
            Some(c) => format!("container {c:?}: {what}"),
            None => what,
        });
    }

    pub(super) fn pod_security_context(
        &mut self,
        sc: &mut Option<PodSecurityContext>,
        windows: bool,
    ) {
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

    /// Hardens the security context of `spec.{list}[index]`; `fills` are
    /// the pod-level values the container must set itself.
    pub(super) fn container(
        &mut self,
        sc: &mut Option<SecurityContext>,
        (list, index, name): (&str, usize, &str),
        windows: bool,
        fills: PodFills,
    ) {
        let mut digits = itoa::Buffer::new();
        let i = digits.format(index);
        let base = ["spec", list, i, "securityContext"];
        let at = &ContainerAt { list, index };
        let Some(sc) = sc.as_mut() else {
            let mut fresh = SecurityContext {
                run_as_non_root: fills.run_as_non_root.then_some(true),
                ..Default::default()
            };
            if !windows {
                fresh.allow_privilege_escalation = Some(false);
                fresh.capabilities = Some(Capabilities {
                    add: None,
                    drop: Some(vec!["ALL".into()]),
                });
                fresh.read_only_root_filesystem = Some(true);
                fresh.run_as_user = fills.run_as_user;
                fresh.run_as_group = fills.run_as_group;
                fresh.seccomp_profile = fills.seccomp.then(runtime_default);
            }
            if fresh != SecurityContext::default() {
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
        match sc.run_as_non_root {
            Some(false) => {
                sc.run_as_non_root = Some(true);
                self.replace(
                    &field("runAsNonRoot"),
                    &true,
                    format!("{at}.runAsNonRoot is false"),
                    Some(name),
                );
            }
            None if fills.run_as_non_root => {
                sc.run_as_non_root = Some(true);
                self.ops.add(&field("runAsNonRoot"), &true);
            }
            _ => {}
        }
        if windows {
            return;
        }
        for (f, slot, fill) in [
            ("runAsUser", &mut sc.run_as_user, fills.run_as_user),
            ("runAsGroup", &mut sc.run_as_group, fills.run_as_group),
        ] {
            if let (None, Some(value)) = (*slot, fill) {
                *slot = Some(value);
                self.ops.add(&field(f), &value);
            }
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
        self.seccomp(
            &mut sc.seccomp_profile,
            &base,
            at,
            Some(name),
            fills.seccomp,
        );
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
}

pub(super) fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}
