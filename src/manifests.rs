//! The parts of the raw manifests that derive from the config, rendered by
//! `floe-guard manifests …`: the managed namespaces, the RBAC of the certs
//! and bootstrap Jobs, and the webhook configurations' namespace selection
//! ([`webhooks`]).
//!
//! Rule: least privilege, derived from the config. Every right names the
//! objects it applies to where Kubernetes allows it (`resourceNames`; never
//! for `create` and `list`, which RBAC cannot restrict by name); writes are
//! granted only inside the managed namespaces (Roles there) or on floe-guard's
//! own objects; cluster-wide reads only for what discovery needs when the
//! config leaves it out; no wildcard. The Helm chart renders the same rules
//! from its values (`templates/bootstrap.yaml`, `templates/_certs.tpl`);
//! `docs/rbac.md` says why each rule exists.

use serde_json::{Value, json};

use crate::bootstrap;
use crate::config::Config;
use crate::network::reports::REPORT_NAME;

mod webhooks;
pub use webhooks::{POD_WEBHOOK, job_namespaces, selector_drift, webhooks};

/// What the rendering needs besides the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// floe-guard's namespace (its ServiceAccounts, Secrets and Jobs).
    pub namespace: String,
    /// The serving Secret.
    pub secret: String,
    /// The CA Secret.
    pub ca_secret: String,
    /// Both webhook configurations' name.
    pub webhook: String,
    /// Whether the bootstrap Job runs with `--prune` (deletes stale policies).
    pub prune: bool,
}

impl Default for Install {
    fn default() -> Self {
        Install {
            namespace: "floe-guard".into(),
            secret: "floe-guard-tls".into(),
            ca_secret: "floe-guard-ca".into(),
            webhook: "floe-guard".into(),
            prune: false,
        }
    }
}

/// One rendered object with the comment that says why it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Why the object exists (comment lines, without `#`).
    pub why: &'static str,
    /// The object.
    pub object: Value,
}

/// A multi-document YAML stream of `docs`, each preceded by its comment,
/// under a header that names the command that wrote it.
pub fn to_yaml(header: &str, docs: &[Doc]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    for d in docs {
        out.push_str("---\n");
        for line in d.why.lines() {
            out.push_str(&format!("# {}\n", line.trim()));
        }
        out.push_str(&serde_yaml_ng::to_string(&d.object)?);
    }
    Ok(out)
}

pub(crate) fn labels(component: &str) -> Value {
    json!({"app.kubernetes.io/name": "floe-guard", "app.kubernetes.io/component": component})
}

/// The managed namespaces, labelled as `bootstrap` labels them, so that
/// they, and the Roles inside them, exist before `bootstrap` runs.
pub fn namespaces(cfg: &Config) -> Vec<Doc> {
    bootstrap::desired_namespaces(cfg)
        .into_iter()
        .map(|ns| Doc {
            why: "A managed namespace with its Pod Security and floe labels.",
            object: json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns.metadata.name, "labels": ns.metadata.labels},
            }),
        })
        .collect()
}

fn rule(group: &str, resources: &[&str], names: &[&str], verbs: &[&str]) -> Value {
    let mut r = json!({"apiGroups": [group], "resources": resources, "verbs": verbs});
    if !names.is_empty() {
        r["resourceNames"] = json!(names);
    }
    r
}

fn role(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    component: &str,
    rules: Vec<Value>,
) -> Value {
    let mut meta = json!({"name": name, "labels": labels(component)});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules})
}

fn binding(
    kind: &str,
    role_kind: &str,
    name: &str,
    namespace: Option<&str>,
    component: &str,
    sa_namespace: &str,
) -> Value {
    let mut meta = json!({"name": name, "labels": labels(component)});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": sa_namespace}],
    })
}

