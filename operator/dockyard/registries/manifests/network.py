"""Network rules as Kubernetes objects: a NetworkPolicy on the registry pods and an allow-list at
the exposure, plus what of it the cluster can be trusted to enforce. Pure.

Rules are in force when `networkRuleSet.defaultAction` is Deny or `publicNetworkAccess` is
Disabled. The NetworkPolicy admits, on the registry and token ports: the registry's namespace,
`allowedNamespaces` (by `kubernetes.io/metadata.name`, which the control plane sets on every
namespace), the nodes' InternalIPs (`allowNodes`, so kubelets can pull) and, unless public access is
disabled, `ipRules` as ipBlocks. At the exposure: ingress-nginx and HAProxy Ingress annotations, and
`loadBalancerSourceRanges` + `externalTrafficPolicy: Local` on a LoadBalancer (NodePort: Local too),
so that pod-level ipBlocks see client addresses.

What is not promised (the condition says so): a NetworkPolicy needs a network plugin that enforces
it, which the API cannot tell; behind an Ingress the pods see the controller, not the client, so
`ipRules` hold only where the controller honours the annotations; SNAT may hide clients of a
NodePort/LoadBalancer where `externalTrafficPolicy: Local` is not honoured.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from dockyard.core.conditions import Reason
from dockyard.core.meta import metadata
from dockyard.core.names import selector_labels
from dockyard.registries.manifests.config import REGISTRY_PORT, TOKEN_PORT, RegistryContext

COMPONENT: Final = "registry"
NAMESPACE_LABEL: Final = "kubernetes.io/metadata.name"
INGRESS_ALLOW_ANNOTATIONS: Final = {
    # ingress-nginx (the older key is still read by older controllers)
    "nginx": (
        "nginx.ingress.kubernetes.io/whitelist-source-range",
        "nginx.ingress.kubernetes.io/allowlist-source-range",
    ),
    # HAProxy Kubernetes Ingress Controller (haproxytech)
    "haproxy": ("haproxy.org/allow-list",),
}
"""Allow-list annotations by ingress class; every one is set, the class decides which is read."""


def rules_in_force(ctx: RegistryContext) -> bool:
    rules = ctx.spec.network_rule_set
    return ctx.spec.public_network_access == "Disabled" or (rules is not None and rules.default_action == "Deny")


def public_exposure(ctx: RegistryContext) -> bool:
    """Whether the registry is exposed beyond the cluster (publicNetworkAccess Disabled removes it)."""
    return ctx.spec.public_network_access == "Enabled"


def client_cidrs(ctx: RegistryContext) -> list[str]:
    """`ipRules` as normalized CIDRs (a single address as /32 or /128), deduplicated, in order;
    none when public access is disabled (ACR: Disabled overrides the firewall rules)."""
    rules = ctx.spec.network_rule_set
    if rules is None or not public_exposure(ctx):
        return []
    cidrs = [str(ipaddress.ip_network(rule.value, strict=False)) for rule in rules.ip_rules]
    return list(dict.fromkeys(cidrs))


def node_cidrs(addresses: Sequence[str]) -> list[str]:
    return sorted({str(ipaddress.ip_network(address)) for address in addresses})


def build_network_policy(ctx: RegistryContext, node_addresses: Sequence[str]) -> dict[str, Any] | None:
    """The NetworkPolicy, or None when no rule is in force (the caller deletes an old one)."""
    if not rules_in_force(ctx):
        return None
    rules = ctx.spec.network_rule_set
    peers: list[dict[str, Any]] = [{"podSelector": {}}]  # the registry's own namespace
    namespaces = sorted(set(rules.allowed_namespaces)) if rules else []
    if namespaces:
        peers.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": NAMESPACE_LABEL, "operator": "In", "values": namespaces}]
                }
            }
        )
    allow_nodes = rules.allow_nodes if rules else True
    blocks = client_cidrs(ctx) + (node_cidrs(node_addresses) if allow_nodes else [])
    peers += [{"ipBlock": {"cidr": cidr}} for cidr in dict.fromkeys(blocks)]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(ctx.owner, ctx.names.network_policy, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(ctx.owner.kind, ctx.owner.name, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": peers,
                    "ports": [{"protocol": "TCP", "port": REGISTRY_PORT}, {"protocol": "TCP", "port": TOKEN_PORT}],
                }
            ],
        },
    }


def ingress_allow_list(ctx: RegistryContext) -> dict[str, str]:
    """Annotations that make the common controllers refuse other clients (none without rules)."""
    cidrs = client_cidrs(ctx)
    if not rules_in_force(ctx) or not cidrs:
        return {}
    value = ",".join(cidrs)
    return {key: value for keys in INGRESS_ALLOW_ANNOTATIONS.values() for key in keys}


def service_allow_list(ctx: RegistryContext) -> dict[str, Any]:
    """Service spec fields: the load balancer's source ranges and a traffic policy that keeps client
    addresses (none without rules, or for a ClusterIP Service)."""
    kind = effective_service_type(ctx)
    if not rules_in_force(ctx) or kind == "ClusterIP":
        return {}
    fields: dict[str, Any] = {"externalTrafficPolicy": "Local"}
    if kind == "LoadBalancer":
        # Nothing listed and Deny: no address from outside (the nodes' and pods' traffic is in-cluster).
        fields["loadBalancerSourceRanges"] = client_cidrs(ctx) or ["127.0.0.1/32"]
    return fields


def effective_service_type(ctx: RegistryContext) -> str:
    return ctx.spec.exposure.service_type if public_exposure(ctx) else "ClusterIP"


@dataclass(frozen=True)
class NetworkVerdict:
    """The `NetworkRulesEnforced` condition."""

    status: str
    reason: str
    message: str


def network_verdict(ctx: RegistryContext, node_addresses: Sequence[str]) -> NetworkVerdict:
    """What is enforced, and where it cannot be: `True` only for what the cluster's objects carry,
    with the caveat that a network plugin must enforce NetworkPolicies."""
    if not rules_in_force(ctx):
        return NetworkVerdict("True", Reason.NO_NETWORK_RULES, "defaultAction Allow and public access enabled")
    rules = ctx.spec.network_rule_set
    admitted = [f"namespace {ctx.owner.namespace}"]
    if rules and rules.allowed_namespaces:
        admitted.append(f"namespaces {', '.join(sorted(set(rules.allowed_namespaces)))}")
    cidrs = client_cidrs(ctx)
    if cidrs:
        admitted.append(f"{len(cidrs)} address ranges")
    if (rules.allow_nodes if rules else True) and node_addresses:
        admitted.append(f"{len(set(node_addresses))} node addresses")
    policy = (
        f"NetworkPolicy {ctx.names.network_policy} admits only {'; '.join(admitted)} "
        "(enforced where the cluster's network plugin implements NetworkPolicy)"
    )
    if not public_exposure(ctx):
        return NetworkVerdict("True", Reason.NETWORK_POLICY_APPLIED, f"public access disabled: {policy}")
    ingress = ctx.spec.exposure.ingress
    if ingress is not None and cidrs:
        known = ingress.class_name in INGRESS_ALLOW_ANNOTATIONS
        if not known:
            return NetworkVerdict(
                "False",
                Reason.CLIENT_IP_NOT_VISIBLE,
                f"{policy}; behind Ingress class {ingress.class_name or '(default)'} the pods see the controller, "
                "not the client, and Dockyard knows no allow-list annotation of that class: ipRules are not "
                "enforced for Ingress clients (ingress-nginx and HAProxy annotations are set)",
            )
        return NetworkVerdict(
            "True",
            Reason.EXPOSURE_ALLOW_LIST_APPLIED,
            f"{policy}; Ingress ({ingress.class_name}) allows only ipRules, by annotation (the controller must see "
            "client addresses: PROXY protocol or externalTrafficPolicy Local); add the controller's namespace "
            "to allowedNamespaces",
        )
    kind = effective_service_type(ctx)
    if kind == "LoadBalancer":
        return NetworkVerdict(
            "True",
            Reason.EXPOSURE_ALLOW_LIST_APPLIED,
            f"{policy}; the LoadBalancer allows only ipRules (loadBalancerSourceRanges, where the cloud provider "
            "supports them) with externalTrafficPolicy Local",
        )
    return NetworkVerdict("True", Reason.NETWORK_POLICY_APPLIED, policy)
