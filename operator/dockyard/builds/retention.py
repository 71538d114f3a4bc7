"""Log retention: a finished run's kept log is deleted from its registry `logRetentionDays` (the
task's; 30 for quick builds) after the run ended; the run keeps its `logTail` and loses its
`logReference`. One sweep an hour over the watch-fed runs, off kopf's event loop; a sweep that
fails for one registry (down, deleted) leaves that log for the next sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from dockyard.builds.access import registry_access
from dockyard.builds.observe import parse_time
from dockyard.builds.reconcile import KIND, LogKeeper
from dockyard.core.errors import ReconcileError
from dockyard.core.kube import Kube
from dockyard.models import API_VERSION

log = logging.getLogger("dockyard.builds")

DEFAULT_RETENTION_DAYS: Final = 30
SWEEP_SECONDS: Final = 3600.0


def retention_days(run: Mapping[str, Any], tasks: Mapping[tuple[str, str], Mapping[str, Any]]) -> int:
    task_name = ((run.get("spec") or {}).get("taskRef") or {}).get("name")
    task = tasks.get((run["metadata"]["namespace"], task_name)) if task_name else None
    return int(((task or {}).get("spec") or {}).get("logRetentionDays") or DEFAULT_RETENTION_DAYS)


def expired(run: Mapping[str, Any], days: int, now: datetime) -> bool:
    status = run.get("status") or {}
    finished = parse_time(status.get("finishTime"))
    return bool(status.get("logReference")) and finished is not None and now >= finished + timedelta(days=days)


def registry_of(run: Mapping[str, Any], tasks: Mapping[tuple[str, str], Mapping[str, Any]]) -> str | None:
    spec = run.get("spec") or {}
    if spec.get("build"):
        return str(spec["build"]["registryRef"]["name"])
    task = tasks.get((run["metadata"]["namespace"], str((spec.get("taskRef") or {}).get("name") or "")))
    name = ((task or {}).get("spec") or {}).get("registryRef", {}).get("name")
    return str(name) if name else None


def sweep(
    kube: Kube,
    logs: LogKeeper,
    runs: Iterable[Mapping[str, Any]],
    tasks: Mapping[tuple[str, str], Mapping[str, Any]],
    now: datetime,
) -> int:
    """Delete the expired logs; how many went."""
    removed = 0
    for run in runs:
        if not expired(run, retention_days(run, tasks), now):
            continue
        namespace, name = run["metadata"]["namespace"], run["metadata"]["name"]
        registry = registry_of(run, tasks)
        try:
            if registry is not None:
                logs.delete(registry_access(kube, namespace, registry), run["status"]["logReference"])
        except ReconcileError:
            pass  # the registry is gone, and the log with it
        except Exception as error:
            log.warning("the expired log of %s/%s stays until the next sweep: %s", namespace, name, error)
            continue
        kube.patch_status(API_VERSION, KIND, namespace, name, {"logReference": None})
        removed += 1
    return removed


async def sweep_forever(
    kube: Kube, logs: LogKeeper, read: Callable[[], tuple[list[Mapping[str, Any]], dict[Any, Any]]]
) -> None:
    """Every SWEEP_SECONDS until cancelled; `read` gives the runs and the tasks by (namespace, name)."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        with contextlib.suppress(Exception):
            runs, tasks = read()
            removed = await asyncio.to_thread(sweep, kube, logs, runs, tasks, datetime.now(UTC))
            if removed:
                log.info("deleted %d expired build logs", removed)
