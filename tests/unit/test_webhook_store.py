from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.webhooks.store import DeliveryStore, NewDelivery, Totals

T0 = 1_800_000_000.0
DAY = 86400.0


def new(
    id: str, uid: str = "uid-a", *, ping: bool = False, max_attempts: int = 15, event_id: str | None = None
) -> NewDelivery:
    return NewDelivery(
        id=id,
        webhook_uid=uid,
        namespace="team",
        webhook=f"hook-{uid}",
        event_id=event_id or f"event-{id}",
        action="ping" if ping else "push",
        target=None if ping else "team/app:v1",
        body=b'{"id":"%s","action":"push"}' % id.encode(),
        max_attempts=max_attempts,
        ping=ping,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeliveryStore]:
    store = DeliveryStore(tmp_path / "state" / "deliveries.sqlite", history_days=7)
    yield store
    store.close()


def attempt(
    store: DeliveryStore,
    id: str,
    state: str,
    at: float,
    *,
    status: int | None = 500,
    next_at: float | None = None,
    error: str | None = None,
) -> None:
    store.record_attempt(
        id,
        state=state,
        attempted_at=at,
        http_status=status,  # type: ignore[arg-type]
        latency_ms=12,
        error=error,
        next_attempt_at=next_at,
    )


def test_creates_the_state_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "deliveries.sqlite"
    DeliveryStore(path).close()
    assert path.exists()


def test_enqueue_returns_how_many_were_new(store: DeliveryStore) -> None:
    assert store.enqueue([new("d1"), new("d2")], now=T0) == 2
    assert store.enqueue([new("d2"), new("d3")], now=T0 + 1) == 1
    assert store.enqueue([new("d1"), new("d1")], now=T0 + 2) == 0
    assert store.enqueue([], now=T0) == 0
    assert store.pending_count() == 3


def test_duplicate_keeps_the_first_delivery(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    store.enqueue([new("d1", max_attempts=3)], now=T0 + 60)
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.accepted_at, delivery.max_attempts) == (T0, 15)


def test_new_delivery_is_pending_and_due_at_once(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, T0)
    assert delivery.body == b'{"id":"d1","action":"push"}'
    assert (delivery.webhook_uid, delivery.namespace, delivery.webhook, delivery.target) == (
        "uid-a",
        "team",
        "hook-uid-a",
        "team/app:v1",
    )
    assert delivery.ping is False
    assert store.get("missing") is None


def test_due_is_ordered_by_next_attempt_and_honours_now_limit_and_exclude(store: DeliveryStore) -> None:
    store.enqueue([new("late")], now=T0 + 30)
    store.enqueue([new("early")], now=T0)
    store.enqueue([new("middle")], now=T0 + 10)
    store.enqueue([new("future")], now=T0 + 1000)
    assert [d.id for d in store.due(T0 + 100, 10)] == ["early", "middle", "late"]
    assert [d.id for d in store.due(T0 + 100, 2)] == ["early", "middle"]
    assert [d.id for d in store.due(T0 + 100, 2, exclude=["early"])] == ["middle", "late"]
    assert [d.id for d in store.due(T0 + 5, 10)] == ["early"]
    assert store.next_due_at() == T0


def test_due_skips_finished_deliveries(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("d2")], now=T0)
    attempt(store, "d1", "delivered", T0 + 1, status=200)
    assert [d.id for d in store.due(T0 + 10, 10)] == ["d2"]


def test_next_due_at_is_none_when_nothing_is_pending(store: DeliveryStore) -> None:
    assert store.next_due_at() is None
    store.enqueue([new("d1")], now=T0)
    attempt(store, "d1", "failed", T0 + 1, status=410)
    assert store.next_due_at() is None


def test_retry_attempt_keeps_pending_and_moves_next_attempt(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    attempt(store, "d1", "pending", T0 + 1, status=503, next_at=T0 + 3, error=None)
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.http_status, delivery.latency_ms) == ("pending", 1, 503, 12)
    assert (delivery.last_attempt_at, delivery.next_attempt_at) == (T0 + 1, T0 + 3)
    assert store.due(T0 + 2, 10) == []
    assert [d.id for d in store.due(T0 + 3, 10)] == ["d1"]
    assert store.totals("uid-a") == Totals(delivered=0, failed=0, pending=1, failing_attempts=1)


def test_delivered_counts_and_resets_failing_attempts(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("d2")], now=T0)
    attempt(store, "d1", "pending", T0 + 1, next_at=T0 + 2)
    attempt(store, "d2", "pending", T0 + 1, next_at=T0 + 2)
    assert store.totals("uid-a").failing_attempts == 2
    attempt(store, "d1", "delivered", T0 + 2, status=200)
    assert store.totals("uid-a") == Totals(delivered=1, failed=0, pending=1, failing_attempts=0)
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.http_status) == ("delivered", 2, 200)


