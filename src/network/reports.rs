//! The audit's [findings](super::findings) as policy reports, the format
//! Policy Reporter and similar dashboards read beside Kyverno's, Kubewarden's
//! and Trivy's: OpenReports `Report`/`ClusterReport`
//! (`openreports.io/v1alpha1`, the default) or their predecessors
//! `PolicyReport`/`ClusterPolicyReport` (`wgpolicyk8s.io/v1alpha2`).
//!
//! One namespaced report named [`REPORT_NAME`] per namespace with at least one
//! finding, scoped to that Namespace; the cluster-wide findings in one
//! cluster report of the same name. Every result names policy `floe-guard`,
//! the rule, its severity, the resource and, for a failure, the fix (in the
//! message and as property `fix`); the summary counts the results. The
//! schemas are the CRDs' (`tests/data/reports/`): `wgpolicyk8s.io/v1alpha2`
//! has no report-level `source` (the API server would prune it), so there the
//! source is on each result only.

use serde_json::{Map, Value, json};

use super::audit::NamespaceAudit;
use super::findings::{self, Finding, Verdict};
use super::foreign::ForeignPolicy;
use crate::config::Config;

/// The policy every result names.
pub const POLICY: &str = "floe-guard";
/// The `source` of the reports and their results.
pub const SOURCE: &str = "floe-guard";
/// The name of every report floe-guard writes.
pub const REPORT_NAME: &str = "floe-guard-audit";
/// The label marking floe-guard's reports (how stale ones are found).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "floe-guard");

