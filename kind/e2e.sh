#!/usr/bin/env bash
# End-to-end test of floe-guard on a kind cluster with Calico (NetworkPolicy
# enforced): builds the image, loads it, installs the chart (which runs the
# bootstrap Job), checks the acceptance scenarios with kubectl, runs the
# cluster commands against the real API server, uninstalls, and prints
# PASS/FAIL per scenario. Exits non-zero if any scenario failed.
#
# Needs: docker, kind (>= 0.27), kubectl, helm (>= 3.14), cargo, jq.
# Environment:
#   CERT_MODE=selfSigned|existingSecret  (default selfSigned: the chart's
#                                        `certs install` Jobs; existingSecret: a
#                                        Secret from `certs generate -o secret`)
#   KEEP_CLUSTER=1                       keep the cluster afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=floe-guard-e2e
IMAGE=floe-guard:e2e
NS=floe-guard
CERT_MODE=${CERT_MODE:-selfSigned}
CALICO_VERSION=v3.29.3 # pinned
BUSYBOX=docker.io/library/busybox:1.37.0 # pinned
KCTX="kind-${CLUSTER}"
k() { kubectl --context "$KCTX" "$@"; }

passed=0
failed=0
scenario() {
  local name=$1
  shift
  if "$@" >"/tmp/floe-guard-e2e.$$.log" 2>&1; then
    echo "PASS  $name"
    passed=$((passed + 1))
  else
    echo "FAIL  $name"
    sed 's/^/      | /' "/tmp/floe-guard-e2e.$$.log"
    failed=$((failed + 1))
  fi
}

