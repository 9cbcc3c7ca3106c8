//! An in-process fake Kubernetes API server for the cluster commands' tests:
//! plain HTTP on 127.0.0.1, objects in memory, the few endpoints floe-guard
//! uses, with responses shaped like the real API server's (typed `…List`
//! objects with `metadata.resourceVersion`, `Status` objects for errors,
//! server-side apply with field ownership, conflicts, `force` and
//! `dryRun=All`, server defaults), and injectable failures.
//!
//! Also [`Target`]: the same scenarios against a real cluster when
//! `FLOE_GUARD_TEST_KUBECONFIG` names one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A resource the fake serves.
struct Kind {
    plural: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

const KINDS: &[Kind] = &[
    Kind {
        plural: "namespaces",
        group: "",
        version: "v1",
        kind: "Namespace",
    },
    Kind {
        plural: "nodes",
        group: "",
        version: "v1",
        kind: "Node",
    },
    Kind {
        plural: "pods",
        group: "",
        version: "v1",
        kind: "Pod",
    },
    Kind {
        plural: "services",
        group: "",
        version: "v1",
        kind: "Service",
    },
    Kind {
        plural: "daemonsets",
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
    },
    Kind {
        plural: "endpointslices",
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
    },
    Kind {
        plural: "networkpolicies",
        group: "networking.k8s.io",
        version: "v1",
        kind: "NetworkPolicy",
    },
    Kind {
        plural: "servicecidrs",
        group: "networking.k8s.io",
        version: "v1",
        kind: "ServiceCIDR",
    },
    Kind {
        plural: "reports",
        group: "openreports.io",
        version: "v1alpha1",
        kind: "Report",
    },
    Kind {
        plural: "clusterreports",
        group: "openreports.io",
        version: "v1alpha1",
        kind: "ClusterReport",
    },
    Kind {
        plural: "policyreports",
        group: "wgpolicyk8s.io",
        version: "v1alpha2",
        kind: "PolicyReport",
    },
    Kind {
        plural: "clusterpolicyreports",
        group: "wgpolicyk8s.io",
        version: "v1alpha2",
        kind: "ClusterPolicyReport",
    },
    Kind {
        plural: "mutatingwebhookconfigurations",
        group: "admissionregistration.k8s.io",
        version: "v1",
        kind: "MutatingWebhookConfiguration",
    },
    Kind {
        plural: "events",
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
    },
];

/// The 404 a real API server answers for a path it does not serve (an API
/// group version, or a resource, absent from this Kubernetes version), as
/// recorded from kube-apiserver.
const NOT_SERVED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;

fn not_served() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        NOT_SERVED,
    )
        .into_response()
}

impl Kind {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.into()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `networkpolicies.networking.k8s.io`, as messages name it.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.into()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn of(kind: &str) -> &'static Kind {
        KINDS
            .iter()
            .find(|k| k.kind == kind)
            .unwrap_or_else(|| panic!("fake: unknown kind {kind}"))
    }
}

/// A stored object and who owns which of its fields.
#[derive(Clone)]
struct Stored {
    obj: Value,
    /// Field path (`.metadata.labels.x`, `.spec`) → managers.
    owners: BTreeMap<String, BTreeSet<String>>,
}

type Key = (&'static str, String, String);

/// A failure to inject: the next `times` requests whose method and path
/// match answer `status` with a real `Status` body.
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP method (`GET`, `PATCH`, `DELETE`), any when `None`.
    pub method: Option<&'static str>,
    /// Substring of the request path.
    pub path: String,
    /// The status code: 401, 403, 409, 429, 500 or 503.
    pub status: u16,
    /// How many requests fail.
    pub times: usize,
}

#[derive(Default)]
struct State {
    /// The Kubernetes minor version served (ServiceCIDR from 33 on).
    minor: u32,
    objects: BTreeMap<Key, Stored>,
    rv: u64,
    uid: u64,
    faults: Vec<Fault>,
    log: Vec<String>,
    /// When set, every request is authorized as this ServiceAccount.
    rbac: Option<Rbac>,
}

