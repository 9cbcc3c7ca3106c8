//! The baseline checks (upstream `policy/check_*.go`, level Baseline).

use k8s_openapi::api::core::v1::{LifecycleHandler, PodSpec, Probe, SELinuxOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Ctr, Owner, Violation, containers, in_user_namespace, pod_violation, valid_seccomp};

/// Capabilities a container may add at baseline (`capabilities_allowed_1_0`).
const ALLOWED_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// SELinux types a pod or container may request (`selinuxAllowedTypes1_31`;
/// the empty type means the runtime default).
const ALLOWED_SELINUX_TYPES: [&str; 4] = [
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The safe sysctls of policy v1.37 (`sysctlsAllowedV1Dot37`).
const SAFE_SYSCTLS: [&str; 14] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// Prefix of the legacy per-container AppArmor annotations, still checked.
const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// `hostNamespaces`: `hostNetwork`, `hostPID` and `hostIPC` must be unset or false.
pub(super) fn host_namespaces(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    let namespaces = [
        (spec.host_network, "hostNetwork", "network"),
        (spec.host_pid, "hostPID", "process"),
        (spec.host_ipc, "hostIPC", "IPC"),
    ];
    for (set, field, what) in namespaces {
        if set == Some(true) {
            out.push(pod_violation(
                "hostNamespaces",
                format!("spec.{field}"),
                format_args!(
                    "pod sets {field}=true, sharing the node's {what} namespace; allowed: false or unset"
                ),
            ));
        }
    }
}

/// `privileged`: no container may set `securityContext.privileged=true`.
pub(super) fn privileged(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    for c in containers(spec) {
        if c.security_context.and_then(|sc| sc.privileged) == Some(true) {
            out.push(c.violation(
                "privileged",
                "securityContext.privileged",
                "sets privileged=true; allowed: false or unset",
            ));
        }
    }
}

/// `capabilities_baseline`: added capabilities must be in the baseline set.
pub(super) fn capabilities(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    for c in containers(spec) {
        let added = c
            .security_context
            .and_then(|sc| sc.capabilities.as_ref())
            .and_then(|caps| caps.add.as_deref())
            .unwrap_or_default();
        for (i, cap) in added.iter().enumerate() {
            if !ALLOWED_CAPABILITIES.contains(&cap.as_str()) {
                out.push(c.violation(
                    "capabilities_baseline",
                    format_args!("securityContext.capabilities.add[{i}]"),
                    format_args!(
                        "adds capability {cap:?}; allowed: {}",
                        ALLOWED_CAPABILITIES.join(", ")
                    ),
                ));
            }
        }
    }
}

/// `hostPathVolumes`: no `hostPath` volume.
pub(super) fn host_path_volumes(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        if volume.host_path.is_some() {
            out.push(pod_violation(
                "hostPathVolumes",
                format!("spec.volumes[{i}].hostPath"),
                format_args!(
                    "volume {:?} is a hostPath volume; no hostPath volume is allowed",
                    volume.name
                ),
            ));
        }
    }
}

/// `hostPorts`: no container port may set a non-zero `hostPort`.
pub(super) fn host_ports(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    for c in containers(spec) {
        for (i, port) in c.ports.iter().enumerate() {
            if let Some(host_port) = port.host_port.filter(|&p| p != 0) {
                out.push(c.violation(
                    "hostPorts",
                    format_args!("ports[{i}].hostPort"),
                    format_args!("sets hostPort {host_port}; allowed: 0 or unset"),
                ));
            }
        }
    }
}

