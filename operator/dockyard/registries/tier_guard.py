"""Tier changes the registry refuses: a move down from Premium while Replications exist (ACR
refuses it too: geo-replication is a Premium feature). The registry keeps running at its old tier."""

from __future__ import annotations

from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.models.registry import RegistrySpec


def check_tier_change(spec: RegistrySpec, replications: int) -> None:
    """Raises `WaitsForUser(TierChangeBlocked)` when `spec.sku` cannot carry the replications."""
    if spec.sku == "Premium" or not replications:
        return
    raise WaitsForUser(
        Reason.TIER_CHANGE_BLOCKED,
        f"spec.sku {spec.sku} is refused while {replications} Replication(s) exist: geo-replication "
        "needs Premium; delete the Replications first. The registry keeps running as before.",
    )
