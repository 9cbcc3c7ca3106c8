//! The restricted checks (upstream `policy/check_*.go`, level Restricted).

use k8s_openapi::api::core::v1::{PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::baseline::proc_mount_default;
use super::{
    Owner, UnknownSource, Violation, containers, in_user_namespace, is_windows, pod_violation,
    valid_seccomp,
};

/// The volume types restricted allows, as listed in messages.
const ALLOWED_VOLUME_TYPES: &str = "configMap, csi, downwardAPI, emptyDir, ephemeral, image, \
                                    persistentVolumeClaim, projected, secret";

/// `restrictedVolumes` (overrides `hostPathVolumes`): only the allowed inline
/// volume types. A volume without a source is the `emptyDir` the API server
/// defaults it to.
pub(super) fn volumes(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        if allowed_volume(volume) {
            continue;
        }
        if let Some(kind) = restricted_volume_type(volume) {
            out.push(pod_violation(
                "restrictedVolumes",
                format!("spec.volumes[{i}].{kind}"),
                format_args!(
                    "volume {:?} uses restricted volume type {kind}; allowed: {ALLOWED_VOLUME_TYPES}",
                    volume.name
                ),
            ));
        }
    }
}

/// `restrictedVolumes` for the sources the typed `Volume` cannot hold: any
/// source this build does not know is outside the allow-list.
pub(super) fn unknown_volumes(spec: &PodSpec, unknown: &[UnknownSource], out: &mut Vec<Violation>) {
    for u in unknown {
        let name = spec
            .volumes
            .as_deref()
            .and_then(|v| v.get(u.volume))
            .map_or("", |v| v.name.as_str());
        out.push(pod_violation(
            "restrictedVolumes",
            format!("spec.volumes[{}].{}", u.volume, u.key),
            format_args!(
                "volume {name:?} uses volume type {}, which restricted does not allow; allowed: {ALLOWED_VOLUME_TYPES}",
                u.key
            ),
        ));
    }
}

fn allowed_volume(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.image.is_some()
        || v.persistent_volume_claim.is_some()
        || v.projected.is_some()
        || v.secret.is_some()
}

/// The field name of the volume's restricted source, if it has one.
fn restricted_volume_type(v: &Volume) -> Option<&'static str> {
    let sources = [
        (v.host_path.is_some(), "hostPath"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.nfs.is_some(), "nfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.rbd.is_some(), "rbd"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephfs"),
        (v.flocker.is_some(), "flocker"),
        (v.fc.is_some(), "fc"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
    ];
    sources
        .into_iter()
        .find(|&(set, _)| set)
        .map(|(_, kind)| kind)
}

/// `allowPrivilegeEscalation`: every container sets it to false. Windows pods
/// are exempt (policy v1.25+).
pub(super) fn allow_privilege_escalation(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    if is_windows(spec) {
        return;
    }
    for c in containers(spec) {
        let message = match c
            .security_context
            .and_then(|sc| sc.allow_privilege_escalation)
        {
            Some(false) => continue,
            Some(true) => "sets allowPrivilegeEscalation=true; it must be false",
            None => "does not set allowPrivilegeEscalation; it must be false",
        };
        out.push(c.violation(
            "allowPrivilegeEscalation",
            "securityContext.allowPrivilegeEscalation",
            message,
        ));
    }
}

/// `runAsNonRoot`: true at pod level, or on every container; never false.
/// Pods in their own user namespace (`hostUsers: false`) are exempt (policy v1.35+).
pub(super) fn run_as_non_root(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    if in_user_namespace(spec) {
        return;
    }
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_non_root);
    if pod == Some(false) {
        out.push(Owner::Pod.violation(
            "runAsNonRoot",
            "runAsNonRoot",
            "sets runAsNonRoot=false; it must be true",
        ));
    }
    for c in containers(spec) {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(true) => {}
            Some(false) => out.push(Owner::Container(&c).violation(
                "runAsNonRoot",
                "runAsNonRoot",
                "sets runAsNonRoot=false; it must be true",
            )),
            // Fixing the pod-level value covers containers that leave it unset.
            None if pod.is_none() => out.push(Owner::Container(&c).violation(
                "runAsNonRoot",
                "runAsNonRoot",
                "does not set runAsNonRoot; set it to true here or in spec.securityContext",
            )),
            None => {}
        }
    }
}

