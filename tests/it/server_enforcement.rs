//! The enforcement gaps of issue 14, over TLS with the AdmissionReview the
//! API server sends for each: re-invocation after a sidecar injector,
//! `kubectl debug` (pods/ephemeralcontainers), a volume source this build
//! does not know, and namespace label changes (audit/warn, oldObject,
//! version pins).

use std::sync::Arc;

use crate::support::server::*;
use floe_guard::config::{Config, OnInsecure};
use serde_json::{Value, json};

const POD_NAME: &str = "ingest-orders-28911-x7k2p";

/// The job pod as stored: named, and hardened at creation (via the server).
async fn stored_job_pod(client: &reqwest::Client, url: &str) -> Value {
    let mut pod = job_pod("floe-jobs");
    pod["metadata"]["name"] = json!(POD_NAME);
    let (_, body) = post(
        client,
        &format!("{url}/mutate"),
        &pod_review("create", "CREATE", Some(&pod), None),
    )
    .await;
    json_patch::patch(&mut pod, &patch_of(&body).expect("hardened")).unwrap();
    pod
}

/// The review kube-apiserver sends for `kubectl debug`: an UPDATE of the
/// pods/ephemeralcontainers subresource with the whole Pod as object and
/// oldObject.
fn debug_review(uid: &str, new: &Value, old: &Value) -> Value {
    let mut review = pod_review(uid, "UPDATE", Some(new), Some(old));
    let r = &mut review["request"];
    r["subResource"] = json!("ephemeralcontainers");
    r["requestSubResource"] = json!("ephemeralcontainers");
    r["userInfo"] = json!({"username": "alice", "groups": ["system:authenticated"]});
    review
}

fn with_debug_container(pod: &Value, container: Value) -> Value {
    let mut new = pod.clone();
    new["spec"]["ephemeralContainers"] = json!([container]);
    new
}

#[tokio::test]
async fn kubectl_debug_containers_are_hardened_and_insecure_ones_denied_by_name() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mutate = format!("{url}/mutate");
    let old = stored_job_pod(&client, &url).await;

    // A plain debug container: hardened by a patch against the sent object.
    let new = with_debug_container(
        &old,
        json!({"name": "debugger-abc12", "image": "busybox", "stdin": true, "tty": true,
            "targetContainerName": "main"}),
    );
    let (status, body) = post(&client, &mutate, &debug_review("dbg-1", &new, &old)).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "dbg-1");
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let patch = patch_of(&body).expect("the new container is hardened");
    for op in &patch.0 {
        let path = serde_json::to_value(op).unwrap()["path"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            path.starts_with("/spec/ephemeralContainers/0/"),
            "{path}: only ephemeral containers may change"
        );
    }
    let mut patched = new.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(
        patched["spec"]["ephemeralContainers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true})
    );

    // A privileged one is denied, naming the container.
    let new = with_debug_container(
        &old,
        json!({"name": "debugger-root", "image": "busybox",
            "securityContext": {"privileged": true, "runAsUser": 0}}),
    );
    let (_, body) = post(&client, &mutate, &debug_review("dbg-2", &new, &old)).await;
    let r = &body["response"];
    assert_eq!(r["allowed"], false, "{body}");
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("container \"debugger-root\": spec.ephemeralContainers[0].securityContext.privileged is true")
            && message.contains("runAsUser is 0"),
        "{message}"
    );

    // A second debug container: only it is reviewed, the first is left alone.
    let mut older = patched.clone();
    older["spec"]["ephemeralContainers"][0]["securityContext"] = json!({"privileged": true});
    let mut newer = older.clone();
    newer["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debugger-2", "image": "busybox"}));
    let (_, body) = post(&client, &mutate, &debug_review("dbg-3", &newer, &older)).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let ops = serde_json::to_value(patch_of(&body).unwrap()).unwrap();
    assert!(
        ops.as_array().unwrap().iter().all(|o| o["path"]
            .as_str()
            .unwrap()
            .starts_with("/spec/ephemeralContainers/1/")),
        "{ops}"
    );
}

