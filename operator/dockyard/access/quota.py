"""The tier's limit on Tokens and on ScopeMaps (100 / 500 / 50,000 each, as ACR), counted per
registry in creation order (then by name), as webhooks are: the first `limit` work, the others get
`Ready=False` with reason `QuotaExceeded` and ACR's wording, and the token service ignores them
until an earlier one is deleted or the tier is raised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.core.tiers import TIERS, Sku, quota_exceeded_message


def registry_sku(registry: Mapping[str, Any]) -> Sku:
    sku = (registry.get("spec") or {}).get("sku", "Standard")
    return sku if sku in TIERS else "Basic"


def access_limit(registry: Mapping[str, Any]) -> int:
    """Tokens (and, separately, ScopeMaps) the registry's tier allows."""
    return TIERS[registry_sku(registry)].tokens


def _order(item: Mapping[str, Any]) -> tuple[str, str]:
    meta = item["metadata"]
    return (str(meta.get("creationTimestamp") or ""), str(meta["name"]))


def quota_position(body: Mapping[str, Any], siblings: Sequence[Mapping[str, Any]], limit: int) -> int | None:
    """The 0-based rank of `body` among its registry's objects of its kind when it is beyond the
    limit, else None. Ranking is skipped while the count is within the limit (the common case, and
    50,000 rankings of 50,000 objects would be quadratic)."""
    if len(siblings) < limit:
        return None  # without a pass over the siblings: the drift loop asks for every Token each interval
    uid = body["metadata"]["uid"]
    others = [s for s in siblings if s["metadata"]["uid"] != uid]
    if len(others) < limit:
        return None
    mine = _order(body)
    position = sum(1 for other in others if _order(other) < mine)
    return position if position >= limit else None


def quota_message(resource: str, registry: Mapping[str, Any], limit: int, position: int) -> str:
    name = registry["metadata"]["name"]
    return (
        f"{quota_exceeded_message(resource, registry_sku(registry))}: registry {name} allows {limit} "
        f"{resource} and this one is number {position + 1}"
    )
