"""Drift repair for every object of a kind from one task, instead of one kopf daemon per object.

Every `interval` seconds each object the cache holds is reconciled once, the pass spread evenly
over the interval (a thousand registries do not reconcile in the same second), at most
`concurrency` at a time, in worker threads (reconciles are synchronous). The first pass starts one
to two intervals after startup; an object younger than one interval is left for the next pass (as
with the per-object daemons, the first drift repair comes at least an interval after creation);
an object being deleted is skipped.
A failing reconcile is logged and retried at the next pass; it never stops the loop.

Why not kopf daemons: each daemon holds three tasks and a finalizer on its object for as long as
it exists. With 1,000 registries and 1,000 webhooks that is 6,000 tasks, and every creation
waits for the finalizer's PATCH (and its watch event) before the create handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

Body = Mapping[str, Any]


def _key(body: Body) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name"))


class DriftRepair:
    def __init__(
        self,
        kind: str,
        objects: Callable[[], Sequence[Body]],
        reconcile: Callable[[Body], None],
        interval: float,
        concurrency: int = 4,
        current: Callable[[tuple[str, str]], Body | None] | None = None,
    ) -> None:
        self.kind = kind
        self.objects = objects
        self.reconcile = reconcile
        self.current = current
        """Each object as it is now, by (namespace, name); None once it is gone. With it, a pass
        keeps only the objects' names, and each is reconciled as it is when its turn comes (not as
        it was when the pass began, up to an interval earlier: a spec changed meanwhile would be
        reverted for a moment)."""
        self.interval = interval
        self.concurrency = concurrency
        self.logger = logging.getLogger(f"dockyard.drift.{kind.lower()}")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"drift repair of every {self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self.interval * (1 + random.random()))
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            now = datetime.now(UTC)
            listed = [b for b in self.objects() if self._due(b, now)]
            keys = [_key(b) for b in listed]
            look = self.current or dict(zip(keys, listed, strict=True)).get
            del listed
            gap = self.interval / max(len(keys), 1)
            for index, key in enumerate(keys):
                await asyncio.sleep(max(0.0, began + index * gap - loop.time()))
                body = look(key)
                if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                    continue  # gone, or going, since the pass began
                await slots.acquire()
                task = asyncio.create_task(self._one(body, slots))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.sleep(max(0.0, began + self.interval - loop.time()))

    def _due(self, body: Body, now: datetime) -> bool:
        """Not being deleted, and older than one interval: a new object was just reconciled by
        its create handler (and a burst of creations is not reconciled twice while it lasts)."""
        meta = body.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return False
        try:
            created = datetime.fromisoformat(str(meta.get("creationTimestamp")))
        except ValueError:
            return True
        return (now - created).total_seconds() >= self.interval

    async def _one(self, body: Body, slots: asyncio.Semaphore) -> None:
        try:
            await asyncio.to_thread(self.reconcile, body)
        except Exception as error:  # logged; the next pass tries again
            meta = body.get("metadata") or {}
            self.logger.warning(f"[{meta.get('namespace')}/{meta.get('name')}] drift repair failed: {error!r}")
        finally:
            slots.release()
