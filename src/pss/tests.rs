//! Unit tests of the PSS checks: edge cases beyond the upstream corpus.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::{Level, Violation, check};

/// A pod that satisfies restricted, with one container of each kind.
fn restricted_pod() -> Value {
    let sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    json!({
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{"name": "init", "image": "i", "securityContext": sc.clone()}],
            "containers": [{"name": "app", "image": "i", "securityContext": sc.clone()}],
            "ephemeralContainers": [{"name": "debug", "image": "i", "securityContext": sc}],
        }
    })
}

fn eval(pod: &Value, level: Level) -> Vec<Violation> {
    let meta: ObjectMeta = serde_json::from_value(pod["metadata"].clone()).unwrap();
    let spec: PodSpec = serde_json::from_value(pod["spec"].clone()).unwrap();
    check(&meta, &spec, level)
}

/// (check, path) of every violation.
fn found(pod: &Value, level: Level) -> Vec<(&'static str, String)> {
    eval(pod, level)
        .into_iter()
        .map(|v| (v.check, v.path))
        .collect()
}

fn pair(check: &'static str, path: &str) -> (&'static str, String) {
    (check, path.to_owned())
}

/// Sets `value` at the JSON pointer `at`, creating objects on the way.
fn set(pod: &mut Value, at: &str, value: Value) {
    let (parent, key) = at.rsplit_once('/').unwrap();
    let mut node = pod;
    for part in parent.split('/').skip(1) {
        node = match part.parse::<usize>() {
            Ok(i) => &mut node[i],
            Err(_) => node
                .as_object_mut()
                .unwrap()
                .entry(part)
                .or_insert_with(|| json!({})),
        };
    }
    node[key] = value;
}

#[test]
fn compliant_pod_passes_both_levels_and_privileged_allows_anything() {
    let pod = restricted_pod();
    assert_eq!(eval(&pod, Level::Restricted), vec![]);
    assert_eq!(eval(&pod, Level::Baseline), vec![]);
    let mut bad = pod;
    set(&mut bad, "/spec/hostPID", json!(true));
    set(
        &mut bad,
        "/spec/containers/0/securityContext/privileged",
        json!(true),
    );
    assert_eq!(eval(&bad, Level::Privileged), vec![]);
}

#[test]
fn violation_names_check_path_container_and_what_is_allowed() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    let v = eval(&pod, Level::Restricted);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].check, "runAsUser");
    assert_eq!(v[0].path, "spec.containers[0].securityContext.runAsUser");
    assert_eq!(v[0].container.as_deref(), Some("app"));
    assert!(
        v[0].message.contains("container \"app\""),
        "{}",
        v[0].message
    );
    assert!(v[0].message.contains("non-zero"), "{}", v[0].message);
}

#[test]
fn ephemeral_containers_are_checked() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/ephemeralContainers/0/securityContext/privileged",
        json!(true),
    );
    set(
        &mut pod,
        "/spec/ephemeralContainers/0/securityContext/allowPrivilegeEscalation",
        json!(true),
    );
    set(
        &mut pod,
        "/spec/ephemeralContainers/0/ports",
        json!([{"containerPort": 80, "hostPort": 80}]),
    );
    let v = eval(&pod, Level::Restricted);
    let paths: Vec<_> = v.iter().map(|v| (v.check, v.path.as_str())).collect();
    assert_eq!(
        paths,
        vec![
            (
                "privileged",
                "spec.ephemeralContainers[0].securityContext.privileged"
            ),
            ("hostPorts", "spec.ephemeralContainers[0].ports[0].hostPort"),
            (
                "allowPrivilegeEscalation",
                "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation"
            ),
        ]
    );
    assert!(v.iter().all(|v| v.container.as_deref() == Some("debug")));
}

#[test]
fn host_namespaces_each_reported_and_false_allowed() {
    let mut pod = restricted_pod();
    set(&mut pod, "/spec/hostNetwork", json!(true));
    set(&mut pod, "/spec/hostIPC", json!(false));
    set(&mut pod, "/spec/hostPID", json!(true));
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![
            pair("hostNamespaces", "spec.hostNetwork"),
            pair("hostNamespaces", "spec.hostPID")
        ]
    );
}

