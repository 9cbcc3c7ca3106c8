//! Decoding of AdmissionReview requests into the lean structs the decisions
//! read: the field contract of the hot path.
//!
//! A rule may read only what is decoded here; adding a field starts here,
//! then the rule, then a case in `lean_decoding_decides_like_full_decoding`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EphemeralContainer, Lifecycle, Pod, PodOS,
    PodSecurityContext, PodSpec, Probe, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::{API_VERSION, BadReview};
use crate::pss::UnknownSource;

/// A decoded review: either a request to decide, or one to refuse with 400.
pub(super) enum Decoded<O> {
    Request(Request<O>),
    Malformed { uid: String, message: String },
}

pub(super) fn decode<O: DeserializeOwned>(body: &[u8]) -> Result<Decoded<O>, BadReview> {
    // The fast decoder accepts exactly what serde_json accepts; on a refusal,
    // serde_json decodes again to word the error.
    let decoded = fastjson::from_slice::<ReviewIn<O>>(body)
        .or_else(|_| serde_json::from_slice::<ReviewIn<O>>(body));
    match decoded {
        Ok(review) => {
            check_envelope(review.api_version.as_deref(), review.kind.as_deref())?;
            let request = review
                .request
                .ok_or_else(|| BadReview("the AdmissionReview has no `request`".into()))?;
            if request.uid.is_empty() {
                return Err(BadReview("request.uid is empty".into()));
            }
            Ok(Decoded::Request(request))
        }
        Err(e) => {
            // Not decodable as a whole: answer by uid when the envelope is sound.
            let envelope: ReviewIn<IgnoredAny> = serde_json::from_slice(body)
                .map_err(|_| BadReview(format!("not an AdmissionReview: {e}")))?;
            check_envelope(envelope.api_version.as_deref(), envelope.kind.as_deref())?;
            let uid = envelope
                .request
                .map(|r| r.uid)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| BadReview("the AdmissionReview has no `request.uid`".into()))?;
            let path = serde_path_to_error::deserialize::<_, ReviewIn<O>>(
                &mut serde_json::Deserializer::from_slice(body),
            )
            .err()
            .map(|e| e.path().to_string())
            .unwrap_or_default();
            Ok(Decoded::Malformed {
                uid,
                message: format!("floe-guard cannot decode the request at {path}: {e}"),
            })
        }
    }
}

pub(super) fn check_envelope(
    api_version: Option<&str>,
    kind: Option<&str>,
) -> Result<(), BadReview> {
    if kind != Some("AdmissionReview") {
        return Err(BadReview(format!(
            "expected kind AdmissionReview, got {}",
            clip(kind.unwrap_or("none"))
        )));
    }
    if api_version != Some(API_VERSION) {
        return Err(BadReview(format!(
            "expected apiVersion {API_VERSION}, got {} (configure admissionReviewVersions: [v1])",
            clip(api_version.unwrap_or("none"))
        )));
    }
    Ok(())
}

/// Input echoed in a message, cut to a readable length (a hostile body can
/// make it megabytes long).
pub(super) fn clip(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}…", &s[..end]),
        None => format!("{s:?}"),
    }
}

#[derive(Deserialize)]
pub(super) struct ReviewIn<O> {
    #[serde(rename = "apiVersion")]
    pub(super) api_version: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) request: Option<Request<O>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request<O> {
    #[serde(default)]
    pub(super) uid: String,
    #[serde(default)]
    pub(super) kind: GroupVersionKind,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) operation: String,
    #[serde(default)]
    pub(super) user_info: UserInfo,
    /// `ephemeralcontainers` for `kubectl debug`; absent for the resource itself.
    pub(super) sub_resource: Option<String>,
    #[serde(default = "none")]
    pub(super) object: Option<O>,
    /// The object before an UPDATE (`null` on CREATE).
    #[serde(default = "none")]
    pub(super) old_object: Option<O>,
}

fn none<O>() -> Option<O> {
    None
}

