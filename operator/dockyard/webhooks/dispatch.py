"""The delivery loop: pending deliveries out of the store, one signed POST each, outcome back in.

Stages: `due` (store, in batches) → a buffer in memory → `_attempt` (resolve the target, sign, POST)
→ `retry.verdict` → `GroupCommit` (store). A 401 or 403 makes the dispatcher re-read the webhook's
Secrets once and, if they changed, try again at once with the new ones (rotated credentials). Only
the first 64 KiB of a response is read, and `timeoutSeconds` bounds the whole attempt.

Where it runs: `run` is started by the service on kopf's event loop and serves (`serve`) on an event
loop and thread of its own, so attempts and their bookkeeping neither wait for kopf's loop nor hold it
up; `wake` is thread-safe. No store call runs on that loop either: due deliveries are read on a store
thread of the dispatcher's, outcomes are written by `GroupCommit`, which commits those that arrive
together in one transaction.

Scheduling: at most `concurrency` attempts run at once, and at most `per_webhook` for one webhook,
so a slow or dead receiver with a long backlog cannot take every slot from the others. Due
deliveries are read oldest first, up to READY_DEPTH_FACTOR times `per_webhook` per webhook (those in
flight or already read left out), into a buffer a finishing attempt's slot is refilled from at once;
the store is read again when the dispatcher is woken (new deliveries), when the next retry is due
(IDLE_WAIT_SECONDS at the latest), and when a webhook's buffer runs low while the store may hold more
of its due ones. A buffered delivery is checked against the directory when it starts: a deleted or
disabled webhook's deliveries send nothing. Deliveries of one webhook are concurrent: receivers get
no ordering guarantee (ACR gives none either) and order by `timestamp`.

Connections: one connection pool per receiver (scheme, host, port; `transport.ReceiverTransport`,
httpcore's pool on asyncio sockets), keep-alive, up to `concurrency` connections; a pool unused for
POOL_IDLE_SECONDS is closed. Requests go to the pool itself, not through an httpx client: no
cookies are kept and redirects are not followed.

Durability: an attempt counts (metrics, status, its slot freed) only once its outcome is committed.
An attempt interrupted by shutdown, or whose outcome was not committed yet when the process died, is
not recorded and is made again by the next process (at least once).

Errors: the receiver's failures are outcomes, never exceptions. A delivery whose webhook cannot be
looked up (API server down) or whose Secrets are missing waits without using an attempt. When the
store cannot record an outcome (disk full), the delivery is held back STORE_RETRY_SECONDS and then
sent again; when it cannot be read, it is read again FETCH_RETRY_SECONDS later; other errors in the
loop itself are logged and the service restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import httpx

from dockyard.webhooks import retry, signing
from dockyard.webhooks.directory import WebhookDirectory, WebhookEntry
from dockyard.webhooks.metrics import WebhookMetrics
from dockyard.webhooks.store import AttemptRecord, Delivery, DeliveryStore, GroupCommit, State
from dockyard.webhooks.transport import ReceiverTransport

logger = logging.getLogger(__name__)

DISABLED_RECHECK_SECONDS = 30.0
LOOKUP_RETRY_SECONDS = 10.0
STORE_RETRY_SECONDS = 30.0
FETCH_RETRY_SECONDS = 5.0
IDLE_WAIT_SECONDS = 5.0
READY_DEPTH_FACTOR = 4
KEEPALIVE_SECONDS = 5.0
POOL_IDLE_SECONDS = 60.0
MAX_RESPONSE_BYTES = 64 * 1024
REFRESH_STATUSES = frozenset({401, 403})

P = ParamSpec("P")
T = TypeVar("T")
Origin = tuple[str, str, int | None]


@dataclass
class _Pool:
    """The connections to one receiver (scheme, host, port)."""

    transport: httpx.AsyncBaseTransport
    in_use: int = 0
    used_at: float = field(default_factory=time.monotonic)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Dispatcher:
    def __init__(
        self,
        store: DeliveryStore,
        directory: WebhookDirectory,
        load_namespace: Callable[[str], Awaitable[None]],
        metrics: WebhookMetrics,
        on_change: Callable[[str], None],
        *,
        user_agent: str,
        concurrency: int = 32,
        per_webhook: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        refresh: Callable[[WebhookEntry], Awaitable[WebhookEntry | None]] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.load_namespace = load_namespace
        self.metrics = metrics
        self.on_change = on_change
        self.user_agent = user_agent
        self.concurrency = concurrency
        self.per_webhook = per_webhook
        self.refresh = refresh
        """Re-read a webhook's Secrets; returns the new entry if its target changed, else None."""
        self._transport = transport
        """One transport for every receiver instead of a pool each (tests)."""
        self._ssl_context: ssl.SSLContext | None = None
        self._pools: dict[Origin, _Pool] = {}
        self._outcomes = GroupCommit(store)
        self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-dispatch-store")
        self._inflight: dict[str, asyncio.Task[bool]] = {}
        self._inflight_by_webhook: dict[str, int] = {}
        self._ready: dict[str, deque[Delivery]] = {}
        """Due deliveries read from the store and not started yet, oldest first, by webhook."""
        self._ready_ids: set[str] = set()
        self._more: set[str] = set()
        """Webhooks that may have due deliveries in the store beyond those in flight or buffered."""
        self._more_elsewhere = False
        """The last read hit its limit: any webhook may have due deliveries not read yet."""
        self._fetch_wanted = True
        self._next_at = 0.0
        """When the store is read again at the latest (the next retry due, or an idle check)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serving: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Look for due deliveries now (new ones were committed). Thread-safe."""
        loop = self._loop
        if loop is None or self._wake_pending:
            return
        self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._woken)
        except RuntimeError:  # its loop just closed
            self._wake_pending = False

    def _woken(self) -> None:
        self._wake_pending = False
        self._want_fetch()

    def _want_fetch(self) -> None:
        self._fetch_wanted = True
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Serve on an event loop and thread of its own until cancelled; raises what `serve` raised."""
        caller = asyncio.get_running_loop()
        ended: asyncio.Future[None] = caller.create_future()

        def main() -> None:
            error: BaseException | None = None
            try:
                asyncio.run(self.serve())
            except asyncio.CancelledError:
                pass
            except BaseException as failure:
                error = failure
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                caller.call_soon_threadsafe(_settle, ended, error)

        self._stopping = False
        self._thread = threading.Thread(target=main, name="dockyard-dispatch", daemon=True)
        self._thread.start()
        try:
            await ended
        finally:
            self._stop_serving()

    def _stop_serving(self) -> None:
        self._stopping = True
        loop, task = self._loop, self._serving
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)

    async def serve(self) -> None:
        """Start due deliveries, on the running event loop, until cancelled (`run` gives it a loop of
        its own). Attempts in flight when it is cancelled are cancelled, not recorded."""
        self._loop = asyncio.get_running_loop()
        self._serving = asyncio.current_task()
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._fetch_wanted = True
        swept = time.monotonic()
        try:
            while not self._stopping:
                self._wake.clear()
                now = time.time()
                if self._fetch_wanted or now >= self._next_at:
                    self._fetch_wanted = False
                    await self._fetch(now)
                self._start_ready()
                if time.monotonic() - swept >= POOL_IDLE_SECONDS / 2:
                    swept = time.monotonic()
                    await self._close_pools(idle_for=POOL_IDLE_SECONDS)
                if self._fetch_wanted:
                    continue
                timeout = min(max(0.0, self._next_at - time.time()), IDLE_WAIT_SECONDS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            tasks = list(self._inflight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._ready.clear()
            self._ready_ids.clear()
            self._more.clear()
            self._loop = self._serving = self._wake = None
            await self._close_pools()

    async def close(self) -> None:
        """Stop serving, then commit the outcomes still queued; the store stays open."""
        self._stop_serving()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        tasks = list(self._inflight.values())  # attempts started on the caller's loop (tests)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_pools()
        await asyncio.to_thread(self._outcomes.close)
        await asyncio.to_thread(self._store_thread.shutdown, True)

    async def _in_store(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._store_thread, functools.partial(fn, *args, **kwargs)
        )

    def _read_due(self, now: float, limit: int, exclude: tuple[str, ...], depth: int) -> tuple[list[Delivery], float]:
        due = self.store.due(now, limit, exclude, depth)
        later = self.store.next_due_at(after=now)
        return due, min(now + IDLE_WAIT_SECONDS, later if later is not None else now + IDLE_WAIT_SECONDS)

    async def _fetch(self, now: float) -> None:
        depth = self.per_webhook * READY_DEPTH_FACTOR
        limit = max(self.concurrency, depth) * READY_DEPTH_FACTOR
        try:
            due, self._next_at = await self._in_store(
                self._read_due, now, limit, (*self._ready_ids, *self._inflight), depth
            )
        except Exception as error:
            logger.error(
                "due deliveries cannot be read (%s); trying again in %ss", type(error).__name__, FETCH_RETRY_SECONDS
            )
            self._next_at = time.time() + FETCH_RETRY_SECONDS
            return
        for delivery in due:
            # (started or read meanwhile: the exclusions were taken when the read was asked for)
            if delivery.id not in self._ready_ids and delivery.id not in self._inflight:
                self._ready.setdefault(delivery.webhook_uid, deque()).append(delivery)
                self._ready_ids.add(delivery.id)
        self._more_elsewhere = len(due) >= limit
        self._more = {uid for uid in (*self._ready, *self._inflight_by_webhook) if self._known(uid) >= depth}

    def _known(self, uid: str) -> int:
        return self._inflight_by_webhook.get(uid, 0) + len(self._ready.get(uid, ()))

    def _start_ready(self) -> None:
        """Fill free slots from the buffer, oldest first among webhooks below `per_webhook`; ask for
        a read when a webhook that may have more runs low, or slots stay free while others may."""
        if self._loop is None:
            return
        free = self.concurrency - len(self._inflight)
        want = False
        if free > 0 and self._ready:
            heads = [
                (queue[0].next_attempt_at, uid)
                for uid, queue in self._ready.items()
                if self._inflight_by_webhook.get(uid, 0) < self.per_webhook
            ]
            heapq.heapify(heads)
            while heads and free > 0:
                _, uid = heapq.heappop(heads)
                queue = self._ready[uid]
                delivery = queue.popleft()
                self._ready_ids.discard(delivery.id)
                self._launch(delivery)
                free -= 1
                if not queue:
                    del self._ready[uid]
                elif self._inflight_by_webhook[uid] < self.per_webhook:
                    heapq.heappush(heads, (queue[0].next_attempt_at, uid))
                if len(queue) < self.per_webhook and (self._more_elsewhere or uid in self._more):
                    want = True
        if (free > 0 and self._more_elsewhere) or (want and not self._fetch_wanted):
            self._want_fetch()

    def _launch(self, delivery: Delivery) -> None:
        uid = delivery.webhook_uid
        task = asyncio.create_task(self._attempt(delivery), name=f"delivery {delivery.id}")
        self._inflight[delivery.id] = task
        self._inflight_by_webhook[uid] = self._inflight_by_webhook.get(uid, 0) + 1
        task.add_done_callback(functools.partial(self._done, delivery.id, uid))

    def _done(self, key: str, uid: str, task: asyncio.Task[bool]) -> None:
        self._inflight.pop(key, None)
        left = self._inflight_by_webhook.get(uid, 1) - 1
        if left > 0:
            self._inflight_by_webhook[uid] = left
        else:
            self._inflight_by_webhook.pop(uid, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("delivery %s: %r", key, task.exception())
        elif not task.cancelled() and task.result():
            self._want_fetch()
        self._start_ready()

    def _drop_ready(self, uid: str, *, pings: bool) -> None:
        """Forget the buffered deliveries of a webhook (canceled or postponed in the store)."""
        queue = self._ready.pop(uid, None)
        if queue is None:
            return
        kept = deque(d for d in queue if d.ping and not pings)
        self._ready_ids.difference_update(d.id for d in queue if not (d.ping and not pings))
        if kept:
            self._ready[uid] = kept

    def _retry_at(self, when: float) -> None:
        if when < self._next_at:
            self._next_at = when
            if self._wake is not None:
                self._wake.set()

    async def _close_pools(self, idle_for: float | None = None) -> None:
        now = time.monotonic()
        closing = [
            key
            for key, pool in self._pools.items()
            if idle_for is None or (pool.in_use == 0 and now - pool.used_at >= idle_for)
        ]
        for key in closing:
            pool = self._pools.pop(key)
            with contextlib.suppress(Exception):
                await pool.transport.aclose()

    def _pool(self, url: httpx.URL) -> _Pool:
        key = (url.scheme, url.host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            if self._transport is not None:
                transport = self._transport
            else:
                if self._ssl_context is None:
                    self._ssl_context = httpx.create_ssl_context(trust_env=False)
                transport = ReceiverTransport(self._ssl_context, self.concurrency, KEEPALIVE_SECONDS)
            pool = self._pools[key] = _Pool(transport)
        return pool

    async def _record(self, record: AttemptRecord) -> None:
        """Returns once the outcome is committed; raises what kept it out of the store."""
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, committed, error)

        self._outcomes.submit(record, done)
        await committed

    async def _entry(self, delivery: Delivery) -> WebhookEntry | None:
        entry = self.directory.get(delivery.webhook_uid)
        if entry is None and not self.directory.is_loaded(delivery.namespace):
            await self.load_namespace(delivery.namespace)
            entry = self.directory.get(delivery.webhook_uid)
        return entry

    async def _attempt(self, delivery: Delivery) -> bool:
        """One attempt, or none if the webhook is not ready; True if the delivery is to be read again
        at once (its outcome could not be recorded)."""
        try:
            entry = await self._entry(delivery)
        except Exception as error:  # the API server is unreachable: try again later, no attempt counted
            logger.warning("delivery %s waits: its webhook cannot be looked up (%s)", delivery.id, type(error).__name__)
            until = time.time() + LOOKUP_RETRY_SECONDS
            await self._in_store(self.store.postpone, delivery.id, until)
            self._retry_at(until)
            return False
        if entry is None:
            # Loaded and still unknown: the Webhook was deleted while nobody watched.
            self._drop_ready(delivery.webhook_uid, pings=True)
            canceled = await self._in_store(self.store.cancel_webhook, delivery.webhook_uid)
            self.metrics.deliveries.labels(outcome="canceled").inc(canceled)
            return False
        if not entry.filter.enabled and not delivery.ping:
            self._drop_ready(entry.uid, pings=False)
            until = time.time() + DISABLED_RECHECK_SECONDS
            await self._in_store(self.store.postpone_webhook, entry.uid, until)
            self._retry_at(until)
            return False
        if entry.target is None and not delivery.ping:
            # A referenced Secret is missing or unusable (status says which): wait for it, no attempt counted.
            until = time.time() + LOOKUP_RETRY_SECONDS
            await self._in_store(self.store.postpone, delivery.id, until)
            self._retry_at(until)
            return False
        attempt = delivery.attempts + 1
        outcome = await self._send(entry, delivery, attempt)
        if outcome.status in REFRESH_STATUSES and self.refresh is not None:
            # Refused credentials may be a rotated Secret the entry has not seen yet.
            refreshed = await self.refresh(entry)
            if refreshed is not None:
                outcome = await self._send(refreshed, delivery, attempt)
        self.metrics.attempts.labels(result=outcome.result).inc()
        if outcome.result != "unresolved":
            self.metrics.attempt_duration.observe(outcome.elapsed)
        verdict = retry.verdict(outcome.status, attempt, 1 if delivery.ping else delivery.max_attempts)
        state: State = "pending" if verdict == "retry" else verdict
        finished = time.time()
        next_at = finished + retry.next_delay(attempt, outcome.retry_after) if verdict == "retry" else None
        try:
            await self._record(
                AttemptRecord(
                    delivery.id,
                    state=state,
                    attempted_at=finished,
                    http_status=outcome.status,
                    latency_ms=None if outcome.result == "unresolved" else int(outcome.elapsed * 1000),
                    error=outcome.error,
                    next_attempt_at=next_at,
                )
            )
        except Exception as error:
            # The store cannot write (disk full?): the delivery stays pending and will be sent again,
            # but not before STORE_RETRY_SECONDS: it stays "in flight" while this task sleeps.
            logger.error(
                "delivery %s: outcome not recorded (%s); retrying in %ss",
                delivery.id,
                type(error).__name__,
                STORE_RETRY_SECONDS,
            )
            await asyncio.sleep(STORE_RETRY_SECONDS)
            return True
        if next_at is not None:
            self._retry_at(next_at)
        if state != "pending":
            self.metrics.deliveries.labels(outcome=state).inc()
        if state == "delivered":
            self.metrics.delivery_latency.observe(max(0.0, finished - delivery.accepted_at))
        self.on_change(delivery.webhook_uid)
        return False

    async def _send(self, entry: WebhookEntry, delivery: Delivery, attempt: int) -> AttemptOutcome:
        if not entry.filter.enabled:
            return AttemptOutcome("unresolved", error="the webhook is disabled")
        if entry.target is None:
            return AttemptOutcome(
                "unresolved", error=entry.problem.message if entry.problem else "the webhook's target is not resolved"
            )
        target = entry.target
        headers = {"Accept": "*/*", **dict(target.headers)}
        headers.update(
            {
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
                signing.DELIVERY_HEADER: delivery.id,
                signing.EVENT_HEADER: delivery.action,
                signing.ATTEMPT_HEADER: str(attempt),
                signing.SIGNATURE_HEADER: signing.sign(target.signing_key, delivery.body),
            }
        )
        started = time.perf_counter()
        pool: _Pool | None = None
        try:
            async with asyncio.timeout(entry.timeout_seconds):
                request = httpx.Request(
                    "POST",
                    target.url,
                    content=delivery.body,
                    headers=headers,
                    extensions={"timeout": httpx.Timeout(entry.timeout_seconds).as_dict()},
                )
                pool = self._pool(request.url)
                pool.in_use += 1
                response = await pool.transport.handle_async_request(request)
                try:
                    stream = response.stream
                    assert isinstance(stream, httpx.AsyncByteStream)
                    read = 0
                    async for chunk in stream:
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
            status = response.status_code
            error = "redirects are not followed" if 300 <= status < 400 else None
            return AttemptOutcome(
                "success" if 200 <= status < 300 else "http_error",
                status=status,
                error=error,
                retry_after=response.headers.get("Retry-After"),
                elapsed=time.perf_counter() - started,
            )
        except (httpx.TimeoutException, TimeoutError):
            return AttemptOutcome(
                "timeout", error=f"timed out after {entry.timeout_seconds:g}s", elapsed=time.perf_counter() - started
            )
        except (httpx.LocalProtocolError, httpx.InvalidURL, ValueError) as failure:
            # These messages quote the offending URL or header value: keep only the kind.
            return AttemptOutcome(
                "unresolved",
                error=f"the request cannot be built ({type(failure).__name__}): check the URL and header values",
            )
        except httpx.HTTPError as failure:
            return AttemptOutcome(
                "connection_error",
                error=target.redact(f"{type(failure).__name__}: {failure}"),
                elapsed=time.perf_counter() - started,
            )
        finally:
            if pool is not None:
                pool.in_use -= 1
                pool.used_at = time.monotonic()


@dataclass(frozen=True)
class AttemptOutcome:
    result: str
    """success, http_error, timeout, connection_error or unresolved (nothing was sent)."""
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    elapsed: float = 0.0
