"""The delivery loop: pending deliveries out of the store, one signed POST each, outcome back in.

Stages: `due` (store) → `_attempt` (resolve the target, sign, POST) → `retry.verdict` → store. A
401 or 403 makes the dispatcher re-read the webhook's Secrets once and, if they changed, try again
at once with the new ones (rotated credentials). Only the first 64 KiB of a response is read, and
`timeoutSeconds` bounds the whole attempt. At most
`concurrency` attempts run at once, and at most `per_webhook` for one webhook, so a slow or dead
receiver with a long backlog cannot take every slot from the others. Deliveries of one webhook are
concurrent: receivers get no ordering guarantee (ACR gives none either) and order by `timestamp`. An attempt interrupted by shutdown is not recorded and is made again by
the next process (at least once). One long-lived httpx client; redirects are not followed.

Errors: the receiver's failures are outcomes, never exceptions. A delivery whose webhook cannot be
looked up (API server down) or whose Secrets are missing waits without using an attempt. When the
store cannot record an outcome (disk full), the delivery is held back STORE_RETRY_SECONDS and then
sent again; errors in the loop itself are logged and the service restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from dockyard.webhooks import retry, signing
from dockyard.webhooks.directory import WebhookDirectory, WebhookEntry
from dockyard.webhooks.metrics import WebhookMetrics
from dockyard.webhooks.store import Delivery, DeliveryStore, State

logger = logging.getLogger(__name__)

DISABLED_RECHECK_SECONDS = 30.0
LOOKUP_RETRY_SECONDS = 10.0
STORE_RETRY_SECONDS = 30.0
IDLE_WAIT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 64 * 1024
REFRESH_STATUSES = frozenset({401, 403})


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
        self.client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._inflight_by_webhook: dict[str, int] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now; call from the event loop's thread."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            free = self.concurrency - len(self._inflight)
            if free > 0:
                due = await asyncio.to_thread(
                    self.store.due, time.time(), free, tuple(self._inflight), self.per_webhook
                )
                for delivery in due:
                    uid = delivery.webhook_uid
                    if (
                        len(self._inflight) >= self.concurrency
                        or self._inflight_by_webhook.get(uid, 0) >= self.per_webhook
                    ):
                        continue
                    task = asyncio.create_task(self._attempt(delivery), name=f"delivery {delivery.id}")
                    self._inflight[delivery.id] = task
                    self._inflight_by_webhook[uid] = self._inflight_by_webhook.get(uid, 0) + 1
                    task.add_done_callback(functools.partial(self._done, delivery.id, uid))
            timeout = await self._idle_timeout()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _done(self, key: str, uid: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        left = self._inflight_by_webhook.get(uid, 1) - 1
        if left > 0:
            self._inflight_by_webhook[uid] = left
        else:
            self._inflight_by_webhook.pop(uid, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("delivery %s: %r", key, task.exception())
        self._wake.set()

    async def _idle_timeout(self) -> float:
        next_at = await asyncio.to_thread(self.store.next_due_at)
        if next_at is None:
            return IDLE_WAIT_SECONDS
        delta = next_at - time.time()
        # Due but not started: all slots busy or all due ones in flight; a finishing attempt wakes us.
        return 1.0 if delta <= 0 else min(delta, IDLE_WAIT_SECONDS)

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()

    async def _entry(self, delivery: Delivery) -> WebhookEntry | None:
        entry = self.directory.get(delivery.webhook_uid)
        if entry is None and not self.directory.is_loaded(delivery.namespace):
            await self.load_namespace(delivery.namespace)
            entry = self.directory.get(delivery.webhook_uid)
        return entry

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            entry = await self._entry(delivery)
        except Exception as error:  # the API server is unreachable: try again later, no attempt counted
            logger.warning("delivery %s waits: its webhook cannot be looked up (%s)", delivery.id, type(error).__name__)
            await asyncio.to_thread(self.store.postpone, delivery.id, time.time() + LOOKUP_RETRY_SECONDS)
            return
        if entry is None:
            # Loaded and still unknown: the Webhook was deleted while nobody watched.
            canceled = await asyncio.to_thread(self.store.cancel_webhook, delivery.webhook_uid)
            self.metrics.deliveries.labels(outcome="canceled").inc(canceled)
            return
        if not entry.filter.enabled and not delivery.ping:
            await asyncio.to_thread(self.store.postpone_webhook, entry.uid, time.time() + DISABLED_RECHECK_SECONDS)
            return
        if entry.target is None and not delivery.ping:
            # A referenced Secret is missing or unusable (status says which): wait for it, no attempt counted.
            await asyncio.to_thread(self.store.postpone, delivery.id, time.time() + LOOKUP_RETRY_SECONDS)
            return
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
            await asyncio.to_thread(
                self.store.record_attempt,
                delivery.id,
                state=state,
                attempted_at=finished,
                http_status=outcome.status,
                latency_ms=None if outcome.result == "unresolved" else int(outcome.elapsed * 1000),
                error=outcome.error,
                next_attempt_at=next_at,
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
            return
        if state != "pending":
            self.metrics.deliveries.labels(outcome=state).inc()
        if state == "delivered":
            self.metrics.delivery_latency.observe(max(0.0, finished - delivery.accepted_at))
        self.on_change(delivery.webhook_uid)

    async def _send(self, entry: WebhookEntry, delivery: Delivery, attempt: int) -> AttemptOutcome:
        if not entry.filter.enabled:
            return AttemptOutcome("unresolved", error="the webhook is disabled")
        if entry.target is None:
            return AttemptOutcome(
                "unresolved", error=entry.problem.message if entry.problem else "the webhook's target is not resolved"
            )
        target = entry.target
        headers = dict(target.headers)
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
        try:
            async with asyncio.timeout(entry.timeout_seconds):
                async with self.client.stream(
                    "POST", target.url, content=delivery.body, headers=headers, timeout=entry.timeout_seconds
                ) as response:
                    read = 0
                    # (a response built in memory, e.g. by a test transport, arrives already read)
                    if not response.is_stream_consumed:
                        async for chunk in response.aiter_raw():
                            read += len(chunk)
                            if read >= MAX_RESPONSE_BYTES:
                                break
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


@dataclass(frozen=True)
class AttemptOutcome:
    result: str
    """success, http_error, timeout, connection_error or unresolved (nothing was sent)."""
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    elapsed: float = 0.0
