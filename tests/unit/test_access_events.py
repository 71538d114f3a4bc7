"""Tokens and ScopeMaps beyond their own reconcile: the drift loop finds every one of them in the
watch-fed cache, and a Token created or deleted queues its Registry's status refresh
(`usage.tokens`) at once, while other events (updates, the initial listing) queue nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from test_cache_and_ensure import Index, MemoryKube, indices

from dockyard.core.cache import ClusterCache
from dockyard.core.kube import MEMO_KEY as KUBE_KEY
from dockyard.core.workqueue import KeyedQueue
from dockyard.handlers.access import token_event
from dockyard.handlers.registry import CHILD_CHANGES_KEY, ChildChange, RegistryKey, referrers_changed


class RecordingQueue(KeyedQueue[RegistryKey, ChildChange]):
    def __init__(self) -> None:
        super().__init__(lambda key, change: None, ChildChange.merge)
        self.added: list[tuple[RegistryKey, ChildChange]] = []

    def add_threadsafe(self, key: RegistryKey, item: ChildChange) -> None:
        self.added.append((key, item))


def body(kind: str, name: str, registry: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}"},
        "spec": {"registryRef": {"name": registry}},
    }


def bound_indices() -> dict[str, Index]:
    bound = {
        **indices(),
        "dockyard_tokens_by_registry": Index(),
        "dockyard_scope_maps_by_registry": Index(),
    }
    bound["dockyard_registries"].put(("team", "hub"), {"metadata": {"name": "hub", "namespace": "team", "uid": "r1"}})
    return bound


def memo_with(queue: KeyedQueue[RegistryKey, ChildChange] | None) -> tuple[kopf.Memo, dict[str, Index]]:
    bound = bound_indices()
    cache = ClusterCache()
    cache.bind(bound)
    memo = kopf.Memo()
    memo[KUBE_KEY] = MemoryKube(cache)
    if queue is not None:
        memo[CHILD_CHANGES_KEY] = queue
    return memo, bound


def test_the_drift_loop_sees_every_token_and_scope_map_of_every_registry() -> None:
    memo, bound = memo_with(None)
    bound["dockyard_tokens_by_registry"].put(("team", "hub"), body("Token", "ci", "hub"))
    bound["dockyard_tokens_by_registry"].put(("team", "other"), body("Token", "bot", "other"))
    bound["dockyard_scope_maps_by_registry"].put(("team", "hub"), body("ScopeMap", "pull", "hub"))
    cache = memo[KUBE_KEY].cache
    assert sorted(t["metadata"]["name"] for t in cache.tokens()) == ["bot", "ci"]
    assert [m["metadata"]["name"] for m in cache.scope_maps()] == ["pull"]
    assert ClusterCache().tokens() == [] and ClusterCache().scope_maps() == [], "unbound: nothing to repair"


def test_a_token_created_or_deleted_queues_its_registry_and_nothing_else_does() -> None:
    queue = RecordingQueue()
    memo, _ = memo_with(queue)
    token = body("Token", "ci", "hub")

    async def events() -> None:
        for type in (None, "MODIFIED", "ADDED", "DELETED"):
            await token_event(body=token, type=type, memo=memo)  # type: ignore[arg-type]
        await token_event(body=body("Token", "lost", "missing"), type="ADDED", memo=memo)  # type: ignore[arg-type]

    asyncio.run(events())
    assert queue.added == [(("team", "hub"), ChildChange("r1", False))] * 2


def test_no_queue_or_no_registry_queues_nothing() -> None:
    memo, _ = memo_with(None)
    assert referrers_changed(memo, "team", "hub") is False
    queue = RecordingQueue()
    memo, _ = memo_with(queue)
    assert referrers_changed(memo, "team", "missing") is False
    assert referrers_changed(memo, "team", "hub") is True
    assert queue.added == [(("team", "hub"), ChildChange("r1", False))]
