//! The real server over TLS (certificate verification on): webhook round
//! trips, bad inputs, HTTP/2 and metrics.

use crate::support::server::*;
use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

#[tokio::test]
async fn job_pod_is_hardened_and_the_patched_pod_passes_restricted() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let pod = job_pod("floe-jobs");
    let (status, body) = post(
        &client,
        &format!("{url}/mutate"),
        &pod_review("uid-job-1", "CREATE", Some(&pod), None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    let r = &body["response"];
    assert_eq!(r["uid"], "uid-job-1");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["patchType"], "JSONPatch");
    let patch = patch_of(&body).expect("a patch");

    // The unpatched pod fails restricted; the patched one passes.
    let before: Pod = serde_json::from_value(pod.clone()).unwrap();
    let spec = before.spec.as_ref().unwrap();
    assert!(!pss::check(&before.metadata, spec, Level::Restricted).is_empty());
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let after: Pod = serde_json::from_value(patched.clone()).unwrap();
    let violations = pss::check(
        &after.metadata,
        after.spec.as_ref().unwrap(),
        Level::Restricted,
    );
    assert!(violations.is_empty(), "{violations:?}");

    // Idempotent: the hardened pod needs no further patch.
    let (status, body) = post(
        &client,
        &format!("{url}/mutate"),
        &pod_review("uid-job-2", "CREATE", Some(&patched), None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], true);
    assert!(patch_of(&body).is_none(), "{body}");
}

#[tokio::test]
async fn pod_outside_job_namespaces_is_allowed_untouched() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let pod = job_pod("default");
    let (status, body) = post(
        &client,
        &format!("{url}/mutate"),
        &pod_review("uid-default", "CREATE", Some(&pod), None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "uid-default");
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"].get("patch").is_none(), "{body}");
}

#[tokio::test]
async fn insecure_job_pod_is_denied_with_403_and_the_reasons() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mut pod = job_pod("floe-jobs");
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let (status, body) = post(
        &client,
        &format!("{url}/mutate"),
        &pod_review("uid-priv", "CREATE", Some(&pod), None),
    )
    .await;
    assert_eq!(status, 200);
    let r = &body["response"];
    assert_eq!(r["uid"], "uid-priv");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("privileged") && message.contains("main"),
        "{message}"
    );
    assert!(r.get("patch").is_none());
}

#[tokio::test]
async fn namespaces_are_validated() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let validate = format!("{url}/validate");
    let restricted = json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    });
    let good = namespace("floe-jobs", restricted.clone());
    let (status, body) = post(
        &client,
        &validate,
        &namespace_review("ns-1", "CREATE", Some(&good), None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "ns-1");
    assert_eq!(body["response"]["allowed"], true, "{body}");

    let bare = namespace("floe-jobs", json!({}));
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-2", "CREATE", Some(&bare), None),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(body["response"]["status"]["code"], 403);
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("kubectl label"), "{message}");

    // UPDATE that removes the enforce label.
    let mut removed = restricted.clone();
    removed
        .as_object_mut()
        .unwrap()
        .remove("pod-security.kubernetes.io/enforce");
    let new = namespace("floe-jobs", removed);
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-3", "UPDATE", Some(&new), Some(&good)),
    )
    .await;
    assert_eq!(body["response"]["uid"], "ns-3");
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("enforce")
    );

    // An unmanaged namespace is none of floe's business.
    let other = namespace("team-a", json!({}));
    let (_, body) = post(
        &client,
        &validate,
        &namespace_review("ns-4", "CREATE", Some(&other), None),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
}

