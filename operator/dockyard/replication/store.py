"""The replication ledger and job queue, durable in SQLite (one file in the operator's state dir).

Guarantees:
- an event is applied once: its id is recorded in the same transaction that applies it, so an
  envelope posted again (distribution retrying) or replayed after a crash changes nothing;
- the intake's accept returns only after the commit: an accepted event survives a SIGKILL;
- a job is "make `repository:tag` (or `repository@digest`, keyed `@<digest>`) on `replica` equal
  to the ledger", coalesced per (registry, replica, repository, tag): ten pushes of `latest` make
  one copy. Its `seq` grows with every
  enqueue, and a worker completes a job only at the seq it took, so a change that arrives while a
  copy runs is never lost;
- tombstones are ledger rows like any other and are pruned only after `TOMBSTONE_KEEP_SECONDS` (two weeks).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dockyard.replication.ledger import Key, Version, key_digest

TOMBSTONE_KEEP_SECONDS: Final = 14 * 24 * 3600
"""How long a tombstone outlives its delete: more than ten full comparisons at the longest interval
(one day), so only a replica unreachable for two weeks could bring deleted content back."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    namespace TEXT NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL,
    stamp INTEGER NOT NULL, origin TEXT NOT NULL, digest TEXT NOT NULL, deleted INTEGER NOT NULL,
    recorded REAL NOT NULL,
    PRIMARY KEY (namespace, registry, repository, tag)
);
CREATE TABLE IF NOT EXISTS jobs (
    namespace TEXT NOT NULL, registry TEXT NOT NULL, replica TEXT NOT NULL,
    repository TEXT NOT NULL, tag TEXT NOT NULL,
    seq INTEGER NOT NULL, since REAL NOT NULL, due REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (namespace, registry, replica, repository, tag)
);
CREATE TABLE IF NOT EXISTS replicas (
    namespace TEXT NOT NULL, registry TEXT NOT NULL, replica TEXT NOT NULL,
    conflicts INTEGER NOT NULL DEFAULT 0, last_sync REAL, last_full_sync REAL,
    in_sync INTEGER, out_of_sync INTEGER,
    fill_total INTEGER, fill_copied INTEGER NOT NULL DEFAULT 0, fill_bytes INTEGER NOT NULL DEFAULT 0,
    fill_started REAL, fill_completed REAL,
    PRIMARY KEY (namespace, registry, replica)
);
"""


@dataclass(frozen=True)
class Job:
    namespace: str
    registry: str
    replica: str
    repository: str
    tag: str
    seq: int
    since: float
    attempts: int


@dataclass(frozen=True)
class ReplicaFigures:
    pending: int
    oldest_pending: float | None
    conflicts: int
    last_sync: float | None
    last_full_sync: float | None
    in_sync: int | None
    out_of_sync: int | None
    fill_total: int | None
    fill_copied: int
    fill_bytes: int
    fill_started: float | None
    fill_completed: float | None


class LedgerStore:
    """Thread-safe: one connection, one lock (the intake's commit thread and the copy workers)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- transactions --------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    # -- reads -----------------------------------------------------------------------------------

    def version(self, namespace: str, registry: str, key: Key) -> Version | None:
        with self._lock:
            row = self._db.execute(
                "SELECT stamp, origin, digest, deleted FROM ledger "
                "WHERE namespace=? AND registry=? AND repository=? AND tag=?",
                (namespace, registry, *key),
            ).fetchone()
        return _version(*row) if row else None

    def versions(self, namespace: str, registry: str, repository: str | None = None) -> dict[Key, Version]:
        query = "SELECT repository, tag, stamp, origin, digest, deleted FROM ledger WHERE namespace=? AND registry=?"
        args: tuple[str, ...] = (namespace, registry)
        if repository is not None:
            query += " AND repository=?"
            args += (repository,)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return {(r[0], r[1]): _version(*r[2:]) for r in rows}

    def due_jobs(self, limit: int, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT namespace, registry, replica, repository, tag, seq, since, attempts FROM jobs "
                "WHERE due <= ? ORDER BY since LIMIT ?",
                (now, limit),
            ).fetchall()
        return [Job(*row) for row in rows]

    def pending(self, namespace: str, registry: str, key: Key) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM jobs WHERE namespace=? AND registry=? AND repository=? AND tag=? LIMIT 1",
                (namespace, registry, *key),
            ).fetchone()
        return row is not None

    def figures(self, namespace: str, registry: str, replica: str) -> ReplicaFigures:
        with self._lock:
            pending, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(since) FROM jobs WHERE namespace=? AND registry=? AND replica=?",
                (namespace, registry, replica),
            ).fetchone()
            row = self._db.execute(
                "SELECT conflicts, last_sync, last_full_sync, in_sync, out_of_sync, fill_total, fill_copied, "
                "fill_bytes, fill_started, fill_completed FROM replicas WHERE namespace=? AND registry=? AND replica=?",
                (namespace, registry, replica),
            ).fetchone() or (0, None, None, None, None, None, 0, 0, None, None)
        return ReplicaFigures(pending, oldest, *row)

    def total_conflicts(self, namespace: str, registry: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(conflicts), 0) FROM replicas WHERE namespace=? AND registry=?",
                (namespace, registry),
            ).fetchone()
        return int(row[0])

    # -- writes outside event transactions ------------------------------------------------------

    def complete(self, job: Job, copied_bytes: int = 0, now: float | None = None) -> bool:
        """Drop the job if nothing was enqueued for it since it was taken; record the sync. The
        initial fill's progress counts tags (its total is the tags a replica lacked)."""
        now = time.time() if now is None else now
        counted = 1 if key_digest((job.repository, job.tag)) is None else 0
        with self.transaction() as tx:
            done = tx.execute(
                "DELETE FROM jobs WHERE namespace=? AND registry=? AND replica=? AND repository=? AND tag=? AND seq=?",
                (job.namespace, job.registry, job.replica, job.repository, job.tag, job.seq),
            ).rowcount
            tx.touch_replica(job.namespace, job.registry, job.replica)
            tx.execute(
                "UPDATE replicas SET last_sync=?, fill_bytes=fill_bytes+?, "
                "fill_copied=fill_copied+(CASE WHEN fill_total IS NOT NULL AND fill_completed IS NULL THEN ? ELSE 0 END) "
                "WHERE namespace=? AND registry=? AND replica=?",
                (now, copied_bytes, counted if done else 0, job.namespace, job.registry, job.replica),
            )
            tx.finish_fill_if_done(job.namespace, job.registry, job.replica, now)
        return bool(done)

    def retry(self, job: Job, error: str, delay: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET due=?, attempts=attempts+1, last_error=? "
                "WHERE namespace=? AND registry=? AND replica=? AND repository=? AND tag=? AND seq=?",
                (now + delay, error[:500], job.namespace, job.registry, job.replica, job.repository, job.tag, job.seq),
            )

    def prune(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.transaction() as tx:
            removed = tx.execute(
                "DELETE FROM ledger WHERE deleted>0 AND recorded < ?", (now - TOMBSTONE_KEEP_SECONDS,)
            ).rowcount
            tx.execute("DELETE FROM seen WHERE at < ?", (now - TOMBSTONE_KEEP_SECONDS,))
        return int(removed)


def _deleted(version: Version) -> int:
    """The `deleted` column: 0 present, 1 manifest deleted, 2 tag removed."""
    return 0 if not version.deleted else 2 if version.untag else 1


def _version(stamp: int, origin: str, digest: str, deleted: int) -> Version:
    return Version(stamp, origin, digest, deleted=bool(deleted), untag=deleted == 2)


class _Transaction:
    """`with store.transaction() as tx:` one SQLite transaction under the store's lock."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.db = store._db

    def __enter__(self) -> _Transaction:
        self.store._lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
        finally:
            self.store._lock.release()

    def execute(self, query: str, args: Iterable[object] = ()) -> sqlite3.Cursor:
        return self.db.execute(query, tuple(args))

    def first_time(self, event_id: str, now: float) -> bool:
        """Record the event id; False when it was seen before (nothing to apply)."""
        return self.execute("INSERT OR IGNORE INTO seen (event_id, at) VALUES (?, ?)", (event_id, now)).rowcount == 1

    def put_version(self, namespace: str, registry: str, key: Key, version: Version, now: float) -> None:
        self.execute(
            "INSERT INTO ledger (namespace, registry, repository, tag, stamp, origin, digest, deleted, recorded) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, registry, repository, tag) DO UPDATE SET "
            "stamp=excluded.stamp, origin=excluded.origin, digest=excluded.digest, deleted=excluded.deleted, "
            "recorded=excluded.recorded",
            (namespace, registry, *key, version.stamp, version.origin, version.digest, _deleted(version), now),
        )

    def enqueue(self, namespace: str, registry: str, replica: str, key: Key, now: float) -> None:
        """A job for (replica, key); an existing one keeps its age (lag) and gets a new seq."""
        self.execute(
            "INSERT INTO jobs (namespace, registry, replica, repository, tag, seq, since, due) "
            "VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (namespace, registry, replica, repository, tag) DO UPDATE "
            "SET seq=jobs.seq+1, due=excluded.due, attempts=0",
            (namespace, registry, replica, *key, now, now),
        )

    def touch_replica(self, namespace: str, registry: str, replica: str) -> None:
        self.execute(
            "INSERT OR IGNORE INTO replicas (namespace, registry, replica) VALUES (?, ?, ?)",
            (namespace, registry, replica),
        )

    def count_conflict(self, namespace: str, registry: str, replica: str) -> None:
        self.touch_replica(namespace, registry, replica)
        self.execute(
            "UPDATE replicas SET conflicts=conflicts+1 WHERE namespace=? AND registry=? AND replica=?",
            (namespace, registry, replica),
        )

    def record_full_sync(
        self, namespace: str, registry: str, replica: str, in_sync: int, out_of_sync: int, now: float
    ) -> None:
        self.touch_replica(namespace, registry, replica)
        self.execute(
            "UPDATE replicas SET last_full_sync=?, in_sync=?, out_of_sync=?, "
            "fill_total=COALESCE(fill_total, ?), fill_started=COALESCE(fill_started, ?) "
            "WHERE namespace=? AND registry=? AND replica=?",
            (now, in_sync, out_of_sync, out_of_sync, now, namespace, registry, replica),
        )
        self.finish_fill_if_done(namespace, registry, replica, now)

    def finish_fill_if_done(self, namespace: str, registry: str, replica: str, now: float) -> None:
        pending = self.execute(
            "SELECT COUNT(*) FROM jobs WHERE namespace=? AND registry=? AND replica=?", (namespace, registry, replica)
        ).fetchone()[0]
        if not pending:
            self.execute(
                "UPDATE replicas SET fill_completed=? WHERE namespace=? AND registry=? AND replica=? "
                "AND fill_total IS NOT NULL AND fill_completed IS NULL",
                (now, namespace, registry, replica),
            )
