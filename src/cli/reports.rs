//! `network audit -o reports` and `--apply-reports`: prints the policy
//! reports of [`crate::network::reports`] as YAML, or server-side applies
//! them (field manager `floe-guard`, taking over any field another manager
//! set: floe-guard rewrites its reports whole on every run) and deletes the
//! floe-guard reports of a previous run that this run no longer writes.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::Context;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Client, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::kube::client::{ClusterError, Kube, Scoped};
use crate::network::audit::NamespaceAudit;
use crate::network::foreign::ForeignPolicy;
use crate::network::reports::{MANAGED_BY, ReportApi, Timestamp, from_audit};

macro_rules! report_kind {
    ($name:ident, $group:literal, $version:literal, $kind:literal, $plural:literal, $scope:ty, $api:expr) => {
        #[doc = concat!("A `", $group, "/", $version, "` `", $kind, "`, as JSON under typed metadata.")]
        #[derive(Debug, Clone, Serialize, Deserialize)]
        struct $name {
            #[serde(default)]
            metadata: ObjectMeta,
            #[serde(flatten)]
            body: Map<String, Value>,
        }

        impl Resource for $name {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl Scoped for $name {
            fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
                $api(client, namespace)
            }
        }
    };
}

fn namespaced<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    namespace.map_or_else(
        || Api::all(client.clone()),
        |ns| Api::namespaced(client.clone(), ns),
    )
}

fn cluster<K: Resource<DynamicType = (), Scope = ClusterResourceScope>>(
    client: Client,
    _: Option<&str>,
) -> Api<K> {
    Api::all(client)
}

report_kind!(
    Report,
    "openreports.io",
    "v1alpha1",
    "Report",
    "reports",
    NamespaceResourceScope,
    namespaced
);
report_kind!(
    ClusterReport,
    "openreports.io",
    "v1alpha1",
    "ClusterReport",
    "clusterreports",
    ClusterResourceScope,
    cluster
);
report_kind!(
    PolicyReport,
    "wgpolicyk8s.io",
    "v1alpha2",
    "PolicyReport",
    "policyreports",
    NamespaceResourceScope,
    namespaced
);
report_kind!(
    ClusterPolicyReport,
    "wgpolicyk8s.io",
    "v1alpha2",
    "ClusterPolicyReport",
    "clusterpolicyreports",
    ClusterResourceScope,
    cluster
);

/// The reports as YAML documents (`kubectl apply --server-side -f -` takes them).
pub(super) fn yaml(reports: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for r in reports {
        writeln!(out, "---\n{}", serde_yaml_ng::to_string(r)?.trim_end())?;
    }
    Ok(out)
}

/// Applies the reports, removes floe-guard's stale ones, and says so on
/// standard error.
pub(super) async fn apply(kube: &Kube, api: ReportApi, reports: &[Value]) -> anyhow::Result<()> {
    let (applied, removed) = match api {
        ReportApi::OpenReports => apply_as::<Report, ClusterReport>(kube, api, reports).await?,
        ReportApi::Wgpolicyk8s => {
            apply_as::<PolicyReport, ClusterPolicyReport>(kube, api, reports).await?
        }
    };
    let namespaced = applied.iter().filter(|(ns, _)| ns.is_some()).count();
    eprintln!(
        "reports: applied {namespaced} {} and {} {} ({}){}",
        api.kind(true),
        applied.len() - namespaced,
        api.kind(false),
        api.api_version(),
        if removed.is_empty() {
            String::new()
        } else {
            format!("; removed stale: {}", removed.join(", "))
        }
    );
    Ok(())
}

type Key = (Option<String>, String);

async fn apply_as<N: Scoped, C: Scoped>(
    kube: &Kube,
    api: ReportApi,
    reports: &[Value],
) -> anyhow::Result<(BTreeSet<Key>, Vec<String>)> {
    let mut applied = BTreeSet::new();
    for r in reports {
        let ns = r["metadata"]["namespace"].as_str().map(String::from);
        let name = r["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let what = format!(
            "{} {}",
            r["kind"].as_str().unwrap_or_default(),
            key(&ns, &name)
        );
        match ns {
            Some(_) => apply_one::<N>(kube, api, r).await,
            None => apply_one::<C>(kube, api, r).await,
        }
        .with_context(|| format!("cannot apply {what}"))?;
        applied.insert((ns, name));
    }
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let mut removed = Vec::new();
    let mut stale = Vec::new();
    match kube.list_cluster::<N>(Some(&selector)).await {
        Ok(items) => stale.extend(items.iter().map(|r| (true, meta_key(r.meta())))),
        Err(e) => eprintln!("warning: cannot look for stale reports: {e}"),
    }
    match kube.list_cluster::<C>(Some(&selector)).await {
        Ok(items) => stale.extend(items.iter().map(|r| (false, meta_key(r.meta())))),
        Err(e) => eprintln!("warning: cannot look for stale reports: {e}"),
    }
    for (is_namespaced, k) in stale.into_iter().filter(|(_, k)| !applied.contains(k)) {
        let (ns, name) = &k;
        if is_namespaced {
            kube.delete::<N>(ns.as_deref(), name, false).await?;
        } else {
            kube.delete::<C>(None, name, false).await?;
        }
        removed.push(key(ns, name));
    }
    Ok((applied, removed))
}

async fn apply_one<K: Scoped>(kube: &Kube, api: ReportApi, report: &Value) -> anyhow::Result<()> {
    let obj: K = serde_json::from_value(report.clone()).context("invalid report")?;
    kube.apply(&obj, false, true)
        .await
        .map_err(|e| explain(e, api))?;
    Ok(())
}

fn meta_key(m: &ObjectMeta) -> Key {
    (m.namespace.clone(), m.name.clone().unwrap_or_default())
}

fn key(ns: &Option<String>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// A 404 on a report means its CRD is not installed: say which, and what to do.
fn explain(e: ClusterError, api: ReportApi) -> anyhow::Error {
    match e {
        ClusterError::Api { code: 404, .. } => {
            let group = api.api_version().split('/').next().unwrap_or_default();
            let other = match api {
                ReportApi::OpenReports => "wgpolicyk8s",
                ReportApi::Wgpolicyk8s => "openreports",
            };
            anyhow::anyhow!(
                "{e}: the {} and {} CRDs ({group}) are not installed in this cluster; install them (Policy Reporter and Kyverno ship them) or write the other API with --report-api {other}",
                api.kind(true),
                api.kind(false),
            )
        }
        e => e.into(),
    }
}

/// The reports of an audit, stamped with the time of this run.
pub(super) fn build(
    cfg: &Config,
    audits: &[NamespaceAudit],
    foreign: &[ForeignPolicy],
    api: ReportApi,
) -> Vec<Value> {
    from_audit(cfg, audits, foreign, api, now())
}

fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}
