"""Keeping the registry's global login server over its routed replicas (`manifests/endpoints.py`).

`ensure_global_endpoint` makes the Service's shape follow the routed Replications and the
EndpointSlices follow the pods, both read from the watch-fed cache: over unchanged state it issues
no request at all. It runs in every Registry reconcile and, alone, when a registry or replica pod
changes or a Replication is created, changed or deleted (`handlers/registry.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.core.cache import known, pod_status
from dockyard.core.kube import Kube, Outcome
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.registries.manifests.config import RegistryContext
from dockyard.registries.manifests.endpoints import (
    ADDRESS_TYPES,
    CONTROLLER_SLICE_MANAGER,
    SERVICE_NAME_LABEL,
    SLICE_MANAGER_LABEL,
    Member,
    ReplicaRoute,
    build_global_endpoint_slices,
    global_slice_name,
    home_pod_selector,
    member_of,
    replica_routes,
)
from dockyard.registries.manifests.workload import build_service


def find_replica_routes(kube: Kube, ctx: RegistryContext) -> list[ReplicaRoute]:
    """The registry's Replications, each routed or not (from the cache, else one LIST)."""
    return replica_routes(ctx.owner.namespace, replications_of(kube, ctx.owner.namespace, ctx.owner.name))


def replications_of(kube: Kube, namespace: str, registry: str) -> list[Mapping[str, Any]]:
    """The Replications of a registry, from the cache, else one LIST."""
    cached = kube.cache.replications_of(namespace, registry)
    if known(cached):
        return cached  # type: ignore[return-value]
    return [r for r in kube.list(API_VERSION, "Replication", namespace) if referenced_registry(r) == registry]


def _pods(kube: Kube, namespace: str, selector: dict[str, str]) -> list[Member]:
    cached = kube.cache.pods(namespace, selector)
    members: list[Member | None]
    if known(cached):
        members = [member_of(pod.namespace, pod.name, pod.status) for pod in cached]  # type: ignore[union-attr]
    else:
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        members = [
            member_of(namespace, pod["metadata"]["name"], pod_status(pod))
            for pod in kube.list("v1", "Pod", namespace, label_selector)
        ]
    return [member for member in members if member is not None]


def global_members(kube: Kube, ctx: RegistryContext, routed: list[ReplicaRoute]) -> list[Member]:
    """The pods of the home registry and of every routed replica."""
    members = _pods(kube, ctx.owner.namespace, home_pod_selector(ctx))
    for replica in routed:
        if replica.routed:
            members += _pods(kube, replica.namespace, replica.pod_selector)
    return members


def home_pod_address(kube: Kube, ctx: RegistryContext) -> str | None:
    """The address of a ready pod of the home registry itself (the first by name), for a client
    that must reach the home and not whichever replica the global login server picks (the
    replication copier); None while none is ready."""
    ready = [m for m in _pods(kube, ctx.owner.namespace, home_pod_selector(ctx)) if m.ready]
    return min(ready, key=lambda m: m.name).addresses[0] if ready else None


def _retire_controller_endpoints(kube: Kube, ctx: RegistryContext) -> list[str]:
    """The EndpointSlice controller's slices of the Service, and the Endpoints controller's
    Endpoints, deleted once it has no selector: both controllers stop syncing a selector-less
    Service but leave what they wrote, and kube-proxy would keep routing to the listed pods
    (stale as they churn) beside ours. Done when the Service switches or our slice is created,
    so never in a pass over unchanged state."""
    ns, service = ctx.owner.namespace, ctx.names.service
    selector = f"{SERVICE_NAME_LABEL}={service},{SLICE_MANAGER_LABEL}={CONTROLLER_SLICE_MANAGER}"
    removed = []
    for item in kube.list("discovery.k8s.io/v1", "EndpointSlice", ns, selector):
        if kube.delete("discovery.k8s.io/v1", "EndpointSlice", ns, item["metadata"]["name"]):
            removed.append(f"controller's EndpointSlice {item['metadata']['name']} removed")
    if kube.delete("v1", "Endpoints", ns, service):
        removed.append(f"controller's Endpoints {service} removed")
    return removed


def ensure_global_endpoint(
    kube: Kube,
    ctx: RegistryContext,
    routed: list[ReplicaRoute] | None = None,
    service_result: Outcome | None = None,
) -> list[str]:
    """The Service in its shape (its selector, or none while the registry has a Replication) and
    the EndpointSlices made to match, or removed with the last Replication. Returns what changed.
    `service_result`: the caller has ensured the Service already, with this outcome."""
    if routed is None:
        routed = find_replica_routes(kube, ctx)
    changed = []
    if service_result is None:
        service_result = kube.ensure(build_service(ctx, global_routing=bool(routed)))
        if service_result != "unchanged":
            changed.append("service")
    switched = service_result != "unchanged"
    ns = ctx.owner.namespace
    wanted = build_global_endpoint_slices(ctx, global_members(kube, ctx, routed)) if routed else []
    for manifest in wanted:
        result = kube.ensure(manifest)
        switched = switched or result == "created"
        if result != "unchanged":
            changed.append(f"endpoints {manifest['addressType']}")
    if wanted and switched:
        changed += _retire_controller_endpoints(kube, ctx)
    kept = {manifest["metadata"]["name"] for manifest in wanted}
    for address_type in ADDRESS_TYPES:
        name = global_slice_name(ctx, address_type)
        if name not in kept and kube.read_child("discovery.k8s.io/v1", "EndpointSlice", ns, name) is not None:
            kube.delete("discovery.k8s.io/v1", "EndpointSlice", ns, name)
            changed.append(f"endpoints {address_type} removed")
    return changed
