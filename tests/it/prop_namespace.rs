//! Property test of the namespace validator (`/validate`) against an
//! independent model of the rule: a namespace managed before or after the
//! change must carry `enforce`, `audit` and `warn` each at least the stricter
//! required level, and `*-version` labels `latest` (or at least the configured
//! `min_version`); every denial names each label at fault and the
//! `kubectl label` command that fixes them.

use std::collections::BTreeMap;

use floe_guard::admission::Endpoint;
use floe_guard::config::{Config, MinVersion};
use floe_guard::pss::Level;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::prop_admission::{CASES, UID, call, cases, configs, opt};

/// The level a namespace with `labels` must enforce, if it is managed.
fn required_of(cfg: &Config, name: &str, labels: &BTreeMap<String, String>) -> Option<Level> {
    let ps = &cfg.security.pod_security;
    cfg.level_of(name).or_else(|| {
        (labels.get("app.kubernetes.io/part-of").map(String::as_str) == Some("floe"))
            .then(|| ps.platform_level.min(ps.jobs_level).min(ps.domain_level))
    })
}

/// The labels at fault, independently of `floe_guard::namespace`.
fn labels_at_fault(
    labels: &BTreeMap<String, String>,
    required: Level,
    min_version: Option<u32>,
) -> Vec<String> {
    let level = |v: &str| match v {
        "privileged" => Some(Level::Privileged),
        "baseline" => Some(Level::Baseline),
        "restricted" => Some(Level::Restricted),
        _ => None,
    };
    let version_ok = |v: &str| {
        v == "latest"
            || v.strip_prefix("v1.").is_some_and(|n| {
                let canonical = !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (n == "0" || !n.starts_with('0'));
                canonical && min_version.is_some_and(|min| n.parse::<u32>().unwrap() >= min)
            })
    };
    let mut fault = Vec::new();
    for mode in ["enforce", "audit", "warn"] {
        let key = format!("pod-security.kubernetes.io/{mode}");
        if labels
            .get(&key)
            .and_then(|v| level(v))
            .is_none_or(|l| l < required)
        {
            fault.push(key.clone());
        }
        let version = format!("{key}-version");
        if labels.get(&version).is_some_and(|v| !version_ok(v)) {
            fault.push(version);
        }
    }
    fault
}

fn ns_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    let value = prop_oneof![
        Just("privileged".to_string()),
        Just("baseline".to_string()),
        Just("restricted".to_string()),
        Just("Restricted".to_string()),
        Just("".to_string()),
        "[a-z]{0,6}",
    ];
    let version = prop_oneof![
        Just("latest".to_string()),
        Just("v1.37".to_string()),
        Just("v1.30".to_string()),
        Just("v1.24".to_string()),
        Just("v1.0".to_string()),
        Just("v1.037".to_string()),
        Just("v2.1".to_string()),
        Just("v1.".to_string()),
    ];
    let mode = || opt(value.clone());
    (
        (mode(), mode(), mode()),
        (opt(version.clone()), opt(version.clone()), opt(version)),
        opt(Just("floe".to_string())),
    )
        .prop_map(|((e, a, w), (ev, av, wv), part_of)| {
            let mut labels = BTreeMap::new();
            let p = "pod-security.kubernetes.io";
            for (k, v) in [
                (format!("{p}/enforce"), e),
                (format!("{p}/audit"), a),
                (format!("{p}/warn"), w),
                (format!("{p}/enforce-version"), ev),
                (format!("{p}/audit-version"), av),
                (format!("{p}/warn-version"), wv),
                ("app.kubernetes.io/part-of".to_string(), part_of),
            ] {
                if let Some(v) = v {
                    labels.insert(k, v);
                }
            }
            labels
        })
}

proptest! {
    #![proptest_config(cases(CASES * 2))]

    /// The validating webhook allows a managed namespace exactly when no
    /// label is at fault, on CREATE and UPDATE, judged against the stricter
    /// of the old and new management.
    #[test]
    fn managed_namespaces_need_sufficient_labels(
        name in prop::sample::select(&["floe-jobs", "floe-platform", "floe-sales-domain",
            "floe-other-domain", "team-a"][..]),
        labels in ns_labels(),
        old_labels in ns_labels(),
        operation in prop_oneof![Just("CREATE"), Just("UPDATE")],
        levels in (0..3usize, 0..3usize, 0..3usize),
        min_version in opt(Just(30u32)),
    ) {
        let all = [Level::Privileged, Level::Baseline, Level::Restricted];
        let mut cfg = configs()[0].clone();
        cfg.security.pod_security.jobs_level = all[levels.0];
        cfg.security.pod_security.platform_level = all[levels.1];
        cfg.security.pod_security.domain_level = all[levels.2];
        cfg.security.pod_security.min_version = min_version.map(MinVersion);
        let ns = |labels: &BTreeMap<String, String>| {
            let mut l = labels.clone();
            l.insert("kubernetes.io/metadata.name".into(), name.to_string());
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": l}})
        };
        let update = operation == "UPDATE";
        let doc = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": UID, "kind": {"group": "", "version": "v1", "kind": "Namespace"},
                "resource": {"group": "", "version": "v1", "resource": "namespaces"},
                "name": name, "operation": operation,
                "userInfo": {"username": "alice"},
                "object": ns(&labels),
                "oldObject": if update { ns(&old_labels) } else { Value::Null },
            }
        });
        let out = call(Endpoint::Validate, &serde_json::to_vec(&doc).unwrap(), &cfg).unwrap();
        let allowed = out["response"]["allowed"].as_bool().unwrap();
        prop_assert!(out["response"].get("patch").is_none());
        let before = if update { required_of(&cfg, name, &old_labels) } else { None };
        match required_of(&cfg, name, &labels).max(before) {
            Some(level) => {
                let fault = labels_at_fault(&labels, level, min_version);
                prop_assert_eq!(allowed, fault.is_empty(), "{} {:?}: {}", name, labels, out["response"]);
                let msg = out["response"]["status"]["message"].as_str().unwrap_or_default();
                for key in &fault {
                    prop_assert!(msg.contains(&format!("{key}=")) || msg.contains(&format!("{key} is missing")),
                        "{} not named: {}", key, msg);
                    prop_assert!(msg.contains(&format!(" {key}=")), "no fix for {}: {}", key, msg);
                }
            }
            None => prop_assert!(allowed, "unmanaged namespace denied: {}", out["response"]),
        }
        if !allowed {
            let msg = out["response"]["status"]["message"].as_str().unwrap();
            prop_assert!(msg.contains(&format!("kubectl label namespace {name} --overwrite")), "{}", msg);
        }
    }
}
