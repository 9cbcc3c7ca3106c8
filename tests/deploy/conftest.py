"""Shared fixtures of the deployment checks: the rendered kustomize base and
the Helm chart rendered with the real Helm library (helm-python-sdk)."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CHART = ROOT / "charts" / "floe-guard"
NAMESPACE = "floe-guard"
RELEASE = "floe-guard"
K8S_VERSION = "1.37.0"

# A CA certificate for the existingSecret mode (only its PEM shape matters).
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

# Every certificate mode with the values it needs.
MODES = {
    "selfSigned": {},
    "certManager": {"certificates": {"mode": "certManager"}},
    "certManager-issuerRef": {
        "certificates": {
            "mode": "certManager",
            "certManager": {"issuerRef": {"kind": "ClusterIssuer", "name": "corp-ca", "group": "cert-manager.io"}},
        }
    },
    "existingSecret": {
        "certificates": {"mode": "existingSecret", "secretName": "my-tls", "existingSecret": {"caBundle": PEM}}
    },
}


def docs(text: str) -> list[dict]:
    """The non-empty YAML documents of a multi-document stream."""
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def kustomize() -> tuple[dict, ...]:
    """`kubectl kustomize manifests`, as objects."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS)], check=True, capture_output=True, text=True
    ).stdout
    return tuple(docs(out))


# The chart refuses to render without the API server's source addresses
# (floe-guard's own NetworkPolicy); every render gets this one unless the
# values set `networkPolicy` themselves.
API_SERVER = {"networkPolicy": {"apiServer": {"cidrs": ["172.18.0.2/32"]}}}


def render(values: dict | None = None, namespace: str = NAMESPACE, name: str = RELEASE) -> list[dict]:
    """The chart rendered offline as an install, as objects (NOTES.txt left out)."""
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    out = chart.render({**API_SERVER, **(values or {})}, name=name, namespace=namespace, is_install=True)
    objs: list[dict] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        objs.extend(docs(text))
    return objs


def find(objs, kind: str, name: str | None = None) -> list[dict]:
    """Objects of a kind (and name)."""
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs, kind: str, name: str | None = None) -> dict:
    """The single object of a kind (and name)."""
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def is_hook(obj: dict) -> bool:
    """Whether a chart object is a Helm hook (not part of the release's objects)."""
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def floe_guard_bin() -> Path:
    """The floe-guard binary (FLOE_GUARD_BIN, else target/debug/floe-guard)."""
    return Path(os.environ.get("FLOE_GUARD_BIN", ROOT / "target" / "debug" / "floe-guard"))


@pytest.fixture(params=sorted(MODES))
def mode(request) -> str:
    """Each certificate mode in turn."""
    return request.param
