//! `network audit -o reports` and `--apply-reports` against the fake API
//! server: the findings as OpenReports (or wgpolicyk8s.io) policy reports,
//! every one validated against its CRD's schema (`tests/data/reports/`).

use std::path::Path;

use crate::support::fake_apiserver::{FakeApiServer, Fault, floe_guard, stderr, stdout};
use serde_json::{Value, json};

/// The CRD's `openAPIV3Schema`, closed the way a structural schema prunes:
/// an object with `properties` accepts no other field (the API server would
/// silently drop it, so a test must not accept it).
fn crd_schema(file: &str) -> Value {
    fn close(v: &mut Value) {
        if let Some(o) = v.as_object_mut() {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), json!(false));
            }
            for child in o.values_mut() {
                close(child);
            }
        } else if let Some(a) = v.as_array_mut() {
            a.iter_mut().for_each(close);
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reports")
        .join(file);
    let crd: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).expect("CRD file")).unwrap();
    let mut schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    assert!(schema.is_object(), "{}: no openAPIV3Schema", path.display());
    close(&mut schema);
    schema
}

/// Errors of `report` against the CRD of its kind.
fn schema_errors(report: &Value) -> Vec<String> {
    let file = match report["kind"].as_str().unwrap_or_default() {
        "Report" => "openreports.io_reports.yaml",
        "ClusterReport" => "openreports.io_clusterreports.yaml",
        "PolicyReport" => "wgpolicyk8s.io_policyreports.yaml",
        "ClusterPolicyReport" => "wgpolicyk8s.io_clusterpolicyreports.yaml",
        other => panic!("not a report kind: {other}"),
    };
    let validator = jsonschema::validator_for(&crd_schema(file)).expect("valid schema");
    validator
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(report: &Value) {
    let errors = schema_errors(report);
    assert!(errors.is_empty(), "{errors:#?}\nin {report:#}");
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .collect()
}

/// Results of `report` as `rule result Kind/name`.
fn results(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let res = &r["resources"][0];
            let s = |v: &Value| v.as_str().unwrap().to_string();
            format!(
                "{} {} {}/{}",
                s(&r["rule"]),
                s(&r["result"]),
                s(&res["kind"]),
                s(&res["name"])
            )
        })
        .collect()
}

fn by_namespace<'a>(reports: &'a [Value], ns: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["metadata"]["namespace"] == ns)
        .unwrap_or_else(|| panic!("no report in {ns}"))
}

