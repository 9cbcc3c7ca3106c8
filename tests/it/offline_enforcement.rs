//! The offline commands decide as the webhook does (issue 14): `mutate`
//! converges after an added sidecar and previews `kubectl debug` with
//! `--old`, `check-namespace --old` previews an UPDATE, and `pss check`
//! denies a volume source this build does not know.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run floe-guard")
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(v).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

fn mutate_json(file: &str, extra: &[&str]) -> Value {
    let o = run(&[&["mutate", "-f", file, "-o", "json"], extra].concat());
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

fn with_sidecar(pod: &Value) -> Value {
    let mut pod = pod.clone();
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    pod
}

#[test]
fn mutating_the_mutated_pod_after_adding_a_sidecar_equals_one_mutation() {
    let dir = tempfile::tempdir().unwrap();
    let hardened = mutate_json("examples/job-pod.yaml", &[]);
    let twice = mutate_json(&write(dir.path(), "h.json", &with_sidecar(&hardened)), &[]);
    let original: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/job-pod.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let once = mutate_json(&write(dir.path(), "o.json", &with_sidecar(&original)), &[]);
    assert_eq!(twice, once);
    let names: Vec<&str> = once["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "scratch",
            "tmp",
            "floe-writable-tmp",
            "floe-writable-home-floe"
        ]
    );
}

#[test]
fn mutate_with_old_previews_kubectl_debug() {
    let dir = tempfile::tempdir().unwrap();
    let stored = mutate_json("examples/job-pod.yaml", &[]);
    let old = write(dir.path(), "old.json", &stored);
    let debug = |c: Value| {
        let mut p = stored.clone();
        p["spec"]["ephemeralContainers"] = json!([c]);
        p
    };
    let plain = write(
        dir.path(),
        "plain.json",
        &debug(json!({"name": "dbg", "image": "busybox"})),
    );
    let out = mutate_json(&plain, &["--old", &old]);
    assert_eq!(
        out["spec"]["ephemeralContainers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let mut rest = out.clone();
    rest["spec"]["ephemeralContainers"][0]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    assert_eq!(
        rest,
        debug(json!({"name": "dbg", "image": "busybox"})),
        "only the debug container changes"
    );
    let root = write(
        dir.path(),
        "root.json",
        &debug(
            json!({"name": "dbg-root", "image": "busybox", "securityContext": {"privileged": true}}),
        ),
    );
    let o = run(&["mutate", "-f", &root, "--old", &old]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains(
            "container \"dbg-root\": spec.ephemeralContainers[0].securityContext.privileged is true"
        ),
        "{err}"
    );
}

#[test]
fn check_namespace_with_old_judges_the_update_by_the_stricter_management() {
    let dir = tempfile::tempdir().unwrap();
    let ns = |labels: Value| {
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": labels}})
    };
    let old = write(
        dir.path(),
        "old.json",
        &ns(json!({"app.kubernetes.io/part-of": "floe",
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted"})),
    );
    let new = write(
        dir.path(),
        "new.json",
        &ns(json!({
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted"})),
    );
    let o = run(&["check-namespace", "-f", &new]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = run(&["check-namespace", "-f", &new, "--old", &old]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "team-a: denied\n  - pod-security.kubernetes.io/enforce=privileged is weaker than the configured baseline\n\
         fix: kubectl label namespace team-a --overwrite pod-security.kubernetes.io/enforce=baseline\n"
    );
}

#[test]
fn pss_check_denies_a_volume_source_this_build_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "app:1", "securityContext":
                {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "new", "fancyNewDisk": {"size": "1Gi"}}]}}}});
    let file = write(dir.path(), "d.json", &deployment);
    let o = run(&["pss", "check", "--level", "restricted", "-f", &file]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("restrictedVolumes at spec.volumes[0].fancyNewDisk"),
        "{out}"
    );
    let o = run(&["pss", "check", "--level", "baseline", "-f", &file]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn mutate_hardens_a_job_template_and_denies_an_insecure_cronjob_naming_its_path() {
    let job = mutate_json("examples/job.yaml", &[]);
    let template = &job["spec"]["template"];
    assert_eq!(template["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        template["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(job["spec"]["backoffLimit"], 2);

    let dir = tempfile::tempdir().unwrap();
    let mut pod_spec = template["spec"].clone();
    pod_spec["hostPID"] = json!(true);
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "floe-jobs"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}});
    let o = run(&["mutate", "-f", &write(dir.path(), "cron.json", &cron)]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("- spec.jobTemplate.spec.template.spec.hostPID is true"),
        "{err}"
    );
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
    let o = run(&["mutate", "-f", &write(dir.path(), "d.json", &deploy)]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("expected a Pod, Job or CronJob, got kind Deployment")
    );
}
