//! Property tests of the admission hot path (`admission::review`), the
//! function the HTTPS server calls for every review.
//!
//! - arbitrary bytes, byte-mutated reviews and reviews with any JSON subtree
//!   replaced by arbitrary JSON never panic, and every answer is a well-formed
//!   v1 AdmissionReview echoing the uid;
//! - for generated Pods (secure, insecure, Windows, host namespaces, hostPath,
//!   odd capabilities, existing writable mounts and colliding volume names):
//!   every allow-with-patch applies to the request object as sent; the patched
//!   pod passes its namespace's PSS level or the review is denied; hardening is
//!   idempotent (the patched pod gets no patch);
//!
//! The namespace properties are in `prop_namespace`, the re-invocation and
//! ephemeral-container properties in `prop_reinvocation`.
//!
//! `cargo test` runs a bounded number of cases (see `CASES`); set
//! `PROPTEST_CASES=100000` to run longer (docs/hostile-input.md), and use the
//! cargo-fuzz targets in `fuzz/` for coverage-guided fuzzing.

use base64::Engine as _;
use floe_guard::admission::{self, Endpoint};
use floe_guard::config::{Config, OnInsecure, Scope};
use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Value, json};

/// Cases per property in `cargo test` (overridden by `PROPTEST_CASES`).
pub(crate) const CASES: u32 = 192;

pub(crate) fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

pub(crate) const UID: &str = "0b4c3e55-1e8f-4a53-9c55-6c1d5b9f0e01";

/// The namespaces a pod may be created in: job namespaces, the platform, and
/// unmanaged ones.
const NAMESPACES: [&str; 5] = [
    "floe-jobs",
    "floe-sales-domain",
    "floe-platform",
    "default",
    "floe-other-domain",
];

/// The configurations under test: defaults, override mode, all-pods scope,
/// and an exemption.
pub(crate) fn configs() -> Vec<Config> {
    let base = Config {
        domains: vec!["sales".into()],
        ..Config::default()
    };
    let mut over = base.clone();
    over.security.pod_security.on_insecure = OnInsecure::Override;
    let mut all = over.clone();
    all.security.pod_security.scope = Scope::AllPods;
    let mut exempt = base.clone();
    exempt.security.pod_security.exemptions.usernames = vec!["system:admin".into()];
    vec![base, over, all, exempt]
}

pub(crate) fn review(operation: &str, namespace: &str, username: &str, object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace, "operation": operation,
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// Calls the hot path; asserts the answer is a v1 AdmissionReview with our uid.
pub(crate) fn call(endpoint: Endpoint, body: &[u8], cfg: &Config) -> Option<Value> {
    let reviewed = admission::review(endpoint, body, cfg).ok()?;
    let out: Value = serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    assert!(out["response"]["allowed"].is_boolean(), "{out}");
    assert_eq!(
        out["response"]["uid"].as_str(),
        Some(reviewed.log.uid.as_str())
    );
    Some(out)
}

pub(crate) fn patch_of(out: &Value) -> Option<json_patch::Patch> {
    let resp = &out["response"];
    let text = resp
        .get("patch")?
        .as_str()
        .expect("patch is a base64 string");
    assert_eq!(resp["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is an RFC 6902 array"))
}

// ---------------------------------------------------------------- generators

pub(crate) fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![2 => Just(None), 3 => s.prop_map(Some)].boxed()
}

/// Like [`opt`], mostly `None`: for fields no hardening can fix (they deny).
fn rare<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![12 => Just(None), 1 => s.prop_map(Some)].boxed()
}

fn seccomp() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "RuntimeDefault"})),
        Just(json!({"type": "Unconfined"})),
        Just(json!({"type": "Localhost", "localhostProfile": "profiles/p.json"})),
    ]
}

fn capabilities() -> impl Strategy<Value = Value> {
    let cap = prop_oneof![
        Just("ALL"),
        Just("NET_BIND_SERVICE"),
        Just("NET_ADMIN"),
        Just("SYS_ADMIN"),
        Just("CHOWN"),
        Just("all"),
    ];
    (
        opt(prop::collection::vec(cap.clone(), 0..3)),
        opt(prop::collection::vec(cap, 0..3)),
    )
        .prop_map(|(add, drop)| {
            let mut c = json!({});
            if let Some(a) = add {
                c["add"] = json!(a);
            }
            if let Some(d) = drop {
                c["drop"] = json!(d);
            }
            c
        })
}

