"""Attempt outcomes written in batches: `DeliveryStore.record_attempts` (one transaction) and
`GroupCommit` (one writer thread, callers told only after the commit)."""

import random
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dockyard.webhooks.store import AttemptRecord, DeliveryStore, GroupCommit, NewDelivery, Totals

T0 = 1_800_000_000.0
WAIT = 10.0  # a guard against hanging, never a performance target


def new(id: str, uid: str = "uid-a") -> NewDelivery:
    return NewDelivery(
        id=id,
        webhook_uid=uid,
        namespace="team",
        webhook=f"hook-{uid}",
        event_id=f"event-{id}",
        action="push",
        target="team/app:v1",
        body=b'{"id":"%s"}' % id.encode(),
        max_attempts=15,
    )


def outcome(id: str, state: str = "delivered", status: int | None = 200, next_at: float | None = None) -> AttemptRecord:
    return AttemptRecord(id, state, T0 + 1, status, 5, None, next_at)  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "deliveries.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[DeliveryStore]:
    store = DeliveryStore(path)
    store.enqueue([new(f"d{i}") for i in range(6)], now=T0)
    yield store
    store.close()


def poison(store: DeliveryStore, delivery_id: str) -> None:
    """Any write to this delivery fails (as a row that cannot be written would)."""
    store._db.execute(
        f"CREATE TRIGGER poison BEFORE UPDATE ON deliveries WHEN OLD.id = '{delivery_id}' "
        "BEGIN SELECT RAISE(ABORT, 'cannot write this row'); END"
    )


def states(path: Path) -> dict[str, tuple[str, int]]:
    """What a fresh process would read from the file."""
    db = sqlite3.connect(path)
    try:
        return {i: (s, a) for i, s, a in db.execute("SELECT id, state, attempts FROM deliveries")}
    finally:
        db.close()


def test_a_batch_is_committed_in_order_with_totals_as_if_one_by_one(store: DeliveryStore, path: Path) -> None:
    store.record_attempts(
        [
            outcome("d0", "pending", 503, next_at=T0 + 5),
            outcome("d1", "pending", 503, next_at=T0 + 5),
            outcome("d2"),  # delivered: the failing streak ends here
            outcome("d3", "pending", None, next_at=T0 + 5),
            outcome("d4", "failed", 410),
            outcome("d4", "failed", 410),  # twice: the second changes nothing
        ]
    )
    assert store.totals("uid-a") == Totals(delivered=1, failed=1, pending=4, failing_attempts=2)
    assert states(path) == {
        "d0": ("pending", 1),
        "d1": ("pending", 1),
        "d2": ("delivered", 1),
        "d3": ("pending", 1),
        "d4": ("failed", 1),
        "d5": ("pending", 0),
    }


def test_pings_are_outside_the_counts_but_tell_whether_the_receiver_answers(path: Path) -> None:
    store = DeliveryStore(path)
    try:
        ping = NewDelivery(**{**vars(new("p1")), "ping": True, "max_attempts": 1})
        store.enqueue([new("d1"), new("d2"), ping, NewDelivery(**{**vars(new("p2")), "ping": True})], now=T0)
        store.record_attempts([outcome("d1", "pending", 503, next_at=T0 + 5), outcome("p1", "failed", 503)])
        assert store.totals("uid-a") == Totals(delivered=0, failed=0, pending=2, failing_attempts=2)
        store.record_attempts([outcome("p2"), outcome("d2", "failed", 410)])
        assert store.totals("uid-a") == Totals(delivered=0, failed=1, pending=1, failing_attempts=1)
    finally:
        store.close()


def test_a_batch_ends_as_the_same_outcomes_recorded_one_by_one(tmp_path: Path) -> None:
    rng = random.Random(7)
    deliveries = [new(f"{u}-{i}", f"uid-{u}") for u in "abc" for i in range(8)]
    deliveries += [NewDelivery(**{**vars(new(f"p{u}", f"uid-{u}")), "ping": True, "max_attempts": 1}) for u in "ab"]
    records = [
        AttemptRecord(
            rng.choice(deliveries).id,
            rng.choice(["pending", "delivered", "failed"]),  # type: ignore[arg-type]
            T0 + n,
            rng.choice([200, 410, 503, None]),
            n,
            None,
            T0 + 100 + n,
        )
        for n in range(120)
    ]
    records[:0] = [outcome("pa"), outcome("pb", "failed", 503)]  # pings: outside the counts
    batched, single = DeliveryStore(tmp_path / "batched.sqlite"), DeliveryStore(tmp_path / "single.sqlite")
    try:
        for store in (batched, single):
            store.enqueue(deliveries, now=T0)
        for first in range(0, len(records), 40):
            batched.record_attempts(records[first : first + 40])
        for record in records:
            single.record_attempts([record])
        for uid in ("uid-a", "uid-b", "uid-c"):
            assert batched.totals(uid) == single.totals(uid)
        assert [batched.get(d.id) for d in deliveries] == [single.get(d.id) for d in deliveries]
    finally:
        batched.close()
        single.close()


