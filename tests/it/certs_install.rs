//! `floe-guard certs install` against an in-process fake API server: the
//! binary, with the arguments the manifests pass, through a kubeconfig.
//!
//! The fake serves exactly what `certs install` calls (GET/POST/PUT of a
//! Secret, GET/PATCH of the webhook configurations), with the real API
//! server's shapes: Status objects for errors, resourceVersion
//! preconditions (409), strategic merge of `webhooks` by `name`.

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
struct State {
    /// Objects by API path (`/api/v1/namespaces/NS/secrets/NAME`, …).
    objects: BTreeMap<String, Value>,
    next_rv: u64,
    /// `(method, resource)` answered with 403.
    forbidden: Option<(Method, &'static str)>,
    /// How many PATCHes to answer with 409 before accepting them.
    conflicts: u32,
    /// Every request, as `METHOD path`.
    log: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

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
struct Fake {
    state: Shared,
    dir: tempfile::TempDir,
    url: String,
}

impl Fake {
    /// Starts the fake holding the webhook configurations of `manifests/`.
    fn start() -> Fake {
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

    fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A kubeconfig with a `fake` context for this server and a `dead` one
    /// for a closed port, `current` being the current context.
    fn write_kubeconfig(&self, url: &str, current: &str) {
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

    fn object(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    fn secret(&self) -> Option<Value> {
        self.object("/api/v1/namespaces/floe-guard/secrets/floe-guard-tls")
    }

    fn writes(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.log
            .iter()
            .filter(|l| !l.starts_with("GET "))
            .cloned()
            .collect()
    }

    /// Every `caBundle` of both configurations, decoded.
    fn ca_bundles(&self) -> Vec<Vec<u8>> {
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
    fn run(&self, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig();
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", kubeconfig.to_str().unwrap()]);
        run(&all, &[])
    }
}

fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// A URL on which nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// The YAML documents of a repository file.
fn manifest_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The arguments of the `floe-guard-certs` Job in `manifests/jobs.yaml`.
fn job_args() -> Vec<String> {
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
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_manifests_job_installs_then_a_second_run_changes_nothing() {
    let fake = Fake::start();
    let args = job_args();
    assert_eq!(&args[..2], ["certs", "install"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let first = fake.run(&args);
    let stdout = text(&first.stdout);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{stdout}{}",
        text(&first.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(
            "secret floe-guard/floe-guard-tls: created (serving certificate valid until "
        ),
        "{stdout}"
    );
    assert!(lines[1].starts_with("mutatingwebhookconfiguration floe-guard: caBundle set on pods.floe-guard.floe.dev (1 CA(s))"), "{stdout}");
    assert!(lines[2].starts_with("validatingwebhookconfiguration floe-guard: caBundle set on namespaces.floe-guard.floe.dev (1 CA(s))"), "{stdout}");
    assert_eq!(
        fake.writes(),
        [
            "POST /api/v1/namespaces/floe-guard/secrets",
            "PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/floe-guard",
            "PATCH /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/floe-guard",
        ]
    );

    // The Secret is laid out as cert-manager writes it, and its CA is what
    // every webhook entry trusts; the rest of the configurations is intact.
    let secret = fake.secret().unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let data = secret["data"].as_object().unwrap();
    for key in ["ca.crt", "tls.crt", "tls.key", "ca.key"] {
        assert!(data.contains_key(key), "{key}");
    }
    let ca = decode(data["ca.crt"].as_str().unwrap());
    let bundles = fake.ca_bundles();
    assert_eq!(bundles.len(), 2);
    for bundle in &bundles {
        assert_eq!(
            floe_guard::certs::rotate::pem_certs(bundle),
            floe_guard::certs::rotate::pem_certs(&ca)
        );
    }
    let mutating = fake
        .object("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/floe-guard")
        .unwrap();
    assert_eq!(mutating["webhooks"][0]["failurePolicy"], "Fail");
    assert_eq!(
        mutating["webhooks"][0]["clientConfig"]["service"]["path"],
        "/mutate"
    );

    let second = fake.run(&args);
    let stdout = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{stdout}{}",
        text(&second.stderr)
    );
    assert!(
        stdout.starts_with("nothing to change\n  secret floe-guard/floe-guard-tls: up to date ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("caBundle up to date on 1 webhook(s)"),
        "{stdout}"
    );
    assert_eq!(fake.writes().len(), 3, "the second run wrote nothing");
}

#[test]
fn the_chart_arguments_and_context_flag_are_accepted() {
    let fake = Fake::start();
    // The current context points at a closed port: --context picks the fake.
    fake.write_kubeconfig(&fake.url, "dead");
    let out = fake.run(&[
        "certs",
        "install",
        "--context",
        "fake",
        "--service=floe-guard",
        "--namespace=floe-guard",
        "--secret=floe-guard-tls",
        "--webhook=floe-guard",
        "--days=30",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created"));

    let zero = fake.run(&["certs", "install", "--days=0"]);
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn a_missing_rbac_rule_is_one_line_naming_the_verb_resource_and_rule() {
    let fake = Fake::start();
    fake.state.lock().unwrap().forbidden = Some((Method::PATCH, "validatingwebhookconfigurations"));
    let out = fake.run(&["certs", "install"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: forbidden: cannot patch validatingwebhookconfigurations floe-guard; the ClusterRole bound to this identity needs the rule {apiGroups: [\"admissionregistration.k8s.io\"], resources: [validatingwebhookconfigurations], resourceNames: [floe-guard], verbs: [patch]} (API server: "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("system:serviceaccount:floe-guard:floe-guard-certs"),
        "{stderr}"
    );

    let fake = Fake::start();
    fake.state.lock().unwrap().forbidden = Some((Method::POST, "secrets"));
    let out = fake.run(&["certs", "install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(
            "error: forbidden: cannot create secrets floe-guard/floe-guard-tls; the Role in namespace floe-guard bound to this identity needs the rule {apiGroups: [\"\"], resources: [secrets], verbs: [create]}"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_lost_race_is_read_again_and_retried() {
    let fake = Fake::start();
    fake.state.lock().unwrap().conflicts = 1;
    let out = fake.run(&["certs", "install"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "mutatingwebhookconfigurations floe-guard changed meanwhile; reading it again"
        ),
        "{stdout}"
    );
    // The Secret created before the conflict is kept, not created twice.
    assert_eq!(
        fake.writes()
            .iter()
            .filter(|w| w.starts_with("POST"))
            .count(),
        1
    );
    let ca = decode(fake.secret().unwrap()["data"]["ca.crt"].as_str().unwrap());
    for bundle in fake.ca_bundles() {
        assert_eq!(
            floe_guard::certs::rotate::pem_certs(&bundle),
            floe_guard::certs::rotate::pem_certs(&ca)
        );
    }
}

#[test]
fn an_unreachable_api_server_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let url = closed_port_url();
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{url}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let out = run(
        &["certs", "install", "--kubeconfig", path.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    // kube-client also logs the failed request through tracing; our error
    // is the last line, and the only one.
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [format!(
            "error: cluster unreachable: cannot connect to {url}/: Connection refused (os error 111)"
        )],
        "{stderr}"
    );
}

#[test]
fn no_kubeconfig_and_no_cluster_is_one_line() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        &["certs", "install"],
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: no kubeconfig: set KUBECONFIG or pass --kubeconfig, or run in a cluster"
        ),
        "{stderr}"
    );
}
