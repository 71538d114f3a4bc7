"""The fake node that kwok plays."""

from __future__ import annotations

from typing import Any

from .stages import NODE_ANNOTATION, NODE_ANNOTATION_VALUE

ALLOCATABLE = {"cpu": "32", "memory": "256Gi", "pods": "500", "ephemeral-storage": "1Ti"}


def fake_node(name: str) -> dict[str, Any]:
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
        "status": {"allocatable": dict(ALLOCATABLE), "capacity": dict(ALLOCATABLE)},
    }


def node_is_schedulable(node: dict[str, Any]) -> bool:
    """Ready=True, not cordoned, and no NoSchedule/NoExecute taints left from start-up."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    spec = node.get("spec", {})
    blocking = [t for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
    return ready and not spec.get("unschedulable", False) and not blocking
