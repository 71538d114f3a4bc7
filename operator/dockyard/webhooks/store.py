"""The delivery queue and history, in one SQLite file.

Guarantee: `enqueue` returns only after the deliveries are committed with `synchronous=FULL`, and
the intake answers the registry 2xx only after that, so an event the registry was told is accepted
survives an operator crash or restart (as long as the file does: mount a PersistentVolume at the
state directory). Until then distribution keeps the envelope in its own memory queue and retries.

A delivery is identified by (webhook uid, event id): a registry re-posting an envelope it was not
sure about, or a ping requested twice, adds nothing. A delivery stays `pending` until it is
`delivered`, `failed` (out of attempts or refused) or `canceled` (its Webhook was deleted);
finished rows are kept for `history_days` and totals per webhook for as long as the webhook exists.
An attempt in flight when the process stops is not recorded, so it is made again after the restart:
receivers can see the same delivery id twice (at least once, not exactly once).

Attempt outcomes are committed with `synchronous=NORMAL` (WAL): durable across a process crash, and
after a power loss at worst an attempt is forgotten and made again, which at-least-once allows. The
dispatcher hands them to `GroupCommit`, which commits those that arrive together in one transaction
and tells each caller only once its outcome is committed (or that it could not be).

Thread-safe: one connection behind a lock; callers are the intake's thread, the dispatcher's threads
(outcome writer, queue reads) and kopf's handler threads (status, ping).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

State = Literal["pending", "delivered", "failed", "canceled"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    webhook_uid TEXT NOT NULL,
    namespace TEXT NOT NULL,
    webhook TEXT NOT NULL,
    event_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_attempt_at REAL,
    http_status INTEGER,
    latency_ms INTEGER,
    error TEXT,
    ping INTEGER NOT NULL DEFAULT 0,
    sort_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_due_by_webhook ON deliveries (webhook_uid, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_pending_by_webhook ON deliveries (state, webhook_uid, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_recent ON deliveries (webhook_uid, ping, sort_at);
CREATE INDEX IF NOT EXISTS deliveries_by_name ON deliveries (namespace, webhook, sort_at);
CREATE TABLE IF NOT EXISTS totals (
    webhook_uid TEXT PRIMARY KEY,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    failing_attempts INTEGER NOT NULL DEFAULT 0
);
"""

_COLUMNS = (
    "id, webhook_uid, namespace, webhook, event_id, action, target, body, state, attempts, max_attempts, "
    "accepted_at, next_attempt_at, last_attempt_at, http_status, latency_ms, error, ping"
)


@dataclass(frozen=True)
class NewDelivery:
    id: str
    webhook_uid: str
    namespace: str
    webhook: str
    event_id: str
    action: str
    target: str | None
    body: bytes
    max_attempts: int
    ping: bool = False


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_uid: str
    namespace: str
    webhook: str
    event_id: str
    action: str
    target: str | None
    body: bytes
    state: State
    attempts: int
    max_attempts: int
    accepted_at: float
    next_attempt_at: float
    last_attempt_at: float | None
    http_status: int | None
    latency_ms: int | None
    error: str | None
    ping: bool


@dataclass(frozen=True)
class AttemptRecord:
    """The outcome of one attempt, as `record_attempt` takes it."""

    delivery_id: str
    state: State
    attempted_at: float
    http_status: int | None
    latency_ms: int | None
    error: str | None
    next_attempt_at: float | None = None


@dataclass(frozen=True)
class Totals:
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    failing_attempts: int = 0
    """Failed attempts since the last successful one: how long the receiver has been failing."""


def _delivery(row: tuple[object, ...]) -> Delivery:
    values = list(row)
    values[-1] = bool(values[-1])
    return Delivery(*values)  # type: ignore[arg-type]