#[test]
fn host_port_zero_is_allowed() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/containers/0/ports",
        json!([{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 8081}]),
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![pair("hostPorts", "spec.containers[0].ports[1].hostPort")]
    );
}

#[test]
fn baseline_capabilities_are_exact_and_case_sensitive() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(["CHOWN", "SYS_ADMIN", "chown", "CAP_KILL"]),
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![
            pair(
                "capabilities_baseline",
                "spec.containers[0].securityContext.capabilities.add[1]"
            ),
            pair(
                "capabilities_baseline",
                "spec.containers[0].securityContext.capabilities.add[2]"
            ),
            pair(
                "capabilities_baseline",
                "spec.containers[0].securityContext.capabilities.add[3]"
            ),
        ]
    );
}

#[test]
fn restricted_capabilities_need_drop_all_and_allow_only_net_bind_service() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/containers/0/securityContext/capabilities",
        json!({"drop": ["all"], "add": ["NET_BIND_SERVICE", "CHOWN"]}),
    );
    set(
        &mut pod,
        "/spec/initContainers/0/securityContext/capabilities",
        json!(null),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![
            pair(
                "capabilities_restricted",
                "spec.initContainers[0].securityContext.capabilities.drop"
            ),
            pair(
                "capabilities_restricted",
                "spec.containers[0].securityContext.capabilities.drop"
            ),
            pair(
                "capabilities_restricted",
                "spec.containers[0].securityContext.capabilities.add[1]"
            ),
        ]
    );
    // CHOWN is in the baseline set: baseline is satisfied.
    assert_eq!(found(&pod, Level::Baseline), vec![]);
}

#[test]
fn windows_pods_are_exempt_from_linux_only_restricted_checks_only() {
    let mut pod = json!({
        "metadata": {},
        "spec": {
            "os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "win", "image": "i"}],
        }
    });
    assert_eq!(found(&pod, Level::Restricted), vec![]);
    // The same pod on Linux misses allowPrivilegeEscalation, seccomp and drop ALL.
    set(&mut pod, "/spec/os/name", json!("linux"));
    let checks: Vec<_> = eval(&pod, Level::Restricted)
        .into_iter()
        .map(|v| v.check)
        .collect();
    assert_eq!(
        checks,
        vec![
            "capabilities_restricted",
            "seccompProfile_restricted",
            "allowPrivilegeEscalation"
        ]
    );
    // Windows pods still get runAsNonRoot and HostProcess checked.
    set(&mut pod, "/spec/os/name", json!("windows"));
    set(&mut pod, "/spec/securityContext/runAsNonRoot", json!(false));
    set(
        &mut pod,
        "/spec/containers/0/securityContext/windowsOptions/hostProcess",
        json!(true),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![
            pair(
                "windowsHostProcess",
                "spec.containers[0].securityContext.windowsOptions.hostProcess"
            ),
            pair("runAsNonRoot", "spec.securityContext.runAsNonRoot"),
        ]
    );
}

#[test]
fn run_as_non_root_pod_level_and_container_level() {
    // Pod-level true covers containers that leave it unset.
    let pod = restricted_pod();
    assert_eq!(found(&pod, Level::Restricted), vec![]);

    // Without pod level, every container must set it.
    let mut pod = restricted_pod();
    set(&mut pod, "/spec/securityContext/runAsNonRoot", json!(null));
    set(
        &mut pod,
        "/spec/containers/0/securityContext/runAsNonRoot",
        json!(true),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![
            pair(
                "runAsNonRoot",
                "spec.initContainers[0].securityContext.runAsNonRoot"
            ),
            pair(
                "runAsNonRoot",
                "spec.ephemeralContainers[0].securityContext.runAsNonRoot"
            ),
        ]
    );

    // A container's explicit false overrides the pod's true.
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/containers/0/securityContext/runAsNonRoot",
        json!(false),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![pair(
            "runAsNonRoot",
            "spec.containers[0].securityContext.runAsNonRoot"
        )]
    );

    // Pod-level false fails even when every container sets true; the pod field is the fix.
    let mut pod = restricted_pod();
    set(&mut pod, "/spec/securityContext/runAsNonRoot", json!(false));
    set(
        &mut pod,
        "/spec/initContainers/0/securityContext/runAsNonRoot",
        json!(true),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![pair("runAsNonRoot", "spec.securityContext.runAsNonRoot")]
    );
}

