"""Replication as an event subscriber: each push and delete that a person (not the replicator)
made on any replica becomes a ledger decision and copy jobs, committed before the intake answers.

- a push of a tag: a `Version`; if it wins (`ledger.decide`), it replaces the entry and every
  replica gets a job (its own origin too: a copy in flight there may land after it, and the job
  costs one HEAD when nothing is to do); if it loses, only its origin gets a job (the winner is
  re-asserted there);
- an untag, a manifest delete (every tag the ledger has on the digest) or a repository delete
  (every tag of the repository): tombstones, applied and spread the same way;
- a push by digest only (an untagged image, an index's child, a referrer reached by digest): a
  `Version` of the digest's own entry (`ledger.digest_key`), spread the same way, so the manifest
  reaches every replica whether or not a tag ever names it;
- events whose actor is the replicator are its own writes landing: never applied, never echoed.
Applied once per event id (`store.first_time`), so a re-posted envelope changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dockyard.auth.delegation import REPLICATOR_SUBJECT
from dockyard.events.bus import EventBatch
from dockyard.events.envelope import RegistryEvent
from dockyard.replication.ledger import (
    HOME,
    Key,
    Version,
    decide,
    digest_delete,
    digest_key,
    parse_stamp,
    untag,
)
from dockyard.replication.metrics import ReplicationMetrics
from dockyard.replication.store import LedgerStore, _Transaction
from dockyard.replication.topology import Topology

Conflict = Callable[[str, str, Key, Version, Version], None]
"""(namespace, registry, key, winner, loser): told after the commit, e.g. to post an Event."""


class ReplicationSubscriber:
    name = "replication"

    def __init__(
        self,
        store: LedgerStore,
        topology: Topology,
        metrics: ReplicationMetrics,
        on_enqueued: Callable[[], None] = lambda: None,
        on_conflict: Conflict | None = None,
        replicator: str = REPLICATOR_SUBJECT,
    ) -> None:
        self.store, self.topology, self.metrics = store, topology, metrics
        self.on_enqueued, self.on_conflict, self.replicator = on_enqueued, on_conflict, replicator

    async def prepare(self, namespace: str) -> None:
        return None

    def accept(self, batch: EventBatch) -> None:
        replicas = self.topology.replicas(batch.namespace, batch.registry)
        if len(replicas) < 2:
            return
        origin = batch.location or HOME
        now = time.time()
        conflicts: list[tuple[Key, Version, Version]] = []
        enqueued = False
        with self.store.transaction() as tx:
            for event in (*batch.events, *batch.tag_deletes):
                if not tx.first_time(event.id, now) or event.actor == self.replicator:
                    continue
                for key, version in self._versions(batch, event, origin):
                    enqueued |= self._apply(tx, batch, replicas, key, version, now, conflicts)
        for key, winner, loser in conflicts:
            self.metrics.conflicts.inc()
            if self.on_conflict is not None:
                self.on_conflict(batch.namespace, batch.registry, key, winner, loser)
        if enqueued:
            self.on_enqueued()

    def _versions(self, batch: EventBatch, event: RegistryEvent, origin: str) -> list[tuple[Key, Version]]:
        stamp = parse_stamp(event.timestamp)
        ns, registry, repository = batch.namespace, batch.registry, event.repository
        if event.action == "push":
            if not event.digest:
                return []
            key = (repository, event.tag) if event.tag else digest_key(repository, event.digest)
            return [(key, Version(stamp, origin, event.digest))]
        if event.tag:
            key = (repository, event.tag)
            tombstone = untag(self.store.version(ns, registry, key), stamp, origin)
            return [] if tombstone is None else [(key, tombstone)]
        entries = self.store.versions(ns, registry, repository)
        if event.digest:
            return sorted(digest_delete(entries, repository, event.digest, stamp, origin).items())
        # A repository delete: every tag it had.
        return [
            (key, Version(stamp, origin, version.digest, deleted=True))
            for key, version in sorted(entries.items())
            if not version.deleted
        ]

    def _apply(
        self,
        tx: _Transaction,
        batch: EventBatch,
        replicas: list[str],
        key: Key,
        version: Version,
        now: float,
        conflicts: list[tuple[Key, Version, Version]],
    ) -> bool:
        ns, registry = batch.namespace, batch.registry
        current = self.store.version(ns, registry, key)
        decision = decide(current, version, self.store.pending(ns, registry, key))
        if decision.conflict and current is not None:
            winner, loser = (version, current) if decision.apply else (current, version)
            tx.count_conflict(ns, registry, loser.origin)
            conflicts.append((key, winner, loser))
        if decision.apply:
            tx.put_version(ns, registry, key, version, now)
            for replica in replicas:
                tx.enqueue(ns, registry, replica, key, now)
            return True
        if current is not None and version.origin in replicas:
            tx.enqueue(ns, registry, version.origin, key, now)
            return True
        return False
