//! The hostile-input matrix (docs/hostile-input.md), each case against the
//! real `floe-guard serve` binary over TLS: the answer, no crash, bounded
//! memory (the server's VmHWM from /proc), and the next normal request is
//! served. `cargo test --test reliability_hostile -- --nocapture` prints the
//! matrix rows with the memory figures.

use std::time::{Duration, Instant};

use crate::support::reliability::*;
use crate::support::server::{job_pod, patch_of, pod_review};
use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Peak RSS any single hostile case may drive the (debug-build) server to.
/// Measured peaks are 10–50 MiB (docs/hostile-input.md); the default body
/// limit is 3 MiB.
const PEAK_LIMIT_MIB: u64 = 128;

async fn mutate(s: &Served, body: impl Into<Vec<u8>>) -> (u16, String) {
    post_raw(&s.client, &format!("{}/mutate", s.url()), body.into()).await
}

/// The end of every case: the matrix row (with the server's memory), memory
/// within bounds, and the server still answering the next normal review.
async fn conclude(s: &mut Served, case: &str, answer: &str) {
    s.report(case, answer);
    assert_bounded(s);
    s.assert_serves().await;
}

fn assert_bounded(s: &Served) {
    let peak = s.status_kb("VmHWM") / 1024;
    assert!(peak < PEAK_LIMIT_MIB, "peak RSS {peak} MiB");
}

#[tokio::test]
async fn empty_body_is_400() {
    let mut s = Served::start(&[]).await;
    let (status, text) = mutate(&s, Vec::new()).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with("bad AdmissionReview: not an AdmissionReview: EOF"),
        "{text}"
    );
    conclude(&mut s, "empty body", &format!("{status} {}", text.trim())).await;
}

#[tokio::test]
async fn non_json_is_400() {
    let mut s = Served::start(&[]).await;
    for body in [
        &b"\x00\xff\xfe garbage"[..],
        b"apiVersion: v1\nkind: Pod\n",
        b"{\"a\":",
    ] {
        let (status, text) = mutate(&s, body).await;
        assert_eq!(status, 400, "{text}");
        assert!(
            text.starts_with("bad AdmissionReview: not an AdmissionReview"),
            "{text}"
        );
    }
    conclude(
        &mut s,
        "non-JSON (binary, YAML, truncated)",
        "400 bad AdmissionReview: not an AdmissionReview: …",
    )
    .await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_400_or_denied_by_uid() {
    let mut s = Served::start(&[]).await;
    for body in [
        json!([1, 2]),
        json!("review"),
        json!({"apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview", "request": "x"}),
    ] {
        let (status, text) = mutate(&s, body.to_string()).await;
        assert_eq!(status, 400, "{body}: {text}");
    }
    // A sound envelope whose object has the wrong shape: denied by uid, naming the field.
    let mut garbled = pod_review("uid-shape", "CREATE", Some(&job_pod("floe-jobs")), None);
    garbled["request"]["object"]["spec"]["securityContext"] = json!([true]);
    let (status, text) = mutate(&s, garbled.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let out = json(&text);
    assert_eq!(out["response"]["uid"], "uid-shape");
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["status"]["code"], 400);
    let msg = out["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("request.object.spec.securityContext"), "{msg}");
    conclude(
        &mut s,
        "JSON of the wrong shape",
        "400 (not a review) / 200 allowed=false code 400 naming the field",
    )
    .await;
}

#[tokio::test]
async fn deeply_nested_json_is_400() {
    let mut s = Served::start(&[]).await;
    let depth = 1_000_000; // 2 MB of brackets, under the body limit
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let start = Instant::now();
    // Top level: not a review.
    let (status, text) = mutate(&s, nested.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with("bad AdmissionReview: not an AdmissionReview"),
        "{text}"
    );
    // Where a value is decoded, the schema stops it at the first level (a
    // sequence where a string is expected); serde_json would stop at 128 levels.
    let decoded = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u1","operation":"CREATE","kind":{{"group":"","version":"v1","kind":"Pod"}},"object":{{"spec":{{"securityContext":{{"seLinuxOptions":{{"user":{nested}}}}}}}}}}}}}"#
    );
    let (status, text) = mutate(&s, decoded).await;
    assert_eq!(status, 200, "{text}");
    let out = json(&text);
    assert_eq!(
        (
            out["response"]["uid"].as_str(),
            out["response"]["allowed"].as_bool()
        ),
        (Some("u1"), Some(false))
    );
    assert_eq!(out["response"]["status"]["code"], 400);
    // Where a value is skipped (unknown keys, fields the webhook does not
    // read), serde_json skips it iteratively: no stack growth at any depth.
    let half = 400_000;
    let nested = format!("{}{}", "[".repeat(half), "]".repeat(half));
    let skipped = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":{nested},"request":{{"uid":"u2","operation":"CREATE","kind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"floe-jobs","object":{{"metadata":{{"managedFields":{nested}}},"spec":{{"containers":[]}}}}}}}}"#
    );
    let (status, text) = mutate(&s, skipped).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["response"]["uid"], "u2");
    assert!(start.elapsed() < Duration::from_secs(5));
    conclude(&mut s, "deeply nested JSON (10^6 levels)",
        "400 not an AdmissionReview (top level); 200 allowed=false code 400 (in a decoded field); 200 answered (in a skipped field)").await;
}

