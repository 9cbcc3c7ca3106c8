//! Load benchmark for `floe-guard serve`: starts the release binary with a
//! self-signed certificate, drives `/mutate` over verified TLS with N
//! keep-alive connections using a realistic Job pod review (about 11 KB, as
//! kube-apiserver sends it, managedFields included), and prints requests/s,
//! latency percentiles, errors and the server's CPU per request and peak RSS.
//!
//! Run with `scripts/loadtest.sh` (builds the release binary first), or
//! `cargo run --release --example loadtest -- --help`.

#[path = "common/server.rs"]
mod server;

use std::path::PathBuf;
use std::process::Stdio;

use server::Server;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use serde_json::{Value, json};

/// Load benchmark for floe-guard serve.
#[derive(Debug, Parser)]
struct Args {
    /// The floe-guard binary to start.
    #[arg(long, default_value = "target/release/floe-guard")]
    binary: PathBuf,
    /// Keep-alive connections (each with one request in flight).
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds.
    #[arg(short, long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds (not measured).
    #[arg(short, long, default_value_t = 2)]
    warmup: u64,
    /// Use HTTP/2 (ALPN) instead of HTTP/1.1.
    #[arg(long)]
    h2: bool,
    /// Containers in the pod (2 is typical; 20 makes a ~100 KB review).
    #[arg(long, default_value_t = 2)]
    containers: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = Server::start(&args.binary, "loadtest", |cmd, _| {
        cmd.stderr(Stdio::null());
        Ok(())
    })?;
    let (port, ca_path, dir) = (server.port, server.ca_path.clone(), server.dir.clone());
    let pid = server.child.id();
    let body = review(args.containers);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args, port, &ca_path, pid, body))?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{report}");
    Ok(())
}