fn privileged_pod(ns: &str, name: &str) -> Value {
    json!({"kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                    "securityContext": {"privileged": true}}]}})
}

/// Bootstrapped floe namespaces, a floe namespace without policies, a
/// privileged pod in floe-jobs and one in an unmanaged namespace enforcing
/// baseline.
fn cluster_with_findings() -> FakeApiServer {
    let f = FakeApiServer::start();
    assert_eq!(
        floe_guard(f.kubeconfig(), &["bootstrap"]).status.code(),
        Some(0)
    );
    f.insert(json!({"kind": "Namespace", "metadata": {"name": "floe-extra",
        "labels": {"app.kubernetes.io/part-of": "floe", "pod-security.kubernetes.io/enforce": "restricted"}}}));
    f.insert(privileged_pod("floe-jobs", "bad-job"));
    f.insert(json!({"kind": "Namespace", "metadata": {"name": "team",
        "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}));
    f.insert(privileged_pod("team", "debug"));
    f
}

#[test]
fn audit_prints_openreports_that_validate_against_the_crds() {
    let f = cluster_with_findings();
    let out = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "reports"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = documents(&stdout(&out));
    let kinds: Vec<String> = reports
        .iter()
        .map(|r| format!("{} {}", r["kind"], r["metadata"]["namespace"]))
        .collect();
    assert_eq!(
        kinds,
        [
            r#""Report" "floe-extra""#,
            r#""Report" "floe-jobs""#,
            r#""Report" "floe-platform""#,
            r#""Report" "team""#,
            r#""ClusterReport" null"#
        ]
    );
    for r in &reports {
        assert_valid(r);
        assert_eq!(r["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(r["metadata"]["name"], "floe-guard-audit");
        assert_eq!(r["source"], "floe-guard");
        for res in r["results"].as_array().unwrap() {
            assert_eq!(res["policy"], "floe-guard");
            assert!(res["timestamp"]["seconds"].as_i64().unwrap() > 1_700_000_000);
        }
        for k in ["pass", "fail", "warn"] {
            let n = r["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["result"] == k)
                .count();
            assert_eq!(r["summary"][k], n, "{k}: {r:#}");
        }
    }
    let extra = by_namespace(&reports, "floe-extra");
    assert_eq!(
        extra["scope"],
        json!({"apiVersion": "v1", "kind": "Namespace", "name": "floe-extra"})
    );
    let ingress = &extra["results"][0];
    assert_eq!(ingress["rule"], "default-deny-ingress");
    assert_eq!(ingress["result"], "fail");
    assert_eq!(ingress["severity"], "high");
    assert_eq!(ingress["properties"]["fix"], "floe-guard bootstrap");
    let jobs = by_namespace(&reports, "floe-jobs");
    assert_eq!(
        results(jobs),
        [
            "default-deny-ingress pass Namespace/floe-jobs",
            "default-deny-egress pass Namespace/floe-jobs",
            "pss-labels pass Namespace/floe-jobs",
            "pod-security-level fail Pod/bad-job",
        ]
    );
    let pod = &jobs["results"][3];
    assert_eq!(pod["resources"][0]["namespace"], "floe-jobs");
    assert!(
        pod["message"].as_str().unwrap().contains("privileged"),
        "{pod:#}"
    );
    // An unmanaged namespace is reported for its labels and violating pods.
    assert_eq!(
        results(by_namespace(&reports, "team")),
        [
            "pss-labels pass Namespace/team",
            "pod-security-level fail Pod/debug",
        ]
    );
    let cluster = reports.last().unwrap();
    assert_eq!(
        results(cluster),
        [
            "managed-namespace pass Namespace/floe-platform",
            "managed-namespace pass Namespace/floe-jobs",
        ]
    );
}

#[test]
fn report_api_wgpolicyk8s_prints_policy_reports_that_validate_against_the_crds() {
    let f = cluster_with_findings();
    let out = floe_guard(
        f.kubeconfig(),
        &[
            "network",
            "audit",
            "-o",
            "reports",
            "--report-api",
            "wgpolicyk8s",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let reports = documents(&stdout(&out));
    assert_eq!(reports.len(), 5);
    for r in &reports {
        assert_valid(r);
        assert_eq!(r["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(r["results"][0]["source"], "floe-guard");
    }
    assert_eq!(reports[0]["kind"], "PolicyReport");
    assert_eq!(reports[4]["kind"], "ClusterPolicyReport");
}

#[test]
fn the_schemas_reject_what_the_api_server_would_refuse_or_prune() {
    let f = cluster_with_findings();
    let out = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "reports"]);
    let good = documents(&stdout(&out)).remove(0);
    assert_valid(&good);
    let mut bad_result = good.clone();
    bad_result["results"][0]["result"] = json!("failed");
    assert!(!schema_errors(&bad_result).is_empty());
    let mut no_policy = good.clone();
    no_policy["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("policy");
    assert!(!schema_errors(&no_policy).is_empty());
    // wgpolicyk8s.io/v1alpha2 has no report-level source: it would be pruned.
    let mut legacy = good;
    legacy["kind"] = json!("PolicyReport");
    legacy["apiVersion"] = json!("wgpolicyk8s.io/v1alpha2");
    let errors = schema_errors(&legacy);
    assert!(errors.iter().any(|e| e.contains("source")), "{errors:?}");
}

#[test]
fn apply_reports_writes_them_to_the_cluster_and_replaces_them_each_run() {
    let f = cluster_with_findings();
    let out = floe_guard(
        f.kubeconfig(),
        &["network", "audit", "--apply-reports", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        serde_json::from_slice::<Value>(&out.stdout).is_ok(),
        "stdout stays JSON"
    );
    assert!(
        stderr(&out)
            .contains("reports: applied 4 Report and 1 ClusterReport (openreports.io/v1alpha1)"),
        "{}",
        stderr(&out)
    );
    assert!(
        f.requests().iter().any(|r| r.starts_with(
            "PATCH /apis/openreports.io/v1alpha1/namespaces/floe-jobs/reports/floe-guard-audit?"
        ) && r.contains("fieldManager=floe-guard")
            && r.contains("force=true")),
        "{:#?}",
        f.requests()
    );
    let stored = f
        .get("Report", Some("floe-jobs"), "floe-guard-audit")
        .expect("stored report");
    assert_valid(&stored);
    assert_eq!(stored["summary"]["fail"], 1);
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "floe-guard"
    );
    assert_valid(
        &f.get("ClusterReport", None, "floe-guard-audit")
            .expect("cluster report"),
    );

    // Fixed: the pod is gone and team deleted. floe-jobs' results are
    // replaced, team's report removed.
    f.remove("Pod", Some("floe-jobs"), "bad-job");
    f.remove("Pod", Some("team"), "debug");
    f.remove("Namespace", None, "team");
    let again = floe_guard(f.kubeconfig(), &["network", "audit", "--apply-reports"]);
    assert!(
        stderr(&again).contains("removed stale: team/floe-guard-audit"),
        "{}",
        stderr(&again)
    );
    let jobs = f
        .get("Report", Some("floe-jobs"), "floe-guard-audit")
        .unwrap();
    assert_eq!(
        results(&jobs),
        [
            "default-deny-ingress pass Namespace/floe-jobs",
            "default-deny-egress pass Namespace/floe-jobs",
            "pss-labels pass Namespace/floe-jobs",
            "pod-security-level pass Namespace/floe-jobs",
        ]
    );
    assert!(f.get("Report", Some("team"), "floe-guard-audit").is_none());
    assert_eq!(f.all("Report").len(), 3);
    // floe-extra still has no default-deny: still a finding.
    assert_eq!(again.status.code(), Some(3));
}

#[test]
fn apply_reports_with_wgpolicyk8s_writes_policy_reports() {
    let f = cluster_with_findings();
    let out = floe_guard(
        f.kubeconfig(),
        &[
            "network",
            "audit",
            "--apply-reports",
            "--report-api",
            "wgpolicyk8s",
        ],
    );
    assert!(
        stderr(&out)
            .contains("applied 4 PolicyReport and 1 ClusterPolicyReport (wgpolicyk8s.io/v1alpha2)"),
        "{}",
        stderr(&out)
    );
    for r in f
        .all("PolicyReport")
        .iter()
        .chain(&f.all("ClusterPolicyReport"))
    {
        assert_valid(r);
    }
    assert!(f.all("Report").is_empty());
}

#[test]
fn apply_reports_says_which_crds_are_missing_and_what_to_do() {
    let f = cluster_with_findings();
    f.fail(Fault {
        method: Some("PATCH"),
        path: "/apis/openreports.io/".into(),
        status: 404,
        times: 1,
    });
    let out = floe_guard(f.kubeconfig(), &["network", "audit", "--apply-reports"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot apply Report floe-extra/floe-guard-audit"),
        "{err}"
    );
    assert!(
        err.contains("the Report and ClusterReport CRDs (openreports.io) are not installed"),
        "{err}"
    );
    assert!(err.contains("--report-api wgpolicyk8s"), "{err}");
}

#[test]
fn a_configured_namespace_missing_from_the_cluster_fails_in_the_cluster_report_and_the_table() {
    let f = FakeApiServer::start();
    f.insert(
        json!({"kind": "Namespace", "metadata": {"name": "floe-jobs",
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    );
    let table = floe_guard(f.kubeconfig(), &["network", "audit"]);
    assert_eq!(table.status.code(), Some(3));
    assert!(
        stdout(&table).contains("floe-platform: managed namespace floe-platform does not exist: its default-deny policies and Pod Security labels are missing; fix: floe-guard bootstrap"),
        "{}",
        stdout(&table)
    );
    let out = floe_guard(f.kubeconfig(), &["network", "audit", "-o", "reports"]);
    assert_eq!(out.status.code(), Some(3));
    let reports = documents(&stdout(&out));
    let cluster = reports.last().unwrap();
    assert_valid(cluster);
    assert_eq!(cluster["kind"], "ClusterReport");
    assert_eq!(
        results(cluster),
        [
            "managed-namespace fail Namespace/floe-platform",
            "managed-namespace pass Namespace/floe-jobs",
        ]
    );
    assert_eq!(
        cluster["results"][0]["properties"]["fix"],
        "floe-guard bootstrap"
    );
}
