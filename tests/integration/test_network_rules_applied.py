"""Network rules on the real API server: the operator renders a NetworkPolicy that the API server
accepts (ipBlocks of IPv4 and IPv6 CIDRs and single addresses, the namespaces, the real nodes'
InternalIPs), the exposure gets its allow-list, `NetworkRulesEnforced` says what is enforced, and
turning the rules off removes the policy. Whether packets are dropped depends on the network plugin;
the local control plane runs none, so this module checks the objects, not the traffic."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from test_registry import _until, crds, operator  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

RULES = {
    "defaultAction": "Deny",
    "ipRules": [{"value": "203.0.113.0/24"}, {"value": "198.51.100.7"}, {"value": "2001:db8::/32"}],
    "allowedNamespaces": ["ci"],
}


def _apply(cluster: Any, namespace: str, spec: dict[str, Any]) -> Any:
    manifest = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "fenced"}, "spec": spec}
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False)


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _condition(cluster: Any, namespace: str) -> dict[str, Any] | None:
    body = _get(cluster, namespace, "registry", "fenced") or {}
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition["type"] == "NetworkRulesEnforced" and condition.get("observedGeneration") == body["metadata"].get(
            "generation"
        ):
            return dict(condition)
    return None


def test_network_rules_become_a_network_policy(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    node_ips = {
        a["address"] for n in nodes for a in n.get("status", {}).get("addresses", []) if a["type"] == "InternalIP"
    }
    applied = _apply(
        cluster, namespace, {"sku": "Premium", "exposure": {"serviceType": "LoadBalancer"}, "networkRuleSet": RULES}
    )
    assert applied.returncode == 0, applied.stderr
    policy = _until(lambda: _get(cluster, namespace, "networkpolicy", "fenced"), "the NetworkPolicy")
    assert policy["metadata"]["ownerReferences"][0]["kind"] == "Registry"
    peers = policy["spec"]["ingress"][0]["from"]
    cidrs = {p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p}
    assert {"203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32"} <= cidrs
    assert {f"{ip}/32" if ":" not in ip else f"{ip}/128" for ip in node_ips} <= cidrs
    selector = next(p["namespaceSelector"] for p in peers if "namespaceSelector" in p)
    assert selector["matchExpressions"][0]["values"] == ["ci"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "fenced"
    service = _until(
        lambda: (
            (s := _get(cluster, namespace, "service", "fenced")) and s["spec"].get("loadBalancerSourceRanges") and s
        ),
        "the Service's source ranges",
    )
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    condition = _until(lambda: _condition(cluster, namespace), "NetworkRulesEnforced")
    assert condition["status"] == "True" and condition["reason"] == "ExposureAllowListApplied"
    assert "network plugin" in condition["message"]

    # Public access disabled: the LoadBalancer goes, ipRules no longer admitted.
    rules = {**RULES, "defaultAction": "Allow"}
    applied = _apply(
        cluster,
        namespace,
        {
            "sku": "Premium",
            "exposure": {"serviceType": "LoadBalancer"},
            "publicNetworkAccess": "Disabled",
            "networkRuleSet": rules,
        },
    )
    assert applied.returncode == 0, applied.stderr
    _until(
        lambda: (s := _get(cluster, namespace, "service", "fenced")) and s["spec"]["type"] == "ClusterIP",
        "a ClusterIP Service",
    )
    _until(
        lambda: "203.0.113.0/24" not in json.dumps(_get(cluster, namespace, "networkpolicy", "fenced")),
        "ipRules to leave the policy",
    )
    assert (_until(lambda: _condition(cluster, namespace), "the condition") or {})["reason"] == "NetworkPolicyApplied"

    # No rule in force: no policy.
    assert _apply(cluster, namespace, {"sku": "Premium", "networkRuleSet": rules}).returncode == 0
    _until(lambda: _get(cluster, namespace, "networkpolicy", "fenced") is None, "the NetworkPolicy to be deleted")
    assert (_until(lambda: _condition(cluster, namespace), "the condition") or {})["reason"] == "NoNetworkRules"


def test_bad_ip_rules_are_refused_at_admission(cluster: Any, crds: None, namespace: str) -> None:
    for value in ("not-an-ip", "10.0.0.0/33"):
        refused = _apply(cluster, namespace, {"sku": "Premium", "networkRuleSet": {"ipRules": [{"value": value}]}})
        assert refused.returncode != 0 and "ipRules" in refused.stderr, value
