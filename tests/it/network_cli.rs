//! `floe-guard network generate | validate | explain`, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

fn floe_guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(args)
        .env_remove("FLOE_GUARD_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/network-manifest.yaml")
        .display()
        .to_string()
}

fn generate(dir: &Path, config: Option<&str>) {
    let mut args = vec!["network", "generate", "--out", dir.to_str().unwrap()];
    if let Some(c) = config {
        args.extend(["--config", c]);
    }
    let o = floe_guard(&args);
    assert!(o.status.success(), "{o:?}");
}

fn validate(dir: &Path, config: Option<&str>) -> Output {
    let mut args = vec!["network", "validate", "--dir", dir.to_str().unwrap()];
    if let Some(c) = config {
        args.extend(["--config", c]);
    }
    floe_guard(&args)
}

#[test]
fn generated_files_validate_and_drift_is_reported_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    generate(dir, None);
    let o = validate(dir, None);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("6 files match the config"));

    // Same meaning, other form (JSON, rules and ports reordered): still valid.
    let path = dir.join("floe-platform-allow-ingress.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["spec"]["ingress"].as_array_mut().unwrap().reverse();
    v["spec"]["ingress"][0]["ports"]
        .as_array_mut()
        .unwrap()
        .reverse();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(validate(dir, None).status.code(), Some(0));

    // A port changed: drift.
    v["spec"]["ingress"][0]["ports"][0]["port"] = 8182.into();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let o = validate(dir, None);
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(
        out.contains("changed policy floe-platform/floe-allow-ingress"),
        "{out}"
    );
    assert!(out.contains("+     port: 8182"), "{out}");

    // An unknown field: invalid.
    v["spec"]["ingress"][0]["ports"][0]["port"] = 9000.into();
    v["spec"]["bogus"] = true.into();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let out = stdout(&validate(dir, None));
    assert!(out.contains("unknown field spec.bogus"), "{out}");

    // Against another config: missing files, stale summary.
    generate(dir, None);
    let o = validate(dir, Some(&example()));
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(
        out.contains("missing file floe-sales-domain-default-deny.yaml"),
        "{out}"
    );
    assert!(
        out.contains("NETWORK-POLICY-SUMMARY.md does not match the config"),
        "{out}"
    );
}

#[test]
fn generate_removes_files_it_no_longer_generates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("mine.yaml"), "kind: ConfigMap\n").unwrap();
    generate(dir, Some(&example()));
    assert!(dir.join("floe-sales-domain-allow-ingress.yaml").exists());
    generate(dir, None);
    assert!(!dir.join("floe-sales-domain-allow-ingress.yaml").exists());
    assert!(
        dir.join("mine.yaml").exists(),
        "files floe did not write are kept"
    );
    let out = stdout(&validate(dir, None));
    assert!(out.contains("unexpected file mine.yaml"), "{out}");
}

#[test]
fn explain_names_the_deciding_rules_and_exits_3_when_denied() {
    let o = floe_guard(&[
        "network",
        "explain",
        "--from",
        "floe-jobs",
        "--to",
        "floe-platform/app.kubernetes.io/name=polaris",
        "--port",
        "8181",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("TCP 8181: allowed"), "{out}");
    assert!(
        out.contains("egress : allowed by floe-jobs/floe-allow-egress, egress rule 1"),
        "{out}"
    );
    assert!(
        out.contains("ingress: allowed by floe-platform/floe-allow-ingress, ingress rule 2 ("),
        "{out}"
    );
    assert!(out.contains("Polaris"), "{out}");

    let o = floe_guard(&[
        "network",
        "explain",
        "--from",
        "floe-jobs",
        "--to",
        "203.0.113.10",
        "--port",
        "53/udp",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(out.contains("UDP 53: denied"), "{out}");
    assert!(
        out.contains("isolated by floe-jobs/floe-default-deny, floe-jobs/floe-allow-egress"),
        "{out}"
    );

    let o = floe_guard(&[
        "network",
        "explain",
        "--from",
        "floe-jobs",
        "--to",
        "kube-system/k8s-app=kube-dns",
    ]);
    assert_eq!(
        stdout(&o).trim(),
        "floe-jobs -> kube-system/k8s-app=kube-dns: TCP 53; UDP 53"
    );

    let o = floe_guard(&[
        "network",
        "explain",
        "--from",
        "floe-jobs",
        "--to",
        "floe-jobs",
        "--port",
        "8080",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"]["allowed"], false);
    assert_eq!(v["verdict"]["egress"]["decision"], "denied");
}

#[test]
fn explain_matrix_from_config_or_directory() {
    let o = floe_guard(&["network", "explain", "--config", &example()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let block = |from: &str| {
        let start = out.find(&format!("\n{from}\n")).unwrap();
        out[start + 1..]
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with(from) || l.starts_with("  "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let sales = block("floe-sales-domain");
    assert!(sales.contains("-> floe-marketing-domain  -"), "{sales}");
    assert!(
        sales.contains("-> floe-platform          TCP 4317, 4318, 8181"),
        "{sales}"
    );

    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path(), Some(&example()));
    let from_dir = floe_guard(&[
        "network",
        "explain",
        "--dir",
        tmp.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    let from_config = floe_guard(&["network", "explain", "--config", &example(), "-o", "json"]);
    let flows = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["flows"].clone()
    };
    // Same policies, same flows (the directory adds no namespace the config lacks except `streaming`).
    let dir_flows = flows(&from_dir);
    for cell in flows(&from_config).as_array().unwrap() {
        assert!(dir_flows.as_array().unwrap().contains(cell), "{cell}");
    }
}

#[test]
fn server_dry_run_against_an_unreachable_cluster_is_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path(), None);
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let o = floe_guard(&[
        "network",
        "validate",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--server-dry-run",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cluster unreachable"), "{err}");
}

#[test]
fn bad_queries_are_usage_or_input_errors() {
    let o = floe_guard(&["network", "explain", "--from", "floe-jobs"]);
    assert_eq!(o.status.code(), Some(2), "--from needs --to");
    let o = floe_guard(&[
        "network",
        "explain",
        "--from",
        "floe-jobs",
        "--to",
        "x",
        "--port",
        "99999",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a port 1..65535"));
}
