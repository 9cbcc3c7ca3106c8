//! The offline commands: `mutate`, `check-namespace`, `pss check`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::json;

use super::{
    CheckNamespaceArgs, MutateArgs, MutateOutput, Outcome, PssCheckArgs, TextOrJson, input_name,
    read_input,
};
use crate::admission;
use crate::config::JOBS_NAMESPACE;
use crate::harden::{self, Decision, Operation, PodRequest, Template};
use crate::namespace::{self, NamespaceVerdict};
use crate::pss;
use crate::yaml;

/// `floe-guard pss check`.
pub fn pss_check(a: PssCheckArgs) -> anyhow::Result<Outcome> {
    let name = input_name(&a.file);
    let object = yaml::parse_one(&read_input(&a.file)?, &name)?;
    let (meta, spec, unknown) = yaml::pod_template(&object, &name)?;
    let violations = pss::check_with(&meta, &spec, &unknown, a.level);
    match a.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "level": a.level.as_str(),
                "allowed": violations.is_empty(),
                "violations": violations,
            }))?
        ),
        TextOrJson::Text if violations.is_empty() => {
            println!("{name}: satisfies {}", a.level)
        }
        TextOrJson::Text => {
            let n = violations.len();
            let noun = if n == 1 { "violation" } else { "violations" };
            println!("{name}: violates {} ({n} {noun})", a.level);
            for v in &violations {
                println!("  - {} at {}\n      {}", v.check, v.path, v.message);
            }
        }
    }
    Ok(if violations.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

/// `floe-guard mutate`.
pub fn mutate(a: MutateArgs) -> anyhow::Result<Outcome> {
    let config = a.config.load()?;
    let name = input_name(&a.file);
    let mut object = yaml::parse_one(&read_input(&a.file)?, &name)?;
    // A Job's or CronJob's pod template is hardened as at its CREATE.
    let template = match yaml::kind_of(&object) {
        "Pod" => None,
        "Job" => Some(Template::Job),
        "CronJob" => Some(Template::CronJob),
        other => bail!("{name}: expected a Pod, Job or CronJob, got kind {other}"),
    };
    if template.is_some() && a.old.is_some() {
        bail!("--old applies to a Pod (kubectl debug), not to a Job or CronJob");
    }
    let (mut pod, unknown) = match template {
        None => {
            let pod: Pod = serde_json::from_value(object.clone())
                .map_err(|e| anyhow!("{name}: not a valid Pod: {e}"))?;
            let unknown = admission::unknown_volume_sources(&object["spec"])
                .map_err(|e| anyhow!("{name}: not a valid Pod: {e}"))?;
            (pod, unknown)
        }
        Some(_) => {
            let (metadata, spec, unknown) = yaml::pod_template(&object, &name)?;
            let mut pod = Pod {
                metadata,
                spec: Some(spec),
                status: None,
            };
            pod.metadata.namespace = object["metadata"]["namespace"].as_str().map(String::from);
            (pod, unknown)
        }
    };
    let namespace = a
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_else(|| JOBS_NAMESPACE.to_string());
    // With --old: the pods/ephemeralcontainers UPDATE of `kubectl debug`.
    let existing = match &a.old {
        Some(old) => Some(ephemeral_names(old)?),
        None => None,
    };
    let req = PodRequest {
        namespace: &namespace,
        operation: match (&existing, template) {
            (Some(existing), _) => Operation::AddEphemeral { existing },
            (None, Some(t)) => Operation::CreateTemplate(t),
            (None, None) => Operation::Create,
        },
        username: &a.user,
    };
    if let Some(skip) = harden::skip(&pod, &req, &config) {
        let what = template.map_or("pod", |_| "pod template");
        eprintln!("note: the {what} is left untouched: {}", skip.reason());
    }
    match harden::harden(&mut pod, &unknown, &req, &config) {
        Decision::Deny { reasons, .. } => {
            if a.output == MutateOutput::Yaml {
                eprintln!("{}", Decision::deny_message(&reasons));
            } else {
                let denial = json!({"allowed": false, "namespace": namespace, "reasons": reasons});
                println!("{}", serde_json::to_string_pretty(&denial)?);
            }
            Ok(Outcome::Finding)
        }
        Decision::Allow {
            patch, warnings, ..
        } => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            let patch = patch.operations();
            json_patch::patch(&mut object, &patch)
                .map_err(|e| anyhow!("internal error: the patch does not apply: {e}"))?;
            match a.output {
                MutateOutput::Yaml => print!("{}", serde_yaml_ng::to_string(&object)?),
                MutateOutput::Json => println!("{}", serde_json::to_string_pretty(&object)?),
                MutateOutput::Patch => println!("{}", serde_json::to_string_pretty(&patch)?),
            }
            Ok(Outcome::Clean)
        }
    }
}

