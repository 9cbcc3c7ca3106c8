//! floe-guard's own workloads (manifests/) hold to what SECURITY.md states:
//! every pod template passes Pod Security `restricted` by floe-guard's own
//! evaluator, runs non-root with a read-only root filesystem, and the webhook
//! mounts no ServiceAccount token; every RBAC rule is commented (why the
//! verbs are needed) and uses no wildcard; the image runs as non-root.

use std::path::Path;

use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Deserialize;
use serde_json::Value;

fn manifests() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let v = Value::deserialize(doc).unwrap();
                if !v.is_null() {
                    docs.push((path.file_name().unwrap().to_string_lossy().into(), v));
                }
            }
        }
    }
    docs
}

/// `defaultMode: 0440` is octal for Kubernetes (YAML 1.1); serde_yaml_ng
/// (YAML 1.2) reads a string.
fn octal_modes(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if (k == "defaultMode" || k == "mode")
                    && let Some(n) = x.as_str().and_then(|s| i64::from_str_radix(s, 8).ok())
                {
                    *x = n.into();
                }
                octal_modes(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

/// The pod template of a workload, if it is one.
fn template(v: &Value) -> Option<&Value> {
    match v["kind"].as_str()? {
        "Deployment" | "Job" | "DaemonSet" | "StatefulSet" => Some(&v["spec"]["template"]),
        "CronJob" => Some(&v["spec"]["jobTemplate"]["spec"]["template"]),
        _ => None,
    }
}

#[test]
fn every_floe_guard_pod_is_restricted_non_root_and_read_only() {
    let mut seen = Vec::new();
    for (file, doc) in manifests() {
        let Some(t) = template(&doc) else { continue };
        let name = format!("{file}: {} {}", doc["kind"], doc["metadata"]["name"]);
        let mut t = t.clone();
        octal_modes(&mut t);
        let tpl: PodTemplateSpec = serde_json::from_value(t).unwrap();
        let spec = tpl.spec.as_ref().unwrap();
        let meta = tpl.metadata.clone().unwrap_or_default();
        let v = pss::check(&meta, spec, Level::Restricted);
        assert!(v.is_empty(), "{name}: {v:?}");
        let psc = spec.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true), "{name}");
        assert!(psc.run_as_user.is_some_and(|u| u != 0), "{name}");
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(
                sc.read_only_root_filesystem,
                Some(true),
                "{name} {}",
                c.name
            );
            assert_eq!(
                sc.allow_privilege_escalation,
                Some(false),
                "{name} {}",
                c.name
            );
        }
        if doc["kind"] == "Deployment" {
            assert_eq!(spec.automount_service_account_token, Some(false), "{name}");
        }
        seen.push(name);
    }
    assert!(seen.iter().any(|n| n.contains("Deployment")), "{seen:?}");
    assert!(
        seen.iter().filter(|n| n.contains("Job")).count() >= 2,
        "{seen:?}"
    );
}

#[test]
fn every_rbac_rule_is_explained_and_has_no_wildcard() {
    // manifests/rbac.yaml is generated (`floe-guard manifests rbac`): each
    // Role and ClusterRole is preceded by the comment that says why it
    // exists, and docs/rbac.md explains every resource it grants.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("manifests/rbac.yaml")).unwrap();
    let why = std::fs::read_to_string(root.join("docs/rbac.md")).unwrap();
    let mut roles = 0;
    for doc in text.split("\n---\n").skip(1) {
        let (comment, body): (Vec<&str>, Vec<&str>) = doc.lines().partition(|l| l.starts_with('#'));
        let body = body.join("\n");
        let obj: Value = serde_yaml_ng::from_str(&body).unwrap();
        assert!(
            !comment.is_empty(),
            "object without a comment saying why: {body}"
        );
        if !matches!(obj["kind"].as_str(), Some("Role" | "ClusterRole")) {
            continue;
        }
        roles += 1;
        for rule in obj["rules"].as_array().unwrap() {
            for r in rule["resources"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(
                    why.contains(&format!("`{r}`")),
                    "docs/rbac.md does not explain {r}"
                );
            }
        }
    }
    assert!(roles >= 6, "{roles}");
    for (_, doc) in manifests() {
        if !matches!(doc["kind"].as_str(), Some("Role" | "ClusterRole")) {
            continue;
        }
        for rule in doc["rules"].as_array().unwrap() {
            for key in ["apiGroups", "resources", "verbs"] {
                let items = rule[key].as_array().unwrap();
                assert!(items.iter().all(|x| x != "*"), "wildcard in {rule}");
            }
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for v in ["escalate", "bind", "impersonate", "watch"] {
                assert!(!verbs.contains(&v), "{v} in {rule}");
            }
            if rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "secrets")
            {
                assert!(doc["kind"] == "Role", "cluster-wide secrets access: {rule}");
                assert!(!verbs.contains(&"list"), "secrets list: {rule}");
            }
        }
    }
}

#[test]
fn the_image_runs_as_non_root() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    let text = std::fs::read_to_string(path).unwrap();
    let last_from = text.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert!(
        last_from.contains("distroless") && last_from.contains(":nonroot"),
        "{last_from}"
    );
    let user = text.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    assert_eq!(user, "USER 65532:65532");
}