#[derive(Deserialize, Default)]
pub(super) struct GroupVersionKind {
    #[serde(default)]
    pub(super) group: String,
    #[serde(default)]
    pub(super) version: String,
    #[serde(default)]
    pub(super) kind: String,
}

/// `request.userInfo.groups`, read only when a decision needs them (a
/// change of the enforcement label): the hot path never decodes them.
pub(super) fn user_groups(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Review {
        request: Req,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        user_info: Groups,
    }
    #[derive(Deserialize)]
    struct Groups {
        #[serde(default)]
        groups: Vec<String>,
    }
    serde_json::from_slice::<Review>(body)
        .map(|r| r.request.user_info.groups)
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
pub(super) struct UserInfo {
    #[serde(default)]
    pub(super) username: String,
}

/// The parts of a Pod the decision reads (of `oldObject`, the names of the
/// ephemeral containers). Everything else (managedFields,
/// env, resources, status…) is skipped unparsed: this is most of the bytes
/// the API server sends, and most of the decoding time.
///
/// Hardening and the PSS checks must read no field that is not decoded here;
/// `tests::lean_decoding_decides_like_full_decoding` holds them to it over the
/// whole upstream conformance corpus.
#[derive(Deserialize)]
pub(super) struct PodObject {
    #[serde(default)]
    pub(super) metadata: PodMeta,
    pub(super) spec: Option<Box<PodSpecFields>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodMeta {
    pub(super) name: Option<String>,
    pub(super) generate_name: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) annotations: Option<BTreeMap<String, String>>,
    pub(super) owner_references: Option<Vec<OwnerReference>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodSpecFields {
    #[serde(default)]
    pub(super) containers: Vec<ContainerFields>,
    pub(super) init_containers: Option<Vec<ContainerFields>>,
    pub(super) ephemeral_containers: Option<Vec<ContainerFields>>,
    pub(super) security_context: Option<Box<PodSecurityContext>>,
    pub(super) volumes: Option<Vec<VolumeFields>>,
    pub(super) host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub(super) host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    pub(super) host_ipc: Option<bool>,
    pub(super) host_users: Option<bool>,
    pub(super) os: Option<PodOS>,
    pub(super) runtime_class_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
/// The large optional parts are boxed: most containers lack them, and a
/// small element keeps the decoded list cheap to grow and move.
pub(super) struct ContainerFields {
    #[serde(default)]
    pub(super) name: String,
    pub(super) security_context: Option<Box<SecurityContext>>,
    pub(super) ports: Option<Vec<ContainerPort>>,
    pub(super) liveness_probe: Option<Box<Probe>>,
    pub(super) readiness_probe: Option<Box<Probe>>,
    pub(super) startup_probe: Option<Box<Probe>>,
    pub(super) lifecycle: Option<Box<Lifecycle>>,
    pub(super) volume_mounts: Option<Vec<VolumeMountFields>>,
}

/// A volume mount as the decision sees it: where it mounts (hardening adds
/// a writable volume only where none is mounted). `name` must be present,
/// as in `VolumeMount`, but only `mountPath` is type-checked; the other
/// fields are skipped (the API server has validated them already).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VolumeMountFields {
    #[serde(rename = "name")]
    pub(super) _name: IgnoredAny,
    pub(super) mount_path: String,
}

/// A volume as the decision sees it: its name, which sources it sets, the
/// `emptyDir` source in full (hardening recognises its own writable volumes
/// by name and `emptyDir` shape), and a source key this build does not know
/// (`restricted` denies it). The other sources' contents are skipped (the PSS
/// checks only ask which source a volume uses), which spares decoding the
/// large `Volume` type.
pub(super) struct VolumeFields {
    pub(super) name: String,
    /// Bit `i` set: the volume has `VOLUME_SOURCES[i]`.
    pub(super) sources: u64,
    pub(super) empty_dir: Option<EmptyDirVolumeSource>,
    /// The first key other than `name` that is not a known source.
    pub(super) unknown: Option<Box<str>>,
}

/// Every `Volume` source field but `emptyDir` (decoded in full), by its JSON
/// name, with a setter that marks it present on a k8s-openapi `Volume`.
macro_rules! volume_sources {
    ($($key:literal => $field:ident),* $(,)?) => {
        const VOLUME_SOURCES: &[(&str, fn(&mut Volume))] = &[
            $(($key, |v| v.$field = Some(Default::default()))),*
        ];
    };
}

volume_sources! {
    "awsElasticBlockStore" => aws_elastic_block_store,
    "azureDisk" => azure_disk,
    "azureFile" => azure_file,
    "cephfs" => cephfs,
    "cinder" => cinder,
    "configMap" => config_map,
    "csi" => csi,
    "downwardAPI" => downward_api,
    "ephemeral" => ephemeral,
    "fc" => fc,
    "flexVolume" => flex_volume,
    "flocker" => flocker,
    "gcePersistentDisk" => gce_persistent_disk,
    "gitRepo" => git_repo,
    "glusterfs" => glusterfs,
    "hostPath" => host_path,
    "image" => image,
    "iscsi" => iscsi,
    "nfs" => nfs,
    "persistentVolumeClaim" => persistent_volume_claim,
    "photonPersistentDisk" => photon_persistent_disk,
    "portworxVolume" => portworx_volume,
    "projected" => projected,
    "quobyte" => quobyte,
    "rbd" => rbd,
    "scaleIO" => scale_io,
    "secret" => secret,
    "storageos" => storageos,
    "vsphereVolume" => vsphere_volume,
}

impl<'de> Deserialize<'de> for VolumeFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = VolumeFields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Volume")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<VolumeFields, A::Error> {
                let mut volume = VolumeFields {
                    name: String::new(),
                    sources: 0,
                    empty_dir: None,
                    unknown: None,
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "name" {
                        volume.name = map.next_value()?;
                        continue;
                    }
                    if key == "emptyDir" {
                        // `null` is an absent source, as in `Option<_>`.
                        volume.empty_dir = map.next_value()?;
                        continue;
                    }
                    let source = VOLUME_SOURCES.iter().position(|(k, _)| *k == key);
                    if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                        match source {
                            Some(i) => volume.sources |= 1 << i,
                            None => {
                                volume.unknown.get_or_insert_with(|| key.into());
                            }
                        }
                    }
                }
                Ok(volume)
            }
        }
        d.deserialize_map(Fields)
    }
}

