"""The checks a Kubernetes misconfiguration scanner (trivy config, kube-score,
polaris) makes, encoded here because none can be downloaded in CI: on the
kustomize base and on the chart in every certificate mode. What a scanner
still reports is listed in SECURITY.md with the reason it stays."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from conftest import MODES, floe_guard_bin, kustomize, render

WRITE = {"create", "update", "patch", "delete", "deletecollection"}
DANGEROUS = {"escalate", "bind", "impersonate", "*"}
RBAC_KINDS = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
# Cluster-wide reads that cannot name objects, and why (docs/rbac.md).
CLUSTER_READS = {
    ("", "nodes"): "bootstrap: pod CIDRs when cluster_cidrs is not configured",
    ("networking.k8s.io", "servicecidrs"): "bootstrap: service CIDRs when cluster_cidrs is not configured",
}
READER = "network-reader"  # read-only ClusterRole bound to nobody
WRITER = "report-writer"  # floe-guard's policy reports only, bound to nobody
REPORTS = {
    ("openreports.io", "reports"),
    ("openreports.io", "clusterreports"),
    ("wgpolicyk8s.io", "policyreports"),
    ("wgpolicyk8s.io", "clusterpolicyreports"),
}


def sources():
    yield "manifests", list(kustomize())
    for mode, values in MODES.items():
        yield f"chart {mode}", render(values)
    v = copy.deepcopy(MODES["selfSigned"])
    v.update({"domains": ["sales"], "bootstrap": {"enabled": True, "prune": True}})
    yield "chart domains+prune", render(v)


SOURCES = list(sources())
IDS = [s[0] for s in SOURCES]


def rules(obj):
    return obj.get("rules") or []


def pod_specs(objs):
    """(name, pod spec) of every workload and pod template."""
    for o in objs:
        kind, spec = o["kind"], o.get("spec") or {}
        name = f'{kind}/{o["metadata"]["name"]}'
        if kind == "Pod":
            yield name, spec
        elif kind in ("Deployment", "Job"):
            yield name, spec["template"]["spec"]
        elif kind == "CronJob":
            yield name, spec["jobTemplate"]["spec"]["template"]["spec"]


def bound_subjects(objs, role_kind, role_name, namespace=None):
    """ServiceAccounts bound to a role (by ClusterRoleBinding, or RoleBinding in `namespace`)."""
    out = set()
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = b["roleRef"]
        if ref["kind"] != role_kind or ref["name"] != role_name:
            continue
        if b["kind"] == "RoleBinding" and b["metadata"].get("namespace") != namespace:
            continue
        out |= {s["name"] for s in b.get("subjects") or []}
    return out


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_rbac_has_no_wildcard_no_escalation_and_no_rbac_or_exec_rights(src):
    _, objs = src
    for o in (o for o in objs if o["kind"] in ("Role", "ClusterRole")):
        for r in rules(o):
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in (r.get(key) or []), (o["metadata"]["name"], r)
            assert not DANGEROUS & set(r["verbs"]), r
            assert not RBAC_KINDS & set(r["resources"]), r
            assert not {"pods/exec", "pods/attach", "nodes/proxy", "serviceaccounts/token"} & set(r["resources"]), r


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_no_cluster_wide_write_without_names_and_cluster_reads_are_the_documented_ones(src):
    _, objs = src
    for o in (o for o in objs if o["kind"] == "ClusterRole"):
        name = o["metadata"]["name"]
        if name.endswith(WRITER):
            # Only floe-guard's own reports; create and list cannot be
            # restricted by name, every other verb is.
            assert not bound_subjects(objs, "ClusterRole", name)
            for r in rules(o):
                assert all((g, res) in REPORTS for g in r["apiGroups"] for res in r["resources"]), r
                assert set(r["verbs"]) <= {"create", "list"} or r.get("resourceNames"), r
            continue
        for r in rules(o):
            if WRITE & set(r["verbs"]):
                assert r.get("resourceNames"), f"cluster-wide write without resourceNames in {name}: {r}"
            elif not r.get("resourceNames") and not name.endswith(READER):
                for g in r["apiGroups"]:
                    for res in r["resources"]:
                        assert (g, res) in CLUSTER_READS, f"undocumented cluster-wide read in {name}: {r}"
                assert set(r["verbs"]) <= {"get", "list"}, r
    # The cluster-wide reader is read-only and bound to nobody.
    for o in (o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith(READER)):
        assert all(set(r["verbs"]) <= {"get", "list"} for r in rules(o))
        assert not bound_subjects(objs, "ClusterRole", o["metadata"]["name"])


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_secrets_are_readable_only_by_name_and_the_ca_key_only_by_the_certs_job(src):
    label, objs = src
    readers: dict[str, set] = {}
    for o in (o for o in objs if o["kind"] in ("Role", "ClusterRole")):
        for r in rules(o):
            if "secrets" not in r["resources"]:
                continue
            assert not {"list", "watch"} & set(r["verbs"]), r
            if "get" in r["verbs"]:
                assert r.get("resourceNames"), r
                ns = o["metadata"].get("namespace")
                who = bound_subjects(objs, o["kind"], o["metadata"]["name"], ns)
                for secret in r["resourceNames"]:
                    readers.setdefault(secret, set()).update(who)
    ca = {s for s in readers if s.endswith("-ca")}
    if "selfSigned" in label or label == "manifests":
        assert ca, readers
    for s in ca:
        # The certs Jobs, and the uninstall hook that deletes it.
        assert all(w.endswith(("-certs", "-certs-hook", "-cleanup")) for w in readers[s]), readers[s]


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_networkpolicy_writes_are_roles_in_the_managed_namespaces_with_delete_only_for_prune(src):
    label, objs = src
    managed = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"
               and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "floe"}
    for o in (o for o in objs if o["kind"] in ("Role", "ClusterRole")):
        for r in rules(o):
            if "networkpolicies" in r["resources"] and WRITE & set(r["verbs"]):
                assert o["kind"] == "Role" and o["metadata"]["namespace"] in managed, o["metadata"]
                assert ("delete" in r["verbs"]) == ("prune" in label), r


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_every_pod_is_restricted_limited_and_mounts_a_token_only_when_it_calls_the_api(src):
    _, objs = src
    specs = list(pod_specs(objs))
    assert specs
    for name, spec in specs:
        psc = spec.get("securityContext") or {}
        assert psc.get("runAsNonRoot") is True, name
        assert psc.get("runAsUser", 0) > 10000 and psc.get("runAsGroup", 0) > 10000, name
        assert (psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), (name, key)
        assert not any("hostPath" in v for v in spec.get("volumes") or []), name
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext") or {}
            assert sc.get("readOnlyRootFilesystem") is True, (name, c["name"])
            assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
            res = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(res.get("requests") or {}), (name, c["name"])
            assert "memory" in (res.get("limits") or {}), (name, c["name"])
            if not name.startswith("Deployment/"):
                # The webhook has no CPU limit on purpose (SECURITY.md).
                assert "cpu" in res["limits"], (name, c["name"])
            assert ":" in c["image"] or name.startswith(("Job/floe-guard-", "CronJob/floe-guard-", "Deployment/floe-guard")), c["image"]
            assert not c["image"].endswith(":latest"), c["image"]
        calls_api = not name.startswith(("Deployment/", "Pod/"))
        if not calls_api:
            assert spec.get("automountServiceAccountToken") is False, name


def test_the_chart_grants_the_rust_renderers_rules_for_the_same_config(tmp_path):
    """`floe-guard manifests rbac` and the chart's templates agree."""
    values = {"domains": ["sales"], "bootstrap": {"enabled": True, "prune": True},
              "security": {"network_policies": {"cluster_cidrs": ["10.244.0.0/16"]}}}
    config = tmp_path / "manifest.yaml"
    config.write_text(yaml.safe_dump({"domains": values["domains"], "security": values["security"]}))
    out = subprocess.run([str(floe_guard_bin()), "manifests", "rbac", "--config", str(config), "--prune"],
                         check=True, capture_output=True, text=True).stdout
    want = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o["rules"]
            for o in yaml.safe_load_all(out) if o and o["kind"] in ("Role", "ClusterRole")}
    got = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o["rules"]
           for o in render(values) if o["kind"] in ("Role", "ClusterRole")}
    assert want
    for key, rules_ in want.items():
        assert got.get(key) == rules_, key
