//! The writes of `bootstrap`: server-side apply each object (refusing what
//! would silently widen a live policy), prune the stale floe policies, and
//! record every change: a structured log event (target `floe_guard::audit`)
//! per object created, configured, pruned or that a dry run would change,
//! and for real changes a Kubernetes Event in the object's namespace.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::FIELD_MANAGER;
use super::client::{ClusterError, Kube, Scoped, to_json};
use crate::bootstrap::report::{self, Row};
use crate::bootstrap::{self, Action, facts};
use crate::network::Generated;

/// What to apply and how.
pub struct Plan<'a> {
    /// The managed namespaces, labelled.
    pub namespaces: &'a [Namespace],
    /// The generated policies.
    pub generated: &'a Generated,
    /// The managed namespace names (the prune scope).
    pub managed: &'a [String],
    /// `dryRun=All`.
    pub dry_run: bool,
    /// Server-side apply `force`.
    pub force: bool,
    /// Delete stale floe policies.
    pub prune: bool,
    /// Refuse to drop `except` entries of live policies (the CIDRs came
    /// from discovery, not from the config).
    pub guard_exceptions: bool,
}

/// A failure that stops the run, or one that fails only its object.
enum Failure {
    Cluster(ClusterError),
    Refused(String),
}

impl From<ClusterError> for Failure {
    fn from(e: ClusterError) -> Self {
        Failure::Cluster(e)
    }
}

async fn apply_one<K: Scoped>(
    kube: &Kube,
    obj: &K,
    plan: &Plan<'_>,
    refuse: impl Fn(&K) -> Option<String>,
) -> Result<Action, Failure> {
    let meta = kube::Resource::meta(obj);
    let name = meta.name.as_deref().unwrap_or_default();
    let before = kube.get::<K>(meta.namespace.as_deref(), name).await?;
    if let Some(why) = before.as_ref().and_then(&refuse) {
        return Err(Failure::Refused(why));
    }
    let after = kube.apply(obj, plan.dry_run, plan.force).await?;
    Ok(bootstrap::classify(
        before.map(|b| to_json(&b)).as_ref(),
        &to_json(&after),
    ))
}

/// Adds the row of a result and records it; errors that make every further
/// call pointless (unreachable, unauthorized) stop the run instead.
async fn push(
    kube: &Kube,
    rows: &mut Vec<Row>,
    (kind, namespace, name): (&'static str, Option<String>, String),
    r: Result<Action, Failure>,
    dry_run: bool,
) -> Result<(), ClusterError> {
    let (result, error) = match r {
        Ok(a) => (a, None),
        Err(Failure::Cluster(
            e @ (ClusterError::Unreachable(_)
            | ClusterError::Unauthorized { .. }
            | ClusterError::NoConfig(_)),
        )) => return Err(e),
        Err(Failure::Cluster(e)) => (Action::Failed, Some(e.to_string())),
        Err(Failure::Refused(why)) => (Action::Failed, Some(why)),
    };
    let row = Row {
        kind,
        namespace,
        name,
        result,
        error,
    };
    record(kube, &row, dry_run).await;
    rows.push(row);
    Ok(())
}

/// Logs a change, and records it as an Event when it is real. An Event that
/// cannot be written is a warning in the log, never a failure.
async fn record(kube: &Kube, r: &Row, dry_run: bool) {
    let Some(verb) = report::changed(r.result) else {
        return;
    };
    tracing::info!(
        target: "floe_guard::audit",
        action = verb,
        kind = r.kind,
        namespace = r.namespace.as_deref().unwrap_or(""),
        name = %r.name,
        field_manager = FIELD_MANAGER,
        dry_run,
        "bootstrap {}{verb} {} {}",
        if dry_run { "would have " } else { "" },
        r.kind,
        r.namespace.as_ref().map_or_else(|| r.name.clone(), |ns| format!("{ns}/{}", r.name)),
    );
    if dry_run {
        return;
    }
    let event = report::event(r, k8s_openapi::jiff::Timestamp::now());
    if let Err(e) = kube.create_event(&event).await {
        tracing::warn!(target: "floe_guard::audit", error = %e, "cannot record the Event");
    }
}

/// Applies the plan; `progress` is told each step (`what`, done, total).
pub async fn run(
    kube: &Kube,
    plan: &Plan<'_>,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<Vec<Row>, ClusterError> {
    let policies: Vec<&NetworkPolicy> = plan.generated.policies().collect();
    let mut total = plan.namespaces.len() + policies.len();
    let mut rows = Vec::new();
    let mut dry_created = BTreeSet::new();
    for ns in plan.namespaces {
        let name = ns.metadata.name.clone().unwrap_or_default();
        progress(&format!("namespace {name}"), rows.len() + 1, total);
        let r = apply_one(kube, ns, plan, |_| None).await;
        if plan.dry_run && matches!(r, Ok(Action::Created)) {
            dry_created.insert(name.clone());
        }
        push(kube, &mut rows, ("Namespace", None, name), r, plan.dry_run).await?;
    }
    for p in policies {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        progress(&format!("networkpolicy {ns}/{name}"), rows.len() + 1, total);
        // In a dry run, a namespace that does not exist yet cannot hold
        // anything: its policies would be created with it.
        let r = if dry_created.contains(&ns) {
            Ok(Action::Created)
        } else {
            apply_one(kube, p, plan, |live: &NetworkPolicy| {
                let dropped = facts::dropped_exceptions(live, p);
                (plan.guard_exceptions && !dropped.is_empty()).then(|| {
                    format!(
                        "refused to apply {ns}/{name}: it would drop the external-HTTPS exceptions {} \
                         that the live policy has, because discovery found fewer cluster CIDRs than \
                         before; set security.network_policies.cluster_cidrs to the pod and service CIDRs",
                        dropped.join(", ")
                    )
                })
            })
            .await
        };
        push(
            kube,
            &mut rows,
            ("NetworkPolicy", Some(ns), name),
            r,
            plan.dry_run,
        )
        .await?;
    }
    if plan.prune {
        let mut deployed = Vec::new();
        for ns in plan.managed.iter().filter(|ns| !dry_created.contains(*ns)) {
            let selector = bootstrap::managed_selector();
            deployed.extend(
                kube.list::<NetworkPolicy>(Some(ns), Some(&selector))
                    .await?,
            );
        }
        let stale = bootstrap::stale_policies(&deployed, plan.generated, plan.managed);
        total += stale.len();
        for (ns, name) in stale {
            progress(
                &format!("prune networkpolicy {ns}/{name}"),
                rows.len() + 1,
                total,
            );
            let r = kube
                .delete::<NetworkPolicy>(Some(&ns), &name, plan.dry_run)
                .await
                .map(|()| Action::Pruned)
                .map_err(Failure::from);
            push(
                kube,
                &mut rows,
                ("NetworkPolicy", Some(ns), name),
                r,
                plan.dry_run,
            )
            .await?;
        }
    }
    Ok(rows)
}
