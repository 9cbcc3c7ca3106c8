//! Faults: certificate files replaced under load (zero failed requests),
//! replaced with garbage (the old certificate keeps being served, an error is
//! logged and the metric shows it), a broken config at start (refuses to
//! start, with the reason), and SIGTERM under load (zero failed requests,
//! exit within the grace period).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::reliability::*;
use crate::support::server::{
    HalfSent, bundle, client, job_pod, leaf_der, pod_review, served_leaf,
};
use floe_guard::server::{self, TlsSource};

/// Closed-loop load: `fresh` clients open a new TLS connection per request
/// (every request is a handshake with whatever certificate is current), the
/// others reuse keep-alive connections. Returns (ok, failed) counters and the
/// stop flag.
fn load(
    cas: &[&str],
    url: &str,
    fresh: usize,
    keep_alive: usize,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<AtomicBool>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (ok, failed, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let tasks = (0..fresh + keep_alive)
        .map(|i| {
            let mut b = client(cas);
            if i < fresh {
                b = b.pool_max_idle_per_host(0);
            }
            let c = b.build().unwrap();
            let (ok, failed, stop, url) =
                (ok.clone(), failed.clone(), stop.clone(), url.to_string());
            tokio::spawn(async move {
                let uid = format!("uid-load-{i}");
                let review = pod_review(&uid, "CREATE", Some(&job_pod("floe-jobs")), None);
                let body = review.to_string();
                while !stop.load(Ordering::Relaxed) {
                    let resp = c
                        .post(format!("{url}/mutate"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let good = match resp {
                        Ok(r) if r.status() == 200 => r
                            .text()
                            .await
                            .is_ok_and(|t| t.contains(&format!("\"uid\":\"{uid}\""))),
                        Ok(_) => false,
                        Err(e) => {
                            eprintln!("request failed: {e:?}");
                            false
                        }
                    };
                    if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (ok, failed, stop, tasks)
}

#[tokio::test]
async fn certificates_replaced_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (bundle(), bundle());
    kubelet_write(dir.path(), 0, &a.tls_crt, &a.tls_key);
    let cfg = crate::support::server::config(TlsSource::Files {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    });
    let handle = server::start(cfg).await.unwrap();
    let url = format!("https://localhost:{}", handle.local_addr().port());
    let cas = [a.ca_crt.as_str(), b.ca_crt.as_str()];
    let (ok, failed, stop, tasks) = load(&cas, &url, 4, 4);

    let wait_for = |want: Vec<u8>| {
        let url = url.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            while served_leaf(&cas, &url).await != want {
                assert!(Instant::now() < deadline, "certificate not picked up");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let start = Instant::now();
    // Atomic (kubelet) swaps, back and forth.
    for (version, pair) in (1..).zip([&b, &a, &b, &a]) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        kubelet_write(dir.path(), version, &pair.tls_crt, &pair.tls_key);
        wait_for(leaf_der(&pair.tls_crt)).await;
    }
    // A non-atomic in-place rewrite: for a few polls the new certificate does
    // not fit the old key; the server keeps the old pair until both fit.
    std::fs::remove_file(dir.path().join("tls.crt")).unwrap();
    std::fs::remove_file(dir.path().join("tls.key")).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &b.tls_crt).unwrap();
    std::fs::write(dir.path().join("tls.key"), &a.tls_key).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(served_leaf(&cas, &url).await, leaf_der(&a.tls_crt));
    std::fs::write(dir.path().join("tls.key"), &b.tls_key).unwrap();
    wait_for(leaf_der(&b.tls_crt)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let metrics = handle.metrics().render();
    eprintln!(
        "5 certificate swaps in {:.1} s under load: {ok} requests ok, {failed} failed",
        start.elapsed().as_secs_f32()
    );
    assert_eq!(failed, 0);
    assert!(ok > 50, "{ok}");
    assert_eq!(
        metric(&metrics, "floe_guard_certificate_reloads_total"),
        5.0
    );
    assert!(metric(&metrics, "floe_guard_certificate_reload_failures_total") >= 1.0);
    assert_eq!(
        metric(&metrics, "floe_guard_certificate_reload_failing"),
        0.0
    );
}

#[tokio::test]
async fn garbage_certificate_files_keep_the_old_certificate_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = bundle();
    kubelet_write(dir.path(), 0, &a.tls_crt, &a.tls_key);
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let mut s = Served::start_with_files(
        &a.ca_crt,
        dir,
        &[
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
            "--cert-reload-interval",
            "1",
        ],
    )
    .await;
    let before = s.metrics().await;
    assert_eq!(
        metric(&before, "floe_guard_certificate_reload_failing"),
        0.0
    );

    for (version, (what, c, k)) in (1..).zip([
        (
            "garbage certificate",
            "garbage".to_string(),
            a.tls_key.clone(),
        ),
        (
            "garbage key",
            a.tls_crt.clone(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_string(),
        ),
        ("empty files", String::new(), String::new()),
    ]) {
        kubelet_write(s.dir.path(), version, &c, &k);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = s.metrics().await;
            if metric(&m, "floe_guard_certificate_reload_failing") == 1.0
                && metric(&m, "floe_guard_certificate_reload_failures_total") >= version as f64
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: failure not reported\n{m}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Still serving, with the old certificate (the client trusts only its CA).
        assert_eq!(
            served_leaf(&[&a.ca_crt], &s.url()).await,
            leaf_der(&a.tls_crt),
            "{what}"
        );
        s.assert_serves().await;
    }
    let is_failure = |l: &&str| {
        l.contains("ERROR")
            && l.contains("certificate reload failed; keeping the current certificate")
    };
    let log = s
        .log_when(|log| log.lines().filter(is_failure).count() >= 3)
        .await;
    let errors: Vec<&str> = log.lines().filter(is_failure).collect();
    assert!(errors.len() >= 3, "{log}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("bad certificate PEM") || l.contains("no CERTIFICATE block")),
        "{log}"
    );
    eprintln!("logged: {}", errors[0]);
    // Plain text for log collectors: no terminal colour codes.
    assert!(!log.contains('\x1b'), "{log}");
    // Nothing secret in the log: no PEM block, no key material.
    assert!(!log.contains("BEGIN"), "{log}");
    assert!(!log.contains(a.tls_key.lines().nth(1).unwrap()), "{log}");
}

/// `serve` with a broken config exits 1 at once with one line naming the file,
/// the key and the reason, and listens on nothing.
#[test]
fn a_broken_config_refuses_to_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown-key.yaml",
            "security:\n  pod_security:\n    bogus: 1\n",
            "at security.pod_security.bogus: unknown field `bogus`",
        ),
        (
            "bad-cidr.yaml",
            "security:\n  network_policies:\n    cluster_cidrs: [10.0.0.0/33]\n",
            "at security.network_policies.cluster_cidrs[0]: invalid CIDR \"10.0.0.0/33\"",
        ),
        (
            "bad-level.yaml",
            "security:\n  pod_security:\n    jobs_level: superuser\n",
            "at security.pod_security.jobs_level",
        ),
        (
            "wrong-type.yaml",
            "security:\n  pod_security:\n    run_as_user: root\n",
            "at security.pod_security.run_as_user: invalid type: string \"root\"",
        ),
        ("not-yaml.yaml", "domains: [a, b\n", "invalid config"),
    ];
    for (name, text, reason) in cases.iter().map(|c| (c.0, Some(c.1), c.2)).chain([(
        "missing.yaml",
        None,
        "cannot read: No such file or directory",
    )]) {
        let path = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        let port = free_port();
        let ca = dir.path().join(format!("{name}.ca"));
        let start = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_floe-guard"))
            .args(["serve", "--self-signed", "--config"])
            .arg(&path)
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--ca-out")
            .arg(&ca)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(reason), "{name}: {stderr}");
        assert!(!ca.exists(), "{name}: started far enough to write its CA");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        eprintln!("{name}: exit 1: {}", stderr.trim());
    }
}

#[tokio::test]
async fn sigterm_under_load_fails_no_request_and_exits_within_the_grace_period() {
    // Kubernetes: SIGTERM, then the endpoint is removed (readiness false)
    // while requests may still arrive for a while; SIGKILL after
    // terminationGracePeriodSeconds (30 s; the chart's delay 5 s + timeout 20 s fit).
    let (delay, timeout) = (2u64, 10u64);
    let mut s = Served::start(&[
        "--shutdown-delay",
        &delay.to_string(),
        "--shutdown-timeout",
        &timeout.to_string(),
        "--request-timeout",
        "10",
        // The straddling request below pauses mid-body for seconds, slower
        // than the default minimum body rate allows.
        "--min-body-rate",
        "1",
    ])
    .await;
    let url = s.url();
    let (ok, failed, stop, tasks) = load(&[&s.ca], &url, 2, 8);

    // An in-flight request that straddles the listener closing: head and half
    // the body now, the rest after the delay.
    let inflight = HalfSent::start(&s.ca, s.port, "uid-inflight").await;

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before_term = ok.load(Ordering::Relaxed);
    let term = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // Readiness turns false at once; the load goes on for most of the delay
    // (endpoint propagation), then stops, as the API server's would.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let r = s.client.get(format!("{url}/readyz")).send().await.unwrap();
        if r.status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "readiness still true");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let not_ready_after = term.elapsed();
    tokio::time::sleep(Duration::from_millis(delay * 1000 * 3 / 4).saturating_sub(term.elapsed()))
        .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let during_delay = ok.load(Ordering::Relaxed) - before_term;

    // Past the delay the listener is closed, the in-flight request completes.
    tokio::time::sleep(Duration::from_millis(delay * 1000 + 300).saturating_sub(term.elapsed()))
        .await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err(),
        "still accepting"
    );
    inflight.finish().await;

    // The process exits 0 once it is done, within delay + timeout.
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            term.elapsed() < Duration::from_secs(delay + timeout),
            "did not exit in the grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = term.elapsed();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "SIGTERM under load: {ok} requests ok ({during_delay} after SIGTERM), {failed} failed; \
         not ready after {} ms; in-flight request answered 200; exit {:?} after {:.2} s (delay {delay} s, timeout {timeout} s)",
        not_ready_after.as_millis(),
        status.code(),
        exited_after.as_secs_f32()
    );
    assert_eq!(failed, 0);
    assert!(during_delay > 10, "{during_delay}");
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert!(
        exited_after < Duration::from_secs(delay + 2),
        "{exited_after:?}"
    );
    let log = s.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("all connections closed"), "{log}");
}