/// `appArmorProfile`: the `appArmorProfile` fields must be `RuntimeDefault` or
/// `Localhost`, and the legacy annotations `runtime/default`, `localhost/*` or empty.
pub(super) fn app_armor_profile(meta: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    for (key, value) in meta.annotations.iter().flatten() {
        let Some(container) = key.strip_prefix(APPARMOR_ANNOTATION_PREFIX) else {
            continue;
        };
        let allowed =
            value.is_empty() || value == "runtime/default" || value.starts_with("localhost/");
        if !allowed {
            out.push(Violation {
                check: "appArmorProfile",
                path: format!("metadata.annotations[{key:?}]"),
                container: Some(container.to_owned()),
                message: format!(
                    "annotation sets AppArmor profile {value:?} for container {container:?}; \
                     allowed: runtime/default, localhost/<profile> or empty"
                ),
            });
        }
    }
    let check = |owner: Owner, profile_type: Option<&String>, out: &mut Vec<Violation>| {
        if let Some(t) =
            profile_type.filter(|t| !matches!(t.as_str(), "RuntimeDefault" | "Localhost"))
        {
            out.push(owner.violation(
                "appArmorProfile",
                "appArmorProfile.type",
                format_args!(
                    "sets appArmorProfile.type {t:?}; allowed: RuntimeDefault, Localhost or unset"
                ),
            ));
        }
    };
    let pod_profile = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref());
    check(Owner::Pod, pod_profile.map(|p| &p.type_), out);
    for c in containers(spec) {
        let profile = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref());
        check(Owner::Container(&c), profile.map(|p| &p.type_), out);
    }
}

/// `seLinuxOptions`: the type must be in the allowed set; user and role unset.
pub(super) fn se_linux_options(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref());
    if let Some(options) = pod {
        se_linux(Owner::Pod, options, out);
    }
    for c in containers(spec) {
        if let Some(options) = c
            .security_context
            .and_then(|sc| sc.se_linux_options.as_ref())
        {
            se_linux(Owner::Container(&c), options, out);
        }
    }
}

fn se_linux(owner: Owner, options: &SELinuxOptions, out: &mut Vec<Violation>) {
    if let Some(t) = non_empty(&options.type_).filter(|t| !ALLOWED_SELINUX_TYPES.contains(t)) {
        out.push(owner.violation(
            "seLinuxOptions",
            "seLinuxOptions.type",
            format_args!(
                "sets seLinuxOptions.type {t:?}; allowed: {} or unset",
                ALLOWED_SELINUX_TYPES.join(", ")
            ),
        ));
    }
    for (field, value) in [("user", &options.user), ("role", &options.role)] {
        if let Some(v) = non_empty(value) {
            out.push(owner.violation(
                "seLinuxOptions",
                format_args!("seLinuxOptions.{field}"),
                format_args!("sets seLinuxOptions.{field} {v:?}; it must be unset"),
            ));
        }
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

/// `procMount`: `securityContext.procMount` must be `Default` or unset, unless
/// the pod runs in its own user namespace (`hostUsers: false`, policy v1.35+).
pub(super) fn proc_mount(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    if in_user_namespace(spec) {
        return;
    }
    proc_mount_default(
        spec,
        "procMount",
        "allowed: Default or unset (any value when spec.hostUsers is false)",
        out,
    );
}

/// Reports every container whose `procMount` is set to something other than `Default`.
pub(super) fn proc_mount_default(
    spec: &PodSpec,
    check: &'static str,
    allowed: &str,
    out: &mut Vec<Violation>,
) {
    for c in containers(spec) {
        let proc_mount = c.security_context.and_then(|sc| sc.proc_mount.as_deref());
        if let Some(value) = proc_mount.filter(|&v| v != "Default") {
            out.push(c.violation(
                check,
                "securityContext.procMount",
                format_args!("sets procMount {value:?}; {allowed}"),
            ));
        }
    }
}

/// `seccompProfile_baseline`: a seccomp profile, where set, must be
/// `RuntimeDefault` or `Localhost` (policy v1.19+: fields only, not annotations).
pub(super) fn seccomp_profile(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    let check = |owner: Owner, profile_type: &str, out: &mut Vec<Violation>| {
        if !valid_seccomp(profile_type) {
            out.push(owner.violation(
                "seccompProfile_baseline",
                "seccompProfile.type",
                format_args!(
                    "sets seccompProfile.type {profile_type:?}; allowed: RuntimeDefault, Localhost or unset"
                ),
            ));
        }
    };
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref());
    if let Some(profile) = pod {
        check(Owner::Pod, &profile.type_, out);
    }
    for c in containers(spec) {
        if let Some(profile) = c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            check(Owner::Container(&c), &profile.type_, out);
        }
    }
}

