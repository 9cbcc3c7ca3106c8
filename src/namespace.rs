//! Namespace validation: managed namespaces must carry valid Pod Security
//! Standards labels: `enforce`, `audit` and `warn` each at least the
//! configured level, and any `*-version` label `latest` (or, when
//! `min_version` is configured, at least that version). On UPDATE a
//! namespace managed before or after the change is held to the stricter of
//! the two.

use std::collections::BTreeMap;

use crate::config::{Config, FLOE, MinVersion, PART_OF_LABEL};
use crate::pss::Level;

/// Prefix of the Pod Security Admission labels.
pub const PSS_LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
/// The label that puts a namespace's pod hardening in audit mode
/// (`audit`; `enforce` or absent: the configured mode). Read by the API
/// server through the webhooks' namespaceSelectors.
pub const ENFORCEMENT_LABEL: &str = "floe.dev/enforcement";

/// Why a change of [`ENFORCEMENT_LABEL`] is refused, if it is: only
/// `enforcement_admins` (a username or a group of the requester) may set,
/// change or remove it, and its value is `audit` or `enforce`.
pub fn enforcement_change(
    new: Option<&str>,
    old: Option<&str>,
    username: &str,
    groups: impl Fn() -> Vec<String>,
    cfg: &Config,
) -> Option<String> {
    if new == old {
        return None;
    }
    if let Some(v) = new.filter(|v| !matches!(*v, "audit" | "enforce")) {
        return Some(format!(
            "{ENFORCEMENT_LABEL}={v:?} is not a mode: use audit or enforce"
        ));
    }
    let admins = &cfg.security.pod_security.enforcement_admins;
    let admin = admins.iter().any(|a| a == username) || {
        let groups = groups();
        admins.iter().any(|a| groups.contains(a))
    };
    (!admin).then(|| {
        format!(
            "only security.pod_security.enforcement_admins ({}) may set, change or remove the {ENFORCEMENT_LABEL} label; {username:?} may not",
            admins.join(", ")
        )
    })
}

/// The three Pod Security Admission modes.
pub const MODES: [&str; 3] = ["enforce", "audit", "warn"];

/// The verdict on one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceVerdict {
    /// Not managed by floe (or pod security disabled): no opinion.
    Unmanaged,
    /// Managed, and its labels are valid.
    Valid,
    /// Managed, with every problem and the command that fixes them.
    Invalid {
        /// One line per problem.
        problems: Vec<String>,
        /// A `kubectl label` command that fixes every problem.
        fix: String,
    },
}

impl NamespaceVerdict {
    /// Whether the namespace may be admitted.
    pub fn allowed(&self) -> bool {
        !matches!(self, NamespaceVerdict::Invalid { .. })
    }

    /// The denial message (empty when allowed).
    pub fn message(&self, name: &str) -> String {
        match self {
            NamespaceVerdict::Invalid { problems, fix } => format!(
                "namespace {name:?} is managed by floe and needs valid Pod Security labels: {}. Fix: {fix}",
                problems.join("; ")
            ),
            _ => String::new(),
        }
    }
}

/// The level a managed namespace must at least enforce, if it is managed.
pub fn required_level(
    name: &str,
    labels: &BTreeMap<String, String>,
    cfg: &Config,
) -> Option<Level> {
    if let Some(level) = cfg.level_of(name) {
        return Some(level);
    }
    let ps = &cfg.security.pod_security;
    (labels.get(PART_OF_LABEL).map(String::as_str) == Some(FLOE))
        .then(|| ps.platform_level.min(ps.jobs_level).min(ps.domain_level))
}

/// Validates the labels of namespace `name` on CREATE (no old object).
pub fn validate(name: &str, labels: &BTreeMap<String, String>, cfg: &Config) -> NamespaceVerdict {
    validate_change(name, labels, None, cfg)
}