/// RBAC enforcement: the ServiceAccount every request runs as, and the
/// Roles, ClusterRoles and bindings that grant it rights.
struct Rbac {
    /// `(namespace, name)` of the ServiceAccount.
    account: (String, String),
    /// Role, ClusterRole, RoleBinding and ClusterRoleBinding objects.
    objects: Vec<Value>,
}

impl Rbac {
    fn user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.account.0, self.account.1
        )
    }

    fn binds_account(&self, binding: &Value) -> bool {
        binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == self.account.1.as_str()
                    && s["namespace"] == self.account.0.as_str()
            })
    }

    fn role(&self, kind: &str, name: &str, namespace: Option<&str>) -> Option<&Value> {
        self.objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str() == namespace
        })
    }

    /// The rules that apply to a request in `namespace` (None: cluster scope),
    /// as the RBAC authorizer gathers them.
    fn rules(&self, namespace: Option<&str>) -> Vec<&Value> {
        let mut rules = Vec::new();
        for b in self.objects.iter().filter(|b| self.binds_account(b)) {
            let (rk, rn) = (
                b["roleRef"]["kind"].as_str().unwrap_or_default(),
                b["roleRef"]["name"].as_str().unwrap_or_default(),
            );
            let role = match (b["kind"].as_str(), rk) {
                (Some("ClusterRoleBinding"), "ClusterRole") => self.role(rk, rn, None),
                (Some("RoleBinding"), _) if b["metadata"]["namespace"].as_str() == namespace => {
                    match rk {
                        "Role" => self.role(rk, rn, namespace),
                        _ => self.role(rk, rn, None),
                    }
                }
                _ => None,
            };
            rules.extend(
                role.and_then(|r| r["rules"].as_array())
                    .into_iter()
                    .flatten(),
            );
        }
        rules
    }

    fn allows(&self, verb: &str, kind: &Kind, namespace: Option<&str>, name: &str) -> bool {
        let has = |v: &Value, want: &str| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|x| x == want || x == "*"))
        };
        self.rules(namespace).into_iter().any(|r| {
            has(&r["apiGroups"], kind.group)
                && has(&r["resources"], kind.plural)
                && has(&r["verbs"], verb)
                && r["resourceNames"].as_array().is_none_or(|names| {
                    names.is_empty() || (!name.is_empty() && names.iter().any(|n| n == name))
                })
        })
    }

    /// The 403 the real API server returns when the rules do not allow it.
    fn check(&self, verb: &str, t: &Target, name: &str) -> Option<Response> {
        // A request on a Namespace object is authorized in that namespace.
        let namespace = match (t.kind.kind, name) {
            ("Namespace", n) if !n.is_empty() => Some(n),
            _ => t.namespace.as_deref(),
        };
        if self.allows(verb, t.kind, namespace, name) {
            return None;
        }
        let subject = match name {
            "" => t.kind.qualified(),
            n => format!("{} \"{n}\"", t.kind.qualified()),
        };
        let scope = namespace.map_or_else(
            || "at the cluster scope".to_owned(),
            |ns| format!("in the namespace \"{ns}\""),
        );
        Some(status(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                self.user(),
                t.kind.plural,
                t.kind.group
            ),
            Some(json!({"name": name, "group": t.kind.group, "kind": t.kind.plural})),
        ))
    }
}

