"""The Registry's decisions without a cluster: tier guard, password regeneration, status."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.core.conditions import ConditionType, Phase, Reason, find_condition
from dockyard.core.errors import WaitsForUser
from dockyard.core.meta import Owner
from dockyard.core.names import RegistryNames
from dockyard.models.registry import RegistrySpec
from dockyard.registries import admin
from dockyard.registries.manifests.config import RegistryContext, tls_secret_name
from dockyard.registries.status import desired_status, observe, ready_condition, rolled_out
from dockyard.registries.tier_guard import check_tier_change

OWNER = Owner("dockyard.dev/v1alpha1", "Registry", "hub", "team", "uid-1")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def ctx(**spec: Any) -> RegistryContext:
    parsed = RegistrySpec.model_validate(spec)
    return RegistryContext(
        OWNER, parsed, "registry:3", "dockyard:dev", tls_secret_name(parsed, RegistryNames("hub")), "http://ops:8090"
    )


def test_premium_or_no_replications_passes_the_tier_guard() -> None:
    check_tier_change(RegistrySpec.model_validate({"sku": "Premium"}), replications=3)
    check_tier_change(RegistrySpec.model_validate({"sku": "Basic"}), replications=0)


def test_moving_down_with_replications_waits_for_the_user() -> None:
    with pytest.raises(WaitsForUser) as refused:
        check_tier_change(RegistrySpec.model_validate({"sku": "Standard"}), replications=2)
    assert refused.value.reason == Reason.TIER_CHANGE_BLOCKED
    assert "2 Replication(s)" in refused.value.message


def secret(password: str, password2: str, handled: str = "") -> dict[str, Any]:
    annotations = {admin.HANDLED_REGENERATION_ANNOTATION: handled} if handled else {}
    data = {"password": password, "password2": password2}
    return {
        "metadata": {"annotations": annotations},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def registry(request: str = "") -> dict[str, Any]:
    return {"metadata": {"annotations": {admin.REGENERATE_ANNOTATION: request} if request else {}}}


def generated() -> str:
    return "fresh"


def test_no_request_keeps_both_passwords() -> None:
    planned = admin.plan_passwords(registry(), secret("a", "b"), generated)
    assert (planned.pair, planned.regenerated, planned.handled) == (("a", "b"), None, "")


def test_a_request_regenerates_one_password_once() -> None:
    planned = admin.plan_passwords(registry("password2"), secret("a", "b"), generated)
    assert (planned.pair, planned.regenerated, planned.handled) == (("a", "fresh"), "password2", "password2")
    again = admin.plan_passwords(registry("password2"), secret("a", "fresh", handled="password2"), generated)
    assert (again.pair, again.regenerated) == (("a", "fresh"), None)
    assert admin.pending_request(registry("password2"), secret("a", "fresh", handled="password2")) is None


def test_a_suffix_asks_again_and_an_unknown_key_regenerates_nothing() -> None:
    planned = admin.plan_passwords(registry("password2@2"), secret("a", "b", handled="password2"), generated)
    assert (planned.pair, planned.handled) == (("a", "fresh"), "password2@2")
    unknown = admin.plan_passwords(registry("password3"), secret("a", "b"), generated)
    assert (unknown.pair, unknown.regenerated, unknown.handled) == (("a", "b"), None, "password3")


def deployment(generation: int = 2, observed: int = 2, replicas: int = 1, ready: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
        },
    }


def test_rolled_out_needs_the_current_template_ready() -> None:
    assert rolled_out(deployment(), 1)
    assert not rolled_out(deployment(observed=1), 1)
    assert not rolled_out(deployment(ready=0), 1)
    assert not rolled_out(deployment(replicas=2, ready=2), 1), "an old replica set still running"
    assert not rolled_out({}, 1)


def test_observe_reports_credentials_usage_and_readiness() -> None:
    fields, ready = observe(ctx(sku="Standard", adminUser={"enabled": True}), deployment(), True, 3, 0)
    assert ready
    assert fields["credentials"] == {
        "adminSecretName": "hub-admin",
        "pullSecretName": "hub-pull",
        "caConfigMapName": "hub-ca",
    }
    assert fields["usage"]["webhooks"] == {"used": 3, "limit": 10}
    assert fields["loginServer"] == "hub.team.svc:5000"
    _, not_yet = observe(ctx(), None, False, 0, 0)
    assert not not_yet


def test_ready_reason_follows_the_rollout() -> None:
    assert ready_condition({"readyReplicas": 1, "replicas": 1}, True) == (Reason.RECONCILED, "1 of 1 replicas ready")
    reason, message = ready_condition({"readyReplicas": 0, "replicas": 1}, False)
    assert reason == Reason.PROGRESSING and message.startswith("rolling out")


@pytest.mark.parametrize(
    ("reason", "phase"),
    [
        (Reason.INVALID_SPEC, Phase.FAILED),
        (Reason.TIER_CHANGE_BLOCKED, Phase.FAILED),
        (Reason.DEPENDENCY_NOT_READY, Phase.PROVISIONING),
        (Reason.PROGRESSING, Phase.PROVISIONING),
    ],
)
def test_phase_of_each_reason(reason: str, phase: str) -> None:
    status = desired_status({}, 3, {}, False, reason, "m", T0)
    assert status["phase"] == phase
    assert status["observedGeneration"] == 3
    progressing = find_condition(status["conditions"], ConditionType.PROGRESSING)
    assert progressing is not None and progressing["status"] == ("True" if reason == Reason.PROGRESSING else "False")


def test_ready_transition_time_moves_only_on_a_flip() -> None:
    first = desired_status({}, 1, {}, True, Reason.RECONCILED, "1 of 1", T0)
    same = desired_status(first, 1, {}, True, Reason.RECONCILED, "1 of 1", T1)
    assert first["conditions"] == same["conditions"]
    flipped = desired_status(same, 1, {}, False, Reason.PROGRESSING, "0 of 1", T1)
    ready = find_condition(flipped["conditions"], ConditionType.READY)
    assert ready is not None and ready["lastTransitionTime"] == "2026-01-02T00:00:00Z"
