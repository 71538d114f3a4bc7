"""Watch-fed indices of Dockyard's own kinds (kopf keeps them; `core/cache.py` reads them). kopf
fills every index from its initial listing before any resource handler runs, so a handler never
sees a half-filled cache.

Each value is `Packed` (compact JSON): `ClusterCache` parses it back on every read.

The functions are coroutines so that kopf calls them on its event loop: it runs a sync one in its
handler threads, and every event of every Registry and Webhook (each status write among them) then
waited behind the reconciles queued there, under a burst a thousand of them. Meanwhile the cache
lagged and each waiting event kept its kopf worker alive. Packing a body takes microseconds.

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
async def dockyard_registries(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Packed]:
    return {(namespace or "", name): pack(body)}


@kopf.index(GROUP, VERSION, "webhooks")
async def dockyard_webhooks(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Packed]:
    return {(namespace or "", name): pack(body)}


@kopf.index(GROUP, VERSION, "webhooks")
async def dockyard_webhooks_by_registry(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Key, Packed] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): pack(body)}


@kopf.index(GROUP, VERSION, "replications")
async def dockyard_replications_by_registry(
    namespace: str | None, body: kopf.Body, **_: Any
) -> dict[Key, Packed] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): pack(body)}
