//! A fake API server for `certs install`: it serves exactly what the
//! command calls (GET/POST/PUT of Secrets, GET/PATCH of the webhook
//! configurations), with the real API server's shapes: Status objects for
//! errors, resourceVersion preconditions (409), strategic merge of
//! `webhooks` by `name`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

const WEBHOOKS: &str = "admissionregistration.k8s.io/v1";

/// The fake's objects and knobs.
#[derive(Default)]
pub struct State {
    /// Objects by API path (`/api/v1/namespaces/NS/secrets/NAME`, …).
    pub objects: BTreeMap<String, Value>,
    next_rv: u64,
    /// `(method, resource)` answered with 403.
    pub forbidden: Option<(Method, &'static str)>,
    /// How many PATCHes to answer with 409 before accepting them.
    pub conflicts: u32,
    /// Every request, as `METHOD path`.
    pub log: Vec<String>,
}

pub type Shared = Arc<Mutex<State>>;

fn status(code: StatusCode, reason: &str, message: String, name: &str, kind: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": {"name": name, "kind": kind}, "code": code.as_u16(),
    });
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(code: StatusCode, object: &Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        object.to_string(),
    )
        .into_response()
}

/// `(collection path, resource, name)` of a request path we serve.
fn route(path: &str) -> Option<(String, &'static str, Option<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", "namespaces", ns, "secrets"] => {
            Some((format!("/api/v1/namespaces/{ns}/secrets"), "secrets", None))
        }
        ["api", "v1", "namespaces", ns, "secrets", name] => Some((
            format!("/api/v1/namespaces/{ns}/secrets"),
            "secrets",
            Some((*name).to_owned()),
        )),
        ["apis", "admissionregistration.k8s.io", "v1", kind, name]
            if *kind == "mutatingwebhookconfigurations"
                || *kind == "validatingwebhookconfigurations" =>
        {
            let resource = if kind.starts_with('m') {
                "mutatingwebhookconfigurations"
            } else {
                "validatingwebhookconfigurations"
            };
            Some((
                format!("/apis/{WEBHOOKS}/{kind}"),
                resource,
                Some((*name).to_owned()),
            ))
        }
        _ => None,
    }
}

async fn handle(state: Shared, method: Method, uri: Uri, body: Bytes) -> Response {
    let mut s = state.lock().unwrap();
    s.log.push(format!("{method} {}", uri.path()));
    let Some((collection, resource, name)) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
            "",
            "",
        );
    };
    if s.forbidden.as_ref() == Some(&(method.clone(), resource)) {
        let verb = match method {
            Method::GET => "get",
            Method::POST => "create",
            Method::PUT => "update",
            _ => "patch",
        };
        let n = name.clone().unwrap_or_default();
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{resource} \"{n}\" is forbidden: User \"system:serviceaccount:floe-guard:floe-guard-certs\" cannot {verb} resource \"{resource}\" in API group \"\" at the cluster scope"
            ),
            &n,
            resource,
        );
    }
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("JSON body")
    };
    let key = |name: &str| format!("{collection}/{name}");
    match (method, name) {
        (Method::GET, Some(name)) => match s.objects.get(&key(&name)) {
            Some(object) => ok(StatusCode::OK, object),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{resource} \"{name}\" not found"),
                &name,
                resource,
            ),
        },
        (Method::POST, None) => {
            let mut object = body;
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            if s.objects.contains_key(&key(&name)) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{resource} \"{name}\" already exists"),
                    &name,
                    resource,
                );
            }
            s.next_rv += 1;
            object["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
            s.objects.insert(key(&name), object.clone());
            ok(StatusCode::CREATED, &object)
        }
        (Method::PUT, Some(name)) => {
            let mut object = body;
            let current = s.objects.get(&key(&name)).cloned();
            match current {
                Some(c)
                    if c["metadata"]["resourceVersion"]
                        == object["metadata"]["resourceVersion"] =>
                {
                    assert_eq!(c["type"], object["type"], "a Secret's type is immutable");
                    s.next_rv += 1;
                    object["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
                    s.objects.insert(key(&name), object.clone());
                    ok(StatusCode::OK, &object)
                }
                _ => status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                    &name,
                    resource,
                ),
            }
        }
        (Method::PATCH, Some(name)) => {
            let Some(mut object) = s.objects.get(&key(&name)).cloned() else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{resource} \"{name}\" not found"),
                    &name,
                    resource,
                );
            };
            let stale = body["metadata"]["resourceVersion"]
                .as_str()
                .is_some_and(|rv| object["metadata"]["resourceVersion"] != rv);
            if stale || s.conflicts > 0 {
                s.conflicts = s.conflicts.saturating_sub(1);
                // Another writer: bump the version, as a real change would.
                s.next_rv += 1;
                let rv = s.next_rv.to_string();
                s.objects.get_mut(&key(&name)).unwrap()["metadata"]["resourceVersion"] = json!(rv);
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                    &name,
                    resource,
                );
            }
            // Strategic merge: `webhooks` merged by `name`, maps merged.
            for patch_entry in body["webhooks"].as_array().cloned().unwrap_or_default() {
                let entry = object["webhooks"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|e| e["name"] == patch_entry["name"])
                    .expect("a strategic merge by name of an existing entry");
                entry["clientConfig"]["caBundle"] = patch_entry["clientConfig"]["caBundle"].clone();
            }
            s.next_rv += 1;
            object["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
            s.objects.insert(key(&name), object.clone());
            ok(StatusCode::OK, &object)
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            "",
            resource,
        ),
    }
}

