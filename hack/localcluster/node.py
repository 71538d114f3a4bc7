"""The fake node that kwok plays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .stages import NODE_ANNOTATION, NODE_ANNOTATION_VALUE

ALLOCATABLE = {"cpu": "32", "memory": "256Gi", "pods": "500", "ephemeral-storage": "1Ti"}


def node_names(first: str, count: int) -> list[str]:
    """`count` node names starting with `first`: `kwok-node-0` gives kwok-node-0, kwok-node-1, ...;
    a name not ending in `-0` gets `-1`, `-2`, ... appended for the others."""
    if count < 1:
        raise ValueError(f"a cluster needs at least one node, not {count}")
    stem = first.removesuffix("-0") if first.endswith("-0") else first
    return [first] + [f"{stem}-{i}" for i in range(1, count)]


def fake_node(name: str, allocatable: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A node kwok plays; `allocatable` (also its capacity) defaults to ALLOCATABLE."""
    resources = dict(ALLOCATABLE if allocatable is None else allocatable)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: NODE_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": dict(resources)},
    }


def node_is_schedulable(node: dict[str, Any]) -> bool:
    """Ready=True, not cordoned, and no NoSchedule/NoExecute taints left from start-up."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    spec = node.get("spec", {})
    blocking = [t for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
    return ready and not spec.get("unschedulable", False) and not blocking
