"""Network rules as objects (golden): the NetworkPolicy, the exposure's allow-list and the honest
`NetworkRulesEnforced` verdict, for the shapes that matter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dockyard.core.conditions import Reason
from dockyard.core.meta import Owner
from dockyard.core.names import RegistryNames
from dockyard.models.registry import RegistrySpec
from dockyard.registries.manifests.config import RegistryContext, tls_secret_name
from dockyard.registries.manifests.network import build_network_policy, network_verdict
from dockyard.registries.manifests.workload import build_ingress, build_service

GOLDEN = Path(__file__).parent / "golden"
OWNER = Owner("dockyard.dev/v1alpha1", "Registry", "contoso", "team-a", "8b7c6d5e-0000-4000-8000-000000000001")
NODES = ["10.0.0.11", "10.0.0.12", "fd00::11"]
RULES = {
    "defaultAction": "Deny",
    "ipRules": [{"value": "203.0.113.0/24"}, {"value": "198.51.100.7"}, {"value": "2001:db8::/32"}],
    "allowedNamespaces": ["ci", "ingress-nginx"],
}
SPECS: dict[str, dict[str, Any]] = {
    "deny-clusterip": {"sku": "Premium", "networkRuleSet": RULES},
    "deny-loadbalancer-no-nodes": {
        "sku": "Premium",
        "exposure": {"serviceType": "LoadBalancer"},
        "networkRuleSet": {**RULES, "allowNodes": False},
    },
    "deny-ingress-nginx": {
        "sku": "Premium",
        "exposure": {"ingress": {"host": "registry.example.com", "className": "nginx"}},
        "networkRuleSet": RULES,
    },
    "deny-ingress-unknown-class": {
        "sku": "Premium",
        "exposure": {"ingress": {"host": "registry.example.com", "className": "traefik"}},
        "networkRuleSet": RULES,
    },
    "public-disabled": {
        "sku": "Premium",
        "publicNetworkAccess": "Disabled",
        "exposure": {"serviceType": "LoadBalancer", "ingress": {"host": "registry.example.com"}},
        "networkRuleSet": {**RULES, "defaultAction": "Allow"},
    },
    "allow": {"sku": "Premium", "networkRuleSet": {**RULES, "defaultAction": "Allow"}},
}


def _ctx(name: str) -> RegistryContext:
    spec = RegistrySpec.model_validate(SPECS[name])
    return RegistryContext(
        OWNER, spec, "registry:3", "dockyard:0.1.0", tls_secret_name(spec, RegistryNames("contoso")), "http://e"
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden(name: str) -> None:
    ctx = _ctx(name)
    verdict = network_verdict(ctx, NODES)
    rendered = f"# NetworkRulesEnforced={verdict.status} {verdict.reason}: {verdict.message}\n" + yaml.safe_dump_all(
        [d for d in (build_network_policy(ctx, NODES), build_service(ctx), build_ingress(ctx)) if d is not None],
        sort_keys=False,
        width=200,
    )
    path = GOLDEN / f"network-{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert rendered == path.read_text()


def test_what_each_shape_enforces() -> None:
    clusterip = build_network_policy(_ctx("deny-clusterip"), NODES)
    assert clusterip is not None
    peers = clusterip["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    cidrs = [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p]
    assert cidrs == [
        "203.0.113.0/24",
        "198.51.100.7/32",
        "2001:db8::/32",
        "10.0.0.11/32",
        "10.0.0.12/32",
        "fd00::11/128",
    ]
    assert build_network_policy(_ctx("allow"), NODES) is None
    assert network_verdict(_ctx("allow"), NODES).reason == Reason.NO_NETWORK_RULES
    no_nodes = build_network_policy(_ctx("deny-loadbalancer-no-nodes"), NODES)
    assert no_nodes is not None and "10.0.0.11/32" not in str(no_nodes)
    service = build_service(_ctx("deny-loadbalancer-no-nodes"))
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32"]
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    ingress = build_ingress(_ctx("deny-ingress-nginx"))
    assert ingress is not None
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"] == (
        "203.0.113.0/24,198.51.100.7/32,2001:db8::/32"
    )
    unknown = network_verdict(_ctx("deny-ingress-unknown-class"), NODES)
    assert unknown.status == "False" and unknown.reason == Reason.CLIENT_IP_NOT_VISIBLE
    disabled = _ctx("public-disabled")
    assert build_ingress(disabled) is None and build_service(disabled)["spec"]["type"] == "ClusterIP"
    policy = build_network_policy(disabled, NODES)
    assert policy is not None and "203.0.113.0/24" not in str(policy), "Disabled ignores ipRules, as ACR"


@pytest.mark.parametrize("value", ["not-an-ip", "10.0.0.0/33", "2001:db8::/129", ""])
def test_ip_rules_must_be_addresses_or_cidrs(value: str) -> None:
    with pytest.raises(ValidationError):
        RegistrySpec.model_validate({"sku": "Premium", "networkRuleSet": {"ipRules": [{"value": value}]}})
