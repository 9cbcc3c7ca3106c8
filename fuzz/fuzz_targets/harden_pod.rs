//! Any JSON as the Pod of a Job pod CREATE in `floe-jobs`: if the webhook
//! allows it with a patch, the patch applies, the patched pod passes
//! `restricted`, and the patched pod gets no further patch (idempotence).
#![no_main]

use base64::Engine as _;
use floe_guard::admission::{self, Endpoint};
use floe_guard::config::{Config, OnInsecure};
use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn review(pod: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "floe-jobs", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
            "object": pod
        }
    }))
    .unwrap()
}

fn patch_of(body: &[u8]) -> (bool, Option<json_patch::Patch>) {
    let out: Value = serde_json::from_slice(body).unwrap();
    let allowed = out["response"]["allowed"].as_bool().unwrap();
    let patch = out["response"].get("patch").map(|p| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p.as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    });
    (allowed, patch)
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut pod) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if !pod.is_object() {
        return;
    }
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job",
        "name": "j", "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]);
    let mut over = Config::default();
    over.security.pod_security.on_insecure = OnInsecure::Override;
    for cfg in [&Config::default(), &over] {
        let Ok(r) = admission::review(Endpoint::Mutate, &review(&pod), cfg) else {
            continue;
        };
        let (allowed, patch) = patch_of(&r.body);
        if !allowed {
            continue;
        }
        let mut patched = pod.clone();
        if let Some(p) = &patch {
            json_patch::patch(&mut patched, p).expect("patch applies");
        }
        // Only pods the API server would store are held to the level.
        let Ok(stored) = serde_json::from_value::<Pod>(patched.clone()) else {
            continue;
        };
        let Some(spec) = stored.spec.as_ref() else {
            continue;
        };
        let v = pss::check(&stored.metadata, spec, Level::Restricted);
        assert!(v.is_empty(), "allowed but fails restricted: {v:?}");
        let again = admission::review(Endpoint::Mutate, &review(&patched), cfg).unwrap();
        assert_eq!(patch_of(&again.body), (true, None), "not idempotent");
    }
});