/// Validates the labels of namespace `name` after a change from `old` (the
/// labels of `oldObject` on UPDATE). The namespace is managed if it was
/// managed before or after the change, and is held to the stricter of the
/// two: dropping `app.kubernetes.io/part-of: floe` does not let the same
/// request weaken its Pod Security labels.
pub fn validate_change(
    name: &str,
    labels: &BTreeMap<String, String>,
    old: Option<&BTreeMap<String, String>>,
    cfg: &Config,
) -> NamespaceVerdict {
    if !cfg.security.pod_security.enabled {
        return NamespaceVerdict::Unmanaged;
    }
    let before = old.and_then(|old| required_level(name, old, cfg));
    let Some(required) = required_level(name, labels, cfg).max(before) else {
        return NamespaceVerdict::Unmanaged;
    };
    let min_version = cfg.security.pod_security.min_version;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for mode in MODES {
        let key = format!("{PSS_LABEL_PREFIX}{mode}");
        // What the fix sets: the configured level for enforce, restricted
        // (what bootstrap sets) for audit and warn.
        let fix = if mode == "enforce" {
            required
        } else {
            Level::Restricted
        };
        let problem = match labels.get(&key).map(|v| (v, v.parse::<Level>())) {
            None => Some(format!("{key} is missing (needs {required} or stricter)")),
            Some((v, Err(_))) => Some(format!(
                "{key}={v} is not a level (privileged, baseline or restricted)"
            )),
            Some((_, Ok(level))) if level < required => Some(format!(
                "{key}={level} is weaker than the configured {required}"
            )),
            Some(_) => None,
        };
        if let Some(p) = problem {
            problems.push(p);
            fixes.push(format!("{key}={fix}"));
        }
        let version_key = format!("{key}-version");
        if let Some(v) = labels.get(&version_key) {
            let problem = match (parse_version(v), min_version) {
                (None, _) => Some(format!(
                    "{version_key}={v} is not a policy version (latest or v1.N)"
                )),
                (Some(Version::Latest), _) => None,
                (Some(Version::Minor(_)), None) => Some(format!(
                    "{version_key}={v} pins an older policy; floe requires latest"
                )),
                (Some(Version::Minor(n)), Some(min)) if n < min.0 => Some(format!(
                    "{version_key}={v} is older than the configured minimum {min}"
                )),
                (Some(Version::Minor(_)), Some(_)) => None,
            };
            if let Some(p) = problem {
                problems.push(p);
                fixes.push(format!("{version_key}=latest"));
            }
        }
    }
    if problems.is_empty() {
        NamespaceVerdict::Valid
    } else {
        NamespaceVerdict::Invalid {
            problems,
            fix: format!(
                "kubectl label namespace {name} --overwrite {}",
                fixes.join(" ")
            ),
        }
    }
}

/// A Pod Security Admission policy version label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Latest,
    /// `v1.N`.
    Minor(u32),
}

