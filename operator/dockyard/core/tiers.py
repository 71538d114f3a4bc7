"""Service tiers (spec.sku) and what each allows, after ACR's published limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Sku = Literal["Basic", "Standard", "Premium"]
GIB = 1024**3


@dataclass(frozen=True)
class Tier:
    sku: Sku
    included_storage_bytes: int
    webhooks: int
    tokens: int
    replications_allowed: bool
    anonymous_pull: bool
    network_rules: int
    retention_policy: bool
    cache_rules: int
    default_replicas: int

    @property
    def included_storage(self) -> str:
        return f"{self.included_storage_bytes // GIB}Gi"


TIERS: dict[Sku, Tier] = {
    "Basic": Tier("Basic", 10 * GIB, 2, 100, False, False, 0, False, 0, 1),
    "Standard": Tier("Standard", 100 * GIB, 10, 500, False, True, 0, False, 1000, 1),
    "Premium": Tier("Premium", 500 * GIB, 500, 50_000, True, True, 200, True, 1000, 2),
}

MAX_LAYER_BYTES = 200 * GIB
MAX_MANIFEST_BYTES = 4 * 1024**2


def quota_exceeded_message(resource: str, sku: Sku) -> str:
    """ACR's wording, so people searching for it find the same meaning."""
    return f"Quota exceeded for resource type {resource} for the registry SKU {sku}"
