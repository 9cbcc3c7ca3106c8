//! The two webhook configurations, rendered from the config by
//! `floe-guard manifests webhooks`.
//!
//! Rule: the mutating webhook is sent exactly the job namespaces the server
//! treats as such ([`Config::is_job_namespace`]: `floe-jobs` and each
//! configured `floe-DOMAIN-domain`), selected by the immutable
//! `kubernetes.io/metadata.name` label, so adding a domain to the config
//! never needs a hand edit of the selector; neither webhook is ever sent
//! `kube-system` or floe-guard's own namespace. The Helm chart renders the
//! same from its values (`templates/webhooks.yaml`).

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use serde_json::{Value, json};

use super::{Doc, Install, labels};
use crate::config::{Config, JOBS_NAMESPACE};
use crate::namespace::ENFORCEMENT_LABEL;

/// The namespaces whose pods the mutating webhook is sent, in config order.
pub fn job_namespaces(cfg: &Config) -> Vec<String> {
    std::iter::once(JOBS_NAMESPACE.to_string())
        .chain(cfg.domains.iter().map(|d| Config::domain_namespace(d)))
        .collect()
}

fn rule(group: &str, operations: &[&str], resources: &[&str], scope: &str) -> Value {
    json!({"apiGroups": [group], "apiVersions": ["v1"], "operations": operations,
           "resources": resources, "scope": scope})
}

fn name_selector(included: Option<Vec<String>>, excluded: &[&str], audit: Option<&str>) -> Value {
    let key = "kubernetes.io/metadata.name";
    let mut exprs = Vec::new();
    if let Some(values) = included {
        exprs.push(json!({"key": key, "operator": "In", "values": values}));
    }
    exprs.push(json!({"key": key, "operator": "NotIn", "values": excluded}));
    if let Some(operator) = audit {
        exprs.push(json!({"key": ENFORCEMENT_LABEL, "operator": operator, "values": ["audit"]}));
    }
    json!({"matchExpressions": exprs})
}

/// The CEL pre-filter of the namespace webhook: a `floe-` name, or the
/// `part-of: floe` label before or after the change.
const FLOE_MANAGED: &str = "object.metadata.name.startsWith('floe-')
|| (has(object.metadata.labels)
    && 'app.kubernetes.io/part-of' in object.metadata.labels
    && object.metadata.labels['app.kubernetes.io/part-of'] == 'floe')
|| (oldObject != null
    && has(oldObject.metadata.labels)
    && 'app.kubernetes.io/part-of' in oldObject.metadata.labels
    && oldObject.metadata.labels['app.kubernetes.io/part-of'] == 'floe')";

/// The name of the pod webhook inside the MutatingWebhookConfiguration.
pub const POD_WEBHOOK: &str = "pods.floe-guard.floe.dev";
/// The name of its twin for namespaces in audit mode.
pub const AUDIT_POD_WEBHOOK: &str = "audit.pods.floe-guard.floe.dev";

/// What a deployed pod webhook's namespace selection gets wrong for this
/// config, as one line with the fix; `None` when it selects exactly the job
/// namespaces. Read from the `kubernetes.io/metadata.name In [...]`
/// expression the manifests and the chart render.
pub fn selector_drift(cfg: &Config, deployed: &MutatingWebhookConfiguration) -> Option<String> {
    let name = deployed.metadata.name.as_deref().unwrap_or_default();
    let hook = deployed
        .webhooks
        .iter()
        .flatten()
        .find(|w| w.name == POD_WEBHOOK);
    let Some(hook) = hook else {
        return Some(format!(
            "webhook {name}: no {POD_WEBHOOK} webhook, so no job pod is hardened; \
             apply `floe-guard manifests webhooks` (Helm: `helm upgrade`)"
        ));
    };
    let selected: Vec<String> = hook
        .namespace_selector
        .iter()
        .flat_map(|s| s.match_expressions.iter().flatten())
        .filter(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "In")
        .flat_map(|e| e.values.iter().flatten().cloned())
        .collect();
    let expected = job_namespaces(cfg);
    let missing: Vec<&str> = expected
        .iter()
        .filter(|n| !selected.contains(n))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = selected
        .iter()
        .filter(|n| !expected.contains(n))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !missing.is_empty() {
        what.push(format!(
            "does not select {} (pods there are not hardened)",
            missing.join(", ")
        ));
    }
    if !extra.is_empty() {
        what.push(format!(
            "selects {}, not a job namespace of the config",
            extra.join(", ")
        ));
    }
    Some(format!(
        "webhook {name}/{POD_WEBHOOK} {}; render it from the config: \
         `floe-guard manifests webhooks --config CONFIG | kubectl apply -f -` (Helm: `helm upgrade`)",
        what.join(" and ")
    ))
}

