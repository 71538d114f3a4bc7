"""Owner references and metadata shared by every child object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.core.names import labels


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


def metadata(
    owner: Owner, name: str, component: str, *, owned: bool = True, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner.kind, owner.name, component),
    }
    if owned:
        meta["ownerReferences"] = [owner.reference()]
    if annotations:
        meta["annotations"] = annotations
    return meta
