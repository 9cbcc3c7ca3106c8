//! The writable volumes: each `writable_paths` entry that a container or
//! init container does not mount gets an `emptyDir` mounted there.
//!
//! floe-guard recognises its own volume for a path by two facts, never by
//! the name alone: the name is the path's (`/home/floe` →
//! `floe-writable-home-floe`, or that name with a suffix `-2`, `-3`, …), and
//! the source is an `emptyDir` without `medium` whose `sizeLimit` equals the
//! configured one. A container that lacks the path mounts that volume; only
//! when the pod has none is a new one added, under the first unused name of
//! the path, and placed before the volumes of later paths. So hardening a
//! pod, adding containers (a later webhook's sidecar) and hardening again
//! gives the pod that hardening once after the additions gives.

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, PodSpec, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::context::{Hardener, raw};
use crate::config::AbsolutePath;

impl Hardener<'_> {
    /// Gives every container and init container a writable `emptyDir` at
    /// each configured path it does not mount already.
    pub(super) fn writable_paths(&mut self, spec: &mut PodSpec) {
        let paths = &self.ps.writable_paths;
        let mut bases: Vec<String> = Vec::new();
        for (k, path) in paths.iter().enumerate() {
            let path = path.0.as_str();
            let lacks = |mounts: &Option<Vec<VolumeMount>>| {
                !mounts
                    .iter()
                    .flatten()
                    .any(|m| m.mount_path.trim_end_matches('/') == path)
            };
            let needed = spec.containers.iter().any(|c| lacks(&c.volume_mounts))
                || spec
                    .init_containers
                    .iter()
                    .flatten()
                    .any(|c| lacks(&c.volume_mounts));
            if !needed {
                continue;
            }
            if bases.is_empty() {
                bases = paths.iter().map(|p| base_name(&p.0)).collect();
            }
            let volumes = spec.volumes.as_deref().unwrap_or_default();
            let name = match volumes.iter().find(|v| self.owns(v, &bases[k])) {
                Some(own) => own.name.clone(),
                None => {
                    let later = &bases[k + 1..];
                    let at = volumes
                        .iter()
                        .position(|v| later.iter().any(|b| self.owns(v, b)))
                        .unwrap_or(volumes.len());
                    let volume = Volume {
                        name: volume_name(&bases[k], volumes),
                        empty_dir: Some(EmptyDirVolumeSource {
                            size_limit: self
                                .ps
                                .writable_size_limit
                                .as_ref()
                                .map(|q| Quantity(q.0.clone())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    let name = volume.name.clone();
                    self.insert_volume(spec, at, volume);
                    name
                }
            };
            let mount = VolumeMount {
                name,
                mount_path: path.to_string(),
                ..Default::default()
            };
            let lists = spec
                .containers
                .iter_mut()
                .map(|c| &mut c.volume_mounts)
                .enumerate()
                .map(|(i, m)| ("containers", i, m))
                .chain(
                    spec.init_containers
                        .iter_mut()
                        .flatten()
                        .map(|c| &mut c.volume_mounts)
                        .enumerate()
                        .map(|(i, m)| ("initContainers", i, m)),
                );
            // The same for every container: serialized once.
            let value = raw(&mount);
            for (list, i, mounts) in lists {
                if !lacks(mounts) {
                    continue;
                }
                let mut digits = itoa::Buffer::new();
                let i = digits.format(i);
                match mounts.as_mut() {
                    Some(m) => {
                        self.ops
                            .add(&["spec", list, i, "volumeMounts", "-"], &*value);
                        m.push(mount.clone());
                    }
                    None => {
                        self.ops.add(&["spec", list, i, "volumeMounts"], &[&*value]);
                        *mounts = Some(vec![mount.clone()]);
                    }
                }
            }
        }
    }

    /// Inserts `volume` at index `at` of `spec.volumes` (creating the list).
    fn insert_volume(&mut self, spec: &mut PodSpec, at: usize, volume: Volume) {
        match spec.volumes.as_mut() {
            Some(v) if at == v.len() => {
                self.ops.add(&["spec", "volumes", "-"], &volume);
                v.push(volume);
            }
            Some(v) => {
                let mut digits = itoa::Buffer::new();
                self.ops
                    .add(&["spec", "volumes", digits.format(at)], &volume);
                v.insert(at, volume);
            }
            None => {
                self.ops.add(&["spec", "volumes"], &[&volume]);
                spec.volumes = Some(vec![volume]);
            }
        }
    }

    /// Whether `volume` is floe-guard's writable volume for the path whose
    /// first name is `base`: a name of the path and the `emptyDir`
    /// floe-guard adds.
    fn owns(&self, volume: &Volume, base: &str) -> bool {
        let Some(e) = volume.empty_dir.as_ref() else {
            return false;
        };
        let size_ok = match (&e.size_limit, &self.ps.writable_size_limit) {
            (None, None) => true,
            (Some(a), Some(b)) => same_quantity(&a.0, &b.0),
            _ => false,
        };
        size_ok
            && e.medium.as_deref().unwrap_or_default().is_empty()
            && in_family(&volume.name, base)
    }
}

/// The first volume name of a writable path (`/home/floe` →
/// `floe-writable-home-floe`): a valid DNS label.
pub(super) fn base_name(path: &str) -> String {
    let mut slug: String = path
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.truncate(40);
    let slug = slug.trim_matches('-');
    format!("floe-writable-{slug}")
        .trim_end_matches('-')
        .to_string()
}

/// Whether `name` is `base` or `base-N` (N ≥ 2, no leading zero).
fn in_family(name: &str, base: &str) -> bool {
    match name.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .is_some_and(|n| !n.starts_with('0') && n.parse::<u32>().is_ok_and(|n| n >= 2)),
        None => false,
    }
}

/// A deterministic volume name for the writable path whose first name is
/// `base`: the first of its family that no existing volume has.
fn volume_name(base: &str, existing: &[Volume]) -> String {
    let taken = |n: &str| existing.iter().any(|v| v.name == n);
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|k| format!("{base}-{k}"))
        .find(|n| !taken(n))
        .expect("an unused name exists")
}

/// Two configured writable paths whose volume names could coincide (so a
/// volume could not be told apart), if any: `(i, j, name)`.
pub fn clashing_paths(paths: &[AbsolutePath]) -> Option<(usize, usize, String)> {
    let bases: Vec<String> = paths.iter().map(|p| base_name(&p.0)).collect();
    for (j, b) in bases.iter().enumerate() {
        for (i, a) in bases[..j].iter().enumerate() {
            if in_family(a, b) || in_family(b, a) {
                let name = if a.len() >= b.len() { a } else { b };
                return Some((i, j, name.clone()));
            }
        }
    }
    None
}

/// Whether two quantities are the same amount (`1Gi` and `1024Mi`): the API
/// server writes quantities back in canonical form, so a re-invoked webhook
/// may see another spelling of the size it set.
fn same_quantity(a: &str, b: &str) -> bool {
    match (quantity(a), quantity(b)) {
        (Some((na, sa)), Some((nb, sb))) => {
            let scale = |n: u128, s: u32| 10u128.checked_pow(s).and_then(|p| n.checked_mul(p));
            scale(na, sb).is_some_and(|x| scale(nb, sa) == Some(x))
        }
        _ => a == b,
    }
}

/// A plain quantity (`1.5Gi`, `500M`, `100m`) as `n / 10^scale`.
fn quantity(q: &str) -> Option<(u128, u32)> {
    let end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() || frac.contains('.') {
        return None;
    }
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let mut scale = u32::try_from(frac.len()).ok()?;
    let multiplier: u128 = match suffix {
        "" => 1,
        "m" => {
            scale += 3;
            1
        }
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return None,
    };
    Some((digits.checked_mul(multiplier)?, scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::harden::tests::{REQ, hardened, job_pod};
    use serde_json::{Value, json};

    fn add_container(pod: &Value, list: &str, c: Value) -> Value {
        let mut pod = pod.clone();
        match pod["spec"][list].as_array_mut() {
            Some(l) => l.push(c),
            None => pod["spec"][list] = json!([c]),
        }
        pod
    }

    fn names(pod: &Value) -> Vec<&str> {
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect()
    }

    /// Hardening, adding a sidecar to `list`, hardening again equals adding
    /// it and hardening once.
    fn converges(pod: &Value, list: &str) -> Value {
        let c = json!({"name": "sidecar", "image": "busybox"});
        let cfg = Config::default();
        let twice = hardened(
            &add_container(&hardened(pod, &REQ, &cfg).unwrap(), list, c.clone()),
            &REQ,
            &cfg,
        )
        .unwrap();
        let once = hardened(&add_container(pod, list, c), &REQ, &cfg).unwrap();
        assert_eq!(twice, once);
        once
    }

    #[test]
    fn a_sidecar_added_after_hardening_mounts_the_existing_writable_volumes() {
        let pod = job_pod(json!({"containers": [{"name": "main", "image": "x"}]}));
        let out = converges(&pod, "containers");
        assert_eq!(
            names(&out),
            ["floe-writable-tmp", "floe-writable-home-floe"]
        );
        assert_eq!(
            out["spec"]["containers"][1]["volumeMounts"],
            json!([{"name": "floe-writable-tmp", "mountPath": "/tmp"},
                {"name": "floe-writable-home-floe", "mountPath": "/home/floe"}])
        );
        converges(&pod, "initContainers");
    }

    #[test]
    fn a_volume_of_a_later_path_keeps_its_place_after_a_new_earlier_one() {
        // main mounts /tmp itself: only /home/floe is added at first.
        let pod = job_pod(json!({"containers": [{"name": "main", "image": "x",
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}]}));
        let out = converges(&pod, "containers");
        assert_eq!(
            names(&out),
            ["scratch", "floe-writable-tmp", "floe-writable-home-floe"]
        );
    }

    #[test]
    fn a_volume_is_floe_guards_only_with_its_name_and_emptydir_shape() {
        let user = [
            json!({"name": "floe-writable-tmp", "configMap": {"name": "c"}}),
            json!({"name": "floe-writable-tmp", "emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}}),
            json!({"name": "floe-writable-tmp", "emptyDir": {}}),
            json!({"name": "floe-writable-tmp", "emptyDir": {"sizeLimit": "2Gi"}}),
        ];
        for v in user {
            let pod =
                job_pod(json!({"containers": [{"name": "main", "image": "x"}], "volumes": [v]}));
            let out = converges(&pod, "containers");
            assert_eq!(
                names(&out),
                [
                    "floe-writable-tmp",
                    "floe-writable-tmp-2",
                    "floe-writable-home-floe"
                ]
            );
            assert_eq!(
                out["spec"]["containers"][1]["volumeMounts"][0]["name"],
                "floe-writable-tmp-2"
            );
        }
        // The same name and shape (another spelling of the size) is floe-guard's: mounted, not duplicated.
        let pod = job_pod(json!({"containers": [{"name": "main", "image": "x"}],
            "volumes": [{"name": "floe-writable-tmp-3", "emptyDir": {"sizeLimit": "1024Mi"}}]}));
        let out = converges(&pod, "containers");
        assert_eq!(
            names(&out),
            ["floe-writable-tmp-3", "floe-writable-home-floe"]
        );
        assert_eq!(
            out["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "floe-writable-tmp-3"
        );
    }

    #[test]
    fn quantities_compare_by_amount_not_spelling() {
        assert!(same_quantity("1Gi", "1024Mi"));
        assert!(same_quantity("1.5Gi", "1536Mi"));
        assert!(same_quantity("500M", "0.5G"));
        assert!(same_quantity("1", "1000m"));
        assert!(!same_quantity("1Gi", "1G"));
        assert!(!same_quantity("1Gi", "2Gi"));
    }

    #[test]
    fn a_name_family_is_the_base_and_numbered_suffixes_from_two() {
        let base = "floe-writable-tmp";
        assert!(in_family("floe-writable-tmp", base));
        assert!(in_family("floe-writable-tmp-2", base));
        assert!(in_family("floe-writable-tmp-17", base));
        for other in [
            "floe-writable-tmp-1",
            "floe-writable-tmp-02",
            "floe-writable-tmp-x",
            "floe-writable-tmpx",
            "floe-writable-tmp-",
            "floe-writable-tm",
        ] {
            assert!(!in_family(other, base), "{other}");
        }
    }

    #[test]
    fn paths_whose_names_could_coincide_clash() {
        let p = |v: &[&str]| -> Vec<AbsolutePath> {
            v.iter().map(|s| AbsolutePath(s.to_string())).collect()
        };
        assert_eq!(clashing_paths(&p(&["/tmp", "/home/floe"])), None);
        assert_eq!(
            clashing_paths(&p(&["/tmp", "/tmp-2"])),
            Some((0, 1, "floe-writable-tmp-2".into()))
        );
        assert_eq!(
            clashing_paths(&p(&["/home/floe", "/home_floe"])),
            Some((0, 1, "floe-writable-home-floe".into()))
        );
    }
}
