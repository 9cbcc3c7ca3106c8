"""Safety properties of the webhook configurations, checked on the kustomize
base and on the chart in every mode, and the two compared, so they cannot
drift apart."""

from __future__ import annotations

import copy

import pytest

from conftest import MODES, NAMESPACE, kustomize, one, render

OTHER_NS = "guard-system"  # a chart release in another namespace


def selects(selector: dict, labels: dict) -> bool:
    """Evaluates a LabelSelector (matchLabels + matchExpressions) on labels."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, vals = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in vals,
            "NotIn": not (key in labels and labels[key] in vals),
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def ns_labels(name: str) -> dict:
    """The labels every namespace has, as the API server sets them."""
    return {"kubernetes.io/metadata.name": name}


def sources():
    """(description, objects, own namespace, job namespaces) to check."""
    yield "manifests", list(kustomize()), NAMESPACE, ["floe-jobs"]
    for mode, values in MODES.items():
        yield f"chart {mode}", render(values), NAMESPACE, ["floe-jobs"]
    v = copy.deepcopy(MODES["selfSigned"])
    v["domains"] = ["sales", "marketing"]
    yield "chart domains", render(v, namespace=OTHER_NS), OTHER_NS, ["floe-jobs", "floe-sales-domain", "floe-marketing-domain"]


SOURCES = list(sources())
IDS = [s[0] for s in SOURCES]


def webhook(objs, kind):
    """The configuration and its (first) webhook. The mutating one has a
    second, audit entry: the same but for its name, path and the side of
    the floe.dev/enforcement=audit label it selects."""
    cfg = one(objs, kind)
    if kind == "MutatingWebhookConfiguration":
        enforce, audit = cfg["webhooks"]
        assert (enforce["name"], audit["name"]) == ("pods.floe-guard.floe.dev", "audit.pods.floe-guard.floe.dev")
        assert audit["clientConfig"]["service"]["path"] == "/mutate-audit"
        same = copy.deepcopy(audit)
        same["name"] = enforce["name"]
        same["clientConfig"]["service"]["path"] = enforce["clientConfig"]["service"]["path"]
        same["namespaceSelector"]["matchExpressions"][-1]["operator"] = "NotIn"
        assert same == enforce
    else:
        assert len(cfg["webhooks"]) == 1
    return cfg, cfg["webhooks"][0]


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_the_enforcement_label_sends_a_job_namespace_to_exactly_one_entry(src):
    _, objs, own, jobs = src
    cfg = one(objs, "MutatingWebhookConfiguration")
    enforce, audit = cfg["webhooks"]
    for ns in jobs:
        for value, chosen in [(None, enforce), ("enforce", enforce), ("audit", audit)]:
            labels = ns_labels(ns) if value is None else {**ns_labels(ns), "floe.dev/enforcement": value}
            selected = [w["name"] for w in (enforce, audit) if selects(w["namespaceSelector"], labels)]
            assert selected == [chosen["name"]], (ns, value)
    for ns in ["default", "kube-system", own]:
        labels = {**ns_labels(ns), "floe.dev/enforcement": "audit"}
        assert not selects(audit["namespaceSelector"], labels), ns


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_common_safety_properties(src):
    _, objs, own, _ = src
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        _, wh = webhook(objs, kind)
        assert wh["sideEffects"] == "None", kind
        assert 1 <= wh["timeoutSeconds"] <= 3, kind
        assert wh["failurePolicy"] == "Fail", kind
        assert wh["admissionReviewVersions"] == ["v1"], kind
        # Never sent: the control plane's namespace and floe-guard's own.
        for ns in ("kube-system", own):
            assert not selects(wh["namespaceSelector"], ns_labels(ns)), (kind, ns)
        # Reaches the floe-guard Service on its 443 port.
        svc = one(objs, "Service")
        ref = wh["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"], ref["port"]) == (svc["metadata"]["name"], own, 443)
        assert [p["port"] for p in svc["spec"]["ports"]] == [443]


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_mutating_webhook_matches_only_pod_job_cronjob_create_and_debug_in_job_namespaces(src):
    _, objs, own, jobs = src
    _, wh = webhook(objs, "MutatingWebhookConfiguration")
    # Pod CREATE, the UPDATE of pods/ephemeralcontainers (kubectl debug), and
    # Job/CronJob CREATE (their pod templates); never a plain pod UPDATE nor
    # a workload UPDATE.
    assert wh["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods/ephemeralcontainers"], "scope": "Namespaced"},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
    ]
    assert wh["reinvocationPolicy"] == "IfNeeded"
    assert wh["clientConfig"]["service"]["path"] == "/mutate"
    assert "objectSelector" not in wh  # pod authors cannot opt out by label
    for ns in jobs:
        assert selects(wh["namespaceSelector"], ns_labels(ns)), ns
    for ns in ["floe-platform", "default", "kube-system", own, "floe-other-domain"]:
        assert not selects(wh["namespaceSelector"], ns_labels(ns)), ns
    # A hand-set label cannot opt a namespace in or out: only the name counts.
    assert not selects(wh["namespaceSelector"], {**ns_labels("default"), "app.kubernetes.io/part-of": "floe"})
    assert selects(wh["namespaceSelector"], {**ns_labels("floe-jobs"), "floe.dev/pod-hardening": "disabled"})


@pytest.mark.parametrize("src", SOURCES, ids=IDS)
def test_validating_webhook_matches_only_namespace_create_update(src):
    _, objs, own, _ = src
    _, wh = webhook(objs, "ValidatingWebhookConfiguration")
    assert wh["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["namespaces"], "scope": "Cluster"}
    ]
    assert wh["clientConfig"]["service"]["path"] == "/validate"
    assert "reinvocationPolicy" not in wh
    for ns in ["floe-jobs", "floe-platform", "floe-sales-domain", "team-a"]:
        assert selects(wh["namespaceSelector"], ns_labels(ns)), ns
    for ns in ["kube-system", "kube-public", "kube-node-lease", own]:
        assert not selects(wh["namespaceSelector"], ns_labels(ns)), ns
    # The CEL pre-filter names floe's namespaces: by name prefix, or the
    # part-of label before or after the change.
    [cond] = wh["matchConditions"]
    expr = cond["expression"]
    assert "object.metadata.name.startsWith('floe-')" in expr
    assert "object.metadata.labels['app.kubernetes.io/part-of'] == 'floe'" in expr
    assert "oldObject.metadata.labels['app.kubernetes.io/part-of'] == 'floe'" in expr


def strip(cfg: dict) -> dict:
    """A webhook configuration without what legitimately differs by source."""
    cfg = copy.deepcopy(cfg)
    cfg["metadata"] = {"name": cfg["metadata"]["name"]}
    for wh in cfg["webhooks"]:
        wh["clientConfig"].pop("caBundle", None)
    return cfg


@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
def test_manifests_and_chart_webhooks_are_identical(kind):
    base = strip(one(kustomize(), kind))
    for mode, values in MODES.items():
        assert strip(one(render(values), kind)) == base, mode


def test_chart_values_reach_the_webhooks():
    objs = render({"webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 1}})
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        _, wh = webhook(objs, kind)
        assert (wh["failurePolicy"], wh["timeoutSeconds"]) == ("Ignore", 1)


def test_ca_bundle_per_certificate_mode():
    import base64

    for mode, values in MODES.items():
        objs = render(values)
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            cfg, wh = webhook(objs, kind)
            annotations = cfg["metadata"].get("annotations") or {}
            if mode.startswith("certManager"):
                assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/floe-guard-serving"
                assert one(objs, "Certificate", "floe-guard-serving")["spec"]["secretName"] == "floe-guard-tls"
            else:
                assert "cert-manager.io/inject-ca-from" not in annotations
            if mode == "existingSecret":
                assert base64.b64decode(wh["clientConfig"]["caBundle"]).decode() == values["certificates"]["existingSecret"]["caBundle"]
            else:
                # Filled in at run time (certs install or cert-manager's injector).
                assert "caBundle" not in wh["clientConfig"]