/// A running fake and a kubeconfig that points at it.
pub struct Fake {
    pub state: Shared,
    dir: tempfile::TempDir,
    pub url: String,
}

impl Fake {
    /// Starts the fake holding the webhook configurations of `manifests/`.
    pub fn start() -> Fake {
        let state: Shared = Arc::default();
        {
            let mut s = state.lock().unwrap();
            for doc in manifest_docs("manifests/webhooks.yaml") {
                let kind = doc["kind"].as_str().unwrap().to_lowercase();
                let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
                let mut doc = doc;
                s.next_rv += 1;
                doc["metadata"]["resourceVersion"] = json!(s.next_rv.to_string());
                s.objects
                    .insert(format!("/apis/{WEBHOOKS}/{kind}s/{name}"), doc);
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app_state = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |m: Method, u: Uri, b: Bytes| {
                    handle(app_state.clone(), m, u, b)
                });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake { state, dir, url };
        fake.write_kubeconfig(&fake.url.clone(), "fake");
        fake
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A kubeconfig with a `fake` context for this server and a `dead` one
    /// for a closed port, `current` being the current context.
    pub fn write_kubeconfig(&self, url: &str, current: &str) {
        let dead = closed_port_url();
        std::fs::write(
            self.kubeconfig(),
            format!(
                "apiVersion: v1
kind: Config
clusters:
- {{name: fake, cluster: {{server: \"{url}\"}}}}
- {{name: dead, cluster: {{server: \"{dead}\"}}}}
users:
- {{name: certs, user: {{token: t0k3n}}}}
contexts:
- {{name: fake, context: {{cluster: fake, user: certs}}}}
- {{name: dead, context: {{cluster: dead, user: certs}}}}
current-context: {current}
"
            ),
        )
        .unwrap();
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    pub fn secret(&self) -> Option<Value> {
        self.object("/api/v1/namespaces/floe-guard/secrets/floe-guard-tls")
    }

    /// The CA Secret.
    pub fn ca_secret(&self) -> Option<Value> {
        self.object("/api/v1/namespaces/floe-guard/secrets/floe-guard-ca")
    }

    pub fn writes(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.log
            .iter()
            .filter(|l| !l.starts_with("GET "))
            .cloned()
            .collect()
    }

    /// Every `caBundle` of both configurations, decoded.
    pub fn ca_bundles(&self) -> Vec<Vec<u8>> {
        ["mutating", "validating"]
            .into_iter()
            .flat_map(|k| {
                let config = self
                    .object(&format!(
                        "/apis/{WEBHOOKS}/{k}webhookconfigurations/floe-guard"
                    ))
                    .unwrap();
                config["webhooks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| decode(w["clientConfig"]["caBundle"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Runs the binary with this kubeconfig.
    pub fn run(&self, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig();
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", kubeconfig.to_str().unwrap()]);
        run(&all, &[])
    }
}

pub fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// A URL on which nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// The YAML documents of a repository file.
pub fn manifest_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The arguments of the `floe-guard-certs` Job in `manifests/jobs.yaml`.
pub fn job_args() -> Vec<String> {
    let job = manifest_docs("manifests/jobs.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Job" && d["metadata"]["name"] == "floe-guard-certs")
        .unwrap();
    job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Runs floe-guard with a deadline, with `env` added and the cluster
/// variables of the test's own environment removed.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_floe-guard"));
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "floe-guard did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
