"""Reconciling one ScopeMap: the tier's quota, the Tokens that use it, and an honest condition:
`Ready=True` reason `PartiallyEnforced` when some of its actions grant less than their ACR name
(`auth/scopemaps.py` has the table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.access.quota import access_limit, quota_message, quota_position
from dockyard.auth.scopemaps import unenforced
from dockyard.core.conditions import Reason
from dockyard.models.access import ScopeMapSpec


@dataclass
class ScopeMapOutcome:
    status: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    reason: str = Reason.RECONCILED
    message: str = ""


def reconcile_scope_map(
    body: Mapping[str, Any],
    spec: ScopeMapSpec,
    registry: Mapping[str, Any] | None,
    siblings: Sequence[Mapping[str, Any]],
) -> ScopeMapOutcome:
    """Pure: the status of a ScopeMap given its registry and its registry's ScopeMaps."""
    outcome = ScopeMapOutcome()
    if registry is None:
        outcome.reason, outcome.message = Reason.DEPENDENCY_NOT_READY, f"Registry {spec.registry_ref.name} not found"
        return outcome
    limit = access_limit(registry)
    position = quota_position(body, siblings, limit)
    if position is not None:
        outcome.reason = Reason.QUOTA_EXCEEDED
        outcome.message = quota_message("scopeMaps", registry, limit, position) + "; its tokens may do nothing"
        return outcome
    outcome.ready = True
    notes = unenforced(spec.actions)
    if notes:
        outcome.reason = Reason.PARTIALLY_ENFORCED
        outcome.message = "; ".join(notes)
    else:
        outcome.message = f"{len(spec.actions)} actions enforced by the registry"
    return outcome