impl VolumeFields {
    fn into_volume(self) -> Volume {
        let mut volume = Volume {
            name: self.name,
            ..Volume::default()
        };
        volume.empty_dir = self.empty_dir;
        for (i, (_, mark)) in VOLUME_SOURCES.iter().enumerate() {
            if self.sources & (1 << i) != 0 {
                mark(&mut volume);
            }
        }
        volume
    }
}

/// Moves the decoded fields into a k8s-openapi container type: `Container`
/// and `EphemeralContainer` share every field the decision reads.
macro_rules! container_from {
    ($ty:ident, $f:expr) => {{
        let f: ContainerFields = $f;
        $ty {
            name: f.name,
            security_context: f.security_context.map(|b| *b),
            ports: f.ports,
            liveness_probe: f.liveness_probe.map(|b| *b),
            readiness_probe: f.readiness_probe.map(|b| *b),
            startup_probe: f.startup_probe.map(|b| *b),
            lifecycle: f.lifecycle.map(|b| *b),
            volume_mounts: f.volume_mounts.map(|mounts| {
                mounts
                    .into_iter()
                    .map(|m| VolumeMount {
                        mount_path: m.mount_path,
                        ..VolumeMount::default()
                    })
                    .collect()
            }),
            ..$ty::default()
        }
    }};
}

impl PodObject {
    /// The names of the pod's ephemeral containers.
    pub(super) fn ephemeral_container_names(self) -> Vec<String> {
        self.spec
            .and_then(|s| s.ephemeral_containers)
            .into_iter()
            .flatten()
            .map(|c| c.name)
            .collect()
    }

