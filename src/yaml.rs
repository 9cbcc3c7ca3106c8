//! Reading Kubernetes objects from YAML or JSON files.

use anyhow::{Context, anyhow, bail};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::pss::UnknownSource;

/// Parses one YAML (or JSON) document into untyped JSON.
pub fn parse_one(text: &str, origin: &str) -> anyhow::Result<Value> {
    let mut value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| anyhow!("{origin}: not a valid YAML or JSON document: {e}"))?;
    octal_file_modes(&mut value);
    if !value.is_object() {
        bail!("{origin}: expected a Kubernetes object (a mapping with apiVersion and kind)");
    }
    Ok(value)
}

/// Parses every document of a multi-document YAML stream, skipping empty ones.
pub fn parse_all(text: &str, origin: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let mut value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| anyhow!("{origin}: document {}: not valid YAML: {e}", i + 1))?;
        octal_file_modes(&mut value);
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// Reads file modes written the YAML 1.1 way, as kubectl does: `defaultMode:
/// 0440` is the octal 288. The YAML 1.2 parser keeps such plain scalars as
/// strings, which the typed Kubernetes structs would reject.
fn octal_file_modes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if let (Value::String(s), "defaultMode" | "mode") = (&*v, key.as_str())
                    && s.len() > 1
                    && s.starts_with('0')
                    && let Ok(n) = i64::from_str_radix(&s[1..], 8)
                {
                    *v = Value::from(n);
                } else {
                    octal_file_modes(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(octal_file_modes),
        _ => {}
    }
}

/// The kind of an object, for messages.
pub fn kind_of(object: &Value) -> &str {
    object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("<no kind>")
}

/// The pod metadata and spec of a Pod, or of a workload's pod template
/// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, PodTemplate).
///
/// Also returns the volume sources the typed spec cannot hold (unknown to
/// this build), for [`crate::pss::check_with`].
pub fn pod_template(
    object: &Value,
    origin: &str,
) -> anyhow::Result<(ObjectMeta, PodSpec, Vec<UnknownSource>)> {
    let kind = kind_of(object);
    let template = match kind {
        "Pod" => object,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &object["spec"]["template"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"],
        "PodTemplate" => &object["template"],
        other => {
            bail!("{origin}: expected a Pod or a workload with a pod template, got kind {other}")
        }
    };
    let meta = match template.get("metadata") {
        Some(m) => serde_json::from_value(m.clone())
            .with_context(|| format!("{origin}: invalid {kind} metadata"))?,
        None => ObjectMeta::default(),
    };
    let spec = template
        .get("spec")
        .ok_or_else(|| anyhow!("{origin}: the {kind} has no pod spec"))?;
    let unknown = crate::admission::unknown_volume_sources(spec)
        .map_err(|e| anyhow!("{origin}: invalid {kind} pod spec: {e}"))?;
    let spec = serde_json::from_value(spec.clone())
        .with_context(|| format!("{origin}: invalid {kind} pod spec"))?;
    Ok((meta, spec, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_are_octal_as_kubectl_reads_them() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: c, image: x}]\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0440, items: [{key: k, path: p, mode: 0600}]}\n  - name: c\n    configMap: {name: c, defaultMode: 420}\n";
        let v = parse_one(text, "pod.yaml").unwrap();
        assert_eq!(v["spec"]["volumes"][0]["secret"]["defaultMode"], 288);
        assert_eq!(v["spec"]["volumes"][0]["secret"]["items"][0]["mode"], 384);
        assert_eq!(v["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
        let (_, spec, _) = pod_template(&v, "pod.yaml").unwrap();
        assert_eq!(spec.volumes.unwrap().len(), 2);
    }
}
