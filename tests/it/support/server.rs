//! Shared by the server integration tests: start the real server on an
//! ephemeral port, a verifying HTTPS client, and real-shaped AdmissionReviews.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use floe_guard::certs::{Bundle, SanList};
use floe_guard::config::Config;
use floe_guard::server::{self, Handle, ServerConfig, TlsSource};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A fresh CA + serving certificate for localhost / 127.0.0.1.
pub fn bundle() -> Bundle {
    Bundle::generate(&SanList::from_names(["localhost"]).with_localhost(), 2).unwrap()
}

/// Test defaults: ephemeral port, short timeouts.
pub fn config(tls: TlsSource) -> ServerConfig {
    ServerConfig {
        request_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        cert_reload_interval: Duration::from_millis(100),
        shutdown_delay: Duration::from_millis(300),
        shutdown_timeout: Duration::from_secs(5),
        ..ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            tls,
            Arc::new(Config::default()),
        )
    }
}

/// Starts a server with an in-memory certificate; returns it, its CA and its base URL.
pub async fn start() -> (Handle, Bundle, String) {
    start_with(|c| c).await
}

/// Like [`start`], with the configuration adjusted by `f`.
pub async fn start_with(f: impl FnOnce(ServerConfig) -> ServerConfig) -> (Handle, Bundle, String) {
    let b = bundle();
    let cfg = f(config(TlsSource::Pem {
        cert: b.tls_crt.clone(),
        key: b.tls_key.clone(),
    }));
    let handle = server::start(cfg).await.unwrap();
    let url = format!("https://localhost:{}", handle.local_addr().port());
    (handle, b, url)
}

/// A client that verifies the server against `ca_pems` only.
pub fn client(ca_pems: &[&str]) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = ca_pems
        .iter()
        .map(|p| reqwest::Certificate::from_pem(p.as_bytes()).unwrap());
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .timeout(Duration::from_secs(10))
        .resolve(
            "localhost",
            "127.0.0.1:0".parse().unwrap(), // the port comes from the URL
        )
}

/// POSTs a JSON review; returns status and body.
pub async fn post(client: &reqwest::Client, url: &str, review: &Value) -> (u16, Value) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(review).unwrap())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

/// A Pod as the job controller creates it (the shape of `bench/payloads`).
pub fn job_pod(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "ingest-orders-28911-",
            "namespace": namespace,
            "labels": {
                "batch.kubernetes.io/controller-uid": "5b6c0e2a-6d2e-4f71-9d43-2f0b7a0c1e11",
                "batch.kubernetes.io/job-name": "ingest-orders-28911",
                "controller-uid": "5b6c0e2a-6d2e-4f71-9d43-2f0b7a0c1e11",
                "job-name": "ingest-orders-28911"
            },
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": "ingest-orders-28911",
                "uid": "5b6c0e2a-6d2e-4f71-9d43-2f0b7a0c1e11",
                "controller": true,
                "blockOwnerDeletion": true
            }],
            "finalizers": ["batch.kubernetes.io/job-tracking"]
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "default",
            "initContainers": [{
                "name": "fetch-config",
                "image": "ghcr.io/floe/fetch:1.4.2",
                "args": ["--out", "/config"],
                "volumeMounts": [{"name": "config", "mountPath": "/config"}]
            }],
            "containers": [{
                "name": "main",
                "image": "ghcr.io/floe/dbt-runner:2.3.0",
                "command": ["dbt", "run"],
                "env": [
                    {"name": "POLARIS_URI", "value": "http://polaris.floe-platform:8181"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
                ],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
                "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": true}]
            }, {
                "name": "otel-sidecar",
                "image": "otel/opentelemetry-collector:0.98.0",
                "ports": [{"containerPort": 4317, "protocol": "TCP"}]
            }],
            "volumes": [{"name": "config", "emptyDir": {}}]
        }
    })
}

/// An AdmissionReview v1 as kube-apiserver sends it for a Pod.
pub fn pod_review(uid: &str, operation: &str, pod: Option<&Value>, old: Option<&Value>) -> Value {
    let ns = pod
        .or(old)
        .and_then(|p| p["metadata"]["namespace"].as_str())
        .unwrap_or("default")
        .to_string();
    review(
        uid,
        json!({"group": "", "version": "v1", "kind": "Pod"}),
        json!({"group": "", "version": "v1", "resource": "pods"}),
        Some(&ns),
        operation,
        pod,
        old,
    )
}