def test_a_batch_is_all_or_nothing(store: DeliveryStore, path: Path) -> None:
    poison(store, "d3")
    with pytest.raises(sqlite3.IntegrityError):
        store.record_attempts([outcome("d1"), outcome("d2"), outcome("d3"), outcome("d4")])
    assert {s for s, _ in states(path).values()} == {"pending"}
    assert store.totals("uid-a") == Totals(pending=6)


def test_reads_do_not_wait_for_a_writer(store: DeliveryStore) -> None:
    read: list[int] = []
    with store._lock:  # a commit (and its fsync) in progress
        reader = threading.Thread(target=lambda: read.append(len(store.due(T0 + 10, 10))))
        reader.start()
        reader.join(WAIT)
        assert read == [6], "the queue could not be read while a write was in progress"


class Recorder:
    """Wraps `record_attempts`: batch sizes seen; the first call can be held until released."""

    def __init__(self, store: DeliveryStore, *, hold_first: bool = False) -> None:
        self.store, self.inner = store, store.record_attempts
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, records: Sequence[AttemptRecord]) -> None:
        self.batches.append([r.delivery_id for r in records])
        self.entered.set()
        assert self.release.wait(WAIT)
        self.inner(records)


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: dict[str, BaseException | None] = {}
        self.calls = 0
        self.all_in = threading.Event()
        self.expected = 0

    def callback(self, id: str):  # type: ignore[no-untyped-def]
        def done(error: BaseException | None) -> None:
            with self.lock:
                self.calls += 1
                self.got[id] = error
                if len(self.got) >= self.expected:
                    self.all_in.set()

        return done


def test_outcomes_arriving_during_a_commit_share_the_next_one(
    store: DeliveryStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(store, hold_first=True)
    monkeypatch.setattr(store, "record_attempts", recorder)
    writer = GroupCommit(store)
    results = Results()
    results.expected = 6
    try:
        writer.submit(outcome("d0"), results.callback("d0"))
        assert recorder.entered.wait(WAIT)
        for i in range(1, 6):
            writer.submit(outcome(f"d{i}"), results.callback(f"d{i}"))
        assert results.got == {}, "nobody is told before the commit"
        assert states(path)["d0"] == ("pending", 0)
        recorder.release.set()
        assert results.all_in.wait(WAIT)
    finally:
        writer.close()
    assert recorder.batches == [["d0"], ["d1", "d2", "d3", "d4", "d5"]]
    assert results.got == {f"d{i}": None for i in range(6)}
    assert {s for s, _ in states(path).values()} == {"delivered"}


def test_a_failed_batch_is_written_one_by_one_and_loses_no_outcome(
    store: DeliveryStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison(store, "d3")
    recorder = Recorder(store, hold_first=True)
    monkeypatch.setattr(store, "record_attempts", recorder)
    writer = GroupCommit(store)
    results = Results()
    results.expected = 6
    try:
        writer.submit(outcome("d0"), results.callback("d0"))
        assert recorder.entered.wait(WAIT)
        for i in range(1, 6):
            writer.submit(outcome(f"d{i}"), results.callback(f"d{i}"))
        recorder.release.set()
        assert results.all_in.wait(WAIT)
    finally:
        writer.close()
    assert recorder.batches[:2] == [["d0"], ["d1", "d2", "d3", "d4", "d5"]]
    assert recorder.batches[2:] == [["d1"], ["d2"], ["d3"], ["d4"], ["d5"]]
    assert results.calls == 6, "every caller is told exactly once"
    assert isinstance(results.got.pop("d3"), sqlite3.IntegrityError)
    assert set(results.got.values()) == {None}
    # The one that could not be written is still pending: it will be attempted again.
    assert states(path) == {f"d{i}": ("pending", 0) if i == 3 else ("delivered", 1) for i in range(6)}


def test_a_store_that_cannot_write_tells_every_caller(
    store: DeliveryStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(records: Sequence[AttemptRecord]) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "record_attempts", full)
    writer = GroupCommit(store)
    results = Results()
    results.expected = 3
    try:
        for i in range(3):
            writer.submit(outcome(f"d{i}"), results.callback(f"d{i}"))
        assert results.all_in.wait(WAIT)
    finally:
        writer.close()
    assert all(isinstance(e, sqlite3.OperationalError) for e in results.got.values())
    assert {s for s, _ in states(path).values()} == {"pending"}


def test_close_commits_what_was_submitted_and_refuses_more(store: DeliveryStore, path: Path) -> None:
    writer = GroupCommit(store)
    results = Results()
    results.expected = 4
    for i in range(4):
        writer.submit(outcome(f"d{i}"), results.callback(f"d{i}"))
    writer.close()
    assert results.got == {f"d{i}": None for i in range(4)}
    assert [states(path)[f"d{i}"][0] for i in range(6)] == ["delivered"] * 4 + ["pending"] * 2
    with pytest.raises(RuntimeError):
        writer.submit(outcome("d5"), results.callback("d5"))
    writer.close()  # twice is fine