fn container_sc() -> impl Strategy<Value = Value> {
    (
        opt(any::<bool>()),
        opt(any::<bool>()),
        opt(prop_oneof![Just(0i64), Just(1000), Just(2000)]),
        opt(any::<bool>()),
        opt(any::<bool>()),
        opt(capabilities()),
        opt(seccomp()),
        rare(prop_oneof![Just("Default"), Just("Unmasked")]),
    )
        .prop_map(|(priv_, nonroot, user, ape, rorf, caps, sec, proc_mount)| {
            let mut sc = json!({});
            let set = |sc: &mut Value, k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    sc[k] = v;
                }
            };
            set(&mut sc, "privileged", priv_.map(Value::from));
            set(&mut sc, "runAsNonRoot", nonroot.map(Value::from));
            set(&mut sc, "runAsUser", user.map(Value::from));
            set(&mut sc, "allowPrivilegeEscalation", ape.map(Value::from));
            set(&mut sc, "readOnlyRootFilesystem", rorf.map(Value::from));
            set(&mut sc, "capabilities", caps);
            set(&mut sc, "seccompProfile", sec);
            set(&mut sc, "procMount", proc_mount.map(Value::from));
            sc
        })
}

fn mounts() -> impl Strategy<Value = Vec<Value>> {
    let path = prop_oneof![
        Just("/tmp"),
        Just("/tmp/"),
        Just("/home/floe"),
        Just("/data"),
        Just("/var/run/secrets/kubernetes.io/serviceaccount"),
    ];
    let name = prop_oneof![Just("data"), Just("floe-writable-tmp"), Just("kube-api")];
    prop::collection::vec(
        (name, path).prop_map(|(n, p)| json!({"name": n, "mountPath": p})),
        0..3,
    )
}

pub(crate) fn container(prefix: &'static str) -> impl Strategy<Value = Value> {
    (
        0..1000u32,
        opt(container_sc()),
        opt(mounts()),
        prop::bool::weighted(0.05),
    )
        .prop_map(move |(i, sc, mounts, host_port)| {
            let mut c = json!({
                "name": format!("{prefix}-{i}"), "image": "ghcr.io/floe/x:1",
                "env": [{"name": "A", "value": "b"}],
                "resources": {"limits": {"cpu": "1"}}
            });
            if let Some(sc) = sc {
                c["securityContext"] = sc;
            }
            if let Some(m) = mounts {
                c["volumeMounts"] = json!(m);
            }
            if host_port {
                c["ports"] = json!([{"containerPort": 8080, "hostPort": 8080}]);
            }
            c
        })
}

fn pod_sc() -> impl Strategy<Value = Value> {
    (
        opt(any::<bool>()),
        opt(prop_oneof![Just(0i64), Just(1000), Just(4242)]),
        opt(prop_oneof![Just(0i64), Just(1000)]),
        opt(Just(1000i64)),
        opt(seccomp()),
        rare(Just(json!([{"name": "net.ipv4.ip_forward", "value": "1"}]))),
    )
        .prop_map(|(nonroot, user, group, fs, sec, sysctls)| {
            let mut sc = json!({});
            for (k, v) in [
                ("runAsNonRoot", nonroot.map(Value::from)),
                ("runAsUser", user.map(Value::from)),
                ("runAsGroup", group.map(Value::from)),
                ("fsGroup", fs.map(Value::from)),
                ("seccompProfile", sec),
                ("sysctls", sysctls),
            ] {
                if let Some(v) = v {
                    sc[k] = v;
                }
            }
            sc
        })
}

fn volumes() -> impl Strategy<Value = Vec<Value>> {
    let v = prop_oneof![
        Just(json!({"name": "data", "emptyDir": {}})),
        Just(json!({"name": "floe-writable-tmp", "emptyDir": {}})),
        Just(json!({"name": "floe-writable-tmp-2", "configMap": {"name": "c"}})),
        Just(json!({"name": "more", "emptyDir": {"medium": "Memory"}})),
        Just(json!({"name": "kube-api", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}})),
    ];
    let host = Just(json!({"name": "host", "hostPath": {"path": "/var/log"}}));
    (prop::collection::vec(v, 0..4), rare(host)).prop_map(|(mut v, h)| {
        v.extend(h);
        v
    })
}

