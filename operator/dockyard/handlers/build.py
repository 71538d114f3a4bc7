"""BuildRun and BuildTask handlers.

A run is advanced (`builds/reconcile.py`) when it changes, when its Job or pod changes (watched by
the `dockyard.dev/build-run` label, server-side), and by a timer while it is unfinished (timeouts,
and a safety net for a missed event). Each is one idempotent step; the reconciler serialises the
steps of one run. The kopf indices below are the watch-fed views these handlers read: a run's Job
and newest pod, runs by name and by task, tasks by name.

Deleting a run deletes its kept log (the only external state, hence the finalizer); a task's runs
are owned by the task, so deleting the task deletes them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from dockyard.builds.access import registry_access
from dockyard.builds.definition import NotBuildable, check_buildable, has_source
from dockyard.builds.history import prune, task_status
from dockyard.builds.observe import TERMINAL, parse_time
from dockyard.builds.reconcile import KIND, Observed, reconciler_from
from dockyard.builds.runplan import task_file_refusal
from dockyard.core import conditions
from dockyard.core.cache import slim
from dockyard.core.conditions import ConditionType, Reason
from dockyard.core.errors import ReconcileError
from dockyard.core.kube import Kube, contains, kube_from
from dockyard.core.names import BUILD_RUN_LABEL, BUILD_TASK_LABEL, BuildRunNames, label_value
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.metrics import metrics_from
from dockyard.models import API_VERSION, GROUP, VERSION
from dockyard.models.builds import BuildRunSpec, BuildTaskSpec

TIMER_SECONDS: Final = 10.0
TASK_KIND: Final = "BuildTask"
RUN_WATCH: Final = {BUILD_RUN_LABEL: kopf.PRESENT}

Key = tuple[str, str]


# -- watch-fed views ----------------------------------------------------------------------------


def _summary(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": dict(meta.get("labels") or {}),  # a step Job's step and attempt
        },
        "status": dict(body.get("status") or {}),
    }


@kopf.index("batch", "v1", "jobs", labels=RUN_WATCH)
async def build_jobs(namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> dict[Key, Any]:
    return {(namespace or "", labels[BUILD_RUN_LABEL]): _summary(body)}


@kopf.index("v1", "pods", labels=RUN_WATCH)
async def build_pods(namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> dict[Key, Any]:
    return {(namespace or "", labels[BUILD_RUN_LABEL]): _summary(body)}


@kopf.index(GROUP, VERSION, "buildruns")
async def build_runs(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Any]:
    return {(namespace or "", BuildRunNames(name).label): slim(body)}


@kopf.index(GROUP, VERSION, "buildruns")
async def build_runs_by_task(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Key, Any] | None:
    task = ((body.get("spec") or {}).get("taskRef") or {}).get("name")
    return None if not task else {(namespace or "", task): slim(body)}


@kopf.index(GROUP, VERSION, "buildtasks")
async def build_tasks(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Any]:
    return {(namespace or "", name): slim(body)}


def _one(index: kopf.Index[Key, Any], key: Key) -> Any:
    with contextlib.suppress(KeyError, StopIteration):
        return next(iter(index[key]))
    return None


def _newest(index: kopf.Index[Key, Any], key: Key) -> Any:
    """The newest of several (a Job's replacement pod, should there ever be one)."""
    with contextlib.suppress(KeyError):
        items = list(index[key])
        return max(items, key=lambda item: item["metadata"].get("creationTimestamp") or "") if items else None
    return None


def _all(index: kopf.Index[Key, Any], key: Key) -> tuple[Any, ...]:
    """Every Job or pod of a run (the Job-per-step path has many)."""
    with contextlib.suppress(KeyError):
        return tuple(index[key])
    return ()


# -- runs ----------------------------------------------------------------------------------------


def _advance(body: Mapping[str, Any], memo: kopf.Memo, jobs: Any, pods: Any, tasks: Any) -> None:
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return
    namespace, label = meta["namespace"], BuildRunNames(meta["name"]).label
    task_name = ((body.get("spec") or {}).get("taskRef") or {}).get("name")
    task = _one(tasks, (namespace, task_name)) if task_name else None
    kube = kube_from(memo)
    if task is not None:
        _adopt(kube, body, task)

    def report(error: ReconcileError) -> None:
        status = dict(body.get("status") or {})
        patch = conditions.status_patch(
            status,
            type=ConditionType.SUCCEEDED,
            status="Unknown",
            reason=error.reason,
            message=error.message,
            observed_generation=int(meta.get("generation") or 1),
            now=datetime.now(UTC),
        )
        if not status.get("status"):
            patch["status"] = "Queued"
        if patch and not contains(status, patch):
            kube.patch_status(API_VERSION, KIND, namespace, meta["name"], patch)

    key = (namespace, label)
    observed = Observed(_one(jobs, key), _newest(pods, key), _all(jobs, key), _all(pods, key))
    with metrics_from(memo).observe_reconcile(KIND), reconcile_edge(report):
        parse_spec(BuildRunSpec, body)
        reconciler_from(memo).advance(body, observed, task)


def _adopt(kube: Kube, run: Mapping[str, Any], task: Mapping[str, Any]) -> None:
    """A task's runs are owned by it (deleted with it) and labelled with it (`-l` finds them)."""
    meta, task_meta = run["metadata"], task["metadata"]
    if any(ref.get("uid") == task_meta["uid"] for ref in meta.get("ownerReferences") or []):
        return
    reference = {"apiVersion": API_VERSION, "kind": TASK_KIND, "name": task_meta["name"], "uid": task_meta["uid"]}
    kube.patch(
        API_VERSION,
        KIND,
        meta["namespace"],
        meta["name"],
        {
            "metadata": {
                "ownerReferences": [*(meta.get("ownerReferences") or []), reference],
                "labels": {BUILD_TASK_LABEL: label_value(task_meta["name"])},
            }
        },
    )


@kopf.on.resume(GROUP, VERSION, "buildruns")
@kopf.on.create(GROUP, VERSION, "buildruns")
@kopf.on.update(GROUP, VERSION, "buildruns")
def advance_run(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    _advance(body, memo, kwargs["build_jobs"], kwargs["build_pods"], kwargs["build_tasks"])


def _unfinished(status: Mapping[str, Any], **_: Any) -> bool:
    return status.get("status") not in TERMINAL


@kopf.timer(GROUP, VERSION, "buildruns", interval=TIMER_SECONDS, idle=TIMER_SECONDS, when=_unfinished)
def watch_run_clock(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """Timeouts are a matter of the clock, not of an event; also catches anything missed."""
    build_jobs, build_pods, build_tasks = kwargs["build_jobs"], kwargs["build_pods"], kwargs["build_tasks"]
    started = parse_time((body.get("status") or {}).get("startTime"))
    if started is None or not (body.get("status") or {}).get("jobName"):
        _advance(body, memo, build_jobs, build_pods, build_tasks)
        return
    task_name = ((body.get("spec") or {}).get("taskRef") or {}).get("name")
    task = _one(build_tasks, (body["metadata"]["namespace"], task_name)) if task_name else None
    deadline = reconciler_from(memo).deadline(body, task)
    if deadline is not None and datetime.now(UTC) >= deadline:
        _advance(body, memo, build_jobs, build_pods, build_tasks)


@kopf.on.event("batch", "v1", "jobs", labels=RUN_WATCH)
@kopf.on.event("v1", "pods", labels=RUN_WATCH)
async def build_child_changed(namespace: str | None, labels: Mapping[str, str], memo: kopf.Memo, **kwargs: Any) -> None:
    """A run's Job or pod changed: the run advances. Decided on the event loop first: the Job and
    pod of a run that is gone or going (deleted, pruned) take no handler thread (a sync handler
    waits in kopf's thread queue behind every reconcile queued before it)."""
    run = _one(kwargs["build_runs"], (namespace or "", labels[BUILD_RUN_LABEL]))
    if run is None or run["metadata"].get("deletionTimestamp"):
        return
    await asyncio.to_thread(
        _advance_quietly, run, memo, kwargs["build_jobs"], kwargs["build_pods"], kwargs["build_tasks"]
    )


def _advance_quietly(run: Mapping[str, Any], memo: kopf.Memo, jobs: Any, pods: Any, tasks: Any) -> None:
    """An event handler is not retried: a failed step is reported on the run (by `_advance`) and
    taken again by the run's timer."""
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _advance(run, memo, jobs, pods, tasks)


@kopf.on.delete(GROUP, VERSION, "buildruns", retries=5)
def forget_run(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, retry: int, **_: Any) -> None:
    """The run's log goes with it. A registry that is gone took its logs along; one that is down
    gets five tries, then the log is left (and said so) rather than the run kept forever."""
    reconciler = reconciler_from(memo)
    reconciler.forget(body["metadata"]["uid"])
    reference = (body.get("status") or {}).get("logReference")
    if not reference:
        return
    definition = (body.get("spec") or {}).get("build") or {}
    registry = (definition.get("registryRef") or {}).get("name")
    namespace = body["metadata"]["namespace"]
    kube = kube_from(memo)
    if not registry:
        task = kube.get(
            API_VERSION, TASK_KIND, namespace, ((body.get("spec") or {}).get("taskRef") or {}).get("name", "")
        )
        registry = (((task or {}).get("spec") or {}).get("registryRef") or {}).get("name")
    if not registry:
        return
    try:
        access = registry_access(kube, namespace, registry)
    except ReconcileError:
        return  # the registry is gone, and its logs with it
    try:
        reconciler.logs.delete(access, reference)
    except Exception as error:
        if retry >= 4:
            logger.warning(f"the log {reference} could not be deleted and is left in the registry: {error}")
            return
        raise kopf.TemporaryError(f"deleting the log failed: {error}", delay=10) from error


# -- tasks ---------------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "buildtasks")
@kopf.on.create(GROUP, VERSION, "buildtasks")
@kopf.on.update(GROUP, VERSION, "buildtasks")
def reconcile_task(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    kube = kube_from(memo)
    meta = body["metadata"]
    generation = int(meta.get("generation") or 1)
    current = dict(body.get("status") or {})

    def write(status: str, reason: str, message: str, extra: Mapping[str, Any]) -> None:
        patch = dict(extra) | conditions.status_patch(
            current,
            type=ConditionType.READY,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            message=message,
            observed_generation=generation,
            now=datetime.now(UTC),
        )
        if patch and not contains(current, patch):
            kube.patch_status(API_VERSION, TASK_KIND, meta["namespace"], meta["name"], patch)

    def report(error: ReconcileError) -> None:
        write("False", error.reason, error.message, {})

    with metrics_from(memo).observe_reconcile(TASK_KIND), reconcile_edge(report):
        spec = parse_spec(BuildTaskSpec, body)
        runs = _runs_of(kwargs["build_runs_by_task"], meta["namespace"], meta["name"])
        history = task_status(runs)
        unsupported = unsupported_fields(spec)
        if unsupported:
            write("False", Reason.NOT_IMPLEMENTED, f"not built yet: {', '.join(unsupported)}", history)
            return
        access = registry_access(kube, meta["namespace"], spec.registry_ref.name)
        if spec.task_file is not None:
            values = {v.name: v.value for v in spec.values}
            try:
                check_buildable(spec)
            except NotBuildable as error:
                refusal: str | None = str(error)
            else:
                privileged = reconciler_from(memo).settings.build_allow_privileged_steps
                refusal = task_file_refusal(spec.task_file, values, access.host, allow_privileged=privileged)
            if refusal:
                write("False", Reason.NOT_IMPLEMENTED, refusal, history)
                return
        write("True", Reason.RECONCILED, "manual runs and enabled triggers build this task", history)


def unsupported_fields(spec: BuildTaskSpec) -> list[str]:
    """Fields this version accepts but cannot act on yet: said in Ready, never ignored silently."""
    fields = []
    # timers, sourceCommit, baseImageUpdate: handlers/triggers.py; task files: above. The base is the
    # one of a dockerBuild or of a task file's last build step, read by the fetch container: a task
    # without a source has none
    base = spec.triggers.base_image_update
    if base is not None and base.enabled and not has_source(spec):
        fields.append("triggers.baseImageUpdate (a task without a source has no Dockerfile to track)")
    return fields


def _runs_of(index: Any, namespace: str, task: str) -> list[Mapping[str, Any]]:
    with contextlib.suppress(KeyError):
        return list(index[(namespace, task)])
    return []


@kopf.on.event(GROUP, VERSION, "buildruns")
async def run_changed(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """A task shows its last and last successful run, and keeps only as many finished runs as
    its history limits allow. Decided on the event loop from the indices; only a write (the
    task's status, a pruned run) takes a thread, so a run's own status writes take none."""
    task_name = ((body.get("spec") or {}).get("taskRef") or {}).get("name")
    if not task_name or (body.get("status") or {}).get("status") not in (*TERMINAL, "Queued", "Running"):
        return
    namespace = body["metadata"]["namespace"]
    task = _one(kwargs["build_tasks"], (namespace, task_name))
    if task is None:
        return
    runs = _runs_of(kwargs["build_runs_by_task"], namespace, task_name)
    history = task_status(runs)
    patch = history if history and not contains(task.get("status") or {}, history) else None
    try:
        spec = BuildTaskSpec.model_validate(task.get("spec") or {})
    except ValueError:
        pruned = []  # the task's history still shows; nothing is pruned by limits not understood
    else:
        pruned = prune(runs, spec.successful_runs_history_limit, spec.failed_runs_history_limit)
    if patch or pruned:
        await asyncio.to_thread(_write_history, kube_from(memo), namespace, task_name, patch, pruned)


def _write_history(kube: Kube, namespace: str, task: str, patch: dict[str, Any] | None, pruned: list[str]) -> None:
    if patch:
        kube.patch_status(API_VERSION, TASK_KIND, namespace, task, patch)
    for name in pruned:
        kube.delete(API_VERSION, KIND, namespace, name)
