"""Where a replica may run, or why not (`replication/placement.py`), and its status (`status.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.core.conditions import Reason, find_condition
from dockyard.models.registry import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.replication.placement import REGION_LABEL, ZONE_LABEL, Placement, Refusal, Sibling, plan_replica
from dockyard.replication.reasons import GLOBAL_ENDPOINT, SYNCED, ReplicationReason
from dockyard.replication.status import Routing, SyncFigures, display_status, replication_status

PREMIUM = RegistrySpec.model_validate({"sku": "Premium"})
NODES = [{ZONE_LABEL: "zone-a", REGION_LABEL: "eu"}, {ZONE_LABEL: "zone-b", REGION_LABEL: "eu"}]
S3 = {"s3": {"bucket": "images", "region": "eu-west-1"}}


def _spec(location: str = "zone-b", **extra: Any) -> ReplicationSpec:
    return ReplicationSpec.model_validate({"registryRef": {"name": "hub"}, "location": location, **extra})


def _plan(
    registry: RegistrySpec | None = PREMIUM,
    spec: ReplicationSpec | None = None,
    siblings: list[Sibling] | None = None,
    nodes: list[dict[str, str]] | None = None,
    name: str = "west",
    created: str = "2026-01-02T00:00:00Z",
) -> Placement | Refusal:
    return plan_replica(
        "team", "hub", registry, name, created, spec or _spec(), siblings or [], NODES if nodes is None else nodes
    )


def test_zone_location_places_on_the_zone_and_claims_a_volume_like_home() -> None:
    home = RegistrySpec.model_validate(
        {"sku": "Premium", "storage": {"persistentVolume": {"size": "20Gi"}, "reclaimPolicy": "Delete"}}
    )
    placement = _plan(home)
    assert isinstance(placement, Placement)
    assert placement.node_selector == {ZONE_LABEL: "zone-b"}
    assert placement.storage.persistent_volume is not None and placement.storage.persistent_volume.size == "20Gi"
    assert placement.storage.reclaim_policy == "Delete"


def test_region_label_wins_over_zone_and_node_selector_over_both() -> None:
    assert _plan(spec=_spec("eu")) == Placement({REGION_LABEL: "eu"}, _plan(spec=_spec("eu")).storage)  # type: ignore[union-attr]
    chosen = _plan(spec=_spec("anywhere", nodeSelector={"disk": "ssd"}), nodes=[])
    assert isinstance(chosen, Placement) and chosen.node_selector == {"disk": "ssd"}


@pytest.mark.parametrize(
    ("registry", "spec", "reason"),
    [
        (None, _spec(), Reason.DEPENDENCY_NOT_READY),
        (RegistrySpec.model_validate({"sku": "Standard"}), _spec(), ReplicationReason.PREMIUM_REQUIRED),
        (PREMIUM, _spec("mars"), ReplicationReason.UNKNOWN_LOCATION),
        (PREMIUM, _spec(tls={"secretName": "west-tls"}), Reason.INVALID_SPEC),
        (RegistrySpec.model_validate({"sku": "Premium", "storage": S3}), _spec(), ReplicationReason.STORAGE_SHARED),
        (
            RegistrySpec.model_validate({"sku": "Premium", "storage": S3}),
            _spec(storage=S3),
            ReplicationReason.STORAGE_SHARED,
        ),
    ],
)
def test_refusals_name_their_reason(registry: RegistrySpec | None, spec: ReplicationSpec, reason: str) -> None:
    verdict = _plan(registry, spec)
    assert isinstance(verdict, Refusal) and verdict.reason == reason, verdict


def test_own_bucket_is_accepted_and_a_siblings_bucket_is_refused() -> None:
    home = RegistrySpec.model_validate({"sku": "Premium", "storage": S3})
    own = {"s3": {"bucket": "images-west", "region": "eu-west-1"}}
    assert isinstance(_plan(home, _spec(storage=own)), Placement)
    sibling = Sibling("east", "2026-01-01T00:00:00Z", _spec("zone-a", storage=own))
    verdict = _plan(home, _spec(storage=own), [sibling])
    assert isinstance(verdict, Refusal) and verdict.reason == ReplicationReason.STORAGE_SHARED
    assert "east" in verdict.message
    younger = Sibling("east", "2026-03-01T00:00:00Z", _spec("zone-a", storage=own))
    assert isinstance(_plan(home, _spec(storage=own), [younger]), Placement), "the older replica keeps its bucket"


def test_the_older_replication_keeps_a_location() -> None:
    older = Sibling("first", "2026-01-01T00:00:00Z", _spec())
    verdict = _plan(siblings=[older])
    assert isinstance(verdict, Refusal) and verdict.reason == ReplicationReason.LOCATION_IN_USE
    newer = Sibling("second", "2026-02-01T00:00:00Z", _spec())
    assert isinstance(_plan(siblings=[newer]), Placement)


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("refused", "serving", "before", "figures", "shown"),
    [
        (True, True, True, SyncFigures(), "Failed"),
        (False, False, False, SyncFigures(), "Provisioning"),
        (False, False, True, SyncFigures(), "Degraded"),
        (False, True, False, SyncFigures(pending=3), "Syncing"),
        (False, True, False, SyncFigures(initial_sync={"totalTags": 5, "copiedTags": 1}), "Syncing"),
        (False, True, False, SyncFigures(initial_sync={"totalTags": 5, "completedAt": "x"}), "Ready"),
    ],
)
def test_display_status(refused: bool, serving: bool, before: bool, figures: SyncFigures, shown: str) -> None:
    assert display_status(refused, serving, before, figures) == shown


def test_status_of_a_refused_and_of_a_synced_replica() -> None:
    refused = replication_status(
        {},
        2,
        refusal=(ReplicationReason.UNKNOWN_LOCATION, "no node"),
        login_server=None,
        serving=False,
        figures=SyncFigures(),
        now=NOW,
    )
    ready = find_condition(refused["conditions"], "Ready")
    assert ready and ready["status"] == "False" and ready["reason"] == ReplicationReason.UNKNOWN_LOCATION
    assert refused["displayStatus"] == "Failed" and refused["observedGeneration"] == 2
    synced = replication_status(
        refused,
        2,
        refusal=None,
        login_server="hub-west.team.svc:5000",
        serving=True,
        figures=SyncFigures(),
        routing=Routing(True, 2, "hub.team.svc:5000"),
        now=NOW,
    )
    assert synced["displayStatus"] == "Ready" and synced["loginServer"] == "hub-west.team.svc:5000"
    assert find_condition(synced["conditions"], SYNCED)["reason"] == ReplicationReason.IN_SYNC  # type: ignore[index]
    assert find_condition(synced["conditions"], "Ready")["status"] == "True"  # type: ignore[index]
    routing = find_condition(synced["conditions"], GLOBAL_ENDPOINT)
    assert routing and routing["status"] == "True" and routing["reason"] == ReplicationReason.ROUTED
    assert "hub.team.svc:5000 routes to 2 ready pod(s)" in routing["message"]
    assert synced["globalEndpointRouting"] == "Enabled"


@pytest.mark.parametrize(
    ("routing", "status", "reason", "shown"),
    [
        (Routing(True, 1), "True", ReplicationReason.ROUTED, "Enabled"),
        (Routing(True, 0), "False", ReplicationReason.NO_READY_POD, "Enabled"),
        (Routing(False, 3), "False", ReplicationReason.ROUTING_DISABLED, "Disabled"),
    ],
)
def test_global_endpoint_routing_condition(routing: Routing, status: str, reason: str, shown: str) -> None:
    """Routed only with `regionEndpointEnabled` and a ready pod; disabled says so whatever the pods."""
    result = replication_status(
        {}, 1, refusal=None, login_server="x", serving=True, figures=SyncFigures(), routing=routing, now=NOW
    )
    condition = find_condition(result["conditions"], GLOBAL_ENDPOINT)
    assert condition and (condition["status"], condition["reason"]) == (status, reason)
    assert result["globalEndpointRouting"] == shown
    # A flip of the pods moves the condition's transition time; the same state keeps it.
    later = datetime(2026, 12, 2, tzinfo=UTC)
    again = replication_status(
        result, 1, refusal=None, login_server="x", serving=True, figures=SyncFigures(), routing=routing, now=later
    )
    assert (
        find_condition(again["conditions"], GLOBAL_ENDPOINT)["lastTransitionTime"]
        == condition[  # type: ignore[index]
            "lastTransitionTime"
        ]
    )


def test_a_passing_problem_shows_as_provisioning_not_failed() -> None:
    waiting = replication_status(
        {},
        1,
        refusal=(Reason.DEPENDENCY_NOT_READY, "waiting for Secret hub-auth"),
        login_server=None,
        serving=False,
        figures=SyncFigures(),
        final=False,
        now=NOW,
    )
    assert waiting["displayStatus"] == "Provisioning"
    assert find_condition(waiting["conditions"], "Ready")["reason"] == Reason.DEPENDENCY_NOT_READY  # type: ignore[index]
