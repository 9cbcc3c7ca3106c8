"""Every Kubernetes version floe-guard supports (the chart's kubeVersion, as
the README states it): the manifests, the rendered chart and the generated
NetworkPolicies pass strict schema validation against each one."""

from __future__ import annotations

import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import CHART, MODES, ROOT, docs, floe_guard_bin, kustomize, render
from test_render import NO_SCHEMA, group


def supported_minors() -> list[int]:
    """1.N for N in the chart's `>=1.A.0-0 <1.B.0-0` range."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    m = re.fullmatch(r">=1\.(\d+)\.0-0 <1\.(\d+)\.0-0", chart["kubeVersion"])
    assert m, f"kubeVersion {chart['kubeVersion']!r} is not a closed 1.A..1.B range"
    return list(range(int(m[1]), int(m[2])))


SUPPORTED = [f"1.{n}.0" for n in supported_minors()]


def test_the_readme_states_the_charts_range():
    minors = supported_minors()
    readme = (ROOT / "README.md").read_text()
    assert f"Supported Kubernetes: **1.{minors[0]} to 1.{minors[-1]}**" in readme


def test_kubernetes_validate_carries_every_supported_version():
    carried = set(kubernetes_validate.utils.all_versions())
    missing = [v for v in SUPPORTED if v not in carried]
    assert not missing, f"no schema for {missing}: raise kubernetes-validate or narrow kubeVersion"


def objects(tmp_path) -> list[dict]:
    out = tmp_path / "network"
    config = ROOT / "examples" / "network-manifest.yaml"
    subprocess.run(
        [str(floe_guard_bin()), "network", "generate", "--config", str(config), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    policies = [d for f in sorted(out.glob("*.yaml")) for d in docs(f.read_text())]
    assert policies
    chart = [o for mode in MODES.values() for o in render({**mode, "domains": ["sales"]})]
    return list(kustomize()) + chart + policies


@pytest.mark.parametrize("version", SUPPORTED)
def test_everything_shipped_or_generated_validates_against(version, tmp_path):
    for obj in objects(tmp_path):
        if (group(obj), obj["kind"]) in NO_SCHEMA:
            continue
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_chart_lints_strictly_for(version, mode):
    """`helm lint --strict --kube-version` with the Helm v4 library: the
    templates render with that version's capabilities, and Helm's
    deprecated-API rule finds nothing deprecated or removed there. (Helm lint
    does not check the chart's kubeVersion range itself; the test above
    holds it to the README and to the schemas.)"""
    import helm_python as helm

    report = helm.lint(str(CHART), MODES[mode] or None, strict=True, namespace="floe-guard", kube_version=f"v{version}")
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report