#[test]
fn user_namespaced_pods_relax_run_as_non_root_run_as_user_and_baseline_proc_mount() {
    let mut pod = restricted_pod();
    set(&mut pod, "/spec/hostUsers", json!(false));
    set(&mut pod, "/spec/securityContext/runAsNonRoot", json!(false));
    set(&mut pod, "/spec/securityContext/runAsUser", json!(0));
    set(
        &mut pod,
        "/spec/containers/0/securityContext/runAsUser",
        json!(0),
    );
    set(
        &mut pod,
        "/spec/containers/0/securityContext/procMount",
        json!("Unmasked"),
    );
    // Baseline allows any procMount in a user namespace; restricted never does.
    assert_eq!(found(&pod, Level::Baseline), vec![]);
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![pair(
            "procMount_restricted",
            "spec.containers[0].securityContext.procMount"
        )]
    );
    // hostUsers: true (or unset) gets no relaxation.
    set(&mut pod, "/spec/hostUsers", json!(true));
    let checks: Vec<_> = eval(&pod, Level::Restricted)
        .into_iter()
        .map(|v| v.check)
        .collect();
    assert_eq!(
        checks,
        vec![
            "procMount_restricted",
            "runAsNonRoot",
            "runAsUser",
            "runAsUser"
        ]
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![pair(
            "procMount",
            "spec.containers[0].securityContext.procMount"
        )]
    );
}

#[test]
fn proc_mount_default_is_allowed() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/initContainers/0/securityContext/procMount",
        json!("Default"),
    );
    assert_eq!(found(&pod, Level::Restricted), vec![]);
}

#[test]
fn seccomp_pod_level_and_container_level() {
    // Containers may rely on the pod level, or set their own.
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/securityContext/seccompProfile",
        json!(null),
    );
    for at in ["initContainers", "containers", "ephemeralContainers"] {
        set(
            &mut pod,
            &format!("/spec/{at}/0/securityContext/seccompProfile"),
            json!({"type": "Localhost", "localhostProfile": "p.json"}),
        );
    }
    assert_eq!(found(&pod, Level::Restricted), vec![]);

    // Without pod level, a container that sets none is reported.
    set(
        &mut pod,
        "/spec/containers/0/securityContext/seccompProfile",
        json!(null),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![pair(
            "seccompProfile_restricted",
            "spec.containers[0].securityContext.seccompProfile.type"
        )]
    );
    assert_eq!(found(&pod, Level::Baseline), vec![]);

    // A container's Unconfined overrides a valid pod level; baseline forbids it too.
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/containers/0/securityContext/seccompProfile",
        json!({"type": "Unconfined"}),
    );
    let path = "spec.containers[0].securityContext.seccompProfile.type";
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![pair("seccompProfile_restricted", path)]
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![pair("seccompProfile_baseline", path)]
    );

    // An Unconfined pod level is one violation: the pod field is the fix.
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/securityContext/seccompProfile/type",
        json!("Unconfined"),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![pair(
            "seccompProfile_restricted",
            "spec.securityContext.seccompProfile.type"
        )]
    );
}

#[test]
fn legacy_seccomp_annotations_are_not_checked_at_the_newest_version() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/metadata/annotations",
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
    );
    assert_eq!(found(&pod, Level::Baseline), vec![]);
}