def test_failed_counts_a_failure_and_a_failing_attempt(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    attempt(store, "d1", "failed", T0 + 1, status=404, error="not found")
    assert store.totals("uid-a") == Totals(delivered=0, failed=1, pending=0, failing_attempts=1)
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.state, delivery.error) == ("failed", "not found")


def test_attempt_on_a_finished_delivery_changes_nothing(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    attempt(store, "d1", "delivered", T0 + 1, status=200)
    attempt(store, "d1", "failed", T0 + 2, status=500)
    attempt(store, "missing", "failed", T0 + 2, status=500)
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert store.totals("uid-a") == Totals(delivered=1)


def test_totals_are_per_webhook(store: DeliveryStore) -> None:
    store.enqueue([new("a1", "uid-a"), new("b1", "uid-b"), new("b2", "uid-b")], now=T0)
    attempt(store, "a1", "delivered", T0 + 1, status=200)
    assert store.totals("uid-a") == Totals(delivered=1)
    assert store.totals("uid-b") == Totals(pending=2)
    assert store.totals("nobody") == Totals()


def test_pending_of_a_webhook_excludes_pings(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("p1", ping=True)], now=T0)
    assert store.totals("uid-a").pending == 1
    assert store.pending_count() == 2


def test_postpone_delays_without_counting_an_attempt(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    store.postpone("d1", T0 + 30)
    assert store.due(T0 + 29, 10) == []
    delivery = store.get("d1")
    assert delivery is not None
    assert (delivery.attempts, delivery.next_attempt_at, delivery.state) == (0, T0 + 30, "pending")
    assert store.totals("uid-a") == Totals(pending=1)


def test_release_makes_the_webhooks_pending_deliveries_due_now(store: DeliveryStore) -> None:
    store.enqueue([new("a1", "uid-a"), new("a2", "uid-a"), new("b1", "uid-b")], now=T0)
    for id in ("a1", "a2", "b1"):
        store.postpone(id, T0 + 1000)
    store.release("uid-a", now=T0 + 5)
    assert [d.id for d in store.due(T0 + 5, 10)] == ["a1", "a2"]


def test_release_does_not_delay_what_is_already_due(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    store.release("uid-a", now=T0 + 100)
    delivery = store.get("d1")
    assert delivery is not None
    assert delivery.next_attempt_at == T0


def test_cancel_webhook_cancels_its_pending_deliveries_and_drops_totals(store: DeliveryStore) -> None:
    store.enqueue([new("a1", "uid-a"), new("a2", "uid-a"), new("a3", "uid-a"), new("b1", "uid-b")], now=T0)
    attempt(store, "a1", "delivered", T0 + 1, status=200)
    assert store.cancel_webhook("uid-a") == 2
    assert [d.id for d in store.due(T0 + 10, 10)] == ["b1"]
    assert store.totals("uid-a") == Totals()
    delivered = store.get("a1")
    canceled = store.get("a2")
    assert delivered is not None and canceled is not None
    assert (delivered.state, canceled.state) == ("delivered", "canceled")
    assert store.recent("uid-a", 10) == [delivered]
    assert store.webhooks_with_pending() == [("uid-b", "team", "hook-uid-b")]


def test_recent_is_newest_first_with_pings_apart(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("d2"), new("d3"), new("p1", ping=True)], now=T0)
    attempt(store, "d1", "delivered", T0 + 30, status=200)
    attempt(store, "d2", "delivered", T0 + 10, status=200)
    attempt(store, "p1", "delivered", T0 + 40, status=200)
    assert [d.id for d in store.recent("uid-a", 10)] == ["d1", "d2", "d3"]
    assert [d.id for d in store.recent("uid-a", 2)] == ["d1", "d2"]
    assert [d.id for d in store.recent("uid-a", 10, ping=True)] == ["p1"]
    assert store.recent("uid-b", 10) == []


def test_recent_orders_deliveries_accepted_together_by_insertion(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("d2"), new("d3")], now=T0)
    assert [d.id for d in store.recent("uid-a", 10)] == ["d3", "d2", "d1"]


def test_webhooks_with_pending(store: DeliveryStore) -> None:
    store.enqueue([new("a1", "uid-a"), new("a2", "uid-a"), new("b1", "uid-b")], now=T0)
    attempt(store, "b1", "failed", T0 + 1, status=400)
    assert store.webhooks_with_pending() == [("uid-a", "team", "hook-uid-a")]