/// The names of the ephemeral containers of the pod in `file`.
fn ephemeral_names(file: &Path) -> anyhow::Result<Vec<String>> {
    let name = input_name(file);
    let old: Pod = serde_json::from_value(yaml::parse_one(&read_input(file)?, &name)?)
        .map_err(|e| anyhow!("{name}: not a valid Pod: {e}"))?;
    Ok(old
        .spec
        .and_then(|s| s.ephemeral_containers)
        .into_iter()
        .flatten()
        .map(|c| c.name)
        .collect())
}

/// The metadata.name and labels of the Namespace in `file`.
fn read_namespace(file: &Path) -> anyhow::Result<(String, BTreeMap<String, String>)> {
    let name = input_name(file);
    let object = yaml::parse_one(&read_input(file)?, &name)?;
    if yaml::kind_of(&object) != "Namespace" {
        bail!(
            "{name}: expected a Namespace, got kind {}",
            yaml::kind_of(&object)
        );
    }
    let ns: Namespace = serde_json::from_value(object)
        .map_err(|e| anyhow!("{name}: not a valid Namespace: {e}"))?;
    let ns_name = ns
        .metadata
        .name
        .ok_or_else(|| anyhow!("{name}: the Namespace has no metadata.name"))?;
    Ok((ns_name, ns.metadata.labels.unwrap_or_default()))
}

/// `floe-guard check-namespace`.
pub fn check_namespace(a: CheckNamespaceArgs) -> anyhow::Result<Outcome> {
    let config = a.config.load()?;
    let (ns_name, labels) = read_namespace(&a.file)?;
    // With --old: the UPDATE from that namespace.
    let old = match &a.old {
        Some(file) => {
            let (old_name, old_labels) = read_namespace(file)?;
            if old_name != ns_name {
                bail!(
                    "--old names namespace {old_name:?}, -f names {ns_name:?}: a namespace cannot be renamed"
                );
            }
            Some(old_labels)
        }
        None => None,
    };
    let verdict = namespace::validate_change(&ns_name, &labels, old.as_ref(), &config);
    match a.output {
        TextOrJson::Json => {
            let (problems, fix) = match &verdict {
                NamespaceVerdict::Invalid { problems, fix } => {
                    (problems.clone(), Some(fix.clone()))
                }
                _ => (Vec::new(), None),
            };
            let out = json!({
                "namespace": ns_name,
                "managed": verdict != NamespaceVerdict::Unmanaged,
                "allowed": verdict.allowed(),
                "problems": problems,
                "fix": fix,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        TextOrJson::Text => match &verdict {
            NamespaceVerdict::Unmanaged => println!("{ns_name}: not managed by floe, allowed"),
            NamespaceVerdict::Valid => println!("{ns_name}: Pod Security labels are valid"),
            NamespaceVerdict::Invalid { problems, fix } => {
                println!("{ns_name}: denied");
                for p in problems {
                    println!("  - {p}");
                }
                println!("fix: {fix}");
            }
        },
    }
    Ok(if verdict.allowed() {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}