/// `runAsUser` (policy v1.23+): no pod or container runs as UID 0. Pods in
/// their own user namespace (`hostUsers: false`) are exempt (policy v1.35+).
pub(super) fn run_as_user(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    if in_user_namespace(spec) {
        return;
    }
    let message = "sets runAsUser=0 (root); allowed: a non-zero UID or unset";
    if spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0) {
        out.push(Owner::Pod.violation("runAsUser", "runAsUser", message));
    }
    for c in containers(spec) {
        if c.security_context.and_then(|sc| sc.run_as_user) == Some(0) {
            out.push(Owner::Container(&c).violation("runAsUser", "runAsUser", message));
        }
    }
}

/// `seccompProfile_restricted` (overrides `seccompProfile_baseline`): the pod,
/// or every container, sets `RuntimeDefault` or `Localhost`; a container may
/// leave it unset when the pod sets a valid one. Windows pods are exempt
/// (policy v1.25+).
pub(super) fn seccomp_profile(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    if is_windows(spec) {
        return;
    }
    let invalid = "allowed: RuntimeDefault or Localhost";
    let pod = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref());
    if let Some(profile) = pod.filter(|p| !valid_seccomp(&p.type_)) {
        out.push(Owner::Pod.violation(
            "seccompProfile_restricted",
            "seccompProfile.type",
            format_args!("sets seccompProfile.type {:?}; {invalid}", profile.type_),
        ));
    }
    for c in containers(spec) {
        match c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(profile) if !valid_seccomp(&profile.type_) => {
                out.push(Owner::Container(&c).violation(
                    "seccompProfile_restricted",
                    "seccompProfile.type",
                    format_args!("sets seccompProfile.type {:?}; {invalid}", profile.type_),
                ))
            }
            Some(_) => {}
            // Fixing an invalid pod-level profile covers containers that leave it unset.
            None if pod.is_none() => out.push(Owner::Container(&c).violation(
                "seccompProfile_restricted",
                "seccompProfile.type",
                "does not set seccompProfile.type; set RuntimeDefault or Localhost \
                 here or in spec.securityContext",
            )),
            None => {}
        }
    }
}

/// `capabilities_restricted` (overrides `capabilities_baseline`): every
/// container drops `ALL` and adds nothing but `NET_BIND_SERVICE`. Windows pods
/// are exempt (policy v1.25+).
pub(super) fn capabilities(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    if is_windows(spec) {
        return;
    }
    for c in containers(spec) {
        let caps = c.security_context.and_then(|sc| sc.capabilities.as_ref());
        let dropped = caps.and_then(|k| k.drop.as_deref()).unwrap_or_default();
        if !dropped.iter().any(|cap| cap == "ALL") {
            out.push(c.violation(
                "capabilities_restricted",
                "securityContext.capabilities.drop",
                r#"does not drop ALL capabilities; securityContext.capabilities.drop must include "ALL""#,
            ));
        }
        let added = caps.and_then(|k| k.add.as_deref()).unwrap_or_default();
        for (i, cap) in added.iter().enumerate() {
            if cap != "NET_BIND_SERVICE" {
                out.push(c.violation(
                    "capabilities_restricted",
                    format_args!("securityContext.capabilities.add[{i}]"),
                    format_args!("adds capability {cap:?}; allowed: NET_BIND_SERVICE only"),
                ));
            }
        }
    }
}

/// `procMount_restricted` (policy v1.35+, overrides `procMount`): `procMount`
/// must be `Default` or unset, even for pods in their own user namespace.
pub(super) fn proc_mount(_: &ObjectMeta, spec: &PodSpec, out: &mut Vec<Violation>) {
    proc_mount_default(
        spec,
        "procMount_restricted",
        "allowed: Default or unset, even when spec.hostUsers is false",
        out,
    );
}
