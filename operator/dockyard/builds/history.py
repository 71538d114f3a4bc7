"""A task's run history: its last and last successful run, and which finished runs its history
limits let go. Pure; runs are ordered by run number (IDs only grow), unnumbered ones last."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dockyard.builds.ids import run_number
from dockyard.builds.observe import TERMINAL


def _order(run: Mapping[str, Any]) -> tuple[int, str]:
    status = run.get("status") or {}
    number = run_number(status.get("runId") or "") or 0
    return number, str((run.get("metadata") or {}).get("creationTimestamp") or "")


def _reference(run: Mapping[str, Any]) -> dict[str, Any]:
    status, spec = run.get("status") or {}, run.get("spec") or {}
    reference = {
        "name": run["metadata"]["name"],
        "runId": status.get("runId"),
        "status": status.get("status"),
        "trigger": spec.get("trigger", "Manual"),
        "startTime": status.get("startTime"),
    }
    return {key: value for key, value in reference.items() if value is not None}


def task_status(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`lastRun`, `lastSuccessfulRun` and the newest run's `baseImage` for the task's status ({}
    when it has no numbered run)."""
    numbered = sorted((r for r in runs if (r.get("status") or {}).get("runId")), key=_order)
    if not numbered:
        return {}
    result = {"lastRun": _reference(numbered[-1])}
    succeeded = [r for r in numbered if (r.get("status") or {}).get("status") == "Succeeded"]
    if succeeded:
        result["lastSuccessfulRun"] = _reference(succeeded[-1])
    based = [r for r in numbered if (r.get("status") or {}).get("baseImage")]
    if based:  # what triggers.baseImageUpdate watches: the base the newest run resolved
        base = based[-1]["status"]["baseImage"]
        result["baseImage"] = base
        result["baseImageDigest"] = base.get("digest")
    return result


def prune(runs: Iterable[Mapping[str, Any]], successful_limit: int, failed_limit: int) -> list[str]:
    """Names of finished runs beyond the limits, oldest first; running runs are never pruned."""
    finished = sorted(
        (
            r
            for r in runs
            if (r.get("status") or {}).get("status") in TERMINAL and not r["metadata"].get("deletionTimestamp")
        ),
        key=_order,
        reverse=True,
    )
    succeeded = [r for r in finished if r["status"]["status"] == "Succeeded"]
    failed = [r for r in finished if r["status"]["status"] != "Succeeded"]
    excess = succeeded[successful_limit:] + failed[failed_limit:]
    return [r["metadata"]["name"] for r in sorted(excess, key=_order)]