/// A Pod as the API server sends it (managedFields and status included),
/// with random security-relevant fields.
pub(crate) fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container("c"), 0..4),
        opt(prop::collection::vec(container("init"), 0..3)),
        opt(prop::collection::vec(container("debug"), 0..2)),
        opt(pod_sc()),
        opt(volumes()),
        (
            opt(any::<bool>()),
            opt(any::<bool>()),
            opt(any::<bool>()),
            opt(any::<bool>()),
        ),
        prop_oneof![8 => Just(None), 1 => Just(Some("windows")), 2 => Just(Some("linux"))],
        prop::bool::weighted(0.85),
    )
        .prop_map(
            |(containers, init, ephemeral, sc, vols, (hnet, hpid, hipc, husers), os, job)| {
                let mut spec = json!({
                    "containers": containers, "restartPolicy": "Never",
                    "serviceAccountName": "default", "dnsPolicy": "ClusterFirst"
                });
                let mut set = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        spec[k] = v;
                    }
                };
                set("initContainers", init.map(Value::from));
                set("ephemeralContainers", ephemeral.map(Value::from));
                set("securityContext", sc);
                set("volumes", vols.map(Value::from));
                set("hostNetwork", hnet.map(Value::from));
                set("hostPID", hpid.map(Value::from));
                set("hostIPC", hipc.map(Value::from));
                set("hostUsers", husers.map(Value::from));
                set("os", os.map(|n| json!({"name": n})));
                let mut meta = json!({
                    "generateName": "ingest-",
                    "labels": {"job-name": "ingest"},
                    "managedFields": [{"manager": "kube-controller-manager",
                        "operation": "Update", "apiVersion": "v1",
                        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:containers": {}}}}]
                });
                if job {
                    meta["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job",
                        "name": "ingest", "uid": "5b6c0e2a-6d2e-4f71-9d43-2f0b7a0c1e11",
                        "controller": true, "blockOwnerDeletion": true}]);
                }
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
                    "status": {"phase": "Pending"}})
            },
        )
}

/// Arbitrary JSON, depth-bounded.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- properties

/// The PSS violations of a pod as the API server would store it (full
/// decoding, plus the volume sources it does not know).
pub(crate) fn violations(object: &Value, level: Level) -> Vec<pss::Violation> {
    let pod: Pod = serde_json::from_value(object.clone()).expect("a valid pod");
    let unknown = admission::unknown_volume_sources(&object["spec"]).unwrap();
    pss::check_with(&pod.metadata, pod.spec.as_ref().unwrap(), &unknown, level)
}

/// Whether the pod sets a value floe-guard calls insecure (README "Hardening
/// semantics"), independently of `floe_guard::harden`.
pub(crate) fn insecure(object: &Value) -> bool {
    let spec = &object["spec"];
    let sc_insecure = |sc: &Value| {
        sc["runAsNonRoot"] == json!(false)
            || sc["runAsUser"] == json!(0)
            || sc["seccompProfile"]["type"] == json!("Unconfined")
    };
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec[*l].as_array().cloned().unwrap_or_default());
    let host = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .any(|k| spec[*k] == json!(true))
        || spec["volumes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v.get("hostPath").is_some()));
    if spec["os"]["name"] == "windows" {
        // Only what applies to Windows: Linux-only fields are not judged.
        let non_root_false = |sc: &Value| sc["runAsNonRoot"] == json!(false);
        return host
            || non_root_false(&spec["securityContext"])
            || containers
                .into_iter()
                .any(|c| non_root_false(&c["securityContext"]));
    }
    host || sc_insecure(&spec["securityContext"])
        || spec["volumes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v.get("hostPath").is_some()))
        || containers.into_iter().any(|c| {
            let sc = &c["securityContext"];
            sc_insecure(sc)
                || sc["privileged"] == json!(true)
                || sc["allowPrivilegeEscalation"] == json!(true)
                || sc["capabilities"]["add"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c != "NET_BIND_SERVICE"))
        })
}

/// The PSS level a pod in `namespace` must pass after hardening, when the
/// pod is in scope for hardening under `cfg` (CREATE by a non-exempt user).
pub(crate) fn required_level(
    cfg: &Config,
    namespace: &str,
    pod: &Value,
    username: &str,
) -> Option<Level> {
    let ps = &cfg.security.pod_security;
    let job = pod["metadata"]["ownerReferences"].is_array();
    let in_scope = cfg.is_job_namespace(namespace)
        && !ps.exemptions.usernames.iter().any(|u| u == username)
        && (ps.scope == Scope::AllPods || job);
    in_scope.then(|| cfg.level_of(namespace).unwrap_or(ps.jobs_level))
}

