//! Any bytes sent to either webhook: `admission::review` never panics; an
//! answer is one AdmissionReview v1 JSON document; a patch is base64 JSON and
//! applies to the request object it was computed for.
#![no_main]

use base64::Engine as _;
use floe_guard::admission::{self, Endpoint};
use floe_guard::config::{Config, OnInsecure};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut over = Config::default();
    over.security.pod_security.on_insecure = OnInsecure::Override;
    for cfg in [&Config::default(), &over] {
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            let Ok(reviewed) = admission::review(endpoint, data, cfg) else {
                continue;
            };
            let out: Value = serde_json::from_slice(&reviewed.body).expect("answer is JSON");
            assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(
                out["response"]["uid"].as_str(),
                Some(reviewed.log.uid.as_str())
            );
            if let Some(p) = out["response"].get("patch") {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(p.as_str().expect("patch is a string"))
                    .expect("patch is base64");
                let patch: json_patch::Patch =
                    serde_json::from_slice(&bytes).expect("patch is RFC 6902");
                let request: Value = serde_json::from_slice(data).expect("a patched body is JSON");
                let mut object = request["request"]["object"].clone();
                json_patch::patch(&mut object, &patch).expect("patch applies to the object");
            }
        }
    }
});
