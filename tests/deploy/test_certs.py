"""`floe-guard certs generate`: the chain verifies with openssl, the SANs are
exactly the Service's four names, and the Secret passes strict validation."""

from __future__ import annotations

import base64
import re
import stat
import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import K8S_VERSION, floe_guard_bin

NAMES = ["webhook", "webhook.guard-ns", "webhook.guard-ns.svc", "webhook.guard-ns.svc.cluster.local"]


def run(*args: str) -> str:
    exe = floe_guard_bin()
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run `cargo build` first (or set FLOE_GUARD_BIN)")
    return subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout


def sans(cert: str) -> list[str]:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
        check=True, capture_output=True, text=True,
    ).stdout
    return re.findall(r"(DNS|IP Address):([^,\s]+)", out)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("certs") / "out"
    run("certs", "generate", "--service", "webhook", "--namespace", "guard-ns", "--out", str(out), "--days", "40")
    return out


def test_files_and_key_mode(generated):
    assert sorted(p.name for p in generated.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert stat.S_IMODE((generated / "tls.key").stat().st_mode) == 0o600


def test_openssl_verifies_the_chain_for_server_auth(generated):
    res = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(generated / "ca.crt"), str(generated / "tls.crt")],
        capture_output=True, text=True,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith(": OK"), res.stdout + res.stderr


def test_openssl_rejects_a_foreign_ca(generated, tmp_path):
    # The check above can fail: another CA does not verify this certificate.
    run("certs", "generate", "--service", "webhook", "--namespace", "guard-ns", "--out", str(tmp_path))
    res = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(generated / "tls.crt")],
        capture_output=True, text=True,
    )
    assert res.returncode != 0


def test_sans_are_exactly_the_four_service_names(generated):
    assert sans(str(generated / "tls.crt")) == [("DNS", n) for n in NAMES]


def test_key_matches_certificate(generated):
    def pub(args):
        return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout

    assert pub(["pkey", "-pubout", "-in", str(generated / "tls.key")]) == pub(
        ["x509", "-noout", "-pubkey", "-in", str(generated / "tls.crt")]
    )


def test_secret_output_is_a_valid_tls_secret(tmp_path):
    secret = yaml.safe_load(run("certs", "generate", "--service", "webhook", "--namespace", "guard-ns", "-o", "secret"))
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["namespace"] == "guard-ns"
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    for key, value in secret["data"].items():
        (tmp_path / key).write_bytes(base64.b64decode(value))
    res = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "tls.crt")],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr
    assert sans(str(tmp_path / "tls.crt")) == [("DNS", n) for n in NAMES]
