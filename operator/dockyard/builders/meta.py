"""Labels, owner references and metadata shared by every child object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MANAGED_BY = "dockyard"


@dataclass(frozen=True)
class Owner:
    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": owner.kind.lower(),
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
    }


def labels(owner: Owner, component: str) -> dict[str, str]:
    return {**selector_labels(owner, component), "app.kubernetes.io/managed-by": MANAGED_BY}


def metadata(
    owner: Owner, name: str, component: str, *, owned: bool = True, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": owner.namespace, "labels": labels(owner, component)}
    if owned:
        meta["ownerReferences"] = [owner.reference()]
    if annotations:
        meta["annotations"] = annotations
    return meta
