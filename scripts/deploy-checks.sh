#!/usr/bin/env bash
# Deployment checks (run by .ci/run): kubectl kustomize, the Helm chart with
# the real Helm library (helm-python-sdk), strict schema validation
# (kubernetes-validate), webhook safety properties, certificates with openssl
# (tests/deploy), and shellcheck on every shell script.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: $* missing and cannot be installed here" >&2
    return 1
  fi
}
command -v kubectl >/dev/null || apt_install kubectl || apt_install kubernetes-client
command -v shellcheck >/dev/null || apt_install shellcheck
command -v openssl >/dev/null || apt_install openssl

echo "deploy: shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck "${scripts[@]}"

echo "deploy: kubectl kustomize manifests"
kubectl kustomize manifests >/dev/null

venv=target/deploy-venv
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt

cargo build --locked --quiet --bin floe-guard
FLOE_GUARD_BIN=target/debug/floe-guard "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/deploy