cleanup() {
  rm -f "/tmp/floe-guard-e2e.$$.log"
  if [[ "${KEEP_CLUSTER:-}" != 1 ]]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

for tool in docker kind kubectl helm cargo jq; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done

echo "== cluster"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --config kind/cluster.yaml --name "$CLUSTER" --wait 0s
fi
k apply --server-side -f "https://raw.githubusercontent.com/projectcalico/calico/${CALICO_VERSION}/manifests/calico.yaml" >/dev/null
k -n kube-system rollout status daemonset/calico-node --timeout=300s
k wait --for=condition=Ready nodes --all --timeout=300s

echo "== image"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

echo "== install (certificates: $CERT_MODE)"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k label namespace "$NS" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/audit=restricted \
  pod-security.kubernetes.io/warn=restricted
cert_args=()
if [[ "$CERT_MODE" == existingSecret ]]; then
  docker run --rm "$IMAGE" certs generate --service floe-guard --namespace "$NS" -o secret | k apply -f -
  ca_file=$(mktemp)
  k -n "$NS" get secret floe-guard-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"$ca_file"
  cert_args=(--set certificates.mode=existingSecret --set-file "certificates.existingSecret.caBundle=$ca_file")
fi
# floe-guard's NetworkPolicy admits 8443 only from the API server: on kind
# with Calico (IPIP) that is the control-plane node, and its tunnel address
# for webhook pods on the other nodes.
cp_node=$(k get nodes -l node-role.kubernetes.io/control-plane -o jsonpath='{.items[0].metadata.name}')
cp_ip=$(k get node "$cp_node" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
cp_tunnel=$(k get node "$cp_node" -o jsonpath='{.metadata.annotations.projectcalico\.org/IPv4IPIPTunnelAddr}')
api_cidrs="${cp_ip}/32${cp_tunnel:+,${cp_tunnel}/32}"
# The bootstrap runs as a post-install hook, so --wait covers it too.
helm --kube-context "$KCTX" install floe-guard charts/floe-guard --namespace "$NS" \
  --set image.repository=floe-guard --set image.tag=e2e --set image.pullPolicy=Never \
  --set "networkPolicy.apiServer.cidrs={${api_cidrs}}" \
  --set 'domains={sales,marketing}' "${cert_args[@]}" --wait --timeout 10m

echo "== fixtures: Polaris-like and OTel-like services in floe-platform, a pod in a domain"
k apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: polaris, namespace: floe-platform, labels: {app: polaris}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: http
      image: $BUSYBOX
      command: [sh, -c, 'mkdir -p /tmp/www && echo polaris >/tmp/www/index.html && exec httpd -f -p 8181 -h /tmp/www']
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: polaris, namespace: floe-platform}
spec: {selector: {app: polaris}, ports: [{name: http, port: 8181}]}
---
apiVersion: v1
kind: Pod
metadata: {name: otel, namespace: floe-platform, labels: {app: otel}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: grpc
      image: $BUSYBOX
      command: [sh, -c, 'mkdir -p /tmp/a && echo otel >/tmp/a/index.html && exec httpd -f -p 4317 -h /tmp/a']
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    - name: http
      image: $BUSYBOX
      command: [sh, -c, 'mkdir -p /tmp/b && echo otel >/tmp/b/index.html && exec httpd -f -p 4318 -h /tmp/b']
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: otel-collector, namespace: floe-platform}
spec: {selector: {app: otel}, ports: [{name: grpc, port: 4317}, {name: http, port: 4318}]}
---
apiVersion: v1
kind: Pod
metadata: {name: target, namespace: floe-sales-domain, labels: {app: target}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: http
      image: $BUSYBOX
      command: [sh, -c, 'mkdir -p /tmp/www && echo target >/tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
YAML
k -n floe-platform wait --for=condition=Ready pod/polaris pod/otel --timeout=120s
k -n floe-sales-domain wait --for=condition=Ready pod/target --timeout=120s
TARGET_IP=$(k -n floe-sales-domain get pod target -o jsonpath='{.status.podIP}')

# Runs a shell script as a Job in floe-jobs (so floe-guard hardens its pod)
# and succeeds when the Job completes.
job() {
  local name=$1 script=$2
  k -n floe-jobs delete job "$name" --ignore-not-found >/dev/null
  k -n floe-jobs create job "$name" --image="$BUSYBOX" -- sh -c "$script"
  k -n floe-jobs wait --for=condition=complete "job/$name" --timeout=90s || {
    k -n floe-jobs logs "job/$name" || true
    return 1
  }
}

check_hardened() {
  job hardened 'touch /tmp/ok && ! touch /ok 2>/dev/null && id -u | grep -qx 1000'
  local pod
  pod=$(k -n floe-jobs get pods -l job-name=hardened -o jsonpath='{.items[0].metadata.name}')
  local q=".spec.securityContext.runAsNonRoot == true
    and .spec.securityContext.seccompProfile.type == \"RuntimeDefault\"
    and (.spec.containers | all(.securityContext.allowPrivilegeEscalation == false
      and .securityContext.readOnlyRootFilesystem == true
      and (.securityContext.capabilities.drop | index(\"ALL\") != null)))
    and ([.spec.volumes[] | select(.emptyDir != null)] | length >= 2)"
  k -n floe-jobs get pod "$pod" -o json | jq -e "$q"
}

check_privileged_rejected() {
  local out
  if out=$(k -n floe-jobs create --dry-run=server -o name -f - 2>&1 <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: privileged
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: privileged, uid: 00000000-0000-0000-0000-000000000001, controller: true}]
spec:
  containers: [{name: main, image: $BUSYBOX, securityContext: {privileged: true}}]
YAML
  ); then
    echo "a privileged job pod was admitted"; return 1
  fi
  echo "$out"
  grep -q 'pods.floe-guard.floe.dev' <<<"$out" && grep -qi 'privileged' <<<"$out"
}

check_unlabelled_namespace_rejected() {
  local out
  if out=$(k create --dry-run=server -o name -f - 2>&1 <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: floe-e2e-unlabelled, labels: {app.kubernetes.io/part-of: floe}}
YAML
  ); then
    echo "a managed namespace without PSS labels was admitted"; return 1
  fi
  echo "$out"
  grep -q 'namespaces.floe-guard.floe.dev' <<<"$out" && grep -q 'kubectl label' <<<"$out"
}

check_no_cross_namespace() {
  # The target answers from its own namespace; from floe-jobs it must not.
  job cross "! wget -q -T 3 -O- http://${TARGET_IP}:8080/"
}

check_dns() {
  job dns 'nslookup kubernetes.default.svc.cluster.local && nslookup polaris.floe-platform.svc.cluster.local'
}

check_platform_services() {
  job services 'wget -q -T 3 -O- http://polaris.floe-platform:8181/ | grep -qx polaris &&
    wget -q -T 3 -O- http://otel-collector.floe-platform:4317/ | grep -qx otel &&
    wget -q -T 3 -O- http://otel-collector.floe-platform:4318/ | grep -qx otel'
}

FG=(cargo run --quiet --release --locked --)
check_cli_check_cni() { "${FG[@]}" network check-cni --context "$KCTX"; }
check_cli_audit() { "${FG[@]}" network audit --context "$KCTX"; }
check_cli_diff() {
  k -n "$NS" get configmap floe-guard-config -o jsonpath='{.data.manifest\.yaml}' >"/tmp/floe-guard-e2e.$$.yaml"
  "${FG[@]}" network diff --config "/tmp/floe-guard-e2e.$$.yaml" --context "$KCTX"
}
check_cli_bootstrap_dry_run() {
  "${FG[@]}" bootstrap --config "/tmp/floe-guard-e2e.$$.yaml" --dry-run=server --context "$KCTX"
}

# The cluster-operation test scenarios (bootstrap, prune, dry-run, audit,
# diff) of tests/cluster_*.rs, against the real API server instead of the
# in-process fake. They share the cluster, hence one test thread; scenarios
# that inject API failures only run against the fake.
check_cluster_tests() {
  local kubeconfig="/tmp/floe-guard-e2e.$$.kubeconfig"
  kind get kubeconfig --name "$CLUSTER" >"$kubeconfig"
  FLOE_GUARD_TEST_KUBECONFIG="$kubeconfig" cargo test --quiet --release --locked \
    --test it -- --test-threads=1 cluster_bootstrap cluster_audit cluster_diff
}

check_helm_test() { helm --kube-context "$KCTX" test floe-guard --namespace "$NS" --logs; }

check_uninstall_leaves_no_webhook() {
  helm --kube-context "$KCTX" uninstall floe-guard --namespace "$NS" --wait --timeout 5m
  local left
  left=$(k get mutatingwebhookconfigurations,validatingwebhookconfigurations -o name | grep floe-guard || true)
  [[ -z "$left" ]] || { echo "left behind: $left"; return 1; }
  # Pods can still be created in the job namespace (PSA still enforces restricted).
  job after-uninstall 'true' || true
  k -n floe-jobs get pods -l job-name=after-uninstall -o name | grep -q pod/
}

echo "== scenarios"
scenario "job pod comes out hardened" check_hardened
scenario "privileged job pod in floe-jobs is rejected with a clear message" check_privileged_rejected
scenario "managed namespace without PSS labels is rejected" check_unlabelled_namespace_rejected
scenario "job pod cannot reach another namespace's pod" check_no_cross_namespace
scenario "DNS resolves from a job pod" check_dns
scenario "Polaris (8181) and OTel (4317/4318) reachable from a job pod" check_platform_services
scenario "helm test sends a review" check_helm_test
scenario "cli: network check-cni (Calico enforces)" check_cli_check_cni
scenario "cli: network audit finds default-deny everywhere" check_cli_audit
scenario "cli: network diff finds no drift after bootstrap" check_cli_diff
scenario "cli: bootstrap --dry-run=server" check_cli_bootstrap_dry_run
scenario "cluster-operation test scenarios against the real API server" check_cluster_tests
scenario "uninstall leaves no webhook behind" check_uninstall_leaves_no_webhook

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