/// `sysctls`: only the safe sysctls.
pub(super) fn sysctls(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    let sysctls = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.sysctls.as_deref())
        .unwrap_or_default();
    for (i, sysctl) in sysctls.iter().enumerate() {
        if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
            out.push(pod_violation(
                "sysctls",
                format!("spec.securityContext.sysctls[{i}].name"),
                format_args!(
                    "pod sets sysctl {:?}, which is not namespaced and safe; allowed: {}",
                    sysctl.name,
                    SAFE_SYSCTLS.join(", ")
                ),
            ));
        }
    }
}

/// `windowsHostProcess`: no Windows HostProcess pod or container.
pub(super) fn windows_host_process(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    let message = "sets windowsOptions.hostProcess=true; allowed: false or unset";
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.windows_options.as_ref());
    if pod.and_then(|w| w.host_process) == Some(true) {
        out.push(Owner::Pod.violation("windowsHostProcess", "windowsOptions.hostProcess", message));
    }
    for c in containers(spec) {
        let options = c
            .security_context
            .and_then(|sc| sc.windows_options.as_ref());
        if options.and_then(|w| w.host_process) == Some(true) {
            out.push(Owner::Container(&c).violation(
                "windowsHostProcess",
                "windowsOptions.hostProcess",
                message,
            ));
        }
    }
}

/// `hostProbesAndHostLifecycle` (policy v1.34+): probes and lifecycle handlers
/// must not set `httpGet.host` or `tcpSocket.host`.
pub(super) fn host_probes_and_host_lifecycle(
    _: &ObjectMeta,
    spec: &PodSpec,
    out: &mut Vec<Violation>,
) {
    for c in containers(spec) {
        for (name, probe) in c.probes {
            if let Some(probe) = probe {
                probe_hosts(&c, name, probe, out);
            }
        }
        if let Some(lifecycle) = c.lifecycle {
            for (name, handler) in [
                ("lifecycle.postStart", &lifecycle.post_start),
                ("lifecycle.preStop", &lifecycle.pre_stop),
            ] {
                if let Some(handler) = handler {
                    handler_hosts(&c, name, handler, out);
                }
            }
        }
    }
}

fn probe_hosts(c: &Ctr, name: &str, probe: &Probe, out: &mut Vec<Violation>) {
    let http = probe.http_get.as_ref().and_then(|a| a.host.as_deref());
    let tcp = probe.tcp_socket.as_ref().and_then(|a| a.host.as_deref());
    report_hosts(c, name, http, tcp, out);
}

fn handler_hosts(c: &Ctr, name: &str, handler: &LifecycleHandler, out: &mut Vec<Violation>) {
    let http = handler.http_get.as_ref().and_then(|a| a.host.as_deref());
    let tcp = handler.tcp_socket.as_ref().and_then(|a| a.host.as_deref());
    report_hosts(c, name, http, tcp, out);
}

fn report_hosts(
    c: &Ctr,
    name: &str,
    http: Option<&str>,
    tcp: Option<&str>,
    out: &mut Vec<Violation>,
) {
    for (action, host) in [("httpGet", http), ("tcpSocket", tcp)] {
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            out.push(c.violation(
                "hostProbesAndHostLifecycle",
                format_args!("{name}.{action}.host"),
                format_args!(
                    "sets {name}.{action}.host {host:?}; allowed: empty or unset (the pod's own IP)"
                ),
            ));
        }
    }
}
