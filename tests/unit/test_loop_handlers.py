"""Build and Replication event handlers that decide on the event loop (`handlers/build.py`,
`handlers/replication.py`): what they hand to a thread, and what they settle without one. kopf
runs a sync handler in its thread pool, behind every reconcile queued before it."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import kopf
import pytest

from dockyard.handlers import build as build_handlers
from dockyard.handlers import replication as replication_handlers


class Index(dict[tuple[str, str], list[Any]]):
    """kopf's Index: a key's values (a Store, iterable)."""


def run(name: str, status: str, run_id: str | None = None, **meta: Any) -> dict[str, Any]:
    body_status = {"status": status, **({"runId": run_id} if run_id else {})}
    metadata = {"namespace": "team", "name": name, "creationTimestamp": f"2026-12-01T00:00:{name[-1]}0Z", **meta}
    return {"metadata": metadata, "spec": {"taskRef": {"name": "web"}}, "status": body_status}


def task(status: dict[str, Any] | None = None, successful_limit: int = 10) -> dict[str, Any]:
    spec = {
        "registryRef": {"name": "hub"},
        "source": {"git": {"url": "https://git.example.com/app.git", "revision": "main"}},
        "dockerBuild": {"images": ["app:{{.Run.ID}}"]},
        "successfulRunsHistoryLimit": successful_limit,
    }
    return {"metadata": {"namespace": "team", "name": "web", "uid": "t1"}, "spec": spec, "status": status or {}}


@pytest.mark.parametrize(
    "handler",
    [build_handlers.build_child_changed, build_handlers.run_changed, replication_handlers.route_replication],
)
def test_the_event_handlers_are_coroutines(handler: Any) -> None:
    assert inspect.iscoroutinefunction(handler)


def test_a_job_or_pod_of_a_run_gone_or_going_takes_no_thread_a_live_run_advances_in_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    advanced: list[tuple[str, str]] = []
    loop_thread = threading.get_ident()

    def advance(body: Any, memo: Any, jobs: Any, pods: Any, tasks: Any) -> None:
        advanced.append((body["metadata"]["name"], "thread" if threading.get_ident() != loop_thread else "loop"))
        raise kopf.TemporaryError("the API server is away")  # reported on the run; the timer retries

    monkeypatch.setattr(build_handlers, "_advance", advance)
    runs = Index(
        {
            ("team", "live"): [run("live", "Running")],
            ("team", "going"): [run("going", "Running", deletionTimestamp="2026-12-01T00:01:00Z")],
        }
    )
    indices = {"build_runs": runs, "build_jobs": Index(), "build_pods": Index(), "build_tasks": Index()}
    for label in ("gone", "going", "live"):
        labels = {build_handlers.BUILD_RUN_LABEL: label}
        asyncio.run(build_handlers.build_child_changed(namespace="team", labels=labels, memo=kopf.Memo(), **indices))
    assert advanced == [("live", "thread")]  # and its TemporaryError did not escape the handler


def test_a_run_event_writes_the_task_history_and_prunes_only_when_they_change(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[tuple[Any, ...]] = []
    loop_thread = threading.get_ident()

    def write(kube: Any, namespace: str, name: str, patch: Any, pruned: list[str]) -> None:
        writes.append((name, patch, pruned, threading.get_ident() != loop_thread))

    monkeypatch.setattr(build_handlers, "_write_history", write)
    monkeypatch.setattr(build_handlers, "kube_from", lambda memo: None)
    finished = [run("r1", "Succeeded", "ca1"), run("r2", "Succeeded", "ca2"), run("r3", "Running", "ca3")]
    history = build_handlers.task_status(finished)

    def event(task_body: dict[str, Any]) -> None:
        indices = {
            "build_tasks": Index({("team", "web"): [task_body]}),
            "build_runs_by_task": Index({("team", "web"): finished}),
        }
        asyncio.run(build_handlers.run_changed(body=finished[-1], memo=kopf.Memo(), **indices))

    event(task(history))  # the task shows this history already, limits not reached: nothing to write
    assert writes == []
    event(task({}, successful_limit=1))  # history new, and one succeeded run too many
    assert writes == [("web", history, ["r1"], True)]


def test_a_run_of_no_task_or_of_an_unknown_task_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_handlers, "_write_history", lambda *args: pytest.fail("nothing to write"))
    untasked = {**run("r1", "Succeeded", "ca1"), "spec": {}}
    indices = {"build_tasks": Index(), "build_runs_by_task": Index()}
    asyncio.run(build_handlers.run_changed(body=untasked, memo=kopf.Memo(), **indices))
    asyncio.run(build_handlers.run_changed(body=run("r1", "Succeeded", "ca1"), memo=kopf.Memo(), **indices))


def test_a_replication_event_queues_its_registry_from_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr(
        replication_handlers, "endpoints_changed", lambda memo, ns, registry: queued.append((ns, registry))
    )
    body = {"metadata": {"namespace": "team", "name": "west"}, "spec": {"registryRef": {"name": "hub"}}}
    asyncio.run(replication_handlers.route_replication(body=body, memo=kopf.Memo()))
    asyncio.run(replication_handlers.route_replication(body={"metadata": {"namespace": "team"}}, memo=kopf.Memo()))
    assert queued == [("team", "hub")]