fn check_pod_review(
    cfg: &Config,
    namespace: &str,
    username: &str,
    operation: &str,
    object: &Value,
) -> Result<(), TestCaseError> {
    let body = serde_json::to_vec(&review(operation, namespace, username, object)).unwrap();
    let out = call(Endpoint::Mutate, &body, cfg).expect("a well-formed review is answered");
    let resp = &out["response"];
    prop_assert_eq!(resp["uid"].as_str(), Some(UID));
    let allowed = resp["allowed"].as_bool().unwrap();
    let patch = patch_of(&out);
    if !allowed {
        prop_assert!(patch.is_none(), "a denial carries no patch");
        prop_assert_eq!(resp["status"]["code"].as_u64(), Some(403), "{}", resp);
        prop_assert!(!resp["status"]["message"].as_str().unwrap_or("").is_empty());
        // Never an over-denial: only a pod in scope that fails its level or
        // carries an explicit insecure value is denied.
        let level = required_level(cfg, namespace, object, username);
        prop_assert!(level.is_some(), "an out-of-scope pod was denied: {}", resp);
        prop_assert!(
            !violations(object, level.unwrap()).is_empty() || insecure(object),
            "a compliant pod without insecure values was denied: {}",
            resp
        );
        return Ok(());
    }
    if operation != "CREATE" {
        prop_assert!(patch.is_none(), "only CREATE is patched: {resp}");
        return Ok(());
    }
    // The patch applies to the request object exactly as the API server sent it.
    let mut patched = object.clone();
    if let Some(p) = &patch {
        json_patch::patch(&mut patched, p)
            .map_err(|e| TestCaseError::fail(format!("patch does not apply: {e}\n{resp}")))?;
    }
    let required = required_level(cfg, namespace, object, username);
    if required.is_none() {
        prop_assert!(patch.is_none(), "an out-of-scope pod is untouched: {resp}");
        return Ok(());
    }
    let level = required.unwrap();
    // Fully decoded (not the webhook's lean decoding): what the API server stores.
    let remaining = violations(&patched, level);
    prop_assert!(
        remaining.is_empty(),
        "allowed, but the patched pod fails {}: {:?}",
        level,
        remaining
    );
    // Both ways: an insecure or non-compliant pod is never admitted unchanged.
    if insecure(object) || !violations(object, level).is_empty() {
        prop_assert!(
            patch.is_some(),
            "a non-compliant pod was admitted unchanged: {}",
            resp
        );
    }
    // Unknown fields of the request object survive (managedFields, status, env).
    prop_assert_eq!(
        &patched["metadata"]["managedFields"],
        &object["metadata"]["managedFields"]
    );
    prop_assert_eq!(&patched["status"], &object["status"]);
    // Idempotent: the patched pod needs no further patch.
    let body = serde_json::to_vec(&review(operation, namespace, username, &patched)).unwrap();
    let again = call(Endpoint::Mutate, &body, cfg).unwrap();
    prop_assert_eq!(&again["response"]["allowed"], &json!(true));
    prop_assert!(
        patch_of(&again).is_none(),
        "second pass patched again: {}",
        again["response"]
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases(CASES * 2))]

    /// Generated pods in every namespace, under every configuration.
    #[test]
    fn patched_pods_apply_pass_their_level_and_are_idempotent(
        object in pod(),
        ns in prop::sample::select(&NAMESPACES[..]),
        cfg_index in 0..4usize,
        user in prop::sample::select(&["system:serviceaccount:kube-system:job-controller", "system:admin"][..]),
        operation in prop_oneof![8 => Just("CREATE"), 1 => Just("UPDATE"), 1 => Just("CONNECT")],
    ) {
        let cfg = &configs()[cfg_index];
        check_pod_review(cfg, ns, user, operation, &object)?;
    }
}

