"""Errors mapped once at the handler edge: what is retried, how soon, and what status says."""

from __future__ import annotations

import kopf
import pytest
from urllib3.exceptions import MaxRetryError

from dockyard.core.apiserver import ApiError
from dockyard.core.conditions import Reason
from dockyard.core.errors import Permanent, ReconcileError, Temporary, WaitsForUser, classify
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.models.webhook import WebhookSpec


def run(error: BaseException) -> tuple[BaseException, list[ReconcileError]]:
    reported: list[ReconcileError] = []
    with pytest.raises(BaseException) as raised, reconcile_edge(reported.append):
        raise error
    return raised.value, reported


def test_an_invalid_spec_is_permanent_and_names_the_field() -> None:
    with pytest.raises(Permanent) as refused:
        parse_spec(WebhookSpec, {"spec": {"registryRef": {"name": "hub"}, "actions": ["teleport"]}})
    assert refused.value.reason == Reason.INVALID_SPEC
    assert "actions" in refused.value.message
    verdict, reported = run(refused.value)
    assert isinstance(verdict, kopf.PermanentError) and reported == [refused.value]


def test_waiting_for_the_user_is_retried_slowly() -> None:
    verdict, reported = run(WaitsForUser(Reason.DEPENDENCY_NOT_READY, "Secret x not found"))
    assert isinstance(verdict, kopf.TemporaryError) and verdict.delay == 15
    assert reported[0].reason == Reason.DEPENDENCY_NOT_READY


@pytest.mark.parametrize("error", [ApiError(500, "Internal"), MaxRetryError(None, "/", "refused"), TimeoutError()])
def test_api_and_network_failures_are_temporary(error: BaseException) -> None:
    verdict, reported = run(error)
    assert isinstance(verdict, kopf.TemporaryError) and verdict.delay == 10
    assert isinstance(reported[0], Temporary) and reported[0].reason == Reason.RECONCILE_FAILED


def test_a_programming_error_passes_through_unreported() -> None:
    verdict, reported = run(KeyError("spec"))
    assert isinstance(verdict, KeyError) and reported == []
    assert classify(KeyError("spec")) is None
