//! The user's guarantees of the mutating webhook as properties, on the hot
//! path with the AdmissionReviews the API server sends:
//!
//! - re-invocation converges: hardening, adding containers (a later
//!   webhook's sidecars, in any order and position, re-invoking floe-guard
//!   after any of them) gives the pod that adding them first and hardening
//!   once gives, or both are denied;
//! - a pod that satisfies `restricted` and carries nothing insecure is never
//!   denied (the converse, never admitting an insecure pod unchanged, is in
//!   `prop_admission`);
//! - `kubectl debug` (pods/ephemeralcontainers UPDATE) patches only the new
//!   ephemeral containers, which then pass `restricted`, and is denied only
//!   for what they carry.

use floe_guard::admission::Endpoint;
use floe_guard::config::{Config, OnInsecure};
use floe_guard::pss::Level;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::prop_admission::{
    CASES, call, cases, configs, container, insecure, patch_of, pod, review, violations,
};

/// The outcome of one review: the patched object, or `None` when denied.
fn mutate(cfg: &Config, object: &Value) -> Option<Value> {
    let body =
        serde_json::to_vec(&review("CREATE", "floe-jobs", "job-controller", object)).unwrap();
    let out = call(Endpoint::Mutate, &body, cfg).unwrap();
    if out["response"]["allowed"] != json!(true) {
        return None;
    }
    let mut patched = object.clone();
    if let Some(p) = patch_of(&out) {
        json_patch::patch(&mut patched, &p).expect("the patch applies");
    }
    Some(patched)
}

/// A job pod (always in scope).
fn job_pod() -> impl Strategy<Value = Value> {
    pod().prop_map(|mut p| {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job",
            "name": "ingest", "uid": "5b6c0e2a-6d2e-4f71-9d43-2f0b7a0c1e11", "controller": true}]);
        p
    })
}

/// The configurations: deny and override, with and without a size limit
/// (without one, a user's plain `emptyDir` named `floe-writable-tmp` is
/// floe-guard's shape).
fn guarantee_configs() -> Vec<Config> {
    let mut out = configs()[..2].to_vec();
    for c in out.clone() {
        let mut c = c;
        c.security.pod_security.writable_size_limit = None;
        out.push(c);
    }
    out
}

/// Inserts container `c` into `list` at `pos` (modulo its length + 1).
fn insert(pod: &mut Value, list: &str, pos: usize, c: Value) {
    let spec = &mut pod["spec"];
    if !spec[list].is_array() {
        spec[list] = json!([]);
    }
    let l = spec[list].as_array_mut().unwrap();
    let at = pos % (l.len() + 1);
    l.insert(at, c);
}