#[tokio::test]
async fn huge_strings_under_the_limit_are_answered() {
    let mut s = Served::start(&[]).await;
    let mut pod = job_pod("floe-jobs");
    let huge = "x".repeat(2 * 1024 * 1024 + 512 * 1024); // 2.5 MiB
    pod["metadata"]["annotations"] = json!({"big": huge});
    pod["spec"]["containers"][0]["args"] = json!([huge[..256 * 1024]]);
    let review = pod_review("uid-huge", "CREATE", Some(&pod), None);
    let (status, text) = mutate(&s, review.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let out = json(&text);
    assert_eq!(out["response"]["uid"], "uid-huge");
    assert_eq!(out["response"]["allowed"], true);
    // A huge uid is echoed as is (the answer is still one JSON document).
    let big_uid = "u".repeat(1024 * 1024);
    let review = pod_review(&big_uid, "CREATE", Some(&job_pod("floe-jobs")), None);
    let (status, text) = mutate(&s, review.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(
        json(&text)["response"]["uid"].as_str().unwrap().len(),
        big_uid.len()
    );
    conclude(
        &mut s,
        "huge strings (2.5 MiB annotation, 1 MiB uid)",
        "200, answered normally",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_or_without_content_length() {
    let mut s = Served::start(&[]).await;
    let big = vec![b' '; 4 * 1024 * 1024];
    let (status, text) = mutate(&s, big.clone()).await;
    assert_eq!(
        (status, text.as_str()),
        (413, "request body exceeds 3145728 bytes\n")
    );
    // Chunked (no content-length): answered 413 once the limit is crossed,
    // without reading the rest.
    let mut conn = raw_tls(&tls_config(&s.ca), s.port).await.unwrap();
    conn.write_all(
        b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    let mut answer = None;
    while sent < 8 * 1024 * 1024 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
        let (_, got) = closed_within(&mut conn, Duration::from_millis(1)).await;
        if !got.is_empty() {
            answer = Some(String::from_utf8_lossy(&got).to_string());
            break;
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => read_response(&mut conn, Duration::from_secs(5))
            .await
            .unwrap_or_default(),
    };
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        sent <= 4 * 1024 * 1024,
        "read {sent} bytes before answering"
    );
    conclude(
        &mut s,
        "body over the limit (4 MiB; limit 3 MiB)",
        "413 request body exceeds 3145728 bytes",
    )
    .await;
    let m = s.metrics().await;
    assert!(
        metric(
            &m,
            "floe_guard_admission_rejections_total{webhook=\"mutate\",code=\"413\"}"
        ) >= 1.0
    );
}

#[tokio::test]
async fn a_v1beta1_review_is_400_naming_the_fix() {
    let mut s = Served::start(&[]).await;
    let mut review = pod_review("uid-b", "CREATE", Some(&job_pod("floe-jobs")), None);
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, text) = mutate(&s, review.to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(
        text,
        "bad AdmissionReview: expected apiVersion admission.k8s.io/v1, got \"admission.k8s.io/v1beta1\" (configure admissionReviewVersions: [v1])\n"
    );
    conclude(
        &mut s,
        "`v1beta1` review",
        "400 … (configure admissionReviewVersions: [v1])",
    )
    .await;
}

#[tokio::test]
async fn a_review_without_uid_is_400() {
    let mut s = Served::start(&[]).await;
    let mut review = pod_review("x", "CREATE", Some(&job_pod("floe-jobs")), None);
    review["request"].as_object_mut().unwrap().remove("uid");
    let (status, text) = mutate(&s, review.to_string()).await;
    assert_eq!(
        (status, text.as_str()),
        (400, "bad AdmissionReview: request.uid is empty\n")
    );
    review["request"]["uid"] = json!("");
    let (status, _) = mutate(&s, review.to_string()).await;
    assert_eq!(status, 400);
    conclude(
        &mut s,
        "missing / empty uid",
        "400 bad AdmissionReview: request.uid is empty",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_operation_is_allowed_unpatched() {
    let mut s = Served::start(&[]).await;
    // A pod spec can only be set on CREATE; anything else is never patched.
    let pod = job_pod("floe-jobs");
    let (status, text) = mutate(
        &s,
        pod_review("uid-op", "FROBNICATE", Some(&pod), None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let out = json(&text);
    assert_eq!(out["response"]["uid"], "uid-op");
    assert_eq!(out["response"]["allowed"], true);
    assert!(out["response"].get("patch").is_none());
    // Namespaces: only CREATE and UPDATE are validated.
    let ns = crate::support::server::namespace("floe-jobs", json!({}));
    let (status, text) = post_raw(
        &s.client,
        &format!("{}/validate", s.url()),
        crate::support::server::namespace_review("uid-nsop", "FROBNICATE", Some(&ns), None)
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json(&text)["response"]["allowed"], true);
    conclude(
        &mut s,
        "unknown operation",
        "200 allowed, no patch (only CREATE is hardened)",
    )
    .await;
}

#[tokio::test]
async fn a_pod_with_1000_containers_is_hardened() {
    let mut s = Served::start(&[]).await;
    let mut pod = job_pod("floe-jobs");
    let c = pod["spec"]["containers"][0].clone();
    pod["spec"]["containers"] = json!(
        (0..1000)
            .map(|i| {
                let mut c = c.clone();
                c["name"] = json!(format!("c{i}"));
                c
            })
            .collect::<Vec<_>>()
    );
    let review = pod_review("uid-1000", "CREATE", Some(&pod), None);
    let start = Instant::now();
    let (status, text) = mutate(&s, review.to_string()).await;
    let took = start.elapsed();
    assert_eq!(status, 200, "{text}");
    let out = json(&text);
    assert_eq!(out["response"]["allowed"], true);
    let patch = patch_of(&out).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let after: Pod = serde_json::from_value(patched).unwrap();
    assert!(
        pss::check(
            &after.metadata,
            after.spec.as_ref().unwrap(),
            Level::Restricted
        )
        .is_empty()
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    conclude(
        &mut s,
        "Pod with 1,000 containers",
        &format!(
            "200 allowed, {} patch ops, {} ms (debug build)",
            patch.0.len(),
            took.as_millis()
        ),
    )
    .await;
}

#[tokio::test]
async fn slow_clients_one_byte_a_second_are_cut_off() {
    let mut s = Served::start(&["--request-timeout", "2"]).await;
    let tls = tls_config(&s.ca);
    let body = pod_review("uid-slow", "CREATE", Some(&job_pod("floe-jobs")), None).to_string();

    // Request head, one byte a second: closed ~2 s after the first byte.
    let mut head = raw_tls(&tls, s.port).await.unwrap();
    let start = Instant::now();
    let bytes = request_head(body.len()).into_bytes();
    let mut closed = false;
    for b in &bytes[..6] {
        if head.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let (c, got) = closed_within(&mut head, Duration::from_secs(1)).await;
        assert!(
            !got.starts_with(b"HTTP/1.1 2"),
            "answered a partial request"
        );
        if c {
            closed = true;
            break;
        }
    }
    let head_cut = start.elapsed();
    assert!(closed, "slow head not cut off");
    assert!(
        head_cut >= Duration::from_millis(1900) && head_cut < Duration::from_secs(4),
        "{head_cut:?}"
    );

    // Full head, then the body one byte a second: 408.
    let mut slow_body = raw_tls(&tls, s.port).await.unwrap();
    slow_body.write_all(&bytes).await.unwrap();
    let start = Instant::now();
    let mut answer = None;
    for b in body.as_bytes().iter().take(6) {
        if slow_body.write_all(&[*b]).await.is_err() {
            break;
        }
        let (_, got) = closed_within(&mut slow_body, Duration::from_secs(1)).await;
        if !got.is_empty() {
            answer = Some(String::from_utf8_lossy(&got).to_string());
            break;
        }
    }
    let answer = answer.expect("an answer to the slow body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body_cut = start.elapsed();
    assert!(body_cut < Duration::from_secs(4), "{body_cut:?}");

    // TLS handshake one byte a second: dropped at the handshake timeout.
    let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let start = Instant::now();
    let hello = client_hello(0x0303, true);
    let mut closed = false;
    for b in &hello[..6] {
        if tcp.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut tcp, Duration::from_secs(1)).await.0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "slow handshake not cut off");
    let hs_cut = start.elapsed();
    assert!(hs_cut < Duration::from_secs(4), "{hs_cut:?}");
    conclude(&mut s, "slow client, 1 byte/s (request timeout 2 s)",
        &format!(
            "head: closed after {:.1} s; body: 408 after {:.1} s; TLS handshake: closed after {:.1} s",
            head_cut.as_secs_f32(),
            body_cut.as_secs_f32(),
            hs_cut.as_secs_f32()
        )).await;
}

#[tokio::test]
async fn plaintext_http_on_the_tls_port_gets_no_http_answer() {
    let mut s = Served::start(&[]).await;
    let before = metric(
        &s.metrics().await,
        "floe_guard_tls_handshake_failures_total",
    );
    let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    tcp.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let (closed, got) = closed_within(&mut tcp, Duration::from_secs(2)).await;
    assert!(closed, "plaintext connection left open");
    assert!(!got.starts_with(b"HTTP/"), "{got:?}");
    // Whatever was sent is a TLS alert record, if anything.
    assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
    let after = metric(
        &s.metrics().await,
        "floe_guard_tls_handshake_failures_total",
    );
    assert_eq!(after, before + 1.0);
    conclude(
        &mut s,
        "plaintext HTTP on the TLS port",
        &format!(
            "connection closed, {} (TLS handshake failure counted)",
            if got.is_empty() {
                "nothing sent".to_string()
            } else {
                format!("TLS alert {:?}", &got)
            }
        ),
    )
    .await;
}

/// A TLS ClientHello offering only `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1,
/// 0x0303 TLS 1.2), without `supported_versions`; with `signature_algorithms`
/// when `sigalgs` (TLS 1.0/1.1-only clients do not send it; a TLS 1.2 stack
/// capped at 1.1 may).
fn client_hello(version: u16, sigalgs: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc013, 0xc009, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    // server_name: localhost
    let name = b"localhost";
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    // supported_groups: secp256r1, x25519
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    if sigalgs {
        // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256
        ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04]);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

#[tokio::test]
async fn tls_1_0_and_1_1_clients_are_refused_with_a_protocol_version_alert() {
    let mut s = Served::start(&[]).await;
    // As TLS 1.0/1.1-only clients send it (no signature_algorithms): fatal
    // handshake_failure (40); from a newer stack capped at 1.0/1.1 (with
    // signature_algorithms): fatal protocol_version (70).
    for (version, name) in [(0x0301u16, "TLS 1.0"), (0x0302, "TLS 1.1")] {
        for (sigalgs, alert) in [(false, 40u8), (true, 70)] {
            let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
            tcp.write_all(&client_hello(version, sigalgs))
                .await
                .unwrap();
            let (closed, got) = closed_within(&mut tcp, Duration::from_secs(2)).await;
            assert!(closed, "{name}: connection left open");
            // One alert record, level fatal (2).
            assert!(got.len() >= 7 && got[0] == 0x15, "{name}: {got:?}");
            assert_eq!(&got[5..7], &[2, alert], "{name} sigalgs={sigalgs}: {got:?}");
        }
    }
    // The same bytes offering TLS 1.2 get a ServerHello (so the refusal is the version).
    let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    tcp.write_all(&client_hello(0x0303, true)).await.unwrap();
    let mut first = [0u8; 6];
    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut first)
        .await
        .unwrap();
    assert_eq!(
        (first[0], first[5]),
        (0x16, 0x02),
        "expected a ServerHello: {first:?}"
    );

    // And a real TLS 1.0/1.1 client (OpenSSL, its security level lowered so it
    // may offer them at all), when installed.
    let mut openssl = "not installed".to_string();
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok()
    {
        for flag in ["-tls1", "-tls1_1"] {
            let out = std::process::Command::new("openssl")
                .args([
                    "s_client",
                    flag,
                    "-cipher",
                    "DEFAULT:@SECLEVEL=0",
                    "-connect",
                ])
                .arg(format!("127.0.0.1:{}", s.port))
                .args(["-servername", "localhost"])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "openssl {flag} connected:\n{text}");
            assert!(
                text.contains("alert handshake failure") || text.contains("alert protocol version"),
                "openssl {flag}:\n{text}"
            );
            eprintln!(
                "openssl s_client {flag}: {}",
                text.lines()
                    .filter(|l| l.contains("alert") || l.contains("Protocol"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
        }
        openssl = "`openssl s_client -tls1` / `-tls1_1` fail with a TLS alert".into();
    }
    conclude(
        &mut s,
        "TLS 1.0 / 1.1 client",
        &format!("fatal alert handshake_failure (40) or protocol_version (70), closed; {openssl}"),
    )
    .await;
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_stop_service() {
    // Below the connection cap (the default for 128Mi is 1,024): what
    // happens at the cap is `reliability_flood`'s subject.
    let mut s = Served::start(&["--max-connections", "1500"]).await;
    let rss_before = s.status_kb("VmRSS");
    let tls = tls_config(&s.ca);
    // 1,000 established TLS connections that never send a request.
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (tls, sem, port) = (tls.clone(), sem.clone(), s.port);
            tokio::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                raw_tls(&tls, port).await.unwrap()
            })
        })
        .collect();
    let mut idle = Vec::new();
    for t in tasks {
        idle.push(t.await.unwrap());
    }
    // Plus 200 raw TCP connections that never start the handshake.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(("127.0.0.1", s.port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = s.metrics().await;
    assert!(metric(&m, "floe_guard_connections") >= 1000.0, "{m}");
    let rss_idle = s.status_kb("VmRSS");
    let start = Instant::now();
    s.assert_serves().await;
    let latency = start.elapsed();
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    let per_conn_kb = rss_idle.saturating_sub(rss_before) / 1200;
    s.report(
        "1,000 concurrent idle TLS connections (+200 silent TCP)",
        &format!(
            "still serving (next request {} ms); RSS {} → {} MiB (~{per_conn_kb} KiB per connection)",
            latency.as_millis(),
            rss_before / 1024,
            rss_idle / 1024
        ),
    );
    assert!(
        rss_idle - rss_before < 100 * 1024,
        "RSS grew {} kB",
        rss_idle - rss_before
    );
    assert_bounded(&s);
    drop(idle);
    drop(silent);
}
