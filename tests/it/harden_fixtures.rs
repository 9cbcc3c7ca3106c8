//! Every upstream PSS fixture, hardened as a job pod in `floe-jobs`: either
//! denied with reasons, or patched into a pod that satisfies `restricted`,
//! and hardening that pod again yields no patch.

use std::path::PathBuf;

use floe_guard::config::{Config, OnInsecure};
use floe_guard::harden::{self, Decision, Operation, PodRequest};
use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

fn fixtures(dir: &std::path::Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for level in ["baseline", "restricted"] {
        for verdict in ["pass", "fail"] {
            let d = dir.join(level).join("v1.37").join(verdict);
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let mut pod: Value = serde_yaml_ng::from_str(&text).unwrap();
                // As the Job controller creates it.
                pod["metadata"]["ownerReferences"] = json!([{
                    "apiVersion": "batch/v1", "kind": "Job", "name": "j",
                    "uid": "00000000-0000-4000-8000-000000000000", "controller": true
                }]);
                out.push((path, pod));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

const JOB: PodRequest<'static> = PodRequest {
    namespace: "floe-jobs",
    operation: Operation::Create,
    username: "system:serviceaccount:kube-system:job-controller",
};

fn decide(object: &Value, cfg: &Config) -> Decision {
    let mut pod: Pod = serde_json::from_value(object.clone()).unwrap();
    let unknown = floe_guard::admission::unknown_volume_sources(&object["spec"]).unwrap();
    harden::harden(&mut pod, &unknown, &JOB, cfg)
}

fn check_all(cfg: &Config) -> (usize, usize) {
    let Some(dir) = crate::support::corpus::pss_dir() else {
        return (0, 0);
    };
    let all = fixtures(&dir);
    assert_eq!(all.len(), 148, "the corpus has 148 fixtures");
    let (mut patched, mut denied) = (0, 0);
    for (path, object) in all {
        match decide(&object, cfg) {
            Decision::Deny { reasons, .. } => {
                assert!(
                    !reasons.is_empty(),
                    "{}: denied without a reason",
                    path.display()
                );
                denied += 1;
            }
            Decision::Allow { patch, .. } => {
                let mut hardened = object.clone();
                json_patch::patch(&mut hardened, &patch.operations())
                    .unwrap_or_else(|e| panic!("{}: patch does not apply: {e}", path.display()));
                let pod: Pod = serde_json::from_value(hardened.clone()).unwrap();
                let violations =
                    pss::check(&pod.metadata, pod.spec.as_ref().unwrap(), Level::Restricted);
                assert!(
                    violations.is_empty(),
                    "{}: hardened pod violates restricted: {violations:?}",
                    path.display()
                );
                match decide(&hardened, cfg) {
                    Decision::Allow { patch, .. } => {
                        assert!(
                            patch.is_empty(),
                            "{}: not idempotent, second patch {patch:?}",
                            path.display()
                        )
                    }
                    d => panic!("{}: the hardened pod is denied: {d:?}", path.display()),
                }
                patched += 1;
            }
        }
    }
    (patched, denied)
}

#[test]
fn every_fixture_is_denied_or_hardened_to_restricted_with_deny() {
    let (patched, denied) = check_all(&Config::default());
    if patched + denied > 0 {
        // Every pass fixture is compliant or fixable; insecure ones are denied.
        assert!(patched >= 33, "patched {patched}");
        assert!(denied > 0);
        eprintln!("on_insecure=deny: {patched} hardened, {denied} denied");
    }
}

#[test]
fn every_fixture_is_denied_or_hardened_to_restricted_with_override() {
    let mut cfg = Config::default();
    cfg.security.pod_security.on_insecure = OnInsecure::Override;
    let (patched, denied) = check_all(&cfg);
    if patched + denied > 0 {
        let (deny_patched, _) = check_all(&Config::default());
        assert!(
            patched > deny_patched,
            "override fixes more pods than deny ({patched} vs {deny_patched})"
        );
        eprintln!("on_insecure=override: {patched} hardened, {denied} denied");
    }
}
