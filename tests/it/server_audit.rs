//! Audit mode through the real server: `/mutate-audit` (the webhook entry of
//! namespaces labelled `floe.dev/enforcement: audit`) and
//! `pod_security.mode: audit` admit what enforcement would deny, unchanged,
//! with warnings, a `would-deny` audit annotation and a metric per rule;
//! `audit_patch: false` drops the hardening patch; only
//! `enforcement_admins` may set the label.

use std::sync::Arc;

use crate::support::server::*;
use floe_guard::config::{Config, Mode};
use serde_json::{Value, json};

fn insecure_pod() -> Value {
    let mut pod = job_pod("floe-jobs");
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    pod["spec"]["hostPID"] = json!(true);
    pod
}

fn assert_would_deny(body: &Value) {
    let r = &body["response"];
    assert_eq!(r["allowed"], true, "{body}");
    assert!(r.get("patch").is_none(), "admitted unchanged: {body}");
    assert!(r.get("status").is_none(), "{body}");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(warnings.contains(
        &"floe-guard audit mode, would deny: container \"main\": spec.containers[0].securityContext.privileged is true"
    ), "{warnings:?}");
    assert!(warnings.contains(&"floe-guard audit mode, would deny: spec.hostPID is true"));
    let annotation = r["auditAnnotations"]["would-deny"].as_str().unwrap();
    assert!(
        annotation.contains("privileged is true") && annotation.contains("spec.hostPID is true")
    );
}

#[tokio::test]
async fn the_audit_endpoint_admits_unchanged_with_warnings_annotation_and_metric() {
    let (server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let review = pod_review("uid-a", "CREATE", Some(&insecure_pod()), None);
    let (_, enforced) = post(&client, &format!("{url}/mutate"), &review).await;
    assert_eq!(enforced["response"]["allowed"], false);
    let (status, body) = post(&client, &format!("{url}/mutate-audit"), &review).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "uid-a");
    assert_would_deny(&body);

    // A compliant-once-hardened pod is still hardened in audit mode
    // (audit_patch defaults to true).
    let plain = pod_review("uid-b", "CREATE", Some(&job_pod("floe-jobs")), None);
    let (_, body) = post(&client, &format!("{url}/mutate-audit"), &plain).await;
    assert!(patch_of(&body).is_some(), "{body}");

    // A Job template in audit mode names the template path.
    let mut job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "j", "namespace": "floe-jobs"},
        "spec": {"template": {"spec": insecure_pod()["spec"]}}});
    job["spec"]["template"]["spec"]["hostPID"] = json!(true);
    let (_, body) = post(
        &client,
        &format!("{url}/mutate-audit"),
        &workload_review("uid-j", "Job", &job),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    let annotation = body["response"]["auditAnnotations"]["would-deny"]
        .as_str()
        .unwrap();
    assert!(
        annotation.contains("spec.template.spec.hostPID is true"),
        "{annotation}"
    );

    let metrics = server.metrics().render();
    for line in [
        "floe_guard_audit_would_deny_total{rule=\"privileged\"} 2",
        "floe_guard_audit_would_deny_total{rule=\"hostPID\"} 2",
        "floe_guard_admission_requests_total{webhook=\"mutate\",operation=\"CREATE\",result=\"denied\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn audit_mode_by_config_and_without_patches() {
    let mut config = Config::default();
    config.security.pod_security.mode = Mode::Audit;
    config.security.pod_security.audit_patch = false;
    let config = Arc::new(config);
    let (_server, ca, url) = start_with(|mut c| {
        c.config = config;
        c
    })
    .await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let review = pod_review("uid-c", "CREATE", Some(&insecure_pod()), None);
    let (_, body) = post(&client, &format!("{url}/mutate"), &review).await;
    assert_would_deny(&body);
    let plain = pod_review("uid-d", "CREATE", Some(&job_pod("floe-jobs")), None);
    let (_, body) = post(&client, &format!("{url}/mutate"), &plain).await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(patch_of(&body).is_none(), "audit_patch: false: {body}");
    let would_patch = body["response"]["auditAnnotations"]["would-patch"]
        .as_str()
        .unwrap();
    assert!(
        would_patch.ends_with("JSONPatch operations"),
        "{would_patch}"
    );
}

#[tokio::test]
async fn only_enforcement_admins_may_set_or_remove_the_label() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let labels = |extra: Value| {
        let mut l = json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        });
        if let Value::Object(m) = extra {
            l.as_object_mut().unwrap().extend(m);
        }
        l
    };
    let old = namespace("floe-jobs", labels(json!({})));
    let new = namespace(
        "floe-jobs",
        labels(json!({"floe.dev/enforcement": "audit"})),
    );
    let validate = format!("{url}/validate");
    let as_user = |user: &str, groups: Value, new: &Value, old: &Value| {
        let mut r = namespace_review("uid-n", "UPDATE", Some(new), Some(old));
        r["request"]["userInfo"] = json!({"username": user, "groups": groups});
        r
    };
    // A namespace editor who is not an admin: denied, both ways.
    for (n, o) in [(&new, &old), (&old, &new)] {
        let (_, body) = post(&client, &validate, &as_user("dev", json!(["devs"]), n, o)).await;
        assert_eq!(body["response"]["allowed"], false, "{body}");
        let msg = body["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains("only security.pod_security.enforcement_admins (system:masters) may set, change or remove the floe.dev/enforcement label; \"dev\" may not"), "{msg}");
    }
    // A member of system:masters: allowed.
    let (_, body) = post(
        &client,
        &validate,
        &as_user(
            "kubernetes-admin",
            json!(["system:masters", "system:authenticated"]),
            &new,
            &old,
        ),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    // Unchanged label: anyone.
    let (_, body) = post(&client, &validate, &as_user("dev", json!([]), &new, &new)).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    // Not a mode.
    let bad = namespace("floe-jobs", labels(json!({"floe.dev/enforcement": "off"})));
    let (_, body) = post(
        &client,
        &validate,
        &as_user("kubernetes-admin", json!(["system:masters"]), &bad, &old),
    )
    .await;
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("\"off\" is not a mode"),
        "{body}"
    );
}
