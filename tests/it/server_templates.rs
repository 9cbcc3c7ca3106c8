//! Job and CronJob pod templates hardened at creation, through the real
//! server: the reviews kube-apiserver sends, the patch, the denial naming
//! the template path, and the pod the job controller then creates needing
//! no patch.

use crate::support::server::*;
use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// A plain Job as a user writes it: the template of `job_pod`.
fn job(namespace: &str) -> Value {
    let pod = job_pod(namespace);
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "ingest-orders", "namespace": namespace},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"labels": {"app": "ingest"}},
                "spec": pod["spec"],
            }
        }
    })
}

fn cron_job(namespace: &str) -> Value {
    let job = job(namespace);
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": namespace},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job["spec"]}}
    })
}

/// The pod the job controller creates from a Job: the template's metadata
/// and spec, in the Job's namespace, controlled by the Job.
fn pod_from(job: &Value, template: &Value) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]});
    pod["metadata"]["generateName"] = json!("ingest-orders-");
    pod["metadata"]["namespace"] = job["metadata"]["namespace"].clone();
    pod["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "batch/v1", "kind": "Job", "name": "ingest-orders",
        "uid": "5b6c0e2a-6d2e-4f71-9d43-2f0b7a0c1e11", "controller": true, "blockOwnerDeletion": true
    }]);
    pod
}

fn restricted_violations(template: &Value) -> usize {
    let pod: Pod =
        serde_json::from_value(json!({"metadata": template["metadata"], "spec": template["spec"]}))
            .unwrap();
    pss::check(&pod.metadata, pod.spec.as_ref().unwrap(), Level::Restricted).len()
}

#[tokio::test]
async fn a_job_and_a_cronjob_template_are_hardened_and_their_pods_need_no_patch() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mutate = format!("{url}/mutate");
    for (kind, object, at) in [
        ("Job", job("floe-jobs"), "/spec/template"),
        (
            "CronJob",
            cron_job("floe-jobs"),
            "/spec/jobTemplate/spec/template",
        ),
    ] {
        let (status, body) = post(&client, &mutate, &workload_review("uid-w", kind, &object)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["response"]["allowed"], true, "{kind}: {body}");
        let patch = patch_of(&body).expect("a patch");
        for op in &patch.0 {
            let path = serde_json::to_value(op).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(path.starts_with(&format!("{at}/spec/")), "{kind}: {path}");
        }
        let mut hardened = object.clone();
        json_patch::patch(&mut hardened, &patch).unwrap();
        let template = hardened.pointer(at).unwrap().clone();
        assert!(restricted_violations(object.pointer(at).unwrap()) > 0);
        assert_eq!(restricted_violations(&template), 0, "{kind}: {template}");
        // Nothing else of the workload changes.
        let mut rest = hardened.clone();
        *rest.pointer_mut(at).unwrap() = object.pointer(at).unwrap().clone();
        assert_eq!(rest, object, "{kind}");

        let pod = pod_from(&hardened, &template);
        let (status, body) = post(
            &client,
            &mutate,
            &pod_review("uid-p", "CREATE", Some(&pod), None),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["response"]["allowed"], true, "{kind}: {body}");
        assert!(patch_of(&body).is_none(), "{kind}: the pod needs {body}");
    }
}

#[tokio::test]
async fn an_insecure_template_is_denied_naming_the_template_path() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mutate = format!("{url}/mutate");
    let mut pod = job_pod("floe-jobs");
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let (_, body) = post(
        &client,
        &mutate,
        &pod_review("uid-p", "CREATE", Some(&pod), None),
    )
    .await;
    let pod_message = body["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pod_message.contains("spec.containers[0].securityContext.privileged is true"));

    for (kind, mut object, at, field) in [
        (
            "Job",
            job("floe-jobs"),
            "/spec/template/spec",
            "spec.template.spec",
        ),
        (
            "CronJob",
            cron_job("floe-jobs"),
            "/spec/jobTemplate/spec/template/spec",
            "spec.jobTemplate.spec.template.spec",
        ),
    ] {
        object.pointer_mut(at).unwrap()["containers"][0]["securityContext"] =
            json!({"privileged": true});
        let (status, body) = post(&client, &mutate, &workload_review("uid-w", kind, &object)).await;
        assert_eq!(status, 200);
        let r = &body["response"];
        assert_eq!(r["allowed"], false, "{kind}: {body}");
        assert_eq!(r["status"]["code"], 403);
        let message = r["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "{field}.containers[0].securityContext.privileged is true"
            )),
            "{kind}: {message}"
        );
        // The same message a pod gets, with the template's paths.
        let expected = pod_message.replace("spec.", &format!("{field}."));
        assert_eq!(message, expected, "{kind}");
    }
}

#[tokio::test]
async fn templates_out_of_scope_or_not_created_are_left_alone() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mutate = format!("{url}/mutate");
    // Not a job namespace.
    let (_, body) = post(
        &client,
        &mutate,
        &workload_review("u1", "Job", &job("default")),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(patch_of(&body).is_none(), "{body}");
    // An UPDATE (a Job's template is immutable; a CronJob's change reaches
    // only new Jobs, whose pods the pod webhook still hardens).
    let mut update = workload_review("u2", "CronJob", &cron_job("floe-jobs"));
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = update["request"]["object"].clone();
    let (_, body) = post(&client, &mutate, &update).await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(patch_of(&body).is_none(), "{body}");
}