def test_prune_removes_only_finished_rows_older_than_the_history(store: DeliveryStore) -> None:
    store.enqueue(
        [
            new("old-delivered"),
            new("old-failed"),
            new("old-canceled", "uid-b"),
            new("old-pending"),
            new("recent-delivered"),
        ],
        now=T0,
    )
    attempt(store, "old-delivered", "delivered", T0 + 1, status=200)
    attempt(store, "old-failed", "failed", T0 + 1, status=410)
    store.cancel_webhook("uid-b")
    attempt(store, "recent-delivered", "delivered", T0 + 6 * DAY, status=200)
    assert store.prune(now=T0 + 8 * DAY) == 3
    remaining = {
        id
        for id in ("old-delivered", "old-failed", "old-canceled", "old-pending", "recent-delivered")
        if store.get(id) is not None
    }
    assert remaining == {"old-pending", "recent-delivered"}


def test_prune_keeps_totals(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    attempt(store, "d1", "delivered", T0 + 1, status=200)
    store.prune(now=T0 + 30 * DAY)
    assert store.totals("uid-a") == Totals(delivered=1)


def test_history_window_is_configurable(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "d.sqlite", history_days=1)
    try:
        store.enqueue([new("d1")], now=T0)
        attempt(store, "d1", "delivered", T0, status=200)
        assert store.prune(now=T0 + 0.5 * DAY) == 0
        assert store.prune(now=T0 + 2 * DAY) == 1
    finally:
        store.close()


def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite"
    first = DeliveryStore(path)
    first.enqueue([new("d1"), new("d2"), new("p1", ping=True)], now=T0)
    attempt(first, "d1", "pending", T0 + 1, status=503, next_at=T0 + 3)
    attempt(first, "d2", "delivered", T0 + 1, status=200)
    first.close()

    second = DeliveryStore(path)
    try:
        assert [d.id for d in second.due(T0 + 10, 10)] == ["p1", "d1"]
        retried = second.get("d1")
        assert retried is not None
        assert (retried.attempts, retried.http_status, retried.body) == (1, 503, b'{"id":"d1","action":"push"}')
        assert second.totals("uid-a") == Totals(delivered=1, failed=0, pending=1, failing_attempts=0)
        assert second.enqueue([new("d1")], now=T0 + 20) == 0
    finally:
        second.close()


def test_in_memory_store_works() -> None:
    store = DeliveryStore(":memory:")
    try:
        assert store.enqueue([new("d1")], now=T0) == 1
        assert store.pending_count() == 1
    finally:
        store.close()


def test_requeue_replays_finished_deliveries_only(store: DeliveryStore) -> None:
    store.enqueue([new("ok"), new("bad", max_attempts=1), new("waiting")], now=T0)
    attempt(store, "ok", "delivered", T0 + 1, status=200)
    attempt(store, "bad", "failed", T0 + 1, status=500)
    assert store.requeue(["ok", "bad", "waiting", "unknown"], now=T0 + 10) == 2
    for id in ("ok", "bad"):
        delivery = store.get(id)
        assert delivery is not None
        assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, T0 + 10)
    assert [d.id for d in store.due(T0 + 10, 10)] == ["waiting", "ok", "bad"]


def test_canceled_deliveries_are_not_replayed(store: DeliveryStore) -> None:
    store.enqueue([new("d1")], now=T0)
    store.cancel_webhook("uid-a")
    assert store.requeue(["d1"], now=T0 + 1) == 0


def test_of_webhook_lists_by_name_newest_first_and_filters_by_state(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("d2"), new("other", uid="uid-b")], now=T0)
    attempt(store, "d1", "delivered", T0 + 5, status=200)
    attempt(store, "d2", "failed", T0 + 9, status=410)
    assert [d.id for d in store.of_webhook("team", "hook-uid-a")] == ["d2", "d1"]
    assert [d.id for d in store.of_webhook("team", "hook-uid-a", "failed")] == ["d2"]
    assert store.of_webhook("elsewhere", "hook-uid-a") == []


def test_a_backlog_of_one_webhook_leaves_room_for_the_others(store: DeliveryStore) -> None:
    store.enqueue([new(f"a{i:03}", uid="uid-a") for i in range(200)], now=T0)
    store.enqueue([new("b1", uid="uid-b")], now=T0 + 1)
    due = store.due(T0 + 2, 10, per_webhook=4)
    assert [d.id for d in due] == ["a000", "a001", "a002", "a003", "b1"]
    in_flight = ["a000", "a001", "a002", "a003"]
    assert [d.id for d in store.due(T0 + 2, 10, in_flight, per_webhook=4)] == ["b1"]


def test_postpone_webhook_moves_all_its_pending_deliveries(store: DeliveryStore) -> None:
    store.enqueue([new("d1"), new("d2"), new("p1", ping=True), new("other", uid="uid-b")], now=T0)
    store.postpone_webhook("uid-a", T0 + 30)
    assert [d.id for d in store.due(T0 + 1, 10)] == ["p1", "other"]
    assert {d.id for d in store.due(T0 + 30, 10)} == {"d1", "d2", "p1", "other"}