#[tokio::test]
async fn bad_inputs_get_clear_4xx_or_well_formed_answers_and_the_server_keeps_serving() {
    let (server, ca, url) = start_with(|mut c| {
        c.max_body_bytes = 64 * 1024;
        c
    })
    .await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let mutate = format!("{url}/mutate");
    let send = |ct: &'static str, body: Vec<u8>| {
        let req = client.post(&mutate).header("content-type", ct).body(body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };

    let (status, text) = send("application/json", vec![b' '; 64 * 1024 + 1]).await;
    assert_eq!(
        (status, text.as_str()),
        (413, "request body exceeds 65536 bytes\n")
    );

    let (status, text) = send("application/yaml", b"{}".to_vec()).await;
    assert_eq!(status, 415);
    assert!(text.contains("application/json"), "{text}");

    let (status, text) = send("application/json; charset=utf-8", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(text.starts_with("bad AdmissionReview: "), "{text}");

    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let (status, text) = send("application/json", no_request.to_string().into_bytes()).await;
    assert_eq!(status, 400);
    assert!(text.contains("request"), "{text}");

    let mut wrong_kind = pod_review("uid-k", "CREATE", Some(&job_pod("floe-jobs")), None);
    wrong_kind["kind"] = json!("ConfigMap");
    let (status, text) = send("application/json", wrong_kind.to_string().into_bytes()).await;
    assert_eq!(status, 400);
    assert!(text.contains("AdmissionReview"), "{text}");

    let mut v1beta1 = pod_review("uid-v", "CREATE", Some(&job_pod("floe-jobs")), None);
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, text) = send("application/json", v1beta1.to_string().into_bytes()).await;
    assert_eq!(status, 400);
    assert!(text.contains("v1beta1"), "{text}");

    // A review of the wrong resource is answered (uid echoed) with a denial.
    let mut deployment = pod_review("uid-dep", "CREATE", Some(&json!({"metadata": {}})), None);
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let (status, body) = post(&client, &mutate, &deployment).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "uid-dep");
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(body["response"]["status"]["code"], 400);

    // DELETE carries no object: allowed as is.
    let old = job_pod("floe-jobs");
    let (status, body) = post(
        &client,
        &mutate,
        &pod_review("uid-del", "DELETE", None, Some(&old)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "uid-del");
    assert_eq!(body["response"]["allowed"], true);
    let validate = format!("{url}/validate");
    let ns = namespace("floe-jobs", json!({}));
    let (status, body) = post(
        &client,
        &validate,
        &namespace_review("uid-nsdel", "DELETE", None, Some(&ns)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], true);

    // A well-formed envelope with an undecodable object: answered by uid.
    let mut garbled = pod_review("uid-garbled", "CREATE", Some(&job_pod("floe-jobs")), None);
    garbled["request"]["object"]["spec"]["containers"] = json!("not a list");
    let (status, body) = post(&client, &mutate, &garbled).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "uid-garbled");
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(body["response"]["status"]["code"], 400);

    let resp = client.get(&mutate).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let resp = client.post(format!("{url}/nope")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // Still serving, and every rejection was counted.
    let (status, body) = post(
        &client,
        &mutate,
        &pod_review("uid-ok", "CREATE", Some(&job_pod("floe-jobs")), None),
    )
    .await;
    assert_eq!(
        (status, body["response"]["allowed"].clone()),
        (200, json!(true))
    );
    let metrics = server.metrics().render();
    for line in [
        "floe_guard_admission_rejections_total{webhook=\"mutate\",code=\"413\"} 1",
        "floe_guard_admission_rejections_total{webhook=\"mutate\",code=\"415\"} 1",
        "floe_guard_admission_rejections_total{webhook=\"mutate\",code=\"400\"} 4",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line}");
    }
}

#[tokio::test]
async fn http2_via_alpn_and_http1_keep_alive_both_work() {
    let (_server, ca, url) = start().await;
    let review = pod_review("uid-h2", "CREATE", Some(&job_pod("floe-jobs")), None);
    for (builder, version) in [
        (client(&[&ca.ca_crt]), reqwest::Version::HTTP_2),
        (
            client(&[&ca.ca_crt]).http1_only(),
            reqwest::Version::HTTP_11,
        ),
    ] {
        let client = builder.build().unwrap();
        for _ in 0..3 {
            let resp = client
                .post(format!("{url}/mutate"))
                .header("content-type", "application/json")
                .body(review.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.version(), version);
            assert_eq!(resp.status().as_u16(), 200);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["response"]["uid"], "uid-h2");
        }
        // A refused body larger than the flow-control windows still gets its
        // 415, not a reset stream.
        let resp = client
            .post(format!("{url}/mutate"))
            .header("content-type", "text/plain")
            .body(vec![b'x'; 512 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status().as_u16(), 415);
        assert!(resp.text().await.unwrap().contains("application/json"));
    }
}

#[tokio::test]
async fn untrusted_clients_fail_verification_and_tls12_is_accepted() {
    let (_server, _ca, url) = start().await;
    let other = bundle();
    let untrusting = client(&[&other.ca_crt]).build().unwrap();
    let err = untrusting
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    let (_server2, ca, url) = start().await;
    let tls12 = client(&[&ca.ca_crt])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let resp = tls12.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (_server, ca, url) = start().await;
    let client = client(&[&ca.ca_crt]).build().unwrap();
    let get = |path: &str| {
        let req = client.get(format!("{url}{path}"));
        async move {
            let resp = req.send().await.unwrap();
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (resp.status().as_u16(), ct, resp.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);

    let review = pod_review("uid-m", "CREATE", Some(&job_pod("floe-jobs")), None);
    post(&client, &format!("{url}/mutate"), &review).await;
    post(&client, &format!("{url}/mutate"), &review).await;
    let ns = namespace("floe-jobs", json!({}));
    post(
        &client,
        &format!("{url}/validate"),
        &namespace_review("ns", "CREATE", Some(&ns), None),
    )
    .await;

    let (status, ct, text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    for line in [
        "floe_guard_admission_requests_total{webhook=\"mutate\",operation=\"CREATE\",result=\"allowed\"} 2",
        "floe_guard_admission_requests_total{webhook=\"validate\",operation=\"CREATE\",result=\"denied\"} 1",
        "floe_guard_admission_duration_seconds_count{webhook=\"mutate\"} 2",
        "floe_guard_admission_duration_seconds_bucket{webhook=\"mutate\",le=\"+Inf\"} 2",
        "floe_guard_ready 1",
        "# TYPE floe_guard_admission_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name}"))
            .parse()
            .unwrap()
    };
    assert!(value("floe_guard_patch_operations_total") >= 2.0);
    let expiry = value("floe_guard_certificate_expiry_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now + 86_400.0 && expiry < now + 3.0 * 86_400.0,
        "{expiry}"
    );
    assert!(text.contains(&format!(
        "floe_guard_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
}