/// `latest` or `v1.N`, else `None`.
fn parse_version(v: &str) -> Option<Version> {
    if v == "latest" {
        return Some(Version::Latest);
    }
    MinVersion::parse(v).map(|m| Version::Minor(m.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enforcement_admins_change_the_enforcement_label() {
        let cfg = Config::default();
        let no_groups = Vec::new;
        let masters = || vec!["system:masters".to_string()];
        let change = |new, old, user, groups: &dyn Fn() -> Vec<String>| {
            enforcement_change(new, old, user, groups, &cfg)
        };
        assert_eq!(
            change(Some("audit"), Some("audit"), "dev", &no_groups),
            None
        );
        assert_eq!(change(None, None, "dev", &no_groups), None);
        assert_eq!(change(Some("audit"), None, "admin", &masters), None);
        assert_eq!(change(None, Some("audit"), "admin", &masters), None);
        for (new, old) in [
            (Some("audit"), None),
            (None, Some("audit")),
            (Some("enforce"), Some("audit")),
        ] {
            let why = change(new, old, "dev", &no_groups).expect("denied");
            assert!(why.contains("\"dev\" may not"), "{why}");
        }
        let why = change(Some("Audit"), None, "admin", &masters).expect("denied");
        assert!(why.contains("is not a mode"), "{why}");
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn full(enforce: &str) -> BTreeMap<String, String> {
        labels(&[
            ("pod-security.kubernetes.io/enforce", enforce),
            ("pod-security.kubernetes.io/audit", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ])
    }

    #[test]
    fn unmanaged_namespaces_have_no_opinion() {
        let cfg = Config::default();
        assert_eq!(
            validate("default", &labels(&[]), &cfg),
            NamespaceVerdict::Unmanaged
        );
    }

    #[test]
    fn managed_namespace_with_valid_labels_is_valid() {
        let cfg = Config::default();
        assert_eq!(
            validate("floe-jobs", &full("restricted"), &cfg),
            NamespaceVerdict::Valid
        );
        assert_eq!(
            validate("floe-platform", &full("baseline"), &cfg),
            NamespaceVerdict::Valid
        );
        assert_eq!(
            validate("floe-platform", &full("restricted"), &cfg),
            NamespaceVerdict::Valid
        );
    }

    #[test]
    fn missing_labels_are_each_listed_with_a_fix() {
        let cfg = Config::default();
        let v = validate("floe-jobs", &labels(&[]), &cfg);
        let NamespaceVerdict::Invalid { problems, fix } = &v else {
            panic!("expected invalid, got {v:?}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(
            fix,
            "kubectl label namespace floe-jobs --overwrite pod-security.kubernetes.io/enforce=restricted \
             pod-security.kubernetes.io/audit=restricted pod-security.kubernetes.io/warn=restricted"
        );
        assert!(v.message("floe-jobs").contains("enforce is missing"));
    }

    #[test]
    fn weaker_enforce_is_denied() {
        let cfg = Config::default();
        let v = validate("floe-jobs", &full("baseline"), &cfg);
        assert!(!v.allowed());
        assert!(
            v.message("floe-jobs")
                .contains("weaker than the configured restricted")
        );
        assert!(!validate("floe-platform", &full("privileged"), &cfg).allowed());
    }

    #[test]
    fn invalid_level_and_version_are_denied() {
        let cfg = Config::default();
        let mut l = full("strict");
        l.insert(
            "pod-security.kubernetes.io/warn-version".into(),
            "1.30".into(),
        );
        let v = validate("floe-jobs", &l, &cfg);
        let NamespaceVerdict::Invalid { problems, fix } = v else {
            panic!()
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(fix.contains("pod-security.kubernetes.io/warn-version=latest"));
    }

    #[test]
    fn weaker_audit_and_warn_are_denied_each_named_with_the_fix() {
        let cfg = Config::default();
        let mut l = full("restricted");
        l.insert(
            "pod-security.kubernetes.io/audit".into(),
            "privileged".into(),
        );
        l.insert(
            "pod-security.kubernetes.io/warn".into(),
            "privileged".into(),
        );
        let NamespaceVerdict::Invalid { problems, fix } = validate("floe-jobs", &l, &cfg) else {
            panic!("audit/warn privileged accepted")
        };
        assert_eq!(
            problems,
            [
                "pod-security.kubernetes.io/audit=privileged is weaker than the configured restricted",
                "pod-security.kubernetes.io/warn=privileged is weaker than the configured restricted"
            ]
        );
        assert_eq!(
            fix,
            "kubectl label namespace floe-jobs --overwrite pod-security.kubernetes.io/audit=restricted \
             pod-security.kubernetes.io/warn=restricted"
        );
        // The platform's configured level is baseline: audit/warn baseline is enough.
        let mut p = full("baseline");
        p.insert("pod-security.kubernetes.io/audit".into(), "baseline".into());
        assert!(validate("floe-platform", &p, &cfg).allowed());
    }

    #[test]
    fn an_update_is_held_to_the_stricter_of_the_old_and_new_management() {
        let cfg = Config::default();
        let mut old = full("restricted");
        old.insert(PART_OF_LABEL.into(), FLOE.into());
        let weakened = labels(&[("pod-security.kubernetes.io/enforce", "privileged")]);
        let v = validate_change("team-a", &weakened, Some(&old), &cfg);
        assert!(
            !v.allowed(),
            "dropping part-of while weakening was accepted"
        );
        assert!(v.message("team-a").contains("enforce=privileged is weaker"));
        // Leaving management with sufficient labels, or a namespace never managed, is fine.
        assert!(validate_change("team-a", &full("baseline"), Some(&old), &cfg).allowed());
        assert_eq!(
            validate_change("team-a", &weakened, Some(&weakened), &cfg),
            NamespaceVerdict::Unmanaged
        );
        // Joining management is judged on the new labels.
        let mut joined = weakened.clone();
        joined.insert(PART_OF_LABEL.into(), FLOE.into());
        assert!(!validate_change("team-a", &joined, Some(&weakened), &cfg).allowed());
    }

    #[test]
    fn version_labels_must_be_latest_unless_a_minimum_is_configured() {
        let mut cfg = Config::default();
        let with = |k: &str, v: &str| {
            let mut l = full("restricted");
            l.insert(format!("pod-security.kubernetes.io/{k}"), v.into());
            l
        };
        assert!(validate("floe-jobs", &with("enforce-version", "latest"), &cfg).allowed());
        let v = validate("floe-jobs", &with("enforce-version", "v1.24"), &cfg);
        let NamespaceVerdict::Invalid { problems, fix } = &v else {
            panic!("a pinned version was accepted")
        };
        assert_eq!(
            problems,
            &[
                "pod-security.kubernetes.io/enforce-version=v1.24 pins an older policy; floe requires latest"
            ]
        );
        assert!(
            fix.ends_with(" pod-security.kubernetes.io/enforce-version=latest"),
            "{fix}"
        );
        cfg.security.pod_security.min_version = Some(MinVersion(30));
        assert!(validate("floe-jobs", &with("audit-version", "v1.30"), &cfg).allowed());
        assert!(validate("floe-jobs", &with("audit-version", "v1.37"), &cfg).allowed());
        let v = validate("floe-jobs", &with("warn-version", "v1.29"), &cfg);
        assert!(
            v.message("floe-jobs")
                .contains("warn-version=v1.29 is older than the configured minimum v1.30")
        );
    }

    #[test]
    fn versions_latest_and_v1_n_are_valid() {
        assert_eq!(parse_version("latest"), Some(Version::Latest));
        assert_eq!(parse_version("v1.37"), Some(Version::Minor(37)));
        assert_eq!(parse_version("v1.0"), Some(Version::Minor(0)));
        for bad in ["v1.", "v2.1", "1.30", "v1.3a", "v1.030", "Latest", "v1.+3"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn part_of_floe_label_makes_a_namespace_managed() {
        let cfg = Config::default();
        let mut l = labels(&[("app.kubernetes.io/part-of", "floe")]);
        assert!(!validate("floe-extra", &l, &cfg).allowed());
        l.extend(full("baseline"));
        assert_eq!(validate("floe-extra", &l, &cfg), NamespaceVerdict::Valid);
    }

    #[test]
    fn domain_namespaces_are_managed() {
        let cfg = Config {
            domains: vec!["sales".into()],
            ..Config::default()
        };
        assert!(!validate("floe-sales-domain", &full("baseline"), &cfg).allowed());
        assert!(validate("floe-marketing-domain", &full("baseline"), &cfg).allowed());
    }

    #[test]
    fn disabled_pod_security_manages_nothing() {
        let mut cfg = Config::default();
        cfg.security.pod_security.enabled = false;
        assert_eq!(
            validate("floe-jobs", &labels(&[]), &cfg),
            NamespaceVerdict::Unmanaged
        );
    }
}