    /// The pod, with room for `spare_volumes` more volumes (those hardening
    /// adds), so that adding them does not move the large `Volume`s; and the
    /// volume sources the typed pod cannot hold.
    pub(super) fn into_pod(self, spare_volumes: usize) -> (Pod, Vec<UnknownSource>) {
        let m = self.metadata;
        let mut unknown = Vec::new();
        let spec = self.spec.map(|s| PodSpec {
            containers: s
                .containers
                .into_iter()
                .map(|c| container_from!(Container, c))
                .collect(),
            init_containers: s.init_containers.map(|v| {
                v.into_iter()
                    .map(|c| container_from!(Container, c))
                    .collect()
            }),
            ephemeral_containers: s.ephemeral_containers.map(|v| {
                v.into_iter()
                    .map(|c| container_from!(EphemeralContainer, c))
                    .collect()
            }),
            security_context: s.security_context.map(|b| *b),
            volumes: s.volumes.map(|v| {
                unknown = unknown_sources(&v);
                let mut volumes = Vec::with_capacity(v.len() + spare_volumes);
                volumes.extend(v.into_iter().map(VolumeFields::into_volume));
                volumes
            }),
            host_network: s.host_network,
            host_pid: s.host_pid,
            host_ipc: s.host_ipc,
            host_users: s.host_users,
            os: s.os,
            runtime_class_name: s.runtime_class_name,
            ..PodSpec::default()
        });
        let pod = Pod {
            metadata: ObjectMeta {
                name: m.name,
                generate_name: m.generate_name,
                namespace: m.namespace,
                annotations: m.annotations,
                owner_references: m.owner_references,
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        };
        (pod, unknown)
    }
}

/// The unknown sources of decoded volumes (no allocation when there are none).
pub(super) fn unknown_sources(volumes: &[VolumeFields]) -> Vec<UnknownSource> {
    volumes
        .iter()
        .enumerate()
        .filter_map(|(volume, v)| {
            v.unknown.as_ref().map(|key| UnknownSource {
                volume,
                key: key.to_string(),
            })
        })
        .collect()
}

/// The parts of a Namespace the decision reads.
#[derive(Deserialize)]
pub(super) struct NamespaceObject {
    #[serde(default)]
    pub(super) metadata: NamespaceMeta,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct NamespaceMeta {
    pub(super) name: Option<String>,
    pub(super) generate_name: Option<String>,
    pub(super) labels: Option<BTreeMap<String, String>>,
}

/// A workload whose pod template is hardened: its metadata and the
/// template, decoded as a pod (a `PodTemplateSpec` has the pod's shape).
pub(super) trait Workload {
    /// The workload's metadata and its pod template.
    fn split(self) -> (PodMeta, Option<PodObject>);
}

/// The parts of a `batch/v1` Job the decision reads.
#[derive(Deserialize)]
pub(super) struct JobObject {
    #[serde(default)]
    metadata: PodMeta,
    spec: Option<JobSpecFields>,
}

#[derive(Deserialize)]
struct JobSpecFields {
    template: Option<PodObject>,
}

/// The parts of a `batch/v1` CronJob the decision reads.
#[derive(Deserialize)]
pub(super) struct CronJobObject {
    #[serde(default)]
    metadata: PodMeta,
    spec: Option<CronJobSpecFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpecFields {
    job_template: Option<JobTemplateFields>,
}

#[derive(Deserialize)]
struct JobTemplateFields {
    spec: Option<JobSpecFields>,
}

impl Workload for JobObject {
    fn split(self) -> (PodMeta, Option<PodObject>) {
        (self.metadata, self.spec.and_then(|s| s.template))
    }
}

impl Workload for CronJobObject {
    fn split(self) -> (PodMeta, Option<PodObject>) {
        let template = self
            .spec
            .and_then(|s| s.job_template)
            .and_then(|j| j.spec)
            .and_then(|s| s.template);
        (self.metadata, template)
    }
}
