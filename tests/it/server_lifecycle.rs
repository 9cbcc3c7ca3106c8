//! Server lifecycle: certificate rotation, graceful shutdown, slow clients,
//! and the `serve --self-signed` command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::server::*;
use floe_guard::server::{self, TlsSource};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Writes `tls.crt` / `tls.key` atomically (write + rename), as the kubelet does.
fn write_pair(dir: &std::path::Path, cert: &str, key: &str) {
    for (name, pem) in [("tls.crt", cert), ("tls.key", key)] {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn rotated_certificate_files_are_served_to_new_connections_without_failing_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (bundle(), bundle());
    write_pair(dir.path(), &a.tls_crt, &a.tls_key);
    let cfg = config(TlsSource::Files {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    });
    let handle = server::start(cfg).await.unwrap();
    let url = format!("https://localhost:{}", handle.local_addr().port());
    let cas = [a.ca_crt.as_str(), b.ca_crt.as_str()];
    assert_eq!(served_leaf(&cas, &url).await, leaf_der(&a.tls_crt));

    // Keep-alive traffic throughout the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let load = {
        let (client, url, stop, ok) = (
            client(&cas).build().unwrap(),
            url.clone(),
            stop.clone(),
            ok.clone(),
        );
        tokio::spawn(async move {
            let review = pod_review("uid-rot", "CREATE", Some(&job_pod("floe-jobs")), None);
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = post(&client, &format!("{url}/mutate"), &review).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["response"]["uid"], "uid-rot");
                ok.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // A broken replacement keeps the current certificate and is flagged.
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !handle
        .metrics()
        .render()
        .contains("floe_guard_certificate_reload_failing 1")
    {
        assert!(Instant::now() < deadline, "bad file not detected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served_leaf(&cas, &url).await, leaf_der(&a.tls_crt));

    // A good replacement is picked up by new connections.
    write_pair(dir.path(), &b.tls_crt, &b.tls_key);
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_leaf(&cas, &url).await != leaf_der(&b.tls_crt) {
        assert!(Instant::now() < deadline, "new certificate not served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = handle.metrics().render();
    assert!(metrics.contains("floe_guard_certificate_reload_failing 0"));
    assert!(metrics.contains("floe_guard_certificate_reloads_total 1"));
    // Only the new CA is needed now.
    assert_eq!(served_leaf(&[&b.ca_crt], &url).await, leaf_der(&b.tls_crt));

    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(ok.load(Ordering::Relaxed) > 10);
}

#[tokio::test]
async fn start_fails_clearly_on_a_key_that_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (bundle(), bundle());
    write_pair(dir.path(), &a.tls_crt, &b.tls_key);
    let cfg = config(TlsSource::Files {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    });
    let err = format!("{:#}", server::start(cfg).await.err().unwrap());
    assert!(err.contains("do not fit"), "{err}");
}

#[tokio::test]
async fn slow_requests_are_cut_off_but_idle_keep_alive_connections_stay() {
    // request_timeout 500 ms, idle_timeout 5 s (server_support::config).
    let (handle, ca, _) = start().await;
    let port = handle.local_addr().port();
    let body = pod_review("uid-slow", "CREATE", Some(&job_pod("floe-jobs")), None).to_string();

    // Slowloris: half a request head, then nothing.
    let mut slow = raw_tls(&tls_config(&ca.ca_crt), port).await.unwrap();
    slow.write_all(b"POST /mutate HTTP/1.1\r\nhost: local")
        .await
        .unwrap();
    let start = Instant::now();
    assert!(closed_within(&mut slow, Duration::from_secs(3)).await.0);
    assert!(start.elapsed() >= Duration::from_millis(400));

    // Head sent, body never completed.
    let mut stalled = raw_tls(&tls_config(&ca.ca_crt), port).await.unwrap();
    stalled
        .write_all(request_head(body.len()).as_bytes())
        .await
        .unwrap();
    stalled.write_all(&body.as_bytes()[..100]).await.unwrap();
    let text = read_response(&mut stalled, Duration::from_secs(5))
        .await
        .expect("a response");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    // Idle between requests for longer than the request timeout: still open.
    let mut idle = raw_tls(&tls_config(&ca.ca_crt), port).await.unwrap();
    for _ in 0..2 {
        idle.write_all(request_head(body.len()).as_bytes())
            .await
            .unwrap();
        idle.write_all(body.as_bytes()).await.unwrap();
        let text = read_response(&mut idle, Duration::from_secs(5))
            .await
            .expect("a response");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("uid-slow"));
        assert!(!closed_within(&mut idle, Duration::from_millis(800)).await.0);
    }
}

#[tokio::test]
async fn shutdown_turns_readiness_off_first_and_finishes_in_flight_requests() {
    let (handle, ca, url) = start_with(|mut c| {
        c.shutdown_delay = Duration::from_millis(500);
        c.request_timeout = Duration::from_secs(5);
        c
    })
    .await;
    let port = handle.local_addr().port();
    let client = client(&[&ca.ca_crt]).build().unwrap();
    // An in-flight request: head and half the body sent before shutdown.
    let inflight = HalfSent::start(&ca.ca_crt, port, "uid-inflight").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert!(handle.is_ready());
    let shutdown = tokio::spawn(handle.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Not ready, but still answering during the delay.
    let resp = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let review = pod_review("uid-late", "CREATE", Some(&job_pod("floe-jobs")), None);
    let (status, _) = post(&client, &format!("{url}/mutate"), &review).await;
    assert_eq!(status, 200);

    // Past the delay the listener is closed; the in-flight request completes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown must wait for the in-flight request"
    );
    inflight.finish().await;
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown finishes once requests are done")
        .unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[test]
fn serve_self_signed_writes_its_ca_answers_verified_requests_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.crt");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(["serve", "--self-signed", "--shutdown-delay", "0", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--ca-out")
        .arg(&ca_path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("https://localhost:{port}");
        loop {
            if let Ok(ca) = std::fs::read_to_string(&ca_path)
                && !ca.is_empty()
                && let Ok(client) = client(&[&ca]).build()
                && let Ok(resp) = client.get(format!("{url}/readyz")).send().await
            {
                assert_eq!(resp.status().as_u16(), 200);
                let review = pod_review("uid-cli", "CREATE", Some(&job_pod("floe-jobs")), None);
                return post(&client, &format!("{url}/mutate"), &review).await;
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(result.0, 200);
    assert_eq!(result.1["response"]["uid"], "uid-cli");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("CA certificate written to {}", ca_path.display())),
        "{stderr}"
    );
}
