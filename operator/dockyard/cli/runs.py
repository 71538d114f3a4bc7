"""BuildRuns as the CLI sees them, all pure: the quick-build body, finding a run by name or ID,
the `runs` table, a run's outcome and exit code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from dockyard.models.base import API_VERSION

BUILD_RUN_KIND: Final = "BuildRun"
FINISHED: Final = frozenset({"Succeeded", "Failed", "Canceled", "Error", "Timeout"})
EXIT_SUCCEEDED: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_DETACHED: Final = 130
"""Ctrl-C while following: the run goes on; the shell's code for an interrupt."""


class BuildArgError(ValueError):
    """A `--build-arg` that is not NAME=VALUE with a valid name."""


def parse_build_arg(text: str) -> dict[str, str]:
    """`NAME=VALUE` → `{name, value}`. `NAME` alone takes the value from the environment in
    Docker; here it would silently send a local secret into the cluster, so it is refused."""
    name, sep, value = text.partition("=")
    if not sep:
        raise BuildArgError(f"--build-arg {text!r}: give NAME=VALUE")
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
        raise BuildArgError(f"--build-arg {text!r}: {name!r} is not a valid ARG name")
    return {"name": name, "value": value}


def build_quick_run(
    *,
    namespace: str,
    registry: str,
    source_repository: str,
    source_digest: str,
    images: Sequence[str],
    dockerfile: str = "Dockerfile",
    build_args: Sequence[str] = (),
    target: str | None = None,
    platform: str | None = None,
    no_push: bool = False,
    timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """The BuildRun `dockyard build` creates: an inline Dockerfile build of an uploaded context."""
    args: dict[str, dict[str, str]] = {}
    for text in build_args:
        arg = parse_build_arg(text)
        args[arg["name"]] = arg  # the last one wins, as in docker build
    docker_build: dict[str, Any] = {"dockerfile": dockerfile, "images": list(images)}
    if args:
        docker_build["buildArgs"] = list(args.values())
    if target:
        docker_build["target"] = target
    if platform:
        docker_build["platform"] = platform
    if no_push:
        docker_build["noPush"] = True
    build: dict[str, Any] = {
        "registryRef": {"name": registry},
        "source": {"oci": {"repository": source_repository, "digest": source_digest}},
        "dockerBuild": docker_build,
    }
    if timeout_seconds is not None:
        build["timeoutSeconds"] = timeout_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": BUILD_RUN_KIND,
        "metadata": {"generateName": f"{registry}-", "namespace": namespace},
        "spec": {"build": build, "trigger": "Manual"},
    }


def _status(run: Mapping[str, Any]) -> dict[str, Any]:
    status = run.get("status")
    return status if isinstance(status, dict) else {}


def run_state(run: Mapping[str, Any]) -> str:
    return str(_status(run).get("status") or "Queued")


def has_run_id(run: Mapping[str, Any]) -> bool:
    return bool(_status(run).get("runId"))


def is_finished(run: Mapping[str, Any]) -> bool:
    return run_state(run) in FINISHED


def registry_of(run: Mapping[str, Any], task_registries: Mapping[str, str] | None = None) -> str | None:
    """The Registry a run builds for: its inline build's registryRef, or its task's (from
    `task_registries`, task name → registry name)."""
    spec = run.get("spec") or {}
    name = ((spec.get("build") or {}).get("registryRef") or {}).get("name")
    if isinstance(name, str):
        return name
    task = (spec.get("taskRef") or {}).get("name")
    return (task_registries or {}).get(task) if isinstance(task, str) else None


def task_registries(tasks: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """BuildTask name → its Registry's name."""
    return {
        str(task["metadata"]["name"]): str(ref["name"])
        for task in tasks
        if isinstance(ref := (task.get("spec") or {}).get("registryRef"), dict) and ref.get("name")
    }


def find_run(runs: Iterable[Mapping[str, Any]], name_or_id: str) -> list[Mapping[str, Any]]:
    """Runs whose name is `name_or_id`, else those whose run ID is (IDs are unique per registry,
    so several registries in one namespace may share one)."""
    runs = list(runs)
    by_name = [r for r in runs if (r.get("metadata") or {}).get("name") == name_or_id]
    return by_name or [r for r in runs if _status(r).get("runId") == name_or_id]


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    """`45s`, `3m05s`, `2h01m` (kubectl's style, without its rounding surprises)."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def format_runs_table(runs: Iterable[Mapping[str, Any]], now: datetime | None = None) -> str:
    """NAME RUN-ID STATUS TRIGGER STARTED DURATION, newest first; a running run's duration so far."""
    now = now or datetime.now(UTC)

    def started(run: Mapping[str, Any]) -> datetime:
        meta = run.get("metadata") or {}
        when = parse_time(_status(run).get("startTime")) or parse_time(meta.get("creationTimestamp"))
        return when or datetime.min.replace(tzinfo=UTC)

    rows = [("NAME", "RUN-ID", "STATUS", "TRIGGER", "STARTED", "DURATION")]
    for run in sorted(runs, key=started, reverse=True):
        status = _status(run)
        start = parse_time(status.get("startTime"))
        finish = parse_time(status.get("finishTime"))
        duration = ""
        if start is not None:
            duration = format_duration(((finish or now) - start).total_seconds())
        rows.append(
            (
                str((run.get("metadata") or {}).get("name", "")),
                str(status.get("runId") or "-"),
                run_state(run),
                str((run.get("spec") or {}).get("trigger") or "Manual"),
                start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if start else "-",
                duration or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def image_reference(image: Mapping[str, Any]) -> str:
    """`registry/repository:tag@digest` of an output image."""
    text = f"{image.get('registry', '')}/{image.get('repository', '')}"
    if image.get("tag"):
        text += f":{image['tag']}"
    if image.get("digest"):
        text += f"@{image['digest']}"
    return text


@dataclass(frozen=True)
class Outcome:
    """How a finished run ends the command: exit code and lines to print (stdout, stderr)."""

    exit_code: int
    out: tuple[str, ...]
    err: tuple[str, ...]


def outcome(run: Mapping[str, Any]) -> Outcome:
    """0 iff the run Succeeded, with the images it pushed; else 1 with its status and message."""
    status = _status(run)
    state = run_state(run)
    name = (run.get("metadata") or {}).get("name", "")
    run_id = status.get("runId") or name
    if state == "Succeeded":
        images = tuple(image_reference(i) for i in status.get("outputImages") or [])
        return Outcome(EXIT_SUCCEEDED, (f"Run {run_id} succeeded.", *images), ())
    message = " ".join(str(status.get("message") or "").split())
    detail = f": {message}" if message else ""
    return Outcome(EXIT_FAILED, (), (f"Run {run_id} {state.lower()}{detail}",))
