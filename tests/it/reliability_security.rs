//! Security properties of the running server (SECURITY.md): the TLS versions
//! and cipher suites it negotiates, and no secret or token in its logs.

use crate::support::reliability::*;
use crate::support::server::{job_pod, pod_review};
use serde_json::json;

/// `openssl s_client` with `args`; (connected, negotiated "Protocol/Cipher").
fn s_client(port: u16, ca: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" (or "New, (NONE), Cipher is (NONE)").
    let cipher = text
        .lines()
        .find_map(|l| {
            l.split_once("Cipher is ")
                .map(|(_, c)| c.trim().to_string())
        })
        .unwrap_or_default();
    let ok = out.status.success() && !cipher.is_empty() && cipher != "(NONE)";
    if !ok {
        eprintln!("openssl s_client {args:?}: {}", out.status);
    }
    (ok, cipher)
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_with_aead_forward_secret_suites() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: openssl not installed");
        return;
    }
    let s = Served::start(&[]).await;
    let ca = s.dir.path().join("ca.crt");
    let mut accepted = Vec::new();
    // TLS 1.3: every suite offered by OpenSSL.
    for suite in [
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        let (ok, cipher) = s_client(s.port, &ca, &["-tls1_3", "-ciphersuites", suite]);
        assert!(ok, "TLS 1.3 {suite} refused");
        assert_eq!(cipher, suite);
        accepted.push(format!("TLSv1.3 {suite}"));
    }
    // TLS 1.2: ECDHE + AEAD only (the certificate is ECDSA P-256).
    for suite in [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let (ok, cipher) = s_client(s.port, &ca, &["-tls1_2", "-cipher", suite]);
        assert!(ok, "TLS 1.2 {suite} refused");
        assert_eq!(cipher, suite);
        accepted.push(format!("TLSv1.2 {suite}"));
    }
    for suite in [
        "ECDHE-ECDSA-AES128-SHA",    // CBC
        "ECDHE-ECDSA-AES256-SHA384", // CBC
        "AES128-GCM-SHA256",         // static RSA key exchange
        "DHE-RSA-AES128-GCM-SHA256", // finite-field DH
        "ECDHE-ECDSA-NULL-SHA",      // no encryption
    ] {
        let (ok, _) = s_client(
            s.port,
            &ca,
            &["-tls1_2", "-cipher", &format!("{suite}:@SECLEVEL=0")],
        );
        assert!(!ok, "TLS 1.2 {suite} accepted");
    }
    eprintln!("accepted: {}", accepted.join(", "));
}

#[tokio::test]
async fn logs_carry_no_secret_token_or_object_content() {
    let mut s = Served::start(&[]).await;
    let secret = "s3cr3t-VALUE-7f1c";
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRva2VuIn0.c2VjcmV0";
    let mut pod = job_pod("floe-jobs");
    pod["spec"]["containers"][0]["env"] = json!([{"name": "DB_PASSWORD", "value": secret}]);
    pod["spec"]["containers"][0]["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 8080,
        "httpHeaders": [{"name": "Authorization", "value": format!("Bearer {token}")}]}});
    pod["metadata"]["annotations"] = json!({"note": secret});
    let mut review = pod_review("uid-secret", "CREATE", Some(&pod), None);
    review["request"]["userInfo"]["extra"] =
        json!({"authentication.kubernetes.io/credential-id": [token]});
    let url = format!("{}/mutate", s.url());
    // Allowed, denied (privileged), and malformed (a wrong-typed field) reviews.
    let (status, _) = crate::support::server::post(&s.client, &url, &review).await;
    assert_eq!(status, 200);
    let mut denied = review.clone();
    denied["request"]["object"]["spec"]["containers"][0]["securityContext"] =
        json!({"privileged": true});
    let (status, _) = crate::support::server::post(&s.client, &url, &denied).await;
    assert_eq!(status, 200);
    let mut malformed = review.clone();
    malformed["request"]["object"]["spec"]["containers"][0]["ports"] = json!(secret);
    let (status, body) = crate::support::server::post(&s.client, &url, &malformed).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], false);
    let mut bad = review.clone();
    bad["kind"] = json!(7);
    let (status, _) = crate::support::server::post(&s.client, &url, &bad).await;
    assert_eq!(status, 400);
    s.assert_serves().await;

    let reviews_logged = |log: &str| log.lines().filter(|l| l.contains("uid-secret")).count() >= 3;
    let log = s.log_when(reviews_logged).await;
    assert!(reviews_logged(&log), "{log}");
    for needle in [secret, token, "Bearer", "BEGIN", "DB_PASSWORD"] {
        assert!(!log.contains(needle), "{needle} in the log:\n{log}");
    }
}