/// The MutatingWebhookConfiguration (pods) and the
/// ValidatingWebhookConfiguration (namespaces) for this config.
pub fn webhooks(cfg: &Config, install: &Install) -> Vec<Doc> {
    let ns = install.namespace.as_str();
    let hook = |name: &str, path: &str, rules: Vec<Value>, selector: Value| {
        json!({
            "name": name, "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "floe-guard", "namespace": ns, "path": path, "port": 443}},
            "rules": rules, "namespaceSelector": selector, "matchPolicy": "Equivalent",
            "sideEffects": "None", "timeoutSeconds": 3, "failurePolicy": "Fail",
        })
    };
    let pod_hook = |name: &str, path: &str, audit: &str| {
        let mut h = hook(
            name,
            path,
            vec![
                rule("", &["CREATE"], &["pods"], "Namespaced"),
                rule("", &["UPDATE"], &["pods/ephemeralcontainers"], "Namespaced"),
                rule("batch", &["CREATE"], &["jobs", "cronjobs"], "Namespaced"),
            ],
            name_selector(Some(job_namespaces(cfg)), &["kube-system", ns], Some(audit)),
        );
        h["reinvocationPolicy"] = json!("IfNeeded");
        h
    };
    let pods = [
        pod_hook(POD_WEBHOOK, "/mutate", "NotIn"),
        pod_hook(AUDIT_POD_WEBHOOK, "/mutate-audit", "In"),
    ];
    let mut namespaces = hook(
        "namespaces.floe-guard.floe.dev",
        "/validate",
        vec![rule("", &["CREATE", "UPDATE"], &["namespaces"], "Cluster")],
        name_selector(
            None,
            &["kube-system", "kube-public", "kube-node-lease", ns],
            None,
        ),
    );
    namespaces["matchConditions"] = json!([{"name": "floe-managed", "expression": FLOE_MANAGED}]);
    let config = |kind: &str, hooks: &[Value]| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": install.webhook, "labels": labels("webhook")},
            "webhooks": hooks,
        })
    };
    vec![
        Doc {
            why: "Pod CREATE, pods/ephemeralcontainers UPDATE (kubectl debug: the new containers are\n\
                  hardened or denied like a new pod's) and Job/CronJob CREATE (their pod templates are\n\
                  hardened like the pods they create), in the job namespaces only: floe-jobs and each\n\
                  configured floe-DOMAIN-domain, by the immutable kubernetes.io/metadata.name label\n\
                  (nobody can opt a namespace in or out by labelling it). A plain pod UPDATE is never\n\
                  sent: a pod spec is immutable. reinvocationPolicy IfNeeded: a second call after\n\
                  another webhook added a container hardens that one too. failurePolicy Fail: an\n\
                  unhardened job pod is never admitted because floe-guard was down (docs/break-glass.md).\n\
                  The second entry is the same for namespaces labelled floe.dev/enforcement=audit (a\n\
                  label only security.pod_security.enforcement_admins may set): what would be denied\n\
                  is admitted unchanged, with warnings and a would-deny audit annotation.",
            object: config("MutatingWebhookConfiguration", &pods),
        },
        Doc {
            why: "Namespace CREATE/UPDATE, only of floe's namespaces (matchConditions: a floe- name or\n\
                  the app.kubernetes.io/part-of: floe label, before or after the change), so namespace\n\
                  operations elsewhere never depend on floe-guard; the control plane's namespaces and\n\
                  floe-guard's own are never sent.",
            object: config("ValidatingWebhookConfiguration", &[namespaces]),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector_values(doc: &Doc, op: &str) -> Vec<Value> {
        doc.object["webhooks"][0]["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["operator"] == op && e["key"] == "kubernetes.io/metadata.name")
            .flat_map(|e| e["values"].as_array().unwrap().clone())
            .collect()
    }

    #[test]
    fn the_pod_webhook_selects_exactly_the_job_namespaces_of_the_config() {
        let cfg = Config::from_yaml("domains: [sales, marketing]\n", "t").unwrap();
        let docs = webhooks(&cfg, &Install::default());
        let selected = selector_values(&docs[0], "In");
        assert_eq!(
            selected,
            ["floe-jobs", "floe-sales-domain", "floe-marketing-domain"]
        );
        for ns in &selected {
            assert!(cfg.is_job_namespace(ns.as_str().unwrap()), "{ns}");
        }
        assert_eq!(
            selector_values(&docs[0], "NotIn"),
            ["kube-system", "floe-guard"]
        );
        assert_eq!(selector_values(&docs[1], "In"), Vec::<Value>::new());
        // The audit twin is sent the same namespaces, only those labelled audit.
        let hooks = docs[0].object["webhooks"].as_array().unwrap();
        assert_eq!(hooks[1]["name"], AUDIT_POD_WEBHOOK);
        assert_eq!(hooks[1]["clientConfig"]["service"]["path"], "/mutate-audit");
        assert_eq!(
            hooks[0]["namespaceSelector"]["matchExpressions"][0],
            hooks[1]["namespaceSelector"]["matchExpressions"][0]
        );
        assert_eq!(
            hooks[0]["namespaceSelector"]["matchExpressions"][2],
            json!({"key": ENFORCEMENT_LABEL, "operator": "NotIn", "values": ["audit"]})
        );
        assert_eq!(
            hooks[1]["namespaceSelector"]["matchExpressions"][2],
            json!({"key": ENFORCEMENT_LABEL, "operator": "In", "values": ["audit"]})
        );
    }

    fn deployed(docs: &[Doc]) -> MutatingWebhookConfiguration {
        serde_json::from_value(docs[0].object.clone()).unwrap()
    }

    #[test]
    fn a_selector_rendered_for_another_config_is_reported_with_the_fix() {
        let two = Config::from_yaml("domains: [sales, marketing]\n", "t").unwrap();
        let one = Config::from_yaml("domains: [sales, legacy]\n", "t").unwrap();
        assert_eq!(
            selector_drift(&two, &deployed(&webhooks(&two, &Install::default()))),
            None
        );
        let drift = selector_drift(&two, &deployed(&webhooks(&one, &Install::default()))).unwrap();
        assert_eq!(
            drift,
            "webhook floe-guard/pods.floe-guard.floe.dev does not select floe-marketing-domain \
             (pods there are not hardened) and selects floe-legacy-domain, not a job namespace of \
             the config; render it from the config: `floe-guard manifests webhooks --config CONFIG \
             | kubectl apply -f -` (Helm: `helm upgrade`)"
        );
        let mut other = deployed(&webhooks(&two, &Install::default()));
        other.webhooks.as_mut().unwrap()[0].name = "other.example.com".into();
        assert!(
            selector_drift(&two, &other)
                .unwrap()
                .contains("no pods.floe-guard.floe.dev")
        );
    }

    #[test]
    fn floe_guards_namespace_is_never_sent_to_either_webhook() {
        let install = Install {
            namespace: "guard".into(),
            ..Install::default()
        };
        for d in webhooks(&Config::default(), &install) {
            assert_eq!(
                d.object["webhooks"][0]["clientConfig"]["service"]["namespace"],
                "guard"
            );
            let excluded = selector_values(&d, "NotIn");
            assert!(
                excluded.contains(&json!("kube-system")) && excluded.contains(&json!("guard")),
                "{excluded:?}"
            );
        }
    }
}