/// The running fake API server.
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    (
        StatusCode::from_u16(code).expect("valid code"),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(code: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(code).expect("valid code"),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A parsed request path.
struct Target {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let (group, version, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("", "v1", rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut it = rest.splitn(3, '/');
        (it.next()?, it.next()?, it.next()?)
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (namespace, plural, name) = match segs.as_slice() {
        ["namespaces", ns, plural, rest @ ..] => (
            Some(ns.to_string()),
            *plural,
            rest.first().map(|s| s.to_string()),
        ),
        [plural, rest @ ..] => (None, *plural, rest.first().map(|s| s.to_string())),
        [] => return None,
    };
    let kind = KINDS
        .iter()
        .find(|k| k.plural == plural && k.group == group && k.version == version)?;
    Some(Target {
        kind,
        namespace,
        name,
    })
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equality-based label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`.
fn selector_matches(selector: &str, labels: &Map<String, Value>) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|req| {
        let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
        if let Some((k, v)) = req.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
            get(k) == Some(v.trim())
        } else if let Some(k) = req.strip_prefix('!') {
            get(k).is_none()
        } else {
            get(req).is_some()
        }
    })
}

/// The fields an applied configuration sets, with their values.
fn applied_fields(obj: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for map in ["labels", "annotations"] {
        if let Some(m) = obj
            .pointer(&format!("/metadata/{map}"))
            .and_then(Value::as_object)
        {
            for (k, v) in m {
                out.insert(format!(".metadata.{map}.{k}"), v.clone());
            }
        }
    }
    if let Some(o) = obj.as_object() {
        for (k, v) in o {
            if !["apiVersion", "kind", "metadata", "status"].contains(&k.as_str()) {
                out.insert(format!(".{k}"), v.clone());
            }
        }
    }
    out
}

fn field_value(obj: &Value, path: &str) -> Option<Value> {
    if let Some(rest) = path.strip_prefix(".metadata.labels.") {
        return obj
            .pointer("/metadata/labels")
            .and_then(|m| m.get(rest))
            .cloned();
    }
    if let Some(rest) = path.strip_prefix(".metadata.annotations.") {
        return obj
            .pointer("/metadata/annotations")
            .and_then(|m| m.get(rest))
            .cloned();
    }
    obj.get(path.trim_start_matches('.')).cloned()
}

fn set_field(obj: &mut Value, path: &str, value: Option<Value>) {
    let (target, key) = if let Some(rest) = path.strip_prefix(".metadata.labels.") {
        ("labels", rest)
    } else if let Some(rest) = path.strip_prefix(".metadata.annotations.") {
        ("annotations", rest)
    } else {
        ("", path.trim_start_matches('.'))
    };
    let map = if target.is_empty() {
        obj.as_object_mut().expect("object")
    } else {
        let meta = obj["metadata"].as_object_mut().expect("metadata");
        meta.entry(target)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("map")
    };
    match value {
        Some(v) => {
            map.insert(key.into(), v);
        }
        None => {
            map.remove(key);
        }
    }
    if !target.is_empty()
        && obj["metadata"][target]
            .as_object()
            .is_some_and(Map::is_empty)
    {
        obj["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove(target);
    }
}

/// What the real API server fills in.
fn defaults(kind: &Kind, obj: &mut Value) {
    match kind.kind {
        "Namespace" => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]
                .as_object_mut()
                .expect("metadata")
                .entry("labels")
                .or_insert_with(|| json!({}))["kubernetes.io/metadata.name"] = name;
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        "NetworkPolicy" => {
            let spec = obj
                .as_object_mut()
                .expect("object")
                .entry("spec")
                .or_insert_with(|| json!({}));
            let has_egress = spec
                .get("egress")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty());
            if spec.get("policyTypes").is_none() {
                spec["policyTypes"] = if has_egress {
                    json!(["Ingress", "Egress"])
                } else {
                    json!(["Ingress"])
                };
            }
            if spec.get("podSelector").is_none() {
                spec["podSelector"] = json!({});
            }
            for dir in ["ingress", "egress"] {
                for rule in spec
                    .get_mut(dir)
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    for port in rule
                        .get_mut("ports")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        port.as_object_mut()
                            .expect("port")
                            .entry("protocol")
                            .or_insert_with(|| json!("TCP"));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Without what every write changes.
fn content(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
        m.remove("generation");
    }
    v
}

fn managed_fields(kind: &Kind, owners: &BTreeMap<String, BTreeSet<String>>) -> Value {
    let mut per: BTreeMap<&str, Value> = BTreeMap::new();
    for (path, managers) in owners {
        for m in managers {
            let fields = per.entry(m).or_insert_with(|| json!({}));
            let mut at = fields;
            let parts: Vec<String> = if let Some(rest) = path.strip_prefix(".metadata.") {
                let (map, key) = rest.split_once('.').expect("map.key");
                vec!["f:metadata".into(), format!("f:{map}"), format!("f:{key}")]
            } else {
                vec![format!("f:{}", path.trim_start_matches('.'))]
            };
            for p in parts {
                at = at
                    .as_object_mut()
                    .expect("object")
                    .entry(p)
                    .or_insert_with(|| json!({}));
            }
        }
    }
    Value::Array(
        per.into_iter()
            .map(|(m, f)| {
                json!({"manager": m, "operation": "Apply", "apiVersion": kind.api_version(),
                       "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": f})
            })
            .collect(),
    )
}

impl State {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn render(&self, kind: &Kind, s: &Stored) -> Value {
        let mut obj = s.obj.clone();
        obj["metadata"]["managedFields"] = managed_fields(kind, &s.owners);
        obj
    }

    fn list(&self, t: &Target, q: &BTreeMap<String, String>) -> Response {
        let selector = q.get("labelSelector").cloned().unwrap_or_default();
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((plural, ns, _), _)| {
                *plural == t.kind.plural && t.namespace.as_ref().is_none_or(|want| want == ns)
            })
            .filter(|(_, s)| {
                let empty = Map::new();
                let labels = s
                    .obj
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                selector_matches(&selector, labels)
            })
            .map(|(_, s)| {
                let mut v = self.render(t.kind, s);
                let o = v.as_object_mut().expect("object");
                o.remove("apiVersion");
                o.remove("kind");
                v
            })
            .collect();
        ok(
            200,
            &json!({"kind": format!("{}List", t.kind.kind), "apiVersion": t.kind.api_version(),
                    "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
        )
    }

    fn not_found(t: &Target, name: &str) -> Response {
        status(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", t.kind.qualified()),
            Some(json!({"name": name, "group": t.kind.group, "kind": t.kind.plural})),
        )
    }

    fn key(t: &Target, name: &str) -> Key {
        (
            t.kind.plural,
            t.namespace.clone().unwrap_or_default(),
            name.to_string(),
        )
    }

    fn namespace_missing(&self, t: &Target) -> Option<Response> {
        let ns = t.namespace.as_ref()?;
        (!self
            .objects
            .contains_key(&("namespaces", String::new(), ns.clone())))
        .then(|| {
            status(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
                Some(json!({"name": ns, "kind": "namespaces"})),
            )
        })
    }

    fn apply(
        &mut self,
        t: &Target,
        name: &str,
        q: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Response {
        let Some(manager) = q.get("fieldManager").cloned() else {
            return status(
                400,
                "BadRequest",
                "PATCH requests with an apply patch must set fieldManager".into(),
                None,
            );
        };
        let force = q.get("force").is_some_and(|f| f == "true");
        let dry = q.get("dryRun").is_some_and(|d| d == "All");
        let applied: Value = match serde_json::from_slice(body)
            .or_else(|_| serde_yaml_ng::from_slice::<Value>(body).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => return status(400, "BadRequest", format!("error decoding YAML: {e}"), None),
        };
        if applied.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return status(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL".into(),
                None,
            );
        }
        if let Some(r) = self.namespace_missing(t) {
            return r;
        }
        let key = Self::key(t, name);
        let prior = self.objects.get(&key).cloned();
        let fields = applied_fields(&applied);
        let mut next = prior.clone().unwrap_or_else(|| {
            let mut meta = json!({"name": name});
            if let Some(ns) = &t.namespace {
                meta["namespace"] = json!(ns);
            }
            Stored {
                obj: json!({"apiVersion": t.kind.api_version(), "kind": t.kind.kind, "metadata": meta}),
                owners: BTreeMap::new(),
            }
        });
        // Conflicts: a field another manager owns, applied with another value.
        let mut conflicts = Vec::new();
        for (path, value) in &fields {
            let others: Vec<&String> = next
                .owners
                .get(path)
                .into_iter()
                .flatten()
                .filter(|m| **m != manager)
                .collect();
            if !others.is_empty() && field_value(&next.obj, path).as_ref() != Some(value) && !force
            {
                for m in others {
                    conflicts.push((m.clone(), path.clone()));
                }
            }
        }
        if !conflicts.is_empty() {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {}", t.kind.api_version()), "field": p}))
                .collect();
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\" using {}: {p}", t.kind.api_version()))
                .collect();
            return status(
                409,
                "Conflict",
                format!(
                    "Apply failed with {} conflict{}: {}",
                    conflicts.len(),
                    if conflicts.len() == 1 { "" } else { "s" },
                    list.join("\n")
                ),
                Some(
                    json!({"name": name, "group": t.kind.group, "kind": t.kind.plural, "causes": causes}),
                ),
            );
        }
        // Fields this manager set before and no longer applies are removed
        // when nobody else owns them.
        let before: Vec<String> = next
            .owners
            .iter()
            .filter(|(p, ms)| ms.contains(&manager) && !fields.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        for p in before {
            let ms = next.owners.get_mut(&p).expect("owned");
            ms.remove(&manager);
            if ms.is_empty() {
                next.owners.remove(&p);
                set_field(&mut next.obj, &p, None);
            }
        }
        for (path, value) in &fields {
            set_field(&mut next.obj, path, Some(value.clone()));
            let ms = next.owners.entry(path.clone()).or_default();
            if force {
                ms.clear();
            }
            ms.insert(manager.clone());
        }
        defaults(t.kind, &mut next.obj);
        let created = prior.is_none();
        let changed = prior
            .as_ref()
            .is_none_or(|p| content(&p.obj) != content(&next.obj) || p.owners != next.owners);
        if created {
            self.uid += 1;
            let uid = format!("00000000-0000-0000-0000-{:012}", self.uid);
            let meta = next.obj["metadata"].as_object_mut().expect("metadata");
            meta.insert("uid".into(), json!(uid));
            meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
        }
        if t.kind.kind != "Namespace" {
            let spec_changed = prior
                .as_ref()
                .is_none_or(|p| p.obj.get("spec") != next.obj.get("spec"));
            let generation = prior
                .as_ref()
                .and_then(|p| p.obj.pointer("/metadata/generation")?.as_i64())
                .unwrap_or(0);
            next.obj["metadata"]["generation"] = json!(if spec_changed {
                generation + 1
            } else {
                generation
            });
        }
        if changed && !dry {
            let rv = self.next_rv();
            next.obj["metadata"]["resourceVersion"] = json!(rv);
            self.objects.insert(key, next.clone());
        }
        let out = if changed {
            next
        } else {
            prior.expect("unchanged implies prior")
        };
        ok(if created { 201 } else { 200 }, &self.render(t.kind, &out))
    }

    /// Whether this version serves the kind.
    fn served(&self, kind: &Kind) -> bool {
        kind.kind != "ServiceCIDR" || self.minor >= 33
    }

    /// `/apis` and `/apis/{group}/{version}` (legacy, non-aggregated
    /// discovery), shaped as kube-apiserver answers them.
    fn discovery(&self, path: &str) -> Option<Response> {
        let served: Vec<&Kind> = KINDS
            .iter()
            .filter(|k| !k.group.is_empty() && self.served(k))
            .collect();
        if path == "/apis" {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for k in &served {
                groups.entry(k.group).or_default().push(k.version);
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(g, v)| {
                    let gv = format!("{g}/{}", v[0]);
                    json!({"name": g, "versions": [{"groupVersion": gv, "version": v[0]}],
                           "preferredVersion": {"groupVersion": gv, "version": v[0]}})
                })
                .collect();
            return Some(ok(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            ));
        }
        let gv = path.strip_prefix("/apis/")?.trim_end_matches('/');
        if gv.matches('/').count() != 1 {
            return None;
        }
        let resources: Vec<Value> = served
            .iter()
            .filter(|k| k.api_version() == gv)
            .map(|k| {
                json!({"name": k.plural, "singularName": "", "namespaced": !matches!(k.kind, "ServiceCIDR" | "MutatingWebhookConfiguration"),
                       "kind": k.kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
            })
            .collect();
        Some(if resources.is_empty() {
            not_served()
        } else {
            ok(
                200,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            )
        })
    }

    /// POST: creates an object (`generateName` honoured), as `kubectl
    /// create` or an Event recorder does.
    fn create(&mut self, t: &Target, body: &[u8]) -> Response {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "invalid JSON body".into(), None);
        };
        if let Some(r) = self.namespace_missing(t) {
            return r;
        }
        let name = match obj.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => {
                let Some(prefix) = obj
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                else {
                    return status(
                        422,
                        "Invalid",
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            t.kind.kind
                        ),
                        None,
                    );
                };
                self.uid += 1;
                format!("{prefix}{:05x}", self.uid)
            }
        };
        let key = Self::key(t, &name);
        if self.objects.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.kind.qualified()),
                Some(json!({"name": name, "group": t.kind.group, "kind": t.kind.plural})),
            );
        }
        obj["apiVersion"] = json!(t.kind.api_version());
        obj["kind"] = json!(t.kind.kind);
        obj["metadata"]["name"] = json!(name);
        if let Some(ns) = &t.namespace {
            obj["metadata"]["namespace"] = json!(ns);
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        self.objects.insert(
            key,
            Stored {
                obj: obj.clone(),
                owners: BTreeMap::new(),
            },
        );
        ok(201, &obj)
    }

    fn delete(&mut self, t: &Target, name: &str, q: &BTreeMap<String, String>) -> Response {
        let key = Self::key(t, name);
        let dry = q.get("dryRun").is_some_and(|d| d == "All");
        let Some(s) = self.objects.get(&key).cloned() else {
            return Self::not_found(t, name);
        };
        if !dry {
            self.objects.remove(&key);
            self.rv += 1;
        }
        ok(200, &self.render(t.kind, &s))
    }

    fn fault(&mut self, method: &Method, t: Option<&Target>, path: &str) -> Option<Response> {
        let i = self.faults.iter().position(|f| {
            f.times > 0 && f.method.is_none_or(|m| m == method.as_str()) && path.contains(&f.path)
        })?;
        self.faults[i].times -= 1;
        let f = self.faults[i].clone();
        let (plural, group) = t.map_or(("", ""), |t| (t.kind.plural, t.kind.group));
        let name = t.and_then(|t| t.name.clone()).unwrap_or_default();
        let verb = match (method.as_str(), &name) {
            ("GET", n) if n.is_empty() => "list",
            ("GET", _) => "get",
            (m, _) => {
                if m == "PATCH" {
                    "patch"
                } else {
                    "delete"
                }
            }
        };
        Some(match f.status {
            401 => status(401, "Unauthorized", "Unauthorized".into(), None),
            403 => {
                let scope = t.and_then(|t| t.namespace.clone()).map_or_else(
                    || "at the cluster scope".into(),
                    |ns| format!("in the namespace \"{ns}\""),
                );
                let subject = if name.is_empty() {
                    plural.to_string()
                } else {
                    format!("{plural} \"{name}\"")
                };
                status(
                    403,
                    "Forbidden",
                    format!(
                        "{subject} is forbidden: User \"system:serviceaccount:floe-guard:floe-guard-bootstrap\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}"
                    ),
                    Some(json!({"name": name, "group": group, "kind": plural})),
                )
            }
            409 => status(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
                Some(json!({"name": name, "group": group, "kind": plural})),
            ),
            429 => status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.".into(),
                Some(json!({"retryAfterSeconds": 0})),
            ),
            503 => status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request".into(),
                None,
            ),
            code => status(
                code,
                "InternalError",
                "Internal error occurred: etcdserver: request timed out".into(),
                None,
            ),
        })
    }

    fn handle(&mut self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let path = uri.path().to_string();
        self.log.push(format!(
            "{method} {path}{}",
            uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        ));
        let target = parse_path(&path).filter(|t| self.served(t.kind));
        if let Some(r) = self.fault(&method, target.as_ref(), &path) {
            return r;
        }
        if method == Method::GET
            && let Some(r) = self.discovery(&path)
        {
            return r;
        }
        let Some(t) = target else {
            return not_served();
        };
        let q = query(&uri);
        if let Some(rbac) = &self.rbac {
            let name = t.name.clone().unwrap_or_default();
            let verb = match (&method, name.is_empty()) {
                (&Method::GET, true) => "list",
                (&Method::GET, false) => "get",
                (&Method::PATCH, _) => "patch",
                (&Method::DELETE, _) => "delete",
                _ => "create",
            };
            if let Some(denied) = rbac.check(verb, &t, &name) {
                return denied;
            }
            // Server-side apply of an absent object creates it: that needs
            // `create` too.
            let absent = !self.objects.contains_key(&Self::key(&t, &name));
            if verb == "patch"
                && absent
                && let Some(denied) = rbac.check("create", &t, &name)
            {
                return denied;
            }
        }
        match (method, t.name.clone()) {
            (Method::GET, None) => self.list(&t, &q),
            (Method::GET, Some(name)) => match self.objects.get(&Self::key(&t, &name)) {
                Some(s) => ok(200, &self.render(t.kind, s)),
                None => Self::not_found(&t, &name),
            },
            (Method::PATCH, Some(name)) => {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !ct.starts_with("application/apply-patch+yaml") {
                    return status(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml (got {ct})"
                        ),
                        None,
                    );
                }
                self.apply(&t, &name, &q, &body)
            }
            (Method::DELETE, Some(name)) => self.delete(&t, &name, &q),
            (Method::POST, None) => self.create(&t, &body),
            (m, _) => status(
                405,
                "MethodNotAllowed",
                format!("{m} is not supported by the fake API server"),
                None,
            ),
        }
    }
}

