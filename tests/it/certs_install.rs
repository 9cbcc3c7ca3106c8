//! `floe-guard certs install` against the fake API server of
//! [`crate::support::certs_apiserver`]: the binary, with the arguments the
//! manifests pass, through a kubeconfig.

use axum::http::Method;

use crate::support::certs_apiserver::{Fake, closed_port_url, decode, job_args, run, text};
use floe_guard::certs::inspect::pem_certs;

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
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with("secret floe-guard/floe-guard-ca: created (new CA, valid until "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(
            "secret floe-guard/floe-guard-tls: created (serving certificate valid until "
        ),
        "{stdout}"
    );
    assert!(lines[2].starts_with("mutatingwebhookconfiguration floe-guard: caBundle set on pods.floe-guard.floe.dev, audit.pods.floe-guard.floe.dev (1 CA(s))"), "{stdout}");
    assert!(lines[3].starts_with("validatingwebhookconfiguration floe-guard: caBundle set on namespaces.floe-guard.floe.dev (1 CA(s))"), "{stdout}");
    assert_eq!(
        fake.writes(),
        [
            "POST /api/v1/namespaces/floe-guard/secrets",
            "POST /api/v1/namespaces/floe-guard/secrets",
            "PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/floe-guard",
            "PATCH /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/floe-guard",
        ]
    );

    // The serving Secret is laid out as cert-manager writes it, without the
    // CA's key, which has a Secret of its own; its CA is what every webhook
    // entry trusts; the rest of the configurations is intact.
    let secret = fake.secret().unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let data = secret["data"].as_object().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    let ca_secret = fake.ca_secret().unwrap();
    assert_eq!(ca_secret["type"], "kubernetes.io/tls");
    assert_eq!(
        ca_secret["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["tls.crt", "tls.key"]
    );
    let ca = decode(data["ca.crt"].as_str().unwrap());
    assert_eq!(
        pem_certs(&ca),
        pem_certs(&decode(ca_secret["data"]["tls.crt"].as_str().unwrap()))
    );
    let bundles = fake.ca_bundles();
    // pods, audit.pods (the audit-mode entry) and namespaces.
    assert_eq!(bundles.len(), 3);
    for bundle in &bundles {
        assert_eq!(pem_certs(bundle), pem_certs(&ca));
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
    assert_eq!(fake.writes().len(), 4, "the second run wrote nothing");
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
    // The error vocabulary of every cluster command (kube::client).
    assert_eq!(
        stderr,
        "error: forbidden (403): user \"system:serviceaccount:floe-guard:floe-guard-certs\" cannot patch validatingwebhookconfigurations at cluster scope; grant it with the RBAC rule {apiGroups: [\"admissionregistration.k8s.io\"], resources: [\"validatingwebhookconfigurations\"], verbs: [\"patch\"]} in a ClusterRole\n"
    );

    let fake = Fake::start();
    fake.state.lock().unwrap().forbidden = Some((Method::POST, "secrets"));
    let out = fake.run(&["certs", "install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(
            "error: forbidden (403): user \"system:serviceaccount:floe-guard:floe-guard-certs\" cannot create secrets in namespace floe-guard; grant it with the RBAC rule {apiGroups: [\"\"], resources: [\"secrets\"], verbs: [\"create\"]} in a Role in namespace floe-guard"
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
    // The Secrets created before the conflict are kept, not created twice.
    assert_eq!(
        fake.writes()
            .iter()
            .filter(|w| w.starts_with("POST"))
            .count(),
        2
    );
    let ca = decode(fake.secret().unwrap()["data"]["ca.crt"].as_str().unwrap());
    for bundle in fake.ca_bundles() {
        assert_eq!(pem_certs(&bundle), pem_certs(&ca));
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
