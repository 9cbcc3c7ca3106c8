"""floe-guard's own NetworkPolicy (chart and raw manifests): the webhook port
8443 admits only the API server's sources (and the `helm test` pod), the
metrics port only the monitoring namespace; the chart refuses to render
without a source for the API server unless told to open the port to all."""

from __future__ import annotations

import pytest

from conftest import kustomize, one, render


def webhook_policy(objs) -> dict:
    return next(o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-webhook"))


def rules_by_port(policy: dict) -> dict[int, list[dict] | None]:
    """Port -> its `from` peers (None: any source)."""
    return {r["ports"][0]["port"]: r.get("from") for r in policy["spec"]["ingress"]}


def test_chart_admits_8443_only_from_the_api_server_cidrs_and_the_test_pod():
    rules = rules_by_port(webhook_policy(render({"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.10/32", "10.0.0.11/32"]}}})))
    peers = rules[8443]
    assert [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p] == ["10.0.0.10/32", "10.0.0.11/32"]
    others = [p for p in peers if "ipBlock" not in p]
    assert len(others) == 1 and others[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert "namespaceSelector" not in others[0], "the test pod is in the release's namespace only"


def test_chart_takes_the_cidrs_from_the_floe_config_when_the_value_is_empty():
    values = {"networkPolicy": {"apiServer": {"cidrs": []}},
              "security": {"network_policies": {"api_server": {"cidrs": ["192.0.2.7/32"]}}}}
    peers = rules_by_port(webhook_policy(render(values)))[8443]
    assert [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p] == ["192.0.2.7/32"]


def test_chart_appends_extra_peers_such_as_konnectivity_agents():
    agent = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
             "podSelector": {"matchLabels": {"k8s-app": "konnectivity-agent"}}}
    peers = rules_by_port(webhook_policy(render({"networkPolicy": {"apiServer": {"from": [agent]}}})))[8443]
    assert agent in peers
    assert not [p for p in peers if "ipBlock" in p]


def test_chart_refuses_to_render_without_a_source_for_the_api_server():
    with pytest.raises(Exception, match="networkPolicy.apiServer.cidrs"):
        render({"networkPolicy": {"apiServer": {"cidrs": []}}})


def test_chart_opens_8443_to_all_only_when_told():
    rules = rules_by_port(webhook_policy(render({"networkPolicy": {"apiServer": {"allowAnySource": True}}})))
    assert rules[8443] is None


def test_chart_admits_metrics_only_from_the_monitoring_namespace():
    objs = render({"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.10/32"]}, "monitoringNamespace": "observability", "metricsPort": 9191}})
    rules = rules_by_port(webhook_policy(objs))
    assert rules[9191] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    container = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-addr=0.0.0.0:9191" in container["args"]
    assert {"name": "metrics", "containerPort": 9191, "protocol": "TCP"} in container["ports"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"


def test_chart_passes_the_memory_limit_to_the_server():
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLOE_GUARD_MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.memory"


def test_manifests_admit_8443_only_from_an_ip_block_and_metrics_only_from_monitoring():
    rules = rules_by_port(webhook_policy(kustomize()))
    assert rules[8443] and all(set(p) == {"ipBlock"} for p in rules[8443])
    assert rules[9090] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
