"""The webhook pipeline inside the operator process: store, directory, the event subscriber
(`fanout`), dispatcher, and the loop that writes changed delivery counts back to each Webhook's
status.

Started by the operator's startup handler on kopf's event loop, stopped by cleanup; the dispatcher
runs on an event loop and thread of its own (see `dispatch.py`). Handler threads and the event
intake's thread talk to the rest only through thread-safe parts (store, directory, publisher) and
`changed`/`wake`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry

from dockyard.core.kube import Kube
from dockyard.webhooks.directory import WebhookDirectory, WebhookEntry
from dockyard.webhooks.dispatch import Dispatcher
from dockyard.webhooks.fanout import WebhookFanOut
from dockyard.webhooks.metrics import register_webhook_metrics
from dockyard.webhooks.publish import StatusPublisher
from dockyard.webhooks.resolve import WebhookResolver
from dockyard.webhooks.store import DeliveryStore

logger = logging.getLogger(__name__)

MEMO_KEY: Final = "webhooks"
STORE_FILE: Final = "deliveries.sqlite"
STATUS_FLUSH_SECONDS: Final = 2.0
PRUNE_SECONDS: Final = 600.0
LOAD_RETRY_SECONDS: Final = 10.0


class WebhookService:
    def __init__(
        self,
        kube: Kube,
        state_dir: Path,
        registry: CollectorRegistry,
        *,
        history_days: float,
        user_agent: str,
        concurrency: int,
    ) -> None:
        self.kube = kube
        self.store = DeliveryStore(state_dir / STORE_FILE, history_days=history_days)
        self.directory = WebhookDirectory()
        self.metrics = register_webhook_metrics(registry, self.store.pending_count)
        self.dispatcher = Dispatcher(
            self.store,
            self.directory,
            self.load_namespace,
            self.metrics,
            self.changed,
            user_agent=user_agent,
            concurrency=concurrency,
            refresh=self.refresh,
        )
        self.fanout = WebhookFanOut(self.store, self.directory, self.load_namespace, self._enqueued)
        """The event subscriber the intake hands registry events to."""
        self.publisher = StatusPublisher(kube, self.store, self.directory)
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._load_lock = threading.Lock()
        self._load_failed_at: dict[str, float] = {}
        self._flush_lock = threading.Lock()
        self._status_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-status")
        self.registries_seen: dict[tuple[str, str], tuple[str, str]] = {}
        """(namespace, name) → (uid, webhook limit) of each Registry the operator watches: tells a
        tier change from other updates."""

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._supervise("dispatcher", self.dispatcher.run)),
            asyncio.create_task(self._supervise("status writer", self._flush_status)),
            asyncio.create_task(self._supervise("history pruning", self._prune)),
        ]

    async def stop(self) -> None:
        """After the intake has stopped: nothing new arrives."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.dispatcher.close()
        # Waits for a flush still running in its thread (a cancelled task does not stop it).
        await asyncio.to_thread(self._flush_once)
        self._status_executor.shutdown(wait=True)
        self.store.close()

    async def _supervise(self, name: str, loop: object) -> None:
        while True:
            try:
                await loop()  # type: ignore[operator]
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook %s failed; restarting it in 5s", name)
                await asyncio.sleep(5)

    async def load_namespace(self, namespace: str) -> None:
        """List a namespace's Webhooks once; after a failure, callers get `LookupError` without a
        new request for LOAD_RETRY_SECONDS (the API server is not hammered while it is down).
        Callable from both event loops."""
        if not self.directory.is_loaded(namespace):
            await asyncio.to_thread(self._load_namespace, namespace)

    def _load_namespace(self, namespace: str) -> None:
        with self._load_lock:
            if self.directory.is_loaded(namespace):
                return
            if time.monotonic() - self._load_failed_at.get(namespace, -LOAD_RETRY_SECONDS) < LOAD_RETRY_SECONDS:
                raise LookupError(f"the Webhooks of namespace {namespace} cannot be listed now")
            try:
                entries = WebhookResolver(self.kube).load(namespace)
            except Exception:
                self._load_failed_at[namespace] = time.monotonic()
                raise
            self._load_failed_at.pop(namespace, None)
            self.directory.load(namespace, entries)

    async def refresh(self, entry: WebhookEntry) -> WebhookEntry | None:
        """Re-read the Secrets of a webhook; the new entry if its target changed, else None."""
        if entry.spec is None:
            return None
        try:
            target = await asyncio.to_thread(WebhookResolver(self.kube).target, entry.namespace, entry.name, entry.spec)
        except Exception:
            return None
        if target == entry.target:
            return None
        return self.directory.replace_target(entry.uid, entry.generation, target)

    def _enqueued(self, uids: list[str]) -> None:
        self.wake()
        with self._dirty_lock:
            self._dirty.update(uids)

    def changed(self, uid: str) -> None:
        """A delivery of this webhook moved: its status is rewritten within STATUS_FLUSH_SECONDS."""
        with self._dirty_lock:
            self._dirty.add(uid)

    def wake(self) -> None:
        """Thread-safe: make the dispatcher look for due deliveries now."""
        self.dispatcher.wake()

    async def _flush_status(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(STATUS_FLUSH_SECONDS)
            if self._dirty:
                await loop.run_in_executor(self._status_executor, self._flush_once)

    def _flush_once(self) -> None:
        with self._flush_lock:
            with self._dirty_lock:
                dirty, self._dirty = self._dirty, set()
            for uid in dirty:
                entry = self.directory.get(uid)
                if entry is None:
                    continue
                try:
                    exists = self.publisher.publish(entry.namespace, entry.name, uid=uid)
                except Exception as error:
                    logger.warning(
                        "status of webhook %s/%s not written: %s", entry.namespace, entry.name, type(error).__name__
                    )
                    self.changed(uid)
                    continue
                if not exists:
                    self.forget(uid)

    def forget(self, uid: str) -> int:
        """The Webhook is gone: drop its entry, cancel its pending deliveries."""
        self.directory.remove(uid)
        canceled = self.store.cancel_webhook(uid)
        self.metrics.deliveries.labels(outcome="canceled").inc(canceled)
        return canceled

    async def _prune(self) -> None:
        while True:
            await asyncio.to_thread(self.store.prune)
            await asyncio.sleep(PRUNE_SECONDS)


def webhooks_from(memo: Mapping[str, object]) -> WebhookService:
    service = memo.get(MEMO_KEY)
    if not isinstance(service, WebhookService):
        raise LookupError("the webhook service is not in memo: the startup handler has not run")
    return service