class DeliveryStore:
    def __init__(self, path: Path | str, history_days: float = 7.0) -> None:
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self.history_seconds = history_days * 86400
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        # Reads have a connection of their own (WAL: they see the last commit and wait for no
        # writer), so queue reads and status never queue behind a commit's fsync.
        if memory:
            self._read_db, self._read_lock = self._db, self._lock
        else:
            self._read_db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._read_db.execute("PRAGMA query_only=1")
            self._read_lock = threading.Lock()

    def close(self) -> None:
        with self._read_lock:
            self._read_db.close()
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The read connection, in one read transaction (one consistent snapshot)."""
        with self._read_lock:
            self._read_db.execute("BEGIN")
            try:
                yield self._read_db
            finally:
                self._read_db.execute("COMMIT")

    def enqueue(self, deliveries: Iterable[NewDelivery], now: float | None = None) -> int:
        """Commit new deliveries, due at once; returns how many were new (duplicates are ignored)."""
        now = time.time() if now is None else now
        rows = [
            (
                d.id,
                d.webhook_uid,
                d.namespace,
                d.webhook,
                d.event_id,
                d.action,
                d.target,
                d.body,
                d.max_attempts,
                now,
                now,
                int(d.ping),
                now,
            )
            for d in deliveries
        ]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO deliveries (id, webhook_uid, namespace, webhook, event_id, action, target, body, "
                    "max_attempts, accepted_at, next_attempt_at, ping, sort_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                added = self._db.total_changes - before
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def due(
        self, now: float, limit: int, exclude: Iterable[str] = (), per_webhook: int | None = None
    ) -> list[Delivery]:
        """Due deliveries, oldest first, leaving out `exclude` (in flight). With `per_webhook`, only
        each webhook's `per_webhook` oldest due ones are considered (in flight ones included), so a
        webhook with a long backlog cannot fill the result."""
        skip = set(exclude)
        rank = per_webhook if per_webhook is not None else -1
        with self._reading() as db:
            # Index only: each webhook's oldest due ones, then bodies for the rows chosen. The
            # webhooks with pending deliveries are found by hopping from one to the next in the
            # index (one lookup per webhook), not by reading every pending row (GROUP BY).
            webhooks = db.execute(
                "WITH RECURSIVE hooks(uid) AS ("
                " SELECT (SELECT MIN(webhook_uid) FROM deliveries WHERE state = 'pending')"
                " UNION ALL"
                " SELECT (SELECT MIN(webhook_uid) FROM deliveries WHERE state = 'pending' AND webhook_uid > hooks.uid)"
                " FROM hooks WHERE uid IS NOT NULL)"
                " SELECT uid, (SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' AND webhook_uid = uid)"
                " AS due_at FROM hooks WHERE uid IS NOT NULL AND due_at <= ? ORDER BY due_at",
                (now,),
            ).fetchall()
            candidates: list[tuple[float, str]] = []
            for uid, _ in webhooks:
                candidates += db.execute(
                    "SELECT next_attempt_at, id FROM deliveries WHERE webhook_uid = ? AND state = 'pending' "
                    "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                    (uid, now, rank if rank >= 0 else limit + len(skip)),
                ).fetchall()
            candidates.sort()
            ids = [i for _, i in candidates if i not in skip][:limit]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            cursor = db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE id IN ({marks}) ORDER BY next_attempt_at, rowid", ids
            )
            return [_delivery(row) for row in cursor.fetchall()]

    def next_due_at(self, after: float | None = None) -> float | None:
        """When the next pending delivery is due (the earliest of all, or the earliest after `after`)."""
        with self._reading() as db:
            if after is None:
                row = db.execute("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'").fetchone()
            else:
                row = db.execute(
                    "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' AND next_attempt_at > ?",
                    (after,),
                ).fetchone()
        return None if row[0] is None else float(row[0])

    def get(self, delivery_id: str) -> Delivery | None:
        with self._reading() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else _delivery(row)

    def record_attempt(
        self,
        delivery_id: str,
        *,
        state: State,
        attempted_at: float,
        http_status: int | None,
        latency_ms: int | None,
        error: str | None,
        next_attempt_at: float | None = None,
    ) -> None:
        """One attempt made: `state` pending (will retry at `next_attempt_at`), delivered or failed."""
        self.record_attempts(
            [AttemptRecord(delivery_id, state, attempted_at, http_status, latency_ms, error, next_attempt_at)]
        )

    def record_attempts(self, records: Sequence[AttemptRecord]) -> None:
        """Attempts made, in the order given, committed in one transaction: all or none, totals as
        if recorded one by one. An attempt on a delivery no longer pending (canceled meanwhile, or
        recorded twice) changes nothing."""
        if not records:
            return
        ids = list(dict.fromkeys(r.delivery_id for r in records))
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows: dict[str, tuple[str, str, bool]] = {}
                for first in range(0, len(ids), 500):
                    chunk = ids[first : first + 500]
                    cursor = self._db.execute(
                        f"SELECT id, webhook_uid, state, ping FROM deliveries WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                    rows.update({i: (uid, state, bool(ping)) for i, uid, state, ping in cursor})
                updates: list[tuple[object, ...]] = []
                totals: dict[str, list[int]] = {}  # uid: [delivered, failed, failing attempts, streak ended]
                for record in records:
                    row = rows.get(record.delivery_id)
                    if row is None or row[1] != "pending":
                        continue
                    uid, _, ping = row
                    rows[record.delivery_id] = (uid, record.state, ping)
                    updates.append(
                        (
                            record.state,
                            record.attempted_at,
                            record.attempted_at,
                            record.http_status,
                            record.latency_ms,
                            record.error,
                            record.next_attempt_at,
                            record.delivery_id,
                        )
                    )
                    counts = totals.setdefault(uid, [0, 0, 0, 0])
                    # Pings tell whether the receiver answers, but they are not events: not in the counts.
                    if record.state == "delivered":
                        counts[0] += 0 if ping else 1
                        counts[2], counts[3] = 0, 1
                    else:
                        counts[1] += 1 if record.state == "failed" and not ping else 0
                        counts[2] += 1
                self._db.executemany(
                    "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_attempt_at = ?, sort_at = ?, "
                    "http_status = ?, latency_ms = ?, error = ?, next_attempt_at = COALESCE(?, next_attempt_at) "
                    "WHERE id = ?",
                    updates,
                )
                self._db.executemany("INSERT OR IGNORE INTO totals (webhook_uid) VALUES (?)", [(u,) for u in totals])
                self._db.executemany(
                    "UPDATE totals SET delivered = delivered + ?, failed = failed + ?, "
                    "failing_attempts = CASE WHEN ? THEN ? ELSE failing_attempts + ? END WHERE webhook_uid = ?",
                    [(d, f, ended, failing, failing, uid) for uid, (d, f, failing, ended) in totals.items()],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def postpone(self, delivery_id: str, until: float) -> None:
        """Not attempted now (its webhook cannot be looked up); no attempt is counted."""
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ? AND state = 'pending'", (until, delivery_id)
            )

    def postpone_webhook(self, webhook_uid: str, until: float) -> None:
        """None of the webhook's deliveries is attempted before `until` (it is disabled)."""
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET next_attempt_at = MAX(next_attempt_at, ?) WHERE webhook_uid = ? AND state = 'pending' "
                "AND ping = 0",
                (until, webhook_uid),
            )

    def release(self, webhook_uid: str, now: float | None = None) -> None:
        """Make every pending delivery of the webhook due now (it was re-enabled)."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE webhook_uid = ? AND state = 'pending' AND next_attempt_at > ?",
                (now, webhook_uid, now),
            )

    def cancel_webhook(self, webhook_uid: str) -> int:
        """The webhook is gone: its pending deliveries will never be made, its totals are dropped."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE deliveries SET state = 'canceled' WHERE webhook_uid = ? AND state = 'pending'", (webhook_uid,)
            )
            self._db.execute("DELETE FROM totals WHERE webhook_uid = ?", (webhook_uid,))
            return cursor.rowcount

    def totals(self, webhook_uid: str) -> Totals:
        with self._reading() as db:
            row = db.execute(
                "SELECT delivered, failed, failing_attempts FROM totals WHERE webhook_uid = ?", (webhook_uid,)
            ).fetchone()
            pending = db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE webhook_uid = ? AND state = 'pending' AND ping = 0",
                (webhook_uid,),
            ).fetchone()[0]
        delivered, failed, failing = row if row else (0, 0, 0)
        return Totals(delivered=delivered, failed=failed, pending=pending, failing_attempts=failing)

    def recent(self, webhook_uid: str, limit: int, *, ping: bool = False) -> list[Delivery]:
        """Newest first: deliveries attempted at least once (by their last attempt), then waiting ones."""
        with self._reading() as db:
            cursor = db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE webhook_uid = ? AND ping = ? AND state != 'canceled' "
                "ORDER BY sort_at DESC, rowid DESC LIMIT ?",
                (webhook_uid, int(ping), limit),
            )
            return [_delivery(row) for row in cursor.fetchall()]

    def of_webhook(self, namespace: str, webhook: str, state: State | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries of a webhook by name (all its incarnations), newest first."""
        query = f"SELECT {_COLUMNS} FROM deliveries WHERE namespace = ? AND webhook = ?"
        args: list[object] = [namespace, webhook]
        if state is not None:
            query += " AND state = ?"
            args.append(state)
        query += " ORDER BY sort_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        with self._reading() as db:
            return [_delivery(row) for row in db.execute(query, args).fetchall()]

    def requeue(self, delivery_ids: Iterable[str], now: float | None = None) -> int:
        """Make finished deliveries pending again with a fresh set of attempts (a replay); the
        receiver sees the same delivery id and body. Canceled ones (webhook deleted) stay."""
        now = time.time() if now is None else now
        ids = list(delivery_ids)
        with self._lock:
            cursor = self._db.executemany(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ? "
                "WHERE id = ? AND state IN ('delivered', 'failed')",
                [(now, i) for i in ids],
            )
            return cursor.rowcount

    def pending_count(self) -> int:
        with self._reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0])

    def webhooks_with_pending(self) -> list[tuple[str, str, str]]:
        """(uid, namespace, name) of every webhook that still has deliveries to make."""
        with self._reading() as db:
            cursor = db.execute(
                "SELECT DISTINCT webhook_uid, namespace, webhook FROM deliveries WHERE state = 'pending'"
            )
            return [(str(a), str(b), str(c)) for a, b, c in cursor.fetchall()]

    def prune(self, now: float | None = None) -> int:
        """Drop finished deliveries older than the history window."""
        cutoff = (time.time() if now is None else now) - self.history_seconds
        with self._lock:
            cursor = self._db.execute("DELETE FROM deliveries WHERE state != 'pending' AND sort_at < ?", (cutoff,))
            return cursor.rowcount


class GroupCommit:
    """Attempt outcomes from any thread, committed by a thread of its own in as few transactions as
    the load allows (group commit): whatever arrives while one transaction commits goes into the
    next, up to `max_batch`, so nothing waits when it is quiet and N outcomes cost one commit, not N,
    under load.

    `submit` hands over an outcome and a callback; the callback runs (on the writer's thread) only
    after the outcome's transaction committed, with None, or with the error that kept it out. A
    batch that fails is written again one outcome per transaction, so an outcome that cannot be
    written (or a store that cannot write at all) fails only its own caller: no outcome is dropped
    silently, and every caller either knows its outcome is durable or knows it is not (the delivery
    is still pending in the store, and is attempted again). `close` commits what was submitted before
    it, then stops the thread.
    """

    def __init__(self, store: DeliveryStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[AttemptRecord, Callable[[BaseException | None], None]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dockyard-outcomes", daemon=True)
        self._thread.start()

    def submit(self, record: AttemptRecord, done: Callable[[BaseException | None], None]) -> None:
        """Queue `record`; `done` is called once it is committed (None) or could not be (the error)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the outcome writer is closed")
            self._queue.put((record, done))

    def close(self) -> None:
        """Commit everything submitted so far, then stop; later `submit` calls raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[AttemptRecord, Callable[[BaseException | None], None]]]) -> None:
        results: list[BaseException | None]
        try:
            self.store.record_attempts([record for record, _ in batch])
            results = [None] * len(batch)
        except Exception as error:
            if len(batch) == 1:
                results = [error]
            else:
                # Rolled back as a whole: one outcome per transaction, so only what cannot be written fails.
                logger.warning("%d attempt outcomes not committed together (%r); one by one", len(batch), error)
                results = []
                for record, _ in batch:
                    try:
                        self.store.record_attempts([record])
                        results.append(None)
                    except Exception as single:
                        results.append(single)
        for (_, done), result in zip(batch, results, strict=True):
            try:
                done(result)
            except Exception:
                logger.exception("attempt outcome callback failed")
