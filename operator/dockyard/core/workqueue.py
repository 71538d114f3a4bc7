"""Work by key, as controller-runtime's work queue does it: at most one pending item per key (a
newer item is merged into the pending one), never two items of the same key at once, at most
`concurrency` items at a time, each handled in a worker thread (handlers are synchronous).

A burst of events about one object (a rollout moves a Deployment's status several times a second)
costs one handling, not one per event, and a burst about many objects cannot flood the API server
with more than `concurrency` handlers' requests. Items may be added from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

logger = logging.getLogger("dockyard.workqueue")


class KeyedQueue(Generic[K, V]):
    def __init__(self, handle: Callable[[K, V], None], merge: Callable[[V, V], V], concurrency: int = 4) -> None:
        self.handle = handle
        self.merge = merge
        self.concurrency = concurrency
        self._pending: dict[K, V] = {}
        self._busy: set[K] = set()
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._workers = [asyncio.create_task(self._work(), name=f"work queue {i}") for i in range(self.concurrency)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []

    def add_threadsafe(self, key: K, item: V) -> None:
        """`add` from any thread (dropped before `start` and after the loop closed)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.add, key, item)

    def add(self, key: K, item: V) -> None:
        if key in self._pending:
            self._pending[key] = self.merge(self._pending[key], item)
            return
        self._pending[key] = item
        if key not in self._busy:
            self._ready.put_nowait(key)

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            item = self._pending.pop(key)
            self._busy.add(key)
            try:
                await asyncio.to_thread(self.handle, key, item)
            except Exception:
                logger.exception(f"handling {key!r} failed")
            finally:
                self._busy.discard(key)
                if key in self._pending:
                    self._ready.put_nowait(key)