proptest! {
    #![proptest_config(cases(CASES))]

    /// Arbitrary bytes never panic either endpoint; an answer is well formed.
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let cfg = Config::default();
        call(Endpoint::Mutate, &body, &cfg);
        call(Endpoint::Validate, &body, &cfg);
    }

    /// Byte-level mutations (flip, insert, delete, truncate) of a real review.
    #[test]
    fn byte_mutated_reviews_never_panic(
        object in pod(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..8),
    ) {
        let mut body = serde_json::to_vec(&review("CREATE", "floe-jobs", "u", &object)).unwrap();
        for (at, byte, kind) in edits {
            if body.is_empty() { break; }
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => body.insert(i, byte),
                2 => { body.remove(i); }
                _ => body.truncate(i),
            }
        }
        for cfg in &configs()[..2] {
            call(Endpoint::Mutate, &body, cfg);
            call(Endpoint::Validate, &body, cfg);
        }
    }

    /// Any subtree of a real review replaced by arbitrary JSON (wrong shapes
    /// everywhere): never panics; a review that still decodes is answered by
    /// uid, and if it allows with a patch, the patch applies to its object.
    #[test]
    fn reviews_of_the_wrong_shape_never_panic(
        object in pod(),
        at in any::<prop::sample::Index>(),
        junk in any_json(),
    ) {
        let mut doc = review("CREATE", "floe-jobs", "u", &object);
        let mut ptrs = Vec::new();
        pointers(&doc, String::new(), &mut ptrs);
        let ptr = &ptrs[at.index(ptrs.len())];
        if ptr.is_empty() { doc = junk; } else { *doc.pointer_mut(ptr).unwrap() = junk; }
        let body = serde_json::to_vec(&doc).unwrap();
        let cfg = &configs()[1];
        if let Some(out) = call(Endpoint::Mutate, &body, cfg)
            && let Some(p) = patch_of(&out)
        {
            let mut target = doc["request"]["object"].clone();
            json_patch::patch(&mut target, &p)
                .map_err(|e| TestCaseError::fail(format!("patch does not apply at {ptr}: {e}")))?;
        }
        call(Endpoint::Validate, &body, cfg);
    }
}

// ---------------------------------------------------------------- namespaces

/// Deep nesting never overflows the stack: the lean schema rejects a nested
/// value at its first level, and skipped values (unknown keys, fields the
/// decision does not read) are skipped by serde_json without recursion.
#[test]
fn deeply_nested_json_is_answered_without_recursion() {
    let cfg = Config::default();
    for depth in [127usize, 128, 129, 10_000, 1_000_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            let top = admission::review(endpoint, nested.as_bytes(), &cfg).unwrap_err();
            assert!(top.0.starts_with("not an AdmissionReview"), "{}", top.0);
            let decoded = format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","operation":"CREATE","object":{{"metadata":{{"labels":{nested}}}}}}}}}"#
            );
            let out = call(endpoint, decoded.as_bytes(), &cfg).unwrap();
            assert_eq!(out["response"]["allowed"], false, "depth {depth}");
            assert_eq!(out["response"]["status"]["code"], 400, "depth {depth}");
            let skipped = format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":{nested},"request":{{"uid":"u","operation":"CREATE","kind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"default","object":{{"metadata":{{"managedFields":{nested}}},"spec":{{"containers":[]}}}}}}}}"#
            );
            let out = call(endpoint, skipped.as_bytes(), &cfg).unwrap();
            assert_eq!(out["response"]["uid"], "u", "depth {depth}");
        }
    }
}

/// The pod generator reaches both sides of the decision: in-scope CREATEs
/// that are allowed with a patch and ones that are denied (otherwise the
/// properties above would hold vacuously).
#[test]
fn the_pod_generator_covers_patches_and_denials() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let cfgs = configs();
    let (mut patched, mut denied, mut clean) = (0, 0, 0);
    for i in 0..400 {
        let object = pod().new_tree(&mut runner).unwrap().current();
        let cfg = &cfgs[i % 2];
        let body = serde_json::to_vec(&review("CREATE", "floe-jobs", "u", &object)).unwrap();
        let out = call(Endpoint::Mutate, &body, cfg).unwrap();
        match (
            out["response"]["allowed"].as_bool().unwrap(),
            patch_of(&out),
        ) {
            (false, _) => denied += 1,
            (true, Some(_)) => patched += 1,
            (true, None) => clean += 1,
        }
    }
    eprintln!("generated job pods: {patched} patched, {denied} denied, {clean} untouched");
    assert!(
        patched >= 40 && denied >= 40,
        "{patched} patched, {denied} denied"
    );
}
