"""The registry's global login server over its replicas: which pods it lists, and its EndpointSlices.

Once a Registry has a Replication, its Service (the global login server, `<registry>.<namespace>.svc`)
has no selector: a selector cannot reach pods in another namespace (`targetNamespace`). The operator
writes the EndpointSlices instead, listing the home registry's pods and the pods of every replica
with `regionEndpointEnabled: true` (the default), and keeps them equal to the pods as the
watch-fed cache shows them (a pod's readiness or a new pod moves them, with no request to read).
`regionEndpointEnabled: false` removes that replica's pods only: the Service keeps its shape while
any Replication exists, so a toggle never swaps whose slices serve it nor drops client affinity;
with the last Replication gone it gets its selector back and the operator's slices are removed.
The EndpointSlice controller leaves slices alone whose `endpointslice.kubernetes.io/managed-by`
is not its own, and stops syncing a Service without selector (leaving its last slices, which the
operator deletes at the switch: `registries/global_endpoint.py`). `sessionAffinity: ClientIP` keeps one client on one pod, so the layers and the
manifest of a push land on the same replica (ACR's "mid-push scatter" cannot happen).

Builders only: pure, golden-tested.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dockyard.core.meta import metadata
from dockyard.core.names import COMPONENT_LABEL, INSTANCE_LABEL, NAME_LABEL, shortened
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.manifests.config import REGISTRY_PORT, TOKEN_PORT, RegistryContext

SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
SLICE_MANAGER_LABEL: Final = "endpointslice.kubernetes.io/managed-by"
SLICE_MANAGER: Final = "endpointslice.dockyard.dev"
"""Our value of `endpointslice.kubernetes.io/managed-by` (the controller's is
`endpointslice-controller.k8s.io`): the EndpointSlice controller neither updates nor removes it."""
CONTROLLER_SLICE_MANAGER: Final = "endpointslice-controller.k8s.io"
GLOBAL_ENDPOINT_ANNOTATION: Final = "dockyard.dev/global-endpoint"
"""On the registry's Service while it routes over replicas: "replicas"."""
AFFINITY_SECONDS: Final = 10800
"""How long one client stays on one pod (Kubernetes' default for ClientIP affinity, 3 hours)."""
ADDRESS_TYPES: Final = ("IPv4", "IPv6")
HOME_REGISTRY_LABEL: Final = "dockyard.dev/home-registry"
HOME_NAMESPACE_LABEL: Final = "dockyard.dev/home-namespace"
"""On a replica's pods: the registry (and its namespace) whose global login server may list them,
so a pod's change finds its registry without a lookup."""


@dataclass(frozen=True)
class ReplicaRoute:
    """A Replication of the registry: its name, the namespace its pods run in, and whether the
    global login server lists them (`regionEndpointEnabled`)."""

    name: str
    namespace: str
    routed: bool = True

    @property
    def pod_selector(self) -> dict[str, str]:
        return {NAME_LABEL: "replication", INSTANCE_LABEL: self.name, COMPONENT_LABEL: "registry"}


@dataclass(frozen=True)
class Member:
    """One pod of the global login server."""

    namespace: str
    name: str
    uid: str
    addresses: tuple[str, ...]
    ready: bool
    serving: bool = False
    terminating: bool = False
    node_name: str = ""


def home_pod_selector(ctx: RegistryContext) -> dict[str, str]:
    return {NAME_LABEL: "registry", INSTANCE_LABEL: ctx.owner.name, COMPONENT_LABEL: "registry"}


def replica_routes(namespace: str, replications: Iterable[Mapping[str, Any]]) -> list[ReplicaRoute]:
    """The Replications of one registry (in its `namespace`), sorted, each with
    `regionEndpointEnabled`; invalid ones and ones being deleted are left out. Any at all makes
    the Service the global login server; the routed ones' pods are listed."""
    replicas = []
    for body in replications:
        meta = body.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        try:
            spec = ReplicationSpec.model_validate(body.get("spec") or {})
        except ValueError:
            continue
        replicas.append(
            ReplicaRoute(str(meta.get("name")), spec.target_namespace or namespace, spec.region_endpoint_enabled)
        )
    return sorted(replicas, key=lambda r: (r.namespace, r.name))


def member_of(namespace: str, name: str, status: Mapping[str, Any]) -> Member | None:
    """A cached pod (`core.cache.pod_status`) as a member; None while it has no address or ended."""
    addresses = tuple(status.get("podIPs") or ())
    if not addresses or status.get("phase") in ("Succeeded", "Failed"):
        return None
    return Member(
        namespace=namespace,
        name=name,
        uid=str(status.get("uid") or ""),
        addresses=addresses,
        ready=bool(status.get("ready")) and not status.get("terminating"),
        serving=bool(status.get("ready")),
        terminating=bool(status.get("terminating")),
        node_name=str(status.get("nodeName") or ""),
    )


def global_slice_name(ctx: RegistryContext, address_type: str) -> str:
    suffix = "global" if address_type == "IPv4" else "global-v6"
    return shortened(f"{ctx.names.service}-{suffix}", 63)


def _address_type(address: str) -> str:
    return "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"


def _endpoint(member: Member, address: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "addresses": [address],
        "conditions": {
            "ready": member.ready,
            "serving": member.serving,
            "terminating": member.terminating,
        },
        "targetRef": {"kind": "Pod", "namespace": member.namespace, "name": member.name, "uid": member.uid},
    }
    if member.node_name:
        endpoint["nodeName"] = member.node_name
    return endpoint


def build_global_endpoint_slices(ctx: RegistryContext, members: Sequence[Member]) -> list[dict[str, Any]]:
    """One EndpointSlice per address family in use (always the IPv4 one, empty when no pod has an
    address yet: kube-proxy then rejects connections instead of the Service hanging), owned by the
    Registry, listing `members` in a stable order."""
    by_type: dict[str, list[dict[str, Any]]] = {"IPv4": []}
    for member in sorted(members, key=lambda m: (m.namespace, m.name)):
        for address in member.addresses:
            by_type.setdefault(_address_type(address), []).append(_endpoint(member, address))
    slices = []
    for address_type in ADDRESS_TYPES:
        if address_type not in by_type:
            continue
        meta = metadata(ctx.owner, global_slice_name(ctx, address_type), "registry")
        meta["labels"] = {
            **meta["labels"],
            SERVICE_NAME_LABEL: ctx.names.service,
            SLICE_MANAGER_LABEL: SLICE_MANAGER,
        }
        slices.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": meta,
                "addressType": address_type,
                "ports": [
                    {"name": "registry", "port": REGISTRY_PORT, "protocol": "TCP"},
                    {"name": "token", "port": TOKEN_PORT, "protocol": "TCP"},
                ],
                "endpoints": by_type[address_type],
            }
        )
    return slices
