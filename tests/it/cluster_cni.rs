//! `network check-cni` classifies each CNI from its listings, through the
//! kube client and the fake API server.

use crate::support::fake_apiserver::{FakeApiServer, floe_guard, stderr, stdout};

fn check(fixture: &str) -> (Option<i32>, String, String) {
    let f = FakeApiServer::start();
    let path = format!(
        "{}/tests/data/cni/{fixture}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f.insert_list(&list);
    let out = floe_guard(f.kubeconfig(), &["network", "check-cni"]);
    (out.status.code(), stdout(&out), stderr(&out))
}

#[test]
fn each_cni_is_classified_with_its_enforcement() {
    // (fixture, CNI named, exit code: 0 enforced, 3 not enforced, 1 unknown)
    let cases = [
        ("calico", "CNI: Calico", 0),
        ("calico-operator", "CNI: Calico", 0),
        ("cilium", "CNI: Cilium", 0),
        ("antrea", "CNI: Antrea", 0),
        ("weave", "CNI: Weave Net", 0),
        ("weave-without-npc", "CNI: Weave Net (without weave-npc)", 3),
        ("kube-router", "CNI: kube-router", 0),
        (
            "kube-router-no-firewall",
            "CNI: kube-router (firewall off)",
            3,
        ),
        ("kindnet", "CNI: kindnet", 0),
        (
            "kindnet-old",
            "CNI: kindnet (before NetworkPolicy support)",
            3,
        ),
        ("flannel", "CNI: Flannel", 3),
        ("canal", "CNI: Canal", 0),
        (
            "aws-vpc-cni-policy",
            "CNI: AWS VPC CNI with the network policy agent",
            0,
        ),
        (
            "aws-vpc-cni",
            "CNI: AWS VPC CNI (network policy agent disabled)",
            3,
        ),
        (
            "azure-npm",
            "CNI: Azure CNI with Azure Network Policy Manager",
            0,
        ),
        ("azure-cilium", "CNI: Azure CNI powered by Cilium", 0),
        ("azure-cni", "CNI: Azure CNI (no network policy engine)", 3),
        ("gke-dataplane-v2", "CNI: GKE Dataplane V2", 0),
    ];
    for (fixture, cni, code) in cases {
        let (got, out, err) = check(fixture);
        assert_eq!(got, Some(code), "{fixture}: {out}{err}");
        assert!(
            out.lines().next().is_some_and(|l| l.starts_with(cni)),
            "{fixture}: {out}"
        );
        if code == 3 {
            assert!(
                out.contains("NOT enforced") && out.contains("remediation: "),
                "{fixture}: {out}"
            );
        } else {
            assert!(
                out.contains("NetworkPolicies: enforced"),
                "{fixture}: {out}"
            );
        }
    }
}

#[test]
fn unknown_cni_exits_1_with_the_reason() {
    let (code, _, err) = check("unknown");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot tell whether NetworkPolicies are enforced"),
        "{err}"
    );
    assert!(err.contains("kube-system/kube-proxy"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
