"""Where a replica may run, or why it may not: pure, so every refusal is unit-tested.

A Replication is refused (`Ready=False`, nothing deployed) when its registry is missing or below
Premium, when an older Replication of the same registry has its location, when its storage would
be the home registry's or an older replica's bucket, or when the location names no node. Otherwise
it runs on `nodeSelector`, else on the nodes whose `topology.kubernetes.io/region` equals the
location, else on those whose `…/zone` does (a single cluster usually has one region and several
zones). `spec.tls.secretName` is refused (`InvalidSpec`) unless the registry's `tls.mode` is Secret:
it would do nothing. Which certificate a replica serves is `certificates.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockyard.core.conditions import Reason
from dockyard.models.registry import PersistentVolumeStorage, RegistrySpec, StorageSpec
from dockyard.models.replication import ReplicationSpec
from dockyard.replication.reasons import ReplicationReason

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Sibling:
    """Another Replication of the same registry: its name, creation time and spec."""

    name: str
    created: str
    spec: ReplicationSpec


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


@dataclass(frozen=True)
class Placement:
    node_selector: dict[str, str]
    storage: StorageSpec


def storage_identity(storage: StorageSpec) -> tuple[str, ...] | None:
    """What makes two object stores the same place; None for a volume (each replica claims its own)."""
    if storage.s3:
        s3 = storage.s3
        return ("s3", s3.region_endpoint or "", s3.bucket, (s3.root_directory or "").strip("/"))
    if storage.azure:
        return ("azure", storage.azure.account_name, storage.azure.container)
    if storage.gcs:
        return ("gcs", storage.gcs.bucket, (storage.gcs.root_directory or "").strip("/"))
    return None


def replica_storage(registry: RegistrySpec, spec: ReplicationSpec) -> StorageSpec | None:
    """The replica's storage: its own, else a volume like the home's; None when the home stores in
    an object store and the replica names none (it would share the home's bucket)."""
    if spec.storage is not None:
        return spec.storage
    home = registry.storage
    if storage_identity(home) is not None:
        return None
    volume = home.persistent_volume or PersistentVolumeStorage()
    return StorageSpec(persistent_volume=volume, reclaim_policy=home.reclaim_policy, delete_enabled=home.delete_enabled)


def _selector(location: str, spec: ReplicationSpec, nodes: Sequence[Mapping[str, str]]) -> dict[str, str] | None:
    if spec.node_selector:
        return dict(spec.node_selector)
    for label in (REGION_LABEL, ZONE_LABEL):
        if any(node.get(label) == location for node in nodes):
            return {label: location}
    return None


def plan_replica(
    namespace: str,
    registry_name: str,
    registry: RegistrySpec | None,
    name: str,
    created: str,
    spec: ReplicationSpec,
    siblings: Sequence[Sibling],
    node_labels: Sequence[Mapping[str, str]],
) -> Placement | Refusal:
    """Where the replica runs, or why it does not. `siblings` are the registry's other
    Replications; `node_labels` the labels of every node (unused with a nodeSelector)."""
    if registry is None:
        return Refusal(Reason.DEPENDENCY_NOT_READY, f"Registry {registry_name} not found in {namespace}")
    if registry.sku != "Premium":
        return Refusal(
            ReplicationReason.PREMIUM_REQUIRED,
            f"Registry {registry_name} is {registry.sku}; geo-replication requires the Premium tier",
        )
    if spec.tls is not None and spec.tls.secret_name and registry.tls.mode != "Secret":
        return Refusal(
            Reason.INVALID_SPEC,
            f"spec.tls.secretName applies only to a Registry with tls.mode Secret; Registry {registry_name} "
            f"has tls.mode {registry.tls.mode}",
        )
    for other in siblings:
        if (
            other.name != name
            and other.spec.location == spec.location
            and (other.created, other.name) < (created, name)
        ):
            return Refusal(
                ReplicationReason.LOCATION_IN_USE,
                f"Replication {other.name} already replicates {registry_name} to {spec.location}",
            )
    storage = replica_storage(registry, spec)
    if storage is None:
        return Refusal(
            ReplicationReason.STORAGE_SHARED,
            f"Registry {registry_name} stores images in an object store; set spec.storage to the replica's own "
            "bucket or container",
        )
    identity = storage_identity(storage)
    if identity is not None:
        if identity == storage_identity(registry.storage):
            return Refusal(
                ReplicationReason.STORAGE_SHARED,
                f"spec.storage is the storage of Registry {registry_name}; a replica needs its own",
            )
        for other in siblings:
            older = (other.created, other.name) < (created, name)
            if older and other.spec.storage and storage_identity(other.spec.storage) == identity:
                return Refusal(
                    ReplicationReason.STORAGE_SHARED,
                    f"spec.storage is the storage of Replication {other.name}; a replica needs its own",
                )
    selector = _selector(spec.location, spec, node_labels)
    if selector is None:
        return Refusal(
            ReplicationReason.UNKNOWN_LOCATION,
            f"no node has {REGION_LABEL} or {ZONE_LABEL} = {spec.location}; label nodes or set spec.nodeSelector",
        )
    return Placement(selector, storage)