/// The RBAC of the certs Job (`certs install`) and the bootstrap Job, and
/// the read-only ClusterRole for the operators of `network audit`.
pub fn rbac(cfg: &Config, install: &Install) -> Vec<Doc> {
    let ns = install.namespace.as_str();
    let (certs, boot) = ("floe-guard-certs", "floe-guard-bootstrap");
    let mut docs = vec![
        Doc {
            why: "certs install: read, and replace when renewing or rotating, the serving Secret and the\n\
                  CA Secret (no other Secret); create them on first install (create cannot be\n\
                  restricted by name).",
            object: role(
                "Role",
                certs,
                Some(ns),
                "certs",
                vec![
                    rule(
                        "",
                        &["secrets"],
                        &[&install.secret, &install.ca_secret],
                        &["get", "update"],
                    ),
                    rule("", &["secrets"], &[], &["create"]),
                ],
            ),
        },
        Doc {
            why: "Binds the Role above to the certs Job's ServiceAccount.",
            object: binding("RoleBinding", "Role", certs, Some(ns), "certs", ns),
        },
        Doc {
            why: "certs install: read and patch caBundle of floe-guard's own two webhook configurations,\n\
                  no other webhook.",
            object: role(
                "ClusterRole",
                certs,
                None,
                "certs",
                vec![rule(
                    "admissionregistration.k8s.io",
                    &[
                        "mutatingwebhookconfigurations",
                        "validatingwebhookconfigurations",
                    ],
                    &[&install.webhook],
                    &["get", "patch"],
                )],
            ),
        },
        Doc {
            why: "Binds the ClusterRole above to the certs Job's ServiceAccount.",
            object: binding(
                "ClusterRoleBinding",
                "ClusterRole",
                certs,
                None,
                "certs",
                ns,
            ),
        },
    ];
    let managed: Vec<String> = cfg
        .managed_namespaces()
        .into_iter()
        .map(|m| m.name)
        .collect();
    let names: Vec<&str> = managed.iter().map(String::as_str).collect();
    let np = &cfg.security.network_policies;
    let mut cluster_rules = vec![rule("", &["namespaces"], &names, &["get", "patch"])];
    if np.enabled && np.cluster_cidrs.is_none() {
        cluster_rules.push(rule("", &["nodes"], &[], &["list"]));
        cluster_rules.push(rule("networking.k8s.io", &["servicecidrs"], &[], &["list"]));
    }
    docs.push(Doc {
        why: "bootstrap: read and label the managed namespaces only (server-side apply is a patch; the\n\
              namespaces exist, created by the manifests, so no create). Without cluster_cidrs in the\n\
              config, list the nodes (pod CIDRs) and ServiceCIDRs (service CIDRs), read-only.",
        object: role("ClusterRole", boot, None, "bootstrap", cluster_rules),
    });
    docs.push(Doc {
        why: "Binds the ClusterRole above to the bootstrap Job's ServiceAccount.",
        object: binding(
            "ClusterRoleBinding",
            "ClusterRole",
            boot,
            None,
            "bootstrap",
            ns,
        ),
    });
    if np.enabled && np.api_server.is_none() {
        docs.push(Doc {
            why: "bootstrap, without api_server in the config: list the EndpointSlices of the\n\
                  kubernetes Service (by label, hence list) for the API server egress; read-only, in\n\
                  default only.",
            object: role("Role", boot, Some("default"), "bootstrap", vec![rule(
                "discovery.k8s.io",
                &["endpointslices"],
                &[],
                &["list"],
            )]),
        });
        docs.push(Doc {
            why: "Binds the Role above to the bootstrap Job's ServiceAccount.",
            object: binding(
                "RoleBinding",
                "Role",
                boot,
                Some("default"),
                "bootstrap",
                ns,
            ),
        });
    }
    let mut np_verbs = vec!["get", "create", "patch"];
    if install.prune {
        np_verbs.extend(["list", "delete"]);
    }
    for m in &names {
        let mut rules = Vec::new();
        if np.enabled {
            rules.push(rule(
                "networking.k8s.io",
                &["networkpolicies"],
                &[],
                &np_verbs,
            ));
        }
        rules.push(rule("events.k8s.io", &["events"], &[], &["create"]));
        docs.push(Doc {
            why: "bootstrap: install this namespace's generated NetworkPolicies (server-side apply: get,\n\
                  create, patch; with --prune also list and delete the stale floe-managed ones), and\n\
                  record an Event for each object it changes here (the audit trail; create only).",
            object: role("Role", boot, Some(m), "bootstrap", rules),
        });
        docs.push(Doc {
            why: "Binds the Role above to the bootstrap Job's ServiceAccount.",
            object: binding("RoleBinding", "Role", boot, Some(m), "bootstrap", ns),
        });
    }
    docs.push(Doc {
        why: "network audit / diff / check-cni: read-only, cluster-wide (they report on every namespace;\n\
              audit also compares floe-guard's pod webhook selector with the config).\n\
              Bound to nobody: bind it to the people or the CI identity that run these commands.",
        object: role("ClusterRole", "floe-guard-network-reader", None, "network-audit", vec![
            rule("", &["namespaces", "pods"], &[], &["get", "list"]),
            rule("networking.k8s.io", &["networkpolicies"], &[], &["get", "list"]),
            rule("apps", &["daemonsets"], &[], &["list"]),
            rule(
                "admissionregistration.k8s.io",
                &["mutatingwebhookconfigurations"],
                &[&install.webhook],
                &["get"],
            ),
        ]),
    });
    docs.push(Doc {
        why: "network audit --apply-reports: write floe-guard's policy reports (openreports.io and\n\
              wgpolicyk8s.io), in any audited namespace: create and list (which RBAC cannot restrict\n\
              by name), patch and delete only the reports named floe-guard-audit. Bound to nobody.",
        object: role("ClusterRole", "floe-guard-report-writer", None, "network-audit", {
            let kinds = [
                ("openreports.io", ["reports", "clusterreports"]),
                ("wgpolicyk8s.io", ["policyreports", "clusterpolicyreports"]),
            ];
            let mut rules = Vec::new();
            for (group, resources) in kinds {
                rules.push(rule(group, &resources, &[], &["create", "list"]));
                rules.push(rule(group, &resources, &[REPORT_NAME], &["patch", "delete"]));
            }
            rules
        }),
    });
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        Config::from_yaml(yaml, "manifest.yaml").unwrap()
    }

    fn find<'a>(docs: &'a [Doc], kind: &str, name: &str, ns: Option<&str>) -> Option<&'a Value> {
        docs.iter().map(|d| &d.object).find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str() == ns
        })
    }

    #[test]
    fn namespace_rights_name_exactly_the_managed_namespaces() {
        let docs = rbac(&cfg("domains: [sales]\n"), &Install::default());
        let cr = find(&docs, "ClusterRole", "floe-guard-bootstrap", None).unwrap();
        assert_eq!(
            cr["rules"][0],
            json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch"],
                   "resourceNames": ["floe-platform", "floe-jobs", "floe-sales-domain"]})
        );
        for ns in ["floe-platform", "floe-jobs", "floe-sales-domain"] {
            let r = find(&docs, "Role", "floe-guard-bootstrap", Some(ns)).unwrap();
            assert_eq!(r["rules"][0]["verbs"], json!(["get", "create", "patch"]));
            assert!(find(&docs, "RoleBinding", "floe-guard-bootstrap", Some(ns)).is_some());
        }
        // No right in any other namespace, and no delete without --prune.
        let roles = docs.iter().filter(|d| d.object["kind"] == "Role").count();
        assert_eq!(roles, 1 + 1 + 3, "certs, default, three managed");
        assert!(
            !serde_json::to_string(&docs.iter().map(|d| &d.object).collect::<Vec<_>>())
                .unwrap()
                .contains("\"*\"")
        );
    }

    #[test]
    fn prune_adds_list_and_delete_in_managed_namespaces_only() {
        let install = Install {
            prune: true,
            ..Install::default()
        };
        let docs = rbac(&Config::default(), &install);
        let r = find(&docs, "Role", "floe-guard-bootstrap", Some("floe-jobs")).unwrap();
        assert_eq!(
            r["rules"][0]["verbs"],
            json!(["get", "create", "patch", "list", "delete"])
        );
        let cluster: Vec<&Value> = docs
            .iter()
            .map(|d| &d.object)
            .filter(|o| o["kind"] == "ClusterRole")
            .collect();
        // Cluster-wide delete only of floe-guard's own policy reports.
        for cr in cluster {
            for rule in cr["rules"].as_array().unwrap() {
                let reports = rule["apiGroups"] == json!(["openreports.io"])
                    || rule["apiGroups"] == json!(["wgpolicyk8s.io"]);
                assert!(
                    reports || !rule["verbs"].as_array().unwrap().contains(&json!("delete")),
                    "{cr}"
                );
            }
        }
    }

    #[test]
    fn discovery_reads_go_away_when_the_config_gives_the_facts() {
        let given = cfg(
            "security:\n  network_policies:\n    cluster_cidrs: [10.244.0.0/16]\n    api_server: {cidrs: [172.18.0.2/32], ports: [6443]}\n",
        );
        let docs = rbac(&given, &Install::default());
        let cr = find(&docs, "ClusterRole", "floe-guard-bootstrap", None).unwrap();
        assert_eq!(cr["rules"].as_array().unwrap().len(), 1);
        assert!(find(&docs, "Role", "floe-guard-bootstrap", Some("default")).is_none());
        let discovered = rbac(&Config::default(), &Install::default());
        let cr = find(&discovered, "ClusterRole", "floe-guard-bootstrap", None).unwrap();
        assert_eq!(cr["rules"][1]["resources"], json!(["nodes"]));
        assert_eq!(cr["rules"][1]["verbs"], json!(["list"]));
        // Without NetworkPolicies, no NetworkPolicy right at all.
        let off = rbac(
            &cfg("security:\n  network_policies:\n    enabled: false\n"),
            &Install::default(),
        );
        let jobs = find(&off, "Role", "floe-guard-bootstrap", Some("floe-jobs")).unwrap();
        assert_eq!(
            jobs["rules"],
            json!([{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}])
        );
    }

    #[test]
    fn namespaces_carry_the_labels_bootstrap_applies() {
        let docs = namespaces(&Config::default());
        let names: Vec<&Value> = docs.iter().map(|d| &d.object["metadata"]["name"]).collect();
        assert_eq!(names, [&json!("floe-platform"), &json!("floe-jobs")]);
        assert_eq!(
            docs[1].object["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        let yaml = to_yaml("written by a test\n\nsecond line", &docs).unwrap();
        assert!(
            yaml.starts_with("# written by a test\n#\n# second line\n---\n# A managed namespace"),
            "{yaml}"
        );
    }
}
