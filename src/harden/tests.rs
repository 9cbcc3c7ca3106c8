//! Unit tests of pod hardening.
use super::*;
use crate::config::{AbsolutePath, OnInsecure};
use serde_json::{Value, json};

pub(super) fn job_pod(spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "j-", "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": "j",
            "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]},
        "spec": spec,
    })
}

pub(super) const REQ: PodRequest<'static> = PodRequest {
    namespace: "floe-jobs",
    operation: Operation::Create,
    username: "system:serviceaccount:kube-system:job-controller",
};

fn run(object: &Value, req: &PodRequest, cfg: &Config) -> Decision {
    let mut pod: Pod = serde_json::from_value(object.clone()).unwrap();
    harden(&mut pod, &[], req, cfg)
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

/// The pod after hardening (the patch applied to the JSON), or the reasons
/// of the denial.
pub(super) fn hardened(
    object: &Value,
    req: &PodRequest,
    cfg: &Config,
) -> Result<Value, Vec<String>> {
    match run(object, req, cfg) {
        Decision::Allow { patch, .. } => {
            let mut out = object.clone();
            json_patch::patch(&mut out, &patch.operations()).expect("patch applies");
            Ok(out)
        }
        Decision::Deny { reasons, .. } => Err(reasons),
    }
}

fn reasons(object: &Value, cfg: &Config) -> Vec<String> {
    match run(object, &REQ, cfg) {
        Decision::Deny { reasons, .. } => reasons,
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
    let pod =
        job_pod(json!({"os": {"name": "windows"}, "containers": [{"name": "a", "image": "x"}]}));
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
    let mut pod =
        job_pod(json!({"runtimeClassName": "gvisor", "containers": [{"name": "a", "image": "x"}]}));
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
    let name = writable::base_name(&long);
    assert!(crate::config::is_dns_label(&name), "{name}");
    assert_eq!(writable::base_name("/home/floe"), "floe-writable-home-floe");
}

/// A pod as `kubectl debug` leaves it: the job pod (hardened at creation)
/// with one more ephemeral container.
fn debugged(debug: Value) -> (Value, Value) {
    let pod = job_pod(json!({"containers": [{"name": "main", "image": "x"}],
        "ephemeralContainers": [{"name": "old", "image": "x",
            "securityContext": {"privileged": true}}]}));
    let old = hardened(&pod, &REQ, &no_writable()).unwrap_err();
    assert!(!old.is_empty(), "the old ephemeral container is insecure");
    // The old pod as stored (floe-guard was not there when it was created).
    let mut new = pod.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(debug);
    (pod, new)
}

fn debug_req(existing: &[String]) -> PodRequest<'_> {
    PodRequest {
        operation: Operation::AddEphemeral { existing },
        username: "alice",
        ..REQ
    }
}

#[test]
fn only_new_ephemeral_containers_are_hardened_with_what_the_pod_level_lacks() {
    let (_, new) = debugged(json!({"name": "debugger", "image": "busybox"}));
    let existing = ["old".to_string()];
    let out = hardened(&new, &debug_req(&existing), &Config::default()).unwrap();
    assert_eq!(
        out["spec"]["ephemeralContainers"][1]["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 1000,
            "runAsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    // Nothing else changes: not the pod level, the old container or the volumes.
    let mut rest = out.clone();
    rest["spec"]["ephemeralContainers"][1] = new["spec"]["ephemeralContainers"][1].clone();
    assert_eq!(rest, new);
}

#[test]
fn a_new_ephemeral_container_of_a_hardened_pod_gets_only_container_fields() {
    let pod = hardened(
        &job_pod(json!({"containers": [{"name": "main", "image": "x"}]})),
        &REQ,
        &Config::default(),
    )
    .unwrap();
    let mut new = pod.clone();
    new["spec"]["ephemeralContainers"] = json!([{"name": "debugger", "image": "busybox"}]);
    let out = hardened(&new, &debug_req(&[]), &Config::default()).unwrap();
    assert_eq!(
        out["spec"]["ephemeralContainers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true})
    );
    assert!(
        out["spec"]["ephemeralContainers"][0]
            .get("volumeMounts")
            .is_none()
    );
}

#[test]
fn an_insecure_new_ephemeral_container_is_denied_naming_it_or_overridden() {
    let (_, new) = debugged(json!({"name": "debugger", "image": "busybox",
        "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_PTRACE"]}}}));
    let existing = ["old".to_string()];
    let r = hardened(&new, &debug_req(&existing), &Config::default()).unwrap_err();
    let all = r.join("\n");
    assert!(
        all.contains(
            "container \"debugger\": spec.ephemeralContainers[1].securityContext.privileged is true"
        ),
        "{all}"
    );
    assert!(all.contains("SYS_PTRACE"), "{all}");
    // The old container is not this request's doing.
    assert!(!all.contains("\"old\""), "{all}");
    let mut cfg = Config::default();
    cfg.security.pod_security.on_insecure = OnInsecure::Override;
    let out = hardened(&new, &debug_req(&existing), &cfg).unwrap();
    let sc = &out["spec"]["ephemeralContainers"][1]["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"]["add"], json!([]));
}

#[test]
fn an_ephemeral_update_without_a_new_container_is_untouched() {
    let (pod, _) = debugged(json!({"name": "unused", "image": "x"}));
    let existing = ["old".to_string()];
    assert_eq!(
        run(&pod, &debug_req(&existing), &Config::default()),
        Decision::untouched()
    );
}

#[test]
fn a_new_ephemeral_container_is_held_to_the_pods_level() {
    // A pod-level value the subresource cannot change denies the debug container.
    let pod = job_pod(
        json!({"hostNetwork": true, "containers": [{"name": "main", "image": "x"}],
        "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]}),
    );
    let r = hardened(&pod, &debug_req(&[]), &Config::default()).unwrap_err();
    assert!(r.iter().any(|m| m.contains("spec.hostNetwork")), "{r:?}");
}

#[test]
fn a_template_names_every_pod_path_where_it_is_in_the_workload() {
    let t = super::Template::CronJob;
    assert_eq!(
        t.name_paths("container \"main\": spec.containers[0].securityContext.privileged is true"),
        "container \"main\": spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged is true"
    );
    assert_eq!(
        super::Template::Job.name_paths("spec.hostPID is true (was spec.x)\nnot aspec.y"),
        "spec.template.spec.hostPID is true (was spec.template.spec.x)\nnot aspec.y"
    );
}