async fn run(
    args: &Args,
    port: u16,
    ca_path: &std::path::Path,
    pid: u32,
    body: Vec<u8>,
) -> anyhow::Result<String> {
    let url = format!("https://localhost:{port}/mutate");
    let deadline = Instant::now() + Duration::from_secs(20);
    let ca = loop {
        if let Ok(ca) = std::fs::read(ca_path)
            && let Ok(c) = client(&ca, args.h2)
            && c.get(format!("https://localhost:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        {
            break ca;
        }
        if Instant::now() > deadline {
            bail!("the server did not become ready on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let idle_rss = proc_status(pid, "VmRSS:");
    let body = axum::body::Bytes::from(body);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..args.connections {
        let client = client(&ca, args.h2)?;
        let (url, body, measuring, stop) =
            (url.clone(), body.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let expect = format!("\"uid\":\"{UID}\"");
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(resp) if resp.status() == 200 => resp
                        .bytes()
                        .await
                        .is_ok_and(|b| std::str::from_utf8(&b).is_ok_and(|t| t.contains(&expect))),
                    _ => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    latencies_us.push(start.elapsed().as_micros() as u32);
                    errors += u64::from(!ok);
                } else if !ok && i == 0 {
                    eprintln!("warm-up request failed");
                }
            }
            (latencies_us, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let cpu0 = proc_cpu_ticks(pid);
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = proc_cpu_ticks(pid);
    let peak_rss = proc_status(pid, "VmHWM:");
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let n = all.len();
    let pct = |p: f64| {
        all.get(((n as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let ok = n as u64 - errors;
    let cpu_us = match (cpu0, cpu1) {
        (Some(a), Some(b)) if ok > 0 => format!("{:.1}", (b - a) as f64 * 1e6 / 100.0 / ok as f64),
        _ => "n/a".into(),
    };
    Ok(format!(
        "floe-guard /mutate, {} review of {} bytes, {} {} connections, {}s (after {}s warm-up)\n\
         requests/s {:.0}   p50 {:.3} ms   p90 {:.3} ms   p99 {:.3} ms   max {:.2} ms\n\
         errors {errors}   server CPU/request {cpu_us} µs   server RSS idle {}   peak {}",
        if args.containers == 2 {
            "typical"
        } else {
            "custom"
        },
        body.len(),
        args.connections,
        if args.h2 {
            "HTTP/2"
        } else {
            "HTTP/1.1 keep-alive"
        },
        args.duration,
        args.warmup,
        ok as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        idle_rss.unwrap_or_else(|| "n/a".into()),
        peak_rss.unwrap_or_else(|| "n/a".into()),
    ))
}

/// A client with one connection, verifying the server against `ca` only.
fn client(ca: &[u8], h2: bool) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca)?])
        .resolve("localhost", "127.0.0.1:0".parse()?)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(5));
    let builder = if h2 { builder } else { builder.http1_only() };
    Ok(builder.build()?)
}

/// `utime + stime` of a process, clock ticks (USER_HZ = 100).
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A `/proc/PID/status` line's value (e.g. `VmHWM:`), human-readable.
fn proc_status(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()?;
    Some(format!("{:.1} MiB", kb as f64 / 1024.0))
}

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

/// A Pod CREATE review for a Job's pod in `floe-jobs`, shaped like what
/// kube-apiserver sends: job-controller user, ownerReferences, finalizer,
/// defaulted fields, the service-account projected volume, managedFields.
fn review(containers: usize) -> Vec<u8> {
    let env = json!([
        {"name": "FLOE_ENV", "value": "production"},
        {"name": "FLOE_DOMAIN", "value": "sales"},
        {"name": "FLOE_RUN_ID", "value": "run-29034120"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "floe-s3-credentials", "key": "access-key-id"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "floe-s3-credentials", "key": "secret-access-key"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
    ]);
    let resources = json!({"limits": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "2Gi"},
                           "requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"}});
    let sa_mount = json!({"name": "kube-api-access-fxrnp", "readOnly": true,
                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
    let container = |name: String, image: &str, args: Value| {
        json!({
            "name": name, "image": image, "command": ["/usr/local/bin/floe-run"], "args": args,
            "env": env, "resources": resources,
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"},
                             {"name": "job-config", "readOnly": true, "mountPath": "/etc/floe"},
                             sa_mount],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
        })
    };
    let mut cs = vec![container(
        "main".into(),
        "ghcr.io/floe-dev/dbt-runner:1.8.4",
        json!([
            "--pipeline",
            "sales-daily-29034120",
            "--target",
            "prod",
            "--threads",
            "4"
        ]),
    )];
    for i in 1..containers {
        cs.push(container(
            format!("sidecar-{i}"),
            "otel/opentelemetry-collector-contrib:0.98.0",
            json!(["--config", "/etc/floe/otel.yaml"]),
        ));
    }
    let spec = json!({
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "job-config", "configMap": {"name": "sales-daily-29034120-config", "defaultMode": 420}},
            {"name": "secret-0", "secret": {"secretName": "floe-sink-0", "defaultMode": 420}},
            {"name": "kube-api-access-fxrnp", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ], "defaultMode": 420}}
        ],
        "initContainers": [container("fetch-artifacts".into(), "ghcr.io/floe-dev/artifact-fetch:2.3.0",
            json!(["--from", "s3://floe-artifacts/sales-daily-29034120", "--to", "/scratch"]))],
        "containers": cs,
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
        "schedulerName": "default-scheduler", "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ]
    });
    let mut metadata = json!({
        "generateName": "sales-daily-29034120-",
        "namespace": "floe-jobs",
        "creationTimestamp": null,
        "labels": {
            "app.kubernetes.io/managed-by": "floe", "app.kubernetes.io/part-of": "floe",
            "batch.kubernetes.io/controller-uid": "9bffc3f3-cad7-4321-a016-49af453daa45",
            "batch.kubernetes.io/job-name": "sales-daily-29034120",
            "controller-uid": "9bffc3f3-cad7-4321-a016-49af453daa45",
            "job-name": "sales-daily-29034120", "floe.dev/domain": "sales"
        },
        "annotations": {"floe.dev/run-id": "run-29034120", "floe.dev/triggered-by": "schedule"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "sales-daily-29034120",
            "uid": "9bffc3f3-cad7-4321-a016-49af453daa45", "controller": true, "blockOwnerDeletion": true}],
        "finalizers": ["batch.kubernetes.io/job-tracking"]
    });
    let fields = json!({"f:metadata": fields_v1(&metadata), "f:spec": fields_v1(&spec)});
    metadata["managedFields"] = json!([{
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
        "time": "2025-03-14T02:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": fields
    }]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": {}});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "floe-jobs",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller",
                         "uid": "1f0e7c52-51a4-4c5e-9f3e-0d1f2b3c4d5e",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kube-controller-manager"}
        }
    });
    serde_json::to_vec(&review).expect("serializes")
}

/// A FieldsV1 set for `v`, as server-side apply records it.
fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            out.insert(".".into(), json!({}));
            for (k, v) in map {
                out.insert(format!("f:{k}"), fields_v1(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = serde_json::Map::new();
            out.insert(".".into(), json!({}));
            for item in items {
                let key = match item.get("name") {
                    Some(n) => format!("k:{{\"name\":{n}}}"),
                    None => format!("v:{item}"),
                };
                out.insert(key, fields_v1(item));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}
