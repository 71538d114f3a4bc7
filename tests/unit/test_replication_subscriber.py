"""The ledger store and the event subscriber (`replication/store.py`, `subscriber.py`): events
applied once and durably, the replicator's own writes not echoed, last writer wins whatever the
arrival order, deletes kept as tombstones, and jobs that survive a change arriving mid-copy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from dockyard.auth.delegation import REPLICATOR_SUBJECT
from dockyard.distribution.client import DistributionClient
from dockyard.events.bus import EventBatch
from dockyard.events.envelope import RegistryEvent, events_from_envelope, tag_deletes_from_envelope
from dockyard.replication.ledger import HOME, Version, parse_stamp
from dockyard.replication.metrics import register_replication_metrics
from dockyard.replication.store import LedgerStore
from dockyard.replication.subscriber import ReplicationSubscriber

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
NS, REG = "team", "hub"


class Replicas:
    def __init__(self, *names: str) -> None:
        self.names = list(names)

    def replicas(self, namespace: str, registry: str) -> list[str]:
        return list(self.names)

    def client(self, namespace: str, registry: str, replica: str) -> DistributionClient | None:
        return None

    def registries(self) -> list[tuple[str, str, float]]:
        return [(NS, REG, 600.0)]


@pytest.fixture
def store(tmp_path: Path) -> LedgerStore:
    return LedgerStore(tmp_path / "replication.sqlite")


def _subscriber(store: LedgerStore, *replicas: str) -> tuple[ReplicationSubscriber, list[object]]:
    conflicts: list[object] = []
    metrics = register_replication_metrics(CollectorRegistry())
    subscriber = ReplicationSubscriber(
        store, Replicas(*(replicas or (HOME, "west"))), metrics, on_conflict=lambda *c: conflicts.append(c)
    )
    return subscriber, conflicts


def _at(second: str) -> int:
    return parse_stamp(f"2026-12-01T10:00:{second}Z")


def _push(id: str, tag: str, digest: str, at: str, actor: str = "alice") -> RegistryEvent:
    return RegistryEvent(id, f"2026-12-01T10:00:{at}Z", "push", "app", tag=tag, digest=digest, actor=actor)


def _batch(*events: RegistryEvent, location: str | None = None, untags: tuple[RegistryEvent, ...] = ()) -> EventBatch:
    return EventBatch(NS, REG, events, location, untags)


def _jobs(store: LedgerStore) -> list[tuple[str, str, str, int]]:
    return sorted((j.replica, j.repository, j.tag, j.seq) for j in store.due_jobs(100, now=1e12))


def test_a_push_anywhere_is_recorded_and_queued_for_every_replica(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(_push("e1", "v1", A, "01"), location="west"))
    assert store.version(NS, REG, ("app", "v1")) == Version(_at("01"), "west", A)
    assert _jobs(store) == [(HOME, "app", "v1", 1), ("west", "app", "v1", 1)]


def test_an_envelope_posted_again_changes_nothing(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    batch = _batch(_push("e1", "v1", A, "01"))
    subscriber.accept(batch)
    subscriber.accept(batch)
    assert _jobs(store) == [(HOME, "app", "v1", 1), ("west", "app", "v1", 1)]


def test_the_replicators_own_writes_are_not_echoed(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(_push("e1", "v1", A, "01", actor=REPLICATOR_SUBJECT), location="west"))
    assert store.version(NS, REG, ("app", "v1")) is None and _jobs(store) == []


def test_a_registry_without_replications_is_left_alone(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store, HOME)
    subscriber.accept(_batch(_push("e1", "v1", A, "01")))
    assert store.version(NS, REG, ("app", "v1")) is None


def test_concurrent_pushes_converge_and_the_loser_is_counted(store: LedgerStore) -> None:
    subscriber, conflicts = _subscriber(store)
    subscriber.accept(_batch(_push("w", "v1", B, "05"), location="west"))  # the later push, first
    subscriber.accept(_batch(_push("h", "v1", A, "04")))  # home's earlier push arrives second
    assert store.version(NS, REG, ("app", "v1")) == Version(_at("05"), "west", B)
    assert len(conflicts) == 1
    assert store.figures(NS, REG, HOME).conflicts == 1
    # home gets the winner re-asserted (seq 2: its job was enqueued again)
    assert (HOME, "app", "v1", 2) in _jobs(store)


def test_a_manifest_delete_tombstones_every_tag_on_it_and_its_untags_do_not_weaken_it(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(_push("p1", "v1", A, "01"), _push("p2", "v2", A, "01"), _push("p3", "v3", B, "01")))
    delete = RegistryEvent("d", "2026-12-01T10:00:09Z", "delete", "app", digest=A, actor="alice")
    untag = RegistryEvent("u", "2026-12-01T10:00:09.5Z", "delete", "app", tag="v1", actor="alice")
    subscriber.accept(_batch(delete, location="west", untags=(untag,)))
    v1 = store.version(NS, REG, ("app", "v1"))
    assert v1 is not None and v1.deleted and not v1.untag and v1.digest == A and v1.origin == "west"
    assert store.version(NS, REG, ("app", "v3")) == Version(_at("01"), HOME, B)


def test_a_push_by_digest_only_is_recorded_under_its_digest_and_queued_everywhere(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    by_digest = RegistryEvent("p1", "2026-12-01T10:00:01Z", "push", "app", digest=A, actor="alice")
    subscriber.accept(_batch(by_digest, location="west"))
    assert store.version(NS, REG, ("app", "@" + A)) == Version(_at("01"), "west", A)
    assert _jobs(store) == [(HOME, "app", "@" + A, 1), ("west", "app", "@" + A, 1)]
    copy = RegistryEvent("p2", "2026-12-01T10:00:02Z", "push", "app", digest=B, actor=REPLICATOR_SUBJECT)
    subscriber.accept(_batch(copy))  # the replicator's own copy by digest landing: no echo
    assert store.version(NS, REG, ("app", "@" + B)) is None and len(_jobs(store)) == 2


def test_a_delete_of_an_untagged_digest_is_a_tombstone_queued_everywhere(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(RegistryEvent("p", "2026-12-01T10:00:01Z", "push", "app", digest=A, actor="alice")))
    for job in store.due_jobs(10, now=1e12):
        store.complete(job)
    delete = RegistryEvent("d", "2026-12-01T10:00:03Z", "delete", "app", digest=A, actor="alice")
    subscriber.accept(_batch(delete, location="west"))
    assert store.version(NS, REG, ("app", "@" + A)) == Version(_at("03"), "west", A, deleted=True)
    assert _jobs(store) == [(HOME, "app", "@" + A, 1), ("west", "app", "@" + A, 1)]


def test_a_tag_delete_is_an_untag_tombstone(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(_push("p1", "v1", A, "01")))
    untag = RegistryEvent("u", "2026-12-01T10:00:02Z", "delete", "app", tag="v1", actor="alice")
    subscriber.accept(_batch(untags=(untag,)))
    assert store.version(NS, REG, ("app", "v1")) == Version(_at("02"), HOME, A, deleted=True, untag=True)


def test_a_change_that_arrives_mid_copy_keeps_its_job(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(_push("p1", "v1", A, "01")))
    taken = next(j for j in store.due_jobs(10, now=1e12) if j.replica == "west")
    subscriber.accept(_batch(_push("p2", "v1", B, "02")))  # while the copy of A runs
    assert not store.complete(taken)
    assert ("west", "app", "v1", 2) in _jobs(store)
    again = next(j for j in store.due_jobs(10, now=1e12) if j.replica == "west")
    assert store.complete(again) and ("west", "app", "v1", 2) not in _jobs(store)


def test_accepted_events_survive_a_restart(tmp_path: Path) -> None:
    first = LedgerStore(tmp_path / "r.sqlite")
    _subscriber(first)[0].accept(_batch(_push("p1", "v1", A, "01")))
    first.close()
    second = LedgerStore(tmp_path / "r.sqlite")
    assert second.version(NS, REG, ("app", "v1")) is not None
    assert len(_jobs(second)) == 2
    _subscriber(second)[0].accept(_batch(_push("p1", "v1", A, "01")))  # replayed after the restart
    assert [seq for *_, seq in _jobs(second)] == [1, 1]


def test_envelope_keeps_actor_and_tag_deletes() -> None:
    envelope = {
        "events": [
            {
                "id": "1",
                "timestamp": "2026-12-01T10:00:00Z",
                "action": "push",
                "target": {
                    "repository": "app",
                    "tag": "v1",
                    "digest": A,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                },
                "actor": {"name": REPLICATOR_SUBJECT},
            },
            {
                "id": "2",
                "timestamp": "2026-12-01T10:00:01Z",
                "action": "delete",
                "target": {"repository": "app", "tag": "v1"},
            },
        ]
    }
    (push,) = events_from_envelope(envelope)
    assert push.actor == REPLICATOR_SUBJECT
    (untag,) = tag_deletes_from_envelope(envelope)
    assert (untag.tag, untag.action, untag.actor) == ("v1", "delete", None)


def test_tombstones_are_kept_two_weeks_then_pruned(store: LedgerStore) -> None:
    subscriber, _ = _subscriber(store)
    subscriber.accept(_batch(_push("p1", "v1", A, "01"), _push("p2", "v2", A, "01")))
    subscriber.accept(_batch(RegistryEvent("d", "2026-12-01T10:00:09Z", "delete", "app", digest=A, actor="bob")))
    now = time.time()
    assert store.prune(now + 13 * 24 * 3600) == 0
    assert store.version(NS, REG, ("app", "v1")) is not None
    assert store.prune(now + 15 * 24 * 3600) == 3  # both tags and the manifest's own entry
    assert store.version(NS, REG, ("app", "v1")) is None