/// An AdmissionReview v1 as kube-apiserver sends it for a `batch/v1` Job
/// or CronJob (`kind` names it) CREATE by a user.
pub fn workload_review(uid: &str, kind: &str, object: &Value) -> Value {
    let resource = format!("{}s", kind.to_lowercase());
    let mut r = review(
        uid,
        json!({"group": "batch", "version": "v1", "kind": kind}),
        json!({"group": "batch", "version": "v1", "resource": resource}),
        object["metadata"]["namespace"].as_str(),
        "CREATE",
        Some(object),
        None,
    );
    r["request"]["userInfo"] = json!({"username": "alice", "groups": ["system:authenticated"]});
    r
}

/// An AdmissionReview v1 for a Namespace.
pub fn namespace_review(
    uid: &str,
    operation: &str,
    ns: Option<&Value>,
    old: Option<&Value>,
) -> Value {
    review(
        uid,
        json!({"group": "", "version": "v1", "kind": "Namespace"}),
        json!({"group": "", "version": "v1", "resource": "namespaces"}),
        None,
        operation,
        ns,
        old,
    )
}

fn review(
    uid: &str,
    kind: Value,
    resource: Value,
    namespace: Option<&str>,
    operation: &str,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Value {
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "operation": operation,
        "userInfo": {
            "username": "system:serviceaccount:kube-system:job-controller",
            "uid": "2d5e3f1a-0000-4000-8000-000000000001",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
        },
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind}
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    if let Some(name) = object.or(old).and_then(|o| o["metadata"]["name"].as_str()) {
        request["name"] = json!(name);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// A Namespace with the given labels.
pub fn namespace(name: &str, labels: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/metadata.name"] = json!(name);
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// The decoded JSONPatch of a response (it must be a base64 string).
pub fn patch_of(response: &Value) -> Option<json_patch::Patch> {
    let patch = response["response"].get("patch")?;
    let text = patch.as_str().expect("patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// A TLS client configuration trusting `ca` only (TLS 1.2 and 1.3).
pub fn tls_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A raw TLS connection (HTTP/1.1: no ALPN) to the server.
pub async fn raw_tls(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A Job pod review sent in two halves over a raw HTTP/1.1 TLS connection:
/// the head and half the body at [`HalfSent::start`], the rest at
/// [`HalfSent::finish`], which expects the allowed answer.
pub struct HalfSent {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    uid: String,
    body: String,
}

impl HalfSent {
    /// Connects (trusting `ca`) and sends the head and half the body.
    pub async fn start(ca: &str, port: u16, uid: &str) -> HalfSent {
        let body = pod_review(uid, "CREATE", Some(&job_pod("floe-jobs")), None).to_string();
        let mut stream = raw_tls(&tls_config(ca), port).await.unwrap();
        stream
            .write_all(request_head(body.len()).as_bytes())
            .await
            .unwrap();
        stream
            .write_all(&body.as_bytes()[..body.len() / 2])
            .await
            .unwrap();
        HalfSent {
            stream,
            uid: uid.to_string(),
            body,
        }
    }

    /// Sends the rest and asserts a 200 answer for the review within 5 s.
    pub async fn finish(mut self) {
        let rest = &self.body.as_bytes()[self.body.len() / 2..];
        self.stream.write_all(rest).await.unwrap();
        let answer = read_response(&mut self.stream, Duration::from_secs(5))
            .await
            .expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(&self.uid), "{answer}");
    }
}

/// An HTTP/1.1 POST head for `/mutate` with `len` bytes of JSON.
pub fn request_head(len: usize) -> String {
    format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    )
}

/// Reads one HTTP/1.1 response (head + content-length body), within `within`.
/// `None` if the connection closed first.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n = match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => panic!("no response in time: {}", String::from_utf8_lossy(&buf)),
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(text);
            }
        }
    }
}

/// Whether the peer closed `s` (EOF or reset) within `within`; the bytes
/// received before that.
pub async fn closed_within<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, got),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Err(_) => return (false, got),
        }
    }
}

/// The DER of the first certificate in `pem`.
pub fn leaf_der(pem: &str) -> Vec<u8> {
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// The leaf certificate a fresh connection is served.
pub async fn served_leaf(ca: &[&str], url: &str) -> Vec<u8> {
    let client = client(ca).tls_info(true).build().unwrap();
    let resp = client.get(format!("{url}/healthz")).send().await.unwrap();
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    info.peer_certificate().unwrap().to_vec()
}