#[test]
fn apparmor_annotations_and_fields() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/metadata/annotations",
        json!({
            "container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/init": "localhost/custom",
            "container.apparmor.security.beta.kubernetes.io/debug": "",
            "unrelated.example.com/x": "unconfined",
        }),
    );
    set(
        &mut pod,
        "/spec/securityContext/appArmorProfile",
        json!({"type": "RuntimeDefault"}),
    );
    set(
        &mut pod,
        "/spec/containers/0/securityContext/appArmorProfile",
        json!({"type": "Localhost", "localhostProfile": "custom"}),
    );
    assert_eq!(found(&pod, Level::Baseline), vec![]);

    let mut annotated = restricted_pod();
    set(
        &mut annotated,
        "/metadata/annotations",
        json!({"container.apparmor.security.beta.kubernetes.io/gone": "unconfined"}),
    );
    set(
        &mut annotated,
        "/spec/securityContext/appArmorProfile",
        json!({"type": "Unconfined"}),
    );
    set(
        &mut annotated,
        "/spec/initContainers/0/securityContext/appArmorProfile",
        json!({"type": "Unconfined"}),
    );
    let v = eval(&annotated, Level::Restricted);
    let got: Vec<_> = v
        .iter()
        .map(|v| (v.path.as_str(), v.container.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            // The annotation is checked even when it names no container of the pod.
            (
                r#"metadata.annotations["container.apparmor.security.beta.kubernetes.io/gone"]"#,
                Some("gone")
            ),
            ("spec.securityContext.appArmorProfile.type", None),
            (
                "spec.initContainers[0].securityContext.appArmorProfile.type",
                Some("init")
            ),
        ]
    );
    assert!(v.iter().all(|v| v.check == "appArmorProfile"));
}

#[test]
fn selinux_types_user_and_role() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/securityContext/seLinuxOptions",
        json!({"type": "container_engine_t", "level": "s0:c1,c2"}),
    );
    set(
        &mut pod,
        "/spec/containers/0/securityContext/seLinuxOptions",
        json!({"type": "", "user": "", "role": ""}),
    );
    assert_eq!(found(&pod, Level::Restricted), vec![]);

    set(
        &mut pod,
        "/spec/securityContext/seLinuxOptions",
        json!({"type": "spc_t", "user": "system_u"}),
    );
    set(
        &mut pod,
        "/spec/ephemeralContainers/0/securityContext/seLinuxOptions",
        json!({"role": "system_r"}),
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![
            pair("seLinuxOptions", "spec.securityContext.seLinuxOptions.type"),
            pair("seLinuxOptions", "spec.securityContext.seLinuxOptions.user"),
            pair(
                "seLinuxOptions",
                "spec.ephemeralContainers[0].securityContext.seLinuxOptions.role"
            ),
        ]
    );
}

#[test]
fn sysctls_safe_set_of_v1_37() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/securityContext/sysctls",
        json!([
            {"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
            {"name": "net.ipv4.tcp_notsent_lowat", "value": "16384"},
            {"name": "kernel.msgmax", "value": "65536"},
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"},
        ]),
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![pair("sysctls", "spec.securityContext.sysctls[2].name")]
    );
}

#[test]
fn windows_host_process_pod_level() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/securityContext/windowsOptions",
        json!({"hostProcess": true}),
    );
    set(
        &mut pod,
        "/spec/containers/0/securityContext/windowsOptions",
        json!({"hostProcess": false}),
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![pair(
            "windowsHostProcess",
            "spec.securityContext.windowsOptions.hostProcess"
        )]
    );
}

#[test]
fn probe_and_lifecycle_hosts() {
    let mut pod = restricted_pod();
    // An empty host is the pod's own IP: allowed.
    set(
        &mut pod,
        "/spec/containers/0/livenessProbe",
        json!({"httpGet": {"port": 8080, "host": ""}}),
    );
    set(
        &mut pod,
        "/spec/containers/0/startupProbe",
        json!({"exec": {"command": ["true"]}}),
    );
    assert_eq!(found(&pod, Level::Baseline), vec![]);

    set(
        &mut pod,
        "/spec/containers/0/startupProbe",
        json!({"tcpSocket": {"port": 1, "host": "10.0.0.1"}}),
    );
    set(
        &mut pod,
        "/spec/initContainers/0/lifecycle",
        json!({"preStop": {"tcpSocket": {"port": 1, "host": "db"}}, "postStart": {"httpGet": {"port": 1, "host": "x"}}}),
    );
    set(
        &mut pod,
        "/spec/ephemeralContainers/0/readinessProbe",
        json!({"httpGet": {"port": 1, "host": "y"}}),
    );
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![
            pair(
                "hostProbesAndHostLifecycle",
                "spec.initContainers[0].lifecycle.postStart.httpGet.host"
            ),
            pair(
                "hostProbesAndHostLifecycle",
                "spec.initContainers[0].lifecycle.preStop.tcpSocket.host"
            ),
            pair(
                "hostProbesAndHostLifecycle",
                "spec.containers[0].startupProbe.tcpSocket.host"
            ),
            pair(
                "hostProbesAndHostLifecycle",
                "spec.ephemeralContainers[0].readinessProbe.httpGet.host"
            ),
        ]
    );
}