/// Which report API to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` `Report` and `ClusterReport`.
    #[value(name = "openreports")]
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport` and `ClusterPolicyReport`.
    #[value(name = "wgpolicyk8s")]
    Wgpolicyk8s,
}

impl ReportApi {
    /// The `apiVersion` of its reports.
    pub fn api_version(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "openreports.io/v1alpha1",
            ReportApi::Wgpolicyk8s => "wgpolicyk8s.io/v1alpha2",
        }
    }

    /// The `kind` of its namespaced or cluster-scoped report.
    pub fn kind(self, namespaced: bool) -> &'static str {
        match (self, namespaced) {
            (ReportApi::OpenReports, true) => "Report",
            (ReportApi::OpenReports, false) => "ClusterReport",
            (ReportApi::Wgpolicyk8s, true) => "PolicyReport",
            (ReportApi::Wgpolicyk8s, false) => "ClusterPolicyReport",
        }
    }
}

/// When the results were found (`metav1.Timestamp`, as the reports want it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second (0..1e9).
    pub nanos: i32,
}

/// The reports for an audit: the namespaced ones in namespace order, then
/// the cluster report.
pub fn from_audit(
    cfg: &Config,
    audits: &[NamespaceAudit],
    foreign: &[ForeignPolicy],
    api: ReportApi,
    at: Timestamp,
) -> Vec<Value> {
    let foreign = findings::foreign_findings(foreign);
    let namespaced: Vec<(&str, Vec<Finding>)> = audits
        .iter()
        .map(|a| {
            let mut found = a.findings();
            found.extend(
                foreign
                    .iter()
                    .filter(|f| f.subject.namespace.as_deref() == Some(a.name.as_str()))
                    .cloned(),
            );
            (a.name.as_str(), found)
        })
        .collect();
    build(
        &namespaced,
        &findings::cluster_findings(cfg, audits),
        api,
        at,
    )
}

/// Reports for findings grouped by namespace, and the cluster-wide ones.
/// A group without findings gets no report.
pub fn build(
    namespaced: &[(&str, Vec<Finding>)],
    cluster: &[Finding],
    api: ReportApi,
    at: Timestamp,
) -> Vec<Value> {
    let mut out: Vec<Value> = namespaced
        .iter()
        .filter(|(_, f)| !f.is_empty())
        .map(|(ns, f)| report(api, Some(ns), f, at))
        .collect();
    if !cluster.is_empty() {
        out.push(report(api, None, cluster, at));
    }
    out
}

fn report(api: ReportApi, namespace: Option<&str>, found: &[Finding], at: Timestamp) -> Value {
    let mut metadata = json!({"name": REPORT_NAME, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!(api.api_version()));
    doc.insert("kind".into(), json!(api.kind(namespace.is_some())));
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    doc.insert("metadata".into(), metadata);
    if api == ReportApi::OpenReports {
        doc.insert("source".into(), json!(SOURCE));
    }
    if let Some(ns) = namespace {
        doc.insert(
            "scope".into(),
            json!({"apiVersion": "v1", "kind": "Namespace", "name": ns}),
        );
    }
    let count = |v: Verdict| found.iter().filter(|f| f.verdict == v).count();
    doc.insert(
        "summary".into(),
        json!({"pass": count(Verdict::Pass), "fail": count(Verdict::Fail),
               "warn": count(Verdict::Warn), "error": 0, "skip": 0}),
    );
    doc.insert(
        "results".into(),
        found.iter().map(|f| result(f, at)).collect(),
    );
    Value::Object(doc)
}

fn result(f: &Finding, at: Timestamp) -> Value {
    let s = &f.subject;
    let mut resource = json!({"apiVersion": s.api_version, "kind": s.kind, "name": s.name});
    if let Some(ns) = &s.namespace {
        resource["namespace"] = json!(ns);
    }
    let mut properties: Map<String, Value> = f
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if let Some(fix) = &f.fix {
        properties.insert("fix".into(), json!(fix));
    }
    let mut r = json!({
        "source": SOURCE,
        "policy": POLICY,
        "rule": f.rule,
        "category": f.category,
        "severity": f.severity,
        "result": f.verdict,
        "scored": true,
        "timestamp": {"seconds": at.seconds, "nanos": at.nanos},
        "resources": [resource],
        "message": f.text(),
    });
    if !properties.is_empty() {
        r["properties"] = Value::Object(properties);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::audit::ViolatingPod;
    use crate::network::findings::tests::ns;

    const AT: Timestamp = Timestamp {
        seconds: 1_800_000_000,
        nanos: 5,
    };

    fn jobs() -> NamespaceAudit {
        let mut jobs = ns("floe-jobs", true);
        jobs.violating_pods.push(ViolatingPod {
            name: "root".into(),
            violations: vec!["privileged: container c is privileged".into()],
        });
        jobs
    }

    fn team() -> NamespaceAudit {
        ns("team", false)
    }

    #[test]
    fn one_report_per_namespace_with_findings_and_one_cluster_report() {
        let mut team = team();
        team.system = true;
        let r = from_audit(
            &Config::default(),
            &[jobs(), team],
            &[],
            ReportApi::OpenReports,
            AT,
        );
        let kinds: Vec<(&str, &str)> = r
            .iter()
            .map(|r| {
                (
                    r["kind"].as_str().unwrap(),
                    r["metadata"]["namespace"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(kinds, [("Report", "floe-jobs"), ("ClusterReport", "-")]);
        let jobs = &r[0];
        assert_eq!(jobs["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(jobs["metadata"]["name"], REPORT_NAME);
        assert_eq!(jobs["source"], SOURCE);
        assert_eq!(
            jobs["scope"],
            json!({"apiVersion": "v1", "kind": "Namespace", "name": "floe-jobs"})
        );
        assert_eq!(
            jobs["summary"],
            json!({"pass": 2, "fail": 2, "warn": 0, "error": 0, "skip": 0})
        );
        let pod = &jobs["results"][3];
        assert_eq!(pod["policy"], POLICY);
        assert_eq!(pod["rule"], "pod-security-level");
        assert_eq!(pod["result"], "fail");
        assert_eq!(pod["severity"], "high");
        assert_eq!(
            pod["resources"],
            json!([{"apiVersion": "v1", "kind": "Pod", "namespace": "floe-jobs", "name": "root"}])
        );
        assert_eq!(
            pod["timestamp"],
            json!({"seconds": 1_800_000_000, "nanos": 5})
        );
        assert!(
            pod["properties"]["fix"]
                .as_str()
                .unwrap()
                .contains("pss check")
        );
        assert!(pod["message"].as_str().unwrap().contains("; fix: recreate"));
        // floe-platform is configured but absent: the cluster report fails it.
        assert_eq!(r[1]["summary"]["fail"], 1);
        assert!(r[1].get("scope").is_none());
    }

    #[test]
    fn wgpolicyk8s_reports_carry_the_source_on_each_result_only() {
        let r = from_audit(
            &Config::default(),
            &[jobs()],
            &[],
            ReportApi::Wgpolicyk8s,
            AT,
        );
        assert_eq!(r[0]["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(r[0]["kind"], "PolicyReport");
        assert_eq!(r[1]["kind"], "ClusterPolicyReport");
        assert!(r[0].get("source").is_none());
        assert_eq!(r[0]["results"][0]["source"], SOURCE);
    }

    #[test]
    fn a_clean_cluster_has_only_passing_results() {
        let mut clean = jobs();
        clean.violating_pods.clear();
        clean.default_deny_egress = vec!["deny".into()];
        let mut platform = clean.clone();
        platform.name = "floe-platform".into();
        let r = from_audit(
            &Config::default(),
            &[platform, clean],
            &[],
            ReportApi::OpenReports,
            AT,
        );
        for r in &r {
            assert_eq!(r["summary"]["fail"], 0, "{r}");
            assert!(r["summary"]["pass"].as_u64() > Some(0));
        }
    }

    #[test]
    fn foreign_policies_and_unlabelled_namespaces_are_failures_with_their_fix() {
        let mut team = team();
        team.enforce = None;
        let foreign = [
            ForeignPolicy {
                namespace: "floe-jobs".into(),
                name: "allow-all".into(),
                accepted: false,
                opens: vec!["floe-jobs ingress from anywhere on any port, by allow-all".into()],
            },
            ForeignPolicy {
                namespace: "floe-jobs".into(),
                name: "reviewed".into(),
                accepted: true,
                opens: vec!["floe-jobs egress to 10.0.0.0/8 on 5432".into()],
            },
        ];
        let r = from_audit(
            &Config::default(),
            &[jobs(), team],
            &foreign,
            ReportApi::OpenReports,
            AT,
        );
        let result = |ns: &str, rule: &str, name: &str| {
            r.iter()
                .filter(|r| r["metadata"]["namespace"] == ns)
                .flat_map(|r| r["results"].as_array().unwrap())
                .find(|x| x["rule"] == rule && x["resources"][0]["name"] == name)
                .unwrap_or_else(|| panic!("no {rule} result for {ns}/{name}"))
                .clone()
        };
        let open = result("floe-jobs", "foreign-policy-widens", "allow-all");
        assert_eq!(open["result"], "fail");
        assert_eq!(open["resources"][0]["kind"], "NetworkPolicy");
        assert!(
            open["properties"]["fix"]
                .as_str()
                .unwrap()
                .contains("kubectl delete networkpolicy allow-all -n floe-jobs")
        );
        assert_eq!(
            result("floe-jobs", "foreign-policy-widens", "reviewed")["result"],
            "warn"
        );
        let labels = result("team", "pss-labels", "team");
        assert_eq!(labels["result"], "fail");
        assert!(
            labels["properties"]["fix"]
                .as_str()
                .unwrap()
                .contains("kubectl label --overwrite namespace team")
        );
    }
}