impl FakeApiServer {
    /// Starts a server on 127.0.0.1 with an ephemeral port, in a thread of
    /// its own, and writes a kubeconfig pointing at it.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            rv: 1000,
            minor: 37,
            ..Default::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let state = shared.clone();
                        async move {
                            state
                                .lock()
                                .expect("state")
                                .handle(method, uri, headers, body)
                        }
                    },
                );
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: fake\n  user:\n    token: fake-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n"
            ),
        )
        .expect("write kubeconfig");
        FakeApiServer {
            state,
            _dir: dir,
            kubeconfig,
        }
    }

    /// A kubeconfig pointing at this server.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Stores an object directly (a typed object or JSON with `kind`), as if
    /// created by someone else (field manager `kubectl`).
    pub fn insert(&self, obj: Value) {
        let kind = Kind::of(obj["kind"].as_str().expect("kind"));
        let mut st = self.state.lock().expect("state");
        let mut obj = obj;
        obj["apiVersion"] = json!(kind.api_version());
        defaults(kind, &mut obj);
        let rv = st.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .expect("name")
            .to_string();
        let owners = applied_fields(&obj)
            .into_keys()
            .map(|p| (p, BTreeSet::from(["kubectl".to_string()])))
            .collect();
        st.objects
            .insert((kind.plural, ns, name), Stored { obj, owners });
    }

    /// Stores every item of a `v1 List` (as `kubectl get -o json` prints it).
    pub fn insert_list(&self, list: &Value) {
        for item in list["items"].as_array().expect("items") {
            self.insert(item.clone());
        }
    }

    /// Removes an object, as if deleted by someone else.
    pub fn remove(&self, kind: &str, namespace: Option<&str>, name: &str) {
        let k = Kind::of(kind);
        let mut st = self.state.lock().expect("state");
        st.objects
            .remove(&(
                k.plural,
                namespace.unwrap_or_default().to_string(),
                name.to_string(),
            ))
            .expect("object to remove");
        st.rv += 1;
    }

    /// An object as stored, if any.
    pub fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let k = Kind::of(kind);
        let st = self.state.lock().expect("state");
        st.objects
            .get(&(
                k.plural,
                namespace.unwrap_or_default().to_string(),
                name.to_string(),
            ))
            .map(|s| s.obj.clone())
    }

    /// Every stored object of a kind.
    pub fn all(&self, kind: &str) -> Vec<Value> {
        let k = Kind::of(kind);
        let st = self.state.lock().expect("state");
        st.objects
            .iter()
            .filter(|(key, _)| key.0 == k.plural)
            .map(|(_, s)| s.obj.clone())
            .collect()
    }

    /// The current resourceVersion of the store (bumped by every write).
    pub fn resource_version(&self) -> u64 {
        self.state.lock().expect("state").rv
    }

    /// From now on, authorizes every request as the ServiceAccount
    /// `namespace/name` with the rules of `objects` (Roles, ClusterRoles and
    /// their bindings), answering 403 as the real API server words it.
    pub fn enforce_rbac(&self, namespace: &str, name: &str, objects: Vec<Value>) {
        self.state.lock().expect("state").rbac = Some(Rbac {
            account: (namespace.into(), name.into()),
            objects,
        });
    }

    /// Serves the API of Kubernetes 1.`minor` (before 33: no ServiceCIDR).
    pub fn serve_minor(&self, minor: u32) {
        self.state.lock().expect("state").minor = minor;
    }

    /// Injects a failure.
    pub fn fail(&self, fault: Fault) {
        self.state.lock().expect("state").faults.push(fault);
    }

    /// The requests received, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").log.clone()
    }
}

