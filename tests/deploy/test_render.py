"""The manifests and the chart render, lint, and pass strict schema validation."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from conftest import CHART, K8S_VERSION, MODES, find, is_hook, kustomize, render

# Custom resources have no schema in kubernetes-validate: only these kinds, by
# API group, are exempt, and only because they are cert-manager's.
NO_SCHEMA = {("cert-manager.io", "Certificate"), ("cert-manager.io", "Issuer")}


def group(obj: dict) -> str:
    api = obj["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


def validate_strict(obj: dict) -> None:
    if (group(obj), obj["kind"]) in NO_SCHEMA:
        return
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_kustomize_renders_the_whole_base():
    kinds = sorted({o["kind"] for o in kustomize()})
    assert kinds == sorted(
        [
            "ClusterRole", "ClusterRoleBinding", "ConfigMap", "CronJob", "Deployment", "Job",
            "MutatingWebhookConfiguration", "Namespace", "NetworkPolicy", "PodDisruptionBudget",
            "Role", "RoleBinding", "Service", "ServiceAccount", "ValidatingWebhookConfiguration",
        ]
    )


def test_every_kustomize_object_passes_strict_validation():
    for obj in kustomize():
        validate_strict(obj)


@pytest.mark.parametrize("values", [{}, {"domains": ["sales", "marketing"]}, {"webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 1}}])
def test_every_chart_object_passes_strict_validation(mode, values):
    merged = copy.deepcopy(MODES[mode])
    merged.update(values)
    objs = render(merged)
    assert objs
    for obj in objs:
        validate_strict(obj)


def test_strict_validation_rejects_an_unknown_field():
    # The check above can fail: a misspelt field is an error, not ignored.
    svc = copy.deepcopy(find(kustomize(), "Service")[0])
    svc["spec"]["prots"] = svc["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(svc, K8S_VERSION, strict=True)


def test_only_cert_manager_kinds_skip_validation():
    skipped = {(group(o), o["kind"]) for m in MODES.values() for o in render(m)} & NO_SCHEMA
    assert skipped == NO_SCHEMA  # certManager mode renders exactly these CRs
    assert not {(group(o), o["kind"]) for o in render(MODES["selfSigned"])} & NO_SCHEMA


def test_chart_lints_strictly_in_every_mode(mode):
    import helm_python as helm

    report = helm.lint(str(CHART), MODES[mode] or None, strict=True, namespace="floe-guard")
    assert report["errors"] == []
    # Severity 2 = warning, 3 = error; strict lint fails on both. Infos (such
    # as "icon is recommended") are fine.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    "values, key",
    [
        ({"webhook": {"failurePolicy": "Fail", "timeoutSeconds": 5}}, "timeoutSeconds"),
        ({"webhook": {"failurePolicy": "Sometimes", "timeoutSeconds": 3}}, "failurePolicy"),
        ({"certificates": {"mode": "vault", "secretName": "x"}}, "mode"),
        ({"certificates": {"mode": "existingSecret", "secretName": "x"}}, "existingSecret"),
        ({"security": {"pod_secrity": {}}}, "pod_secrity"),
        ({"domains": ["Sales"]}, "domains"),
    ],
)
def test_schema_rejects_bad_values(values, key):
    import helm_python as helm

    with pytest.raises(helm.HelmError) as err:
        render(values)
    assert key in str(err.value)


def test_chart_has_the_objects_of_the_manifests():
    # The same objects in both: every kind of the kustomize base is in the chart
    # (the chart's namespace is the release's, created by `helm --create-namespace`
    # or beforehand, so Namespace is the one exception).
    base = {o["kind"] for o in kustomize()} - {"Namespace"}
    chart = {o["kind"] for o in render()}
    assert base <= chart, base - chart
    release = {o["kind"] for o in render() if not is_hook(o)}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
            "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CronJob"} <= release
