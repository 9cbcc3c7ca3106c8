//! `certs install --rotate-ca` end to end: the binary against the fake API
//! server, while the real TLS server serves from files that a simulated
//! kubelet refreshes from the serving Secret, and clients that trust exactly
//! the `caBundle` the fake holds at that moment (what the API server would
//! trust) send admission reviews throughout. Not one may fail; afterwards
//! only the new CA is trusted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::certs_apiserver::{Fake, decode, text};
use crate::support::reliability::kubelet_write;
use crate::support::server::{config, job_pod, pod_review};
use floe_guard::certs::inspect::pem_certs;
use floe_guard::server::{self, TlsSource};
use serde_json::Value;

const HOST: &str = "floe-guard.floe-guard.svc";
const OVERLAP: &str = "--ca-overlap=3s";

/// A key of the serving Secret, decoded.
fn serving(fake: &Fake, key: &str) -> String {
    let secret = fake.secret().expect("serving Secret");
    String::from_utf8(decode(secret["data"][key].as_str().unwrap())).unwrap()
}

/// The caBundle of the mutating configuration (PEM).
fn bundle(fake: &Fake) -> Vec<u8> {
    fake.ca_bundles().remove(0)
}

fn install(fake: &Fake, extra: &[&str]) -> String {
    let mut args = vec!["certs", "install", "--days=90", OVERLAP];
    args.extend(extra);
    let out = fake.run(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    eprintln!("$ floe-guard {}\n{stdout}", args.join(" "));
    stdout
}

/// One review over a fresh connection, trusting only `ca_bundle`.
async fn review(ca_bundle: &[u8], port: u16, body: &str) -> Result<(), String> {
    let roots = reqwest::Certificate::from_pem_bundle(ca_bundle).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .tls_certs_only(roots)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .resolve(HOST, ([127, 0, 0, 1], port).into())
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(format!("https://{HOST}:{port}/mutate"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    match resp.status().as_u16() {
        200 => Ok(()),
        code => Err(format!("status {code}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_under_load_fails_no_admission_and_ends_with_only_the_new_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = Arc::new(Fake::start());
    let first = tokio::task::block_in_place(|| install(&fake, &[]));
    assert!(
        first.contains("secret floe-guard/floe-guard-ca: created"),
        "{first}"
    );
    let old_bundle = bundle(&fake);
    let old_ca = pem_certs(&old_bundle);
    assert_eq!(old_ca.len(), 1);

    // The pods' Secret volume, refreshed by a "kubelet" 300 ms after each
    // change of the serving Secret.
    let dir = tempfile::tempdir().unwrap();
    let version = Arc::new(AtomicUsize::new(0));
    kubelet_write(
        dir.path(),
        0,
        &serving(&fake, "tls.crt"),
        &serving(&fake, "tls.key"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = {
        let (fake, stop, version, path) = (
            fake.clone(),
            stop.clone(),
            version.clone(),
            dir.path().to_owned(),
        );
        std::thread::spawn(move || {
            let mut seen = serving(&fake, "tls.crt");
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let now = serving(&fake, "tls.crt");
                if now != seen {
                    std::thread::sleep(Duration::from_millis(300));
                    let v = version.fetch_add(1, Ordering::Relaxed) + 1;
                    kubelet_write(
                        &path,
                        v,
                        &serving(&fake, "tls.crt"),
                        &serving(&fake, "tls.key"),
                    );
                    seen = now;
                }
            }
        })
    };
    let cfg = config(TlsSource::Files {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    });
    let handle = server::start(cfg).await.unwrap();
    let port = handle.local_addr().port();

    // Load: each request trusts the caBundle of that moment.
    let (ok, failures) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let body = pod_review("uid-rotation", "CREATE", Some(&job_pod("floe-jobs")), None).to_string();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (fake, stop, ok, failures, body) = (
                fake.clone(),
                stop.clone(),
                ok.clone(),
                failures.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match review(&bundle(&fake), port, &body).await {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            failures.lock().unwrap().push(e);
                            0
                        }
                    };
                }
            })
        })
        .collect();
    // Past the first CA's own overlap (a rotation inside it is skipped).
    tokio::time::sleep(Duration::from_millis(3200)).await;

    // 1. Rotate: new CA trusted beside the old one, serving certificate
    //    reissued by it.
    let rotated_at = Instant::now();
    let out = tokio::task::block_in_place(|| install(&fake, &["--rotate-ca"]));
    assert!(out.contains("new CA (--rotate-ca)"), "{out}");
    assert!(out.contains("superseded CA(s) stay trusted until"), "{out}");
    let both = pem_certs(&bundle(&fake));
    assert_eq!(both.len(), 2);
    assert_eq!(both[1], old_ca[0]);
    let new_ca = both[0].clone();
    // The pods pick up the new certificate (kubelet delay + reload poll).
    let deadline = Instant::now() + Duration::from_secs(10);
    while version.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the kubelet never refreshed the volume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 2. Inside the overlap, nothing is dropped.
    let out = tokio::task::block_in_place(|| install(&fake, &[]));
    assert!(out.starts_with("nothing to change"), "{out}");
    assert_eq!(pem_certs(&bundle(&fake)).len(), 2);

    // 3. After the overlap, the old CA leaves every caBundle.
    tokio::time::sleep(
        Duration::from_secs(3).saturating_sub(rotated_at.elapsed()) + Duration::from_millis(500),
    )
    .await;
    let out = tokio::task::block_in_place(|| install(&fake, &[]));
    assert!(
        out.contains("dropped 1 expired, superseded or unknown CA(s)"),
        "{out}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A client that trusts only the old CA is refused now.
    assert!(review(&old_bundle, port, &body).await.is_err());

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    kubelet.join().unwrap();
    handle.shutdown().await;
    let failures = failures.lock().unwrap().clone();
    let ok = ok.load(Ordering::Relaxed);
    eprintln!(
        "CA rotation under load: {ok} reviews ok, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 20, "too little load to show anything: {ok}");
    for b in fake.ca_bundles() {
        assert_eq!(pem_certs(&b), std::slice::from_ref(&new_ca));
    }
    let serving_ca: Value = fake.secret().unwrap()["data"]["ca.crt"].clone();
    assert_eq!(pem_certs(&decode(serving_ca.as_str().unwrap())), [new_ca]);
}
