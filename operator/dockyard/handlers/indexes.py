"""Watch-fed indices of Dockyard's own kinds (kopf keeps them; `core/cache.py` reads them). kopf
fills every index from its initial listing before any resource handler runs, so a handler never
sees a half-filled cache.

Each value is `Packed` (compact JSON): `ClusterCache` parses it back on every read.

The children are not watched by kopf but by `core/children.py`, which keeps a summary of each.
"""

from __future__ import annotations

from typing import Any

import kopf

from dockyard.core.cache import Packed, pack
from dockyard.models import GROUP, VERSION
from dockyard.models.base import referenced_registry

Key = tuple[str, str]


@kopf.index(GROUP, VERSION, "registries")
def dockyard_registries(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Packed]:
    return {(namespace or "", name): pack(body)}


@kopf.index(GROUP, VERSION, "webhooks")
def dockyard_webhooks(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Packed]:
    return {(namespace or "", name): pack(body)}


@kopf.index(GROUP, VERSION, "webhooks")
def dockyard_webhooks_by_registry(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Key, Packed] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): pack(body)}


@kopf.index(GROUP, VERSION, "replications")
def dockyard_replications_by_registry(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Key, Packed] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): pack(body)}
