"""A Replication's status: pure, so every display status is unit-tested.

| displayStatus  | when |
|----------------|------|
| `Failed`       | refused (`Ready=False`: not Premium, unknown location, shared storage, NotImplemented…) |
| `Provisioning` | the replica's pods are not all ready yet, and never were |
| `Degraded`     | the replica's pods were ready once and are not now |
| `Syncing`      | the replica serves; changes wait to be copied into it (or its first fill runs) |
| `Ready`        | the replica serves and nothing waits to be copied |

`Ready` is True once the replica serves (reason `Reconciled`); `Synced` tells whether it holds
everything (`InSync` / `Syncing`); `GlobalEndpointRouting` whether the registry's global login
server lists the replica's ready pods (`Routed`), or why not (`RoutingDisabled`: the spec says so;
`NoReadyPod`); `status.globalEndpointRouting` is the spec's `Enabled` / `Disabled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from dockyard.core import conditions
from dockyard.core.conditions import ConditionType, Reason
from dockyard.replication.reasons import GLOBAL_ENDPOINT, SYNCED, ReplicationReason


@dataclass(frozen=True)
class SyncFigures:
    """What the copier knows about one replica (`ledger.py` / `engine.py`)."""

    pending: int = 0
    lag_seconds: int = 0
    last_sync_time: str | None = None
    last_full_sync_time: str | None = None
    conflicts: int = 0
    tags_in_sync: int | None = None
    tags_out_of_sync: int | None = None
    repositories_in_sync: int | None = None
    initial_sync: Mapping[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "pendingChanges": self.pending,
            "lagSeconds": self.lag_seconds,
            "lastSyncTime": self.last_sync_time,
            "lastFullSyncTime": self.last_full_sync_time,
            "conflicts": self.conflicts,
            "tagsInSync": self.tags_in_sync,
            "tagsOutOfSync": self.tags_out_of_sync,
            "repositoriesInSync": self.repositories_in_sync,
            "initialSync": dict(self.initial_sync) if self.initial_sync else None,
        }


@dataclass(frozen=True)
class Routing:
    """The replica in the global login server: `regionEndpointEnabled`, and its ready pods (the
    ones the EndpointSlice lists as ready)."""

    enabled: bool
    ready_pods: int = 0
    global_login_server: str = ""


def routing_condition(routing: Routing) -> tuple[Literal["True", "False"], str, str]:
    """(status, reason, message) of `GlobalEndpointRouting`."""
    server = routing.global_login_server or "the registry's login server"
    if not routing.enabled:
        return (
            "False",
            ReplicationReason.ROUTING_DISABLED,
            f"regionEndpointEnabled is false: {server} does not route to this replica (it keeps syncing; "
            "clients may use its loginServer)",
        )
    if routing.ready_pods == 0:
        return (
            "False",
            ReplicationReason.NO_READY_POD,
            f"no pod of the replica is ready: {server} routes to the home registry and the other replicas",
        )
    return "True", ReplicationReason.ROUTED, f"{server} routes to {routing.ready_pods} ready pod(s) of the replica"


def display_status(refused: bool, serving: bool, served_before: bool, figures: SyncFigures) -> str:
    if refused:
        return "Failed"
    if not serving:
        return "Degraded" if served_before else "Provisioning"
    initial = figures.initial_sync or {}
    filling = bool(initial) and not initial.get("completedAt")
    return "Syncing" if figures.pending or filling else "Ready"


def replication_status(
    current: Mapping[str, Any],
    generation: int,
    *,
    refusal: tuple[str, str] | None,
    login_server: str | None,
    serving: bool,
    figures: SyncFigures,
    final: bool = True,
    routing: Routing | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The whole status to hold. `refusal` is (reason, message) when the replica is refused, or
    not ready for a passing reason (`final=False`: a missing Secret, an API error), which shows as
    Provisioning or Degraded rather than Failed."""
    now = now or datetime.now(UTC)
    served_before = current.get("displayStatus") in ("Ready", "Syncing", "Degraded")
    shown = display_status(refusal is not None and final, serving, served_before, figures)
    if refusal is not None:
        reason, message = refusal
    elif serving:
        reason, message = Reason.RECONCILED, f"replica serves at {login_server}"
    else:
        reason, message = Reason.PROGRESSING, f"replica {login_server} is starting"
    status: dict[str, Any] = {
        "displayStatus": shown,
        "message": message,
        "loginServer": login_server if refusal is None else None,
        "observedGeneration": generation,
        **(figures.fields() if refusal is None else {}),
    }
    if routing is not None:
        status["globalEndpointRouting"] = "Enabled" if routing.enabled else "Disabled"
    status["conditions"] = conditions.set_condition(
        current.get("conditions"),
        type=ConditionType.READY,
        status="True" if refusal is None and serving else "False",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    if refusal is None:
        synced = shown == "Ready"
        status["conditions"] = conditions.set_condition(
            status["conditions"],
            type=SYNCED,
            status="True" if synced else "False",
            reason=ReplicationReason.IN_SYNC if synced else ReplicationReason.SYNCING,
            message="nothing waits to be copied"
            if synced
            else f"{figures.pending} change(s) wait to be copied into the replica",
            observed_generation=generation,
            now=now,
        )
        if routing is not None:
            routed, routing_reason, routing_message = routing_condition(routing)
            status["conditions"] = conditions.set_condition(
                status["conditions"],
                type=GLOBAL_ENDPOINT,
                status=routed,
                reason=routing_reason,
                message=routing_message,
                observed_generation=generation,
                now=now,
            )
    return status