#[test]
fn volumes_hostpath_at_baseline_and_allowed_types_at_restricted() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/volumes",
        json!([
            {"name": "implicit-empty-dir"},
            {"name": "img", "image": {"reference": "registry.example/data:1"}},
            {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "csi", "csi": {"driver": "d"}},
            {"name": "nfs", "nfs": {"server": "s", "path": "/p"}},
            {"name": "host", "hostPath": {"path": "/var/run"}},
        ]),
    );
    assert_eq!(
        found(&pod, Level::Baseline),
        vec![pair("hostPathVolumes", "spec.volumes[5].hostPath")]
    );
    // Restricted reports hostPath through restrictedVolumes, which overrides hostPathVolumes.
    assert_eq!(
        found(&pod, Level::Restricted),
        vec![
            pair("restrictedVolumes", "spec.volumes[4].nfs"),
            pair("restrictedVolumes", "spec.volumes[5].hostPath"),
        ]
    );
}

#[test]
fn a_volume_source_this_build_does_not_know_violates_restricted_only() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/volumes",
        json!([{"name": "cfg", "configMap": {"name": "c"}}, {"name": "new", "fancyDisk": {}}]),
    );
    let meta: ObjectMeta = serde_json::from_value(pod["metadata"].clone()).unwrap();
    let spec: PodSpec = serde_json::from_value(pod["spec"].clone()).unwrap();
    let unknown = [super::UnknownSource {
        volume: 1,
        key: "fancyDisk".into(),
    }];
    assert!(super::check_with(&meta, &spec, &unknown, Level::Baseline).is_empty());
    let v = super::check_with(&meta, &spec, &unknown, Level::Restricted);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].check, v[0].path.as_str()),
        ("restrictedVolumes", "spec.volumes[1].fancyDisk")
    );
    assert!(
        v[0].message.starts_with(
            "volume \"new\" uses volume type fancyDisk, which restricted does not allow"
        ),
        "{}",
        v[0].message
    );
    // Typed decoding alone lost the fact: the volume looks like an emptyDir.
    assert!(check(&meta, &spec, Level::Restricted).is_empty());
}

#[test]
fn allow_privilege_escalation_unset_or_true() {
    let mut pod = restricted_pod();
    set(
        &mut pod,
        "/spec/initContainers/0/securityContext/allowPrivilegeEscalation",
        json!(null),
    );
    set(
        &mut pod,
        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
        json!(true),
    );
    let v = eval(&pod, Level::Restricted);
    assert_eq!(v.len(), 2);
    assert!(v[0].message.contains("does not set"), "{}", v[0].message);
    assert!(v[1].message.contains("=true"), "{}", v[1].message);
    assert_eq!(found(&pod, Level::Baseline), vec![]);
}

#[test]
fn workload_defaults_pass_baseline_but_not_restricted() {
    let pod = json!({"metadata": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    assert_eq!(found(&pod, Level::Baseline), vec![]);
    let checks: Vec<_> = eval(&pod, Level::Restricted)
        .into_iter()
        .map(|v| v.check)
        .collect();
    assert_eq!(
        checks,
        vec![
            "capabilities_restricted",
            "seccompProfile_restricted",
            "allowPrivilegeEscalation",
            "runAsNonRoot"
        ]
    );
}
