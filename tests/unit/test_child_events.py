"""The children's events without a cluster: which events reach a Registry, how a burst of them is
merged per registry, when the drift loop takes an object, and which status a child's event sees."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.core.children import CHILD_KINDS, ChildWatch, _lines
from dockyard.core.drift import DriftRepair
from dockyard.core.workqueue import KeyedQueue
from dockyard.handlers.registry import ChildChange, WrittenStatus, child_change


def child(kind: str, labels: dict[str, str] | None = None, owner: str = "Registry") -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {
            "name": "hub",
            "namespace": "team",
            "labels": labels or {"app.kubernetes.io/managed-by": "dockyard", "app.kubernetes.io/name": "registry"},
            "ownerReferences": [{"kind": owner, "name": "hub", "uid": "u1"}],
        },
    }


def test_a_registry_deployment_moving_folds_and_a_deleted_one_reconciles() -> None:
    assert child_change("Deployment", "MODIFIED", child("Deployment")) == (("team", "hub"), ChildChange("u1", False))
    assert child_change("Deployment", "DELETED", child("Deployment")) == (("team", "hub"), ChildChange("u1", True))


def test_only_deleted_secrets_configmaps_and_services_reach_the_registry() -> None:
    assert child_change("Secret", "DELETED", child("Secret")) == (("team", "hub"), ChildChange("u1", True))
    assert child_change("Service", "DELETED", child("Service")) == (("team", "hub"), ChildChange("u1", True))
    assert child_change("Secret", "MODIFIED", child("Secret")) is None
    assert child_change("PersistentVolumeClaim", "DELETED", child("PersistentVolumeClaim")) is None
    assert child_change("Secret", "DELETED", child("Secret", owner="Webhook")) is None
    node_trust = {"app.kubernetes.io/managed-by": "dockyard", "app.kubernetes.io/name": "node-trust"}
    assert child_change("Deployment", "MODIFIED", child("Deployment", labels=node_trust)) is None


def test_a_burst_about_one_registry_is_handled_once_and_never_twice_at_once() -> None:
    handled: list[tuple[str, ChildChange]] = []
    running: set[str] = set()
    overlap: list[str] = []
    gate = threading.Event()

    def handle(key: str, change: ChildChange) -> None:
        if key in running:
            overlap.append(key)
        running.add(key)
        gate.wait(5)
        handled.append((key, change))
        running.discard(key)

    async def scenario() -> None:
        queue: KeyedQueue[str, ChildChange] = KeyedQueue(handle, ChildChange.merge, concurrency=4)
        queue.start()
        queue.add("hub", ChildChange("u1", False))
        await asyncio.sleep(0.05)  # the first is being handled; these three wait and are merged
        queue.add("hub", ChildChange("u1", False))
        queue.add("hub", ChildChange("u1", True))
        queue.add("hub", ChildChange("u1", False))
        gate.set()
        for _ in range(100):
            if len(handled) == 2:
                break
            await asyncio.sleep(0.02)
        await queue.stop()

    asyncio.run(scenario())
    assert handled == [("hub", ChildChange("u1", False)), ("hub", ChildChange("u1", True))]
    assert overlap == []


def test_the_drift_loop_leaves_new_and_deleted_objects_for_later() -> None:
    repair = DriftRepair("Registry", list, lambda body: None, interval=60)
    now = datetime.now(UTC)

    def body(age: float, deleting: bool = False) -> dict[str, Any]:
        created = (now - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta: dict[str, Any] = {"creationTimestamp": created}
        if deleting:
            meta["deletionTimestamp"] = created
        return {"metadata": meta}

    assert repair._due(body(120), now)
    assert not repair._due(body(5), now)
    assert not repair._due(body(120, deleting=True), now)


def test_the_drift_loop_reconciles_every_object_each_interval() -> None:
    seen: list[str] = []
    old = "2020-01-01T00:00:00Z"
    objects = [{"metadata": {"name": n, "creationTimestamp": old}} for n in ("a", "b", "c")]

    async def scenario() -> None:
        repair = DriftRepair("Registry", lambda: objects, lambda b: seen.append(b["metadata"]["name"]), interval=0.2)
        repair.start()
        await asyncio.sleep(1.5)
        await repair.stop()

    asyncio.run(scenario())
    assert seen[:3] == ["a", "b", "c"] and len(seen) >= 3


def test_a_drift_pass_reconciles_each_object_as_it_is_when_its_turn_comes() -> None:
    old = "2020-01-01T00:00:00Z"
    listed = {n: {"metadata": {"namespace": "team", "name": n, "creationTimestamp": old}} for n in ("a", "b", "c")}
    now = dict(listed)
    seen: list[dict[str, Any]] = []

    def reconcile(body: dict[str, Any]) -> None:
        seen.append(body)
        if len(seen) == 1:  # while the pass goes on: b's spec changes, c is deleted
            now["b"] = {**listed["b"], "spec": {"sku": "Premium"}}
            del now["c"]

    async def scenario() -> None:
        repair = DriftRepair(
            "Registry",
            lambda: list(listed.values()),
            reconcile,
            interval=0.3,
            current=lambda key: now.get(key[1]),
        )
        repair.start()
        for _ in range(300):  # the first pass starts 0.3-0.6 s after the start
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.25)  # c's turn (0.1 s after b's) passes
        await repair.stop()

    asyncio.run(scenario())
    names = [b["metadata"]["name"] for b in seen]
    assert names[:2] == ["a", "b"] and "c" not in names, "c, deleted meanwhile, is skipped"
    assert seen[1]["spec"] == {"sku": "Premium"}, "b as it is now, not as it was listed"


def test_a_child_event_sees_the_status_this_process_wrote_when_the_cache_lags() -> None:
    written = WrittenStatus()
    parent = {"metadata": {"uid": "u1", "generation": 2}, "status": {"observedGeneration": 1, "phase": "Ready"}}
    assert written.freshest(("team", "hub"), parent) == parent
    written.remember(("team", "hub"), "u1", {"observedGeneration": 2, "phase": "Provisioning"})
    assert written.freshest(("team", "hub"), parent)["status"] == {"observedGeneration": 2, "phase": "Provisioning"}
    # The same generation, but the copy still shows our first write (Progressing) after the second
    # (Ready): read as not Ready, the registry would post its Ready Event twice.
    written.remember(("team", "hub"), "u1", {"observedGeneration": 2, "phase": "Ready", "replicas": 1})
    lagging = {"metadata": {"uid": "u1", "generation": 2}, "status": {"observedGeneration": 2, "phase": "Provisioning"}}
    assert written.freshest(("team", "hub"), lagging)["status"] == {
        "observedGeneration": 2,
        "phase": "Ready",
        "replicas": 1,
    }
    assert lagging["status"]["phase"] == "Provisioning", "the cached copy is not modified"
    other = {"metadata": {"uid": "u2", "generation": 2}, "status": {}}
    assert written.freshest(("team", "hub"), other) == other, "a new Registry of the same name"


def test_watch_lines_are_split_across_chunks() -> None:
    class Chunked:
        def stream(self, amt: Any = None, decode_content: bool = True) -> Any:
            yield from (b'{"a":', b'1}\n{"b"', b":2}\n\n", b'{"c":3}')

    assert list(_lines(Chunked())) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_each_child_kind_has_an_index_the_cache_reads() -> None:
    from dockyard.core.cache import CHILD_INDEX

    watch = ChildWatch(api=None, label_selector="x")  # type: ignore[arg-type]
    assert set(watch.indices) == set(CHILD_INDEX.values())
    assert {(k.api_version, k.kind) for k in CHILD_KINDS} == set(CHILD_INDEX)
    assert CHILD_KINDS[4].path("team") == "/apis/apps/v1/namespaces/team/deployments"
    assert CHILD_KINDS[0].path(None) == "/api/v1/secrets"