/// Where the scenarios run: this fake, or the real cluster named by
/// `FLOE_GUARD_TEST_KUBECONFIG` (the `kind/` end-to-end script sets it).
pub enum Cluster {
    /// The in-process fake.
    Fake(FakeApiServer),
    /// A real cluster.
    Real(PathBuf),
}

impl Cluster {
    /// The real cluster when configured, else a fresh fake.
    pub fn new() -> Self {
        match std::env::var_os("FLOE_GUARD_TEST_KUBECONFIG") {
            Some(p) => Cluster::Real(PathBuf::from(p)),
            None => Cluster::Fake(FakeApiServer::start()),
        }
    }

    /// The kubeconfig to pass to floe-guard.
    pub fn kubeconfig(&self) -> &Path {
        match self {
            Cluster::Fake(f) => f.kubeconfig(),
            Cluster::Real(p) => p,
        }
    }

    /// Server-side applies `obj` (JSON with apiVersion and kind) as field
    /// manager `manager`, through the real kube client.
    pub fn apply(&self, obj: &Value, manager: &str) {
        let kubeconfig = self.kubeconfig().to_path_buf();
        let obj = obj.clone();
        let manager = manager.to_string();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                use kube::api::{Api, DynamicObject, Patch, PatchParams};
                use kube::discovery::ApiResource;
                let config = kube::Config::from_custom_kubeconfig(
                    kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
                    &Default::default(),
                )
                .await
                .expect("config");
                let client = kube::Client::try_from(config).expect("client");
                let kind = Kind::of(obj["kind"].as_str().expect("kind"));
                let ar = ApiResource {
                    group: kind.group.into(),
                    version: kind.version.into(),
                    api_version: kind.api_version(),
                    kind: kind.kind.into(),
                    plural: kind.plural.into(),
                };
                let name = obj["metadata"]["name"].as_str().expect("name").to_string();
                let api: Api<DynamicObject> =
                    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
                        Some(ns) => Api::namespaced_with(client, ns, &ar),
                        None => Api::all_with(client, &ar),
                    };
                api.patch(
                    &name,
                    &PatchParams::apply(&manager).force(),
                    &Patch::Apply(&obj),
                )
                .await
                .expect("apply");
            });
    }
}

/// 100 namespaces (half enforcing restricted, half baseline), each with a
/// default-deny policy and 50 pods, every 10th allowing privilege escalation.
pub fn insert_100_namespaces_with_5000_pods(f: &FakeApiServer) {
    for n in 0..100 {
        let ns = format!("team-{n:03}");
        f.insert(json!({"kind": "Namespace", "metadata": {"name": ns,
            "labels": {"pod-security.kubernetes.io/enforce": if n % 2 == 0 { "restricted" } else { "baseline" }}}}));
        f.insert(
            json!({"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        );
        for p in 0..50 {
            f.insert(json!({"kind": "Pod", "metadata": {"name": format!("app-{p:02}"), "namespace": ns,
                "labels": {"app": "web"}},
                "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 8080}],
                        "securityContext": {"allowPrivilegeEscalation": p % 10 == 0,
                            "capabilities": {"drop": ["ALL"]}}}]}}));
        }
    }
}

/// Runs floe-guard with these arguments against `kubeconfig`.
pub fn floe_guard(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let k = kubeconfig.to_str().expect("utf-8 path");
    all.extend(["--kubeconfig", k]);
    std::process::Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(&all)
        .env_remove("FLOE_GUARD_CONFIG")
        .output()
        .expect("run floe-guard")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