/// A pod that satisfies `restricted` and carries nothing insecure: a
/// generated pod hardened in override mode, with optional hardening
/// (readOnlyRootFilesystem, runAsGroup, fsGroup, writable mounts) dropped.
fn compliant_pod() -> impl Strategy<Value = Value> {
    (job_pod(), any::<[bool; 4]>()).prop_filter_map("hardening denies", |(p, drop)| {
        let mut over = configs()[1].clone();
        over.security.pod_security.on_insecure = OnInsecure::Override;
        let mut p = mutate(&over, &p)?;
        let spec = &mut p["spec"];
        if let Some(sc) = spec["securityContext"].as_object_mut() {
            if drop[0] {
                sc.remove("runAsGroup");
            }
            if drop[1] {
                sc.remove("fsGroup");
            }
        }
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in spec[list].as_array_mut().into_iter().flatten() {
                let c = c.as_object_mut().unwrap();
                if drop[2]
                    && let Some(sc) = c.get_mut("securityContext").and_then(Value::as_object_mut)
                {
                    sc.remove("readOnlyRootFilesystem");
                }
                if drop[3] {
                    c.remove("volumeMounts");
                }
            }
        }
        Some(p)
    })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn reinvocation_converges_to_the_single_pass_pod(
        object in job_pod(),
        added in prop::collection::vec(
            (prop::bool::weighted(0.7), 0..8usize, container("added"), any::<bool>()), 1..5),
        cfg_index in 0..4usize,
    ) {
        let cfg = &guarantee_configs()[cfg_index];
        let added: Vec<_> = added
            .into_iter()
            .enumerate()
            .map(|(k, (main, pos, mut c, reinvoke))| {
                c["name"] = json!(format!("added-{k}"));
                (if main { "containers" } else { "initContainers" }, pos, c, reinvoke)
            })
            .collect();
        // Harden, then add containers, re-invoking after some of them and after the last.
        let mut multi = mutate(cfg, &object);
        for (k, (list, pos, c, reinvoke)) in added.iter().enumerate() {
            let Some(mut cur) = multi.take() else { break };
            insert(&mut cur, list, *pos, c.clone());
            multi = if *reinvoke || k + 1 == added.len() { mutate(cfg, &cur) } else { Some(cur) };
        }
        let mut all = object.clone();
        for (list, pos, c, _) in &added {
            insert(&mut all, list, *pos, c.clone());
        }
        let single = mutate(cfg, &all);
        prop_assert_eq!(multi.is_some(), single.is_some(), "denied one way only");
        prop_assert_eq!(multi, single);
    }

    #[test]
    fn a_compliant_pod_without_insecure_values_is_never_denied(
        object in compliant_pod(),
        cfg_index in 0..4usize,
    ) {
        prop_assert!(violations(&object, Level::Restricted).is_empty());
        prop_assert!(!insecure(&object));
        let cfg = &guarantee_configs()[cfg_index];
        let out = mutate(cfg, &object);
        prop_assert!(out.is_some(), "a compliant pod was denied: {}", object);
        prop_assert!(violations(&out.unwrap(), Level::Restricted).is_empty());
    }

    #[test]
    fn kubectl_debug_patches_only_new_ephemeral_containers_and_denies_only_for_them(
        object in job_pod(),
        debug in prop::collection::vec(container("dbg"), 1..3),
        cfg_index in 0..2usize,
    ) {
        let cfg = &guarantee_configs()[cfg_index];
        let mut over = cfg.clone();
        over.security.pod_security.on_insecure = OnInsecure::Override;
        // The pod as stored: created (hardened in override mode) before the debug.
        let old = mutate(&over, &object);
        prop_assume!(old.is_some());
        let old = old.unwrap();
        let first_new = old["spec"]["ephemeralContainers"].as_array().map_or(0, Vec::len);
        let mut new = old.clone();
        for (k, mut c) in debug.into_iter().enumerate() {
            c["name"] = json!(format!("dbg-new-{k}"));
            c.as_object_mut().unwrap().remove("volumeMounts");
            // kubectl debug appends.
            let len = new["spec"]["ephemeralContainers"].as_array().map_or(0, Vec::len);
            insert(&mut new, "ephemeralContainers", len, c);
        }
        let mut doc = review("UPDATE", "floe-jobs", "alice", &new);
        doc["request"]["oldObject"] = old.clone();
        doc["request"]["subResource"] = json!("ephemeralcontainers");
        doc["request"]["requestSubResource"] = json!("ephemeralcontainers");
        let body = serde_json::to_vec(&doc).unwrap();
        let out = call(Endpoint::Mutate, &body, cfg).unwrap();
        let is_new = |v: &floe_guard::pss::Violation| {
            v.container.as_ref().is_none_or(|c| c.starts_with("dbg-new-"))
        };
        if out["response"]["allowed"] == json!(true) {
            let mut patched = new.clone();
            if let Some(patch) = patch_of(&out) {
                for op in serde_json::to_value(&patch).unwrap().as_array().unwrap() {
                    let path = op["path"].as_str().unwrap();
                    let index: usize = path
                        .strip_prefix("/spec/ephemeralContainers/")
                        .and_then(|r| r.split('/').next())
                        .and_then(|i| i.parse().ok())
                        .ok_or_else(|| TestCaseError::fail(format!("{path} is not in a new ephemeral container")))?;
                    prop_assert!(index >= first_new, "{} patches an old container", path);
                }
                json_patch::patch(&mut patched, &patch).unwrap();
            }
            let left: Vec<_> = violations(&patched, Level::Restricted).into_iter().filter(is_new).collect();
            prop_assert!(left.is_empty(), "allowed with {:?}", left);
        } else {
            // Denied only for what the new containers carry.
            // What hardening fixes (on Windows only runAsNonRoot: no Linux-only field is set).
            let fixable: &[&str] = if new["spec"]["os"]["name"] == "windows" {
                &["runAsNonRoot"]
            } else {
                &["allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot",
                    "runAsUser", "seccompProfile_restricted", "privileged"]
            };
            let mut only_new = new.clone();
            only_new["spec"]["ephemeralContainers"] =
                json!(new["spec"]["ephemeralContainers"].as_array().unwrap()[first_new..]);
            let unfixable = violations(&new, Level::Restricted)
                .into_iter()
                .any(|v| is_new(&v) && !fixable.contains(&v.check));
            let deny_mode = cfg.security.pod_security.on_insecure == OnInsecure::Deny;
            prop_assert!(
                unfixable || (deny_mode && insecure(&only_new)),
                "debug denied for nothing the new containers carry: {}",
                out["response"]
            );
        }
    }
}
