from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dockyard.core.conditions import (
    MAX_MESSAGE_LENGTH,
    ConditionType,
    Reason,
    find_condition,
    set_condition,
    status_patch,
    would_change,
)

T0 = datetime(2025, 1, 31, 12, 0, 0, 999_999, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def ready(
    conditions: Any = None,
    *,
    status: Any = "True",
    reason: str = Reason.RECONCILED,
    message: str = "ok",
    generation: int = 1,
    now: datetime = T0,
) -> list[dict[str, Any]]:
    return set_condition(
        conditions,
        type=ConditionType.READY,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )


def test_new_condition_has_every_field_and_a_whole_second_utc_time() -> None:
    assert ready() == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "ok",
            "observedGeneration": 1,
            "lastTransitionTime": "2025-01-31T12:00:00Z",
        }
    ]


def test_time_is_converted_to_utc() -> None:
    plus_two = datetime(2025, 1, 31, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert ready(now=plus_two)[0]["lastTransitionTime"] == "2025-01-31T12:00:00Z"


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        ready(now=datetime(2025, 1, 31))


def test_transition_time_stays_when_status_does_not_flip() -> None:
    updated = ready(ready(), reason=Reason.PROGRESSING, message="rolling out", generation=2, now=T1)
    assert updated == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Progressing",
            "message": "rolling out",
            "observedGeneration": 2,
            "lastTransitionTime": "2025-01-31T12:00:00Z",
        }
    ]


def test_transition_time_moves_when_status_flips() -> None:
    updated = ready(ready(), status="False", reason=Reason.DEPENDENCY_NOT_READY, now=T1)
    assert updated[0]["status"] == "False"
    assert updated[0]["lastTransitionTime"] == "2025-01-31T12:05:00Z"


def test_other_conditions_keep_their_order_and_a_new_type_is_appended() -> None:
    succeeded = {
        "type": "Succeeded",
        "status": "Unknown",
        "reason": "Progressing",
        "message": "",
        "observedGeneration": 1,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    updated = ready([succeeded])
    assert [c["type"] for c in updated] == ["Succeeded", "Ready"]
    assert updated[0] == succeeded


def test_type_stays_unique_even_if_the_input_repeats_it() -> None:
    twice = ready() + ready(status="False", reason=Reason.PROGRESSING)
    assert [c["type"] for c in ready(twice, now=T1)] == ["Ready"]


def test_input_is_not_mutated() -> None:
    original = ready()
    snapshot = [dict(c) for c in original]
    ready(original, status="False", reason=Reason.INVALID_SPEC, now=T1)
    assert original == snapshot


@pytest.mark.parametrize("reason", ["reconciled", "Not Ready", "Quota_Exceeded", "", "Ready!"])
def test_reason_must_be_camel_case(reason: str) -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        ready(reason=reason)
    with pytest.raises(ValueError, match="CamelCase"):
        would_change(None, type="Ready", status="True", reason=reason, message="", observed_generation=1)


def test_every_reason_constant_is_accepted() -> None:
    reasons = [value for name, value in vars(Reason).items() if name.isupper()]
    assert len(reasons) >= 5
    for reason in reasons:
        assert ready(reason=reason)[0]["reason"] == reason


@pytest.mark.parametrize("kwargs", [{"status": "true"}, {"generation": -1}])
def test_invalid_status_or_generation_is_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ready(**kwargs)


def test_invalid_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="type"):
        set_condition(
            None, type="not ready", status="True", reason="Reconciled", message="", observed_generation=1, now=T0
        )


def test_overlong_message_is_truncated_to_the_api_limit() -> None:
    assert len(ready(message="x" * (MAX_MESSAGE_LENGTH + 10))[0]["message"]) == MAX_MESSAGE_LENGTH


SAME = {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok", "observed_generation": 1}


def test_would_change_is_false_for_the_same_values() -> None:
    assert not would_change(ready(), **SAME)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "False"},
        {"reason": "Progressing"},
        {"message": "changed"},
        {"observed_generation": 2},
        {"type": "Succeeded"},
    ],
)
def test_would_change_detects_each_kind_of_change(change: dict[str, Any]) -> None:
    assert would_change(ready(), **(SAME | change))


def test_would_change_is_true_without_conditions() -> None:
    assert would_change(None, **SAME)


def test_status_patch_carries_conditions_and_observed_generation() -> None:
    patch = status_patch(
        {"phase": "Running"},
        type="Ready",
        status="False",
        reason="Progressing",
        message="waiting",
        observed_generation=3,
        now=T0,
    )
    assert patch["observedGeneration"] == 3
    assert find_condition(patch["conditions"], "Ready") == {
        "type": "Ready",
        "status": "False",
        "reason": "Progressing",
        "message": "waiting",
        "observedGeneration": 3,
        "lastTransitionTime": "2025-01-31T12:00:00Z",
    }
    assert "phase" not in patch


def test_status_patch_is_empty_when_nothing_changes() -> None:
    current = {"observedGeneration": 1, "conditions": ready()}
    assert (
        status_patch(
            current, type="Ready", status="True", reason="Reconciled", message="ok", observed_generation=1, now=T1
        )
        == {}
    )


def test_status_patch_is_written_when_only_top_level_generation_lags() -> None:
    current = {"observedGeneration": 1, "conditions": ready(generation=2)}
    patch = status_patch(
        current, type="Ready", status="True", reason="Reconciled", message="ok", observed_generation=2, now=T1
    )
    assert patch["observedGeneration"] == 2
    assert patch["conditions"][0]["lastTransitionTime"] == "2025-01-31T12:00:00Z"


def test_find_condition_returns_a_copy_or_none() -> None:
    conditions = ready()
    found = find_condition(conditions, "Ready")
    assert found == conditions[0] and found is not conditions[0]
    assert find_condition(conditions, "Succeeded") is None
    assert find_condition(None, "Ready") is None