#[tokio::test]
async fn kubectl_debug_in_override_mode_replaces_insecure_values_with_a_warning() {
    let (_server, ca, url) = start_with(|mut c| {
        let mut cfg = Config::default();
        cfg.security.pod_security.on_insecure = OnInsecure::Override;
        c.config = Arc::new(cfg);
        c
    })
    .await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let old = stored_job_pod(&client, &url).await;
    let new = with_debug_container(
        &old,
        json!({"name": "debugger", "image": "busybox",
            "securityContext": {"allowPrivilegeEscalation": true}}),
    );
    let (_, body) = post(
        &client,
        &format!("{url}/mutate"),
        &debug_review("dbg-o", &new, &old),
    )
    .await;
    let r = &body["response"];
    assert_eq!(r["allowed"], true, "{body}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("debugger") && warnings.contains("allowPrivilegeEscalation is true"),
        "{warnings}"
    );
    let mut patched = new.clone();
    json_patch::patch(&mut patched, &patch_of(&body).unwrap()).unwrap();
    assert_eq!(
        patched["spec"]["ephemeralContainers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
}

#[tokio::test]
async fn a_plain_pod_update_is_never_patched() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let old = stored_job_pod(&client, &url).await;
    let mut new = old.clone();
    new["metadata"]["labels"]["extra"] = json!("x");
    new["spec"]["containers"][0]["securityContext"] = Value::Null;
    let (_, body) = post(
        &client,
        &format!("{url}/mutate"),
        &pod_review("upd", "UPDATE", Some(&new), Some(&old)),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"].get("patch").is_none(), "{body}");
}

#[tokio::test]
async fn reinvocation_after_a_sidecar_injector_gives_the_single_pass_pod() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mutate = format!("{url}/mutate");
    let sidecar = json!({"name": "istio-proxy", "image": "istio/proxyv2:1.22"});
    let add = |pod: &Value| {
        let mut pod = pod.clone();
        pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(sidecar.clone());
        pod
    };
    let harden = |pod: Value, uid: &'static str| {
        let client = client.clone();
        let mutate = mutate.clone();
        async move {
            let (_, body) = post(
                &client,
                &mutate,
                &pod_review(uid, "CREATE", Some(&pod), None),
            )
            .await;
            assert_eq!(body["response"]["allowed"], true, "{body}");
            let mut pod = pod;
            if let Some(p) = patch_of(&body) {
                json_patch::patch(&mut pod, &p).unwrap();
            }
            pod
        }
    };
    let pod = job_pod("floe-jobs");
    // The API server re-invokes floe-guard with the same request after the injector.
    let twice = harden(add(&harden(pod.clone(), "r-1").await), "r-1").await;
    let once = harden(add(&pod), "r-2").await;
    assert_eq!(twice, once);
    let names: Vec<&str> = once["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["config", "floe-writable-tmp", "floe-writable-home-floe"]
    );
}

#[tokio::test]
async fn a_volume_source_this_build_does_not_know_is_denied_in_restricted_namespaces() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mut pod = job_pod("floe-jobs");
    pod["spec"]["volumes"] = json!([{"name": "config", "emptyDir": {}},
        {"name": "scratch", "fancyNewDisk": {"size": "1Gi"}}]);
    let (_, body) = post(
        &client,
        &format!("{url}/mutate"),
        &pod_review("unknown-src", "CREATE", Some(&pod), None),
    )
    .await;
    let r = &body["response"];
    assert_eq!(r["allowed"], false, "{body}");
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.volumes[1].fancyNewDisk")
            && message.contains("restrictedVolumes")
            && message.contains("\"scratch\""),
        "{message}"
    );
}

fn pss(enforce: &str, audit: &str, warn: &str) -> Value {
    json!({
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/audit": audit,
        "pod-security.kubernetes.io/warn": warn,
    })
}

#[tokio::test]
async fn namespace_audit_warn_old_object_and_version_pins_are_enforced() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let validate = format!("{url}/validate");
    let denied = |body: &Value| -> String {
        assert_eq!(body["response"]["allowed"], false, "{body}");
        assert_eq!(body["response"]["status"]["code"], 403);
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // audit and warn privileged under enforce restricted.
    let ns = namespace("floe-jobs", pss("restricted", "privileged", "privileged"));
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-a", "CREATE", Some(&ns), None),
    )
    .await;
    let m = denied(&body);
    assert!(
        m.contains("pod-security.kubernetes.io/audit=privileged is weaker")
            && m.contains("pod-security.kubernetes.io/warn=privileged is weaker")
            && m.contains("kubectl label namespace floe-jobs --overwrite pod-security.kubernetes.io/audit=restricted pod-security.kubernetes.io/warn=restricted"),
        "{m}"
    );

    // Dropping part-of: floe and weakening in the same UPDATE.
    let mut old_labels = pss("baseline", "restricted", "restricted");
    old_labels["app.kubernetes.io/part-of"] = json!("floe");
    let old = namespace("team-a", old_labels);
    let new = namespace("team-a", pss("privileged", "privileged", "privileged"));
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-b", "UPDATE", Some(&new), Some(&old)),
    )
    .await;
    let m = denied(&body);
    assert!(
        m.contains("enforce=privileged is weaker than the configured baseline"),
        "{m}"
    );
    // The same labels on a namespace that was never managed are not floe's business.
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-c", "UPDATE", Some(&new), Some(&new)),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true, "{body}");

    // A pinned policy version.
    let mut pinned = pss("restricted", "restricted", "restricted");
    pinned["pod-security.kubernetes.io/enforce-version"] = json!("v1.24");
    let ns = namespace("floe-jobs", pinned);
    let old = namespace("floe-jobs", pss("restricted", "restricted", "restricted"));
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-d", "UPDATE", Some(&ns), Some(&old)),
    )
    .await;
    let m = denied(&body);
    assert!(
        m.contains("enforce-version=v1.24 pins an older policy")
            && m.contains("--overwrite pod-security.kubernetes.io/enforce-version=latest"),
        "{m}"
    );
}
