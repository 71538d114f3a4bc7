"""What the plugin shows, all pure: rows for registries, webhook deliveries and runs, and the
`status` screen (registries with usage against tier limits, failing webhooks, running builds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dockyard.cli.output import condition, format_table, ready_text, with_namespace
from dockyard.cli.runs import format_duration, is_finished, parse_time, registry_of, run_state, task_registries


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _limit(usage: Mapping[str, Any] | None) -> str:
    if not usage:
        return "-"
    limit = usage.get("limit")
    return f"{usage.get('used', 0)}/{limit if limit is not None else '∞'}"


def format_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    for unit, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return f"{count}B"


def registry_rows(registries: Sequence[Mapping[str, Any]], *, wide: bool = False) -> tuple[list[list[str]], list[str]]:
    headers = ["NAME", "SKU", "READY", "LOGIN SERVER", "WEBHOOKS", "STORAGE"]
    if wide:
        headers += ["REPLICATIONS", "TOKENS", "EXTERNAL"]
    rows = []
    for registry in registries:
        status = _status(registry)
        usage = status.get("usage") or {}
        storage = format_bytes(usage.get("storageBytes"))
        if usage.get("includedStorageBytes") is not None:
            storage += f"/{format_bytes(usage['includedStorageBytes'])}"
        row = [
            str(_meta(registry).get("name", "")),
            str((registry.get("spec") or {}).get("sku", "-")),
            ready_text(registry),
            str(status.get("loginServer") or "-"),
            _limit(usage.get("webhooks")),
            storage,
        ]
        if wide:
            row += [
                _limit(usage.get("replications")),
                _limit(usage.get("tokens")),
                str(status.get("externalLoginServer") or "-"),
            ]
        rows.append(row)
    return rows, headers


def delivery_rows(records: Sequence[Mapping[str, Any]], *, wide: bool = False) -> tuple[list[list[str]], list[str]]:
    headers = ["ID", "ACTION", "STATE", "HTTP", "ATTEMPTS", "TIME", "TARGET"]
    if wide:
        headers += ["LATENCY", "EVENT", "ERROR"]
    rows = []
    for record in records:
        row = [
            str(record.get("id", "")),
            str(record.get("action", "")),
            str(record.get("state", "")),
            str(record.get("httpStatus") or "-"),
            str(record.get("attempts", 0)),
            str(record.get("time", "")),
            str(record.get("target") or record.get("request") or "-"),
        ]
        if wide:
            latency = record.get("latencyMs")
            row += [
                f"{latency}ms" if latency is not None else "-",
                str(record.get("eventId", "")),
                str(record.get("error") or ""),
            ]
        rows.append(row)
    return rows, headers


def run_registry(run: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> str | None:
    """The Registry a run builds for (its task's, for a task run in the same namespace)."""
    namespace = _meta(run).get("namespace")
    return registry_of(run, task_registries([t for t in tasks if _meta(t).get("namespace") == namespace]))


def run_rows(
    runs: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
    *,
    wide: bool = False,
    all_namespaces: bool = False,
    now: datetime | None = None,
) -> tuple[list[list[str]], list[str]]:
    """Newest first, like `dockyard runs`; wide adds the registry, run type and message."""
    now = now or datetime.now(UTC)

    def started(run: Mapping[str, Any]) -> datetime:
        when = parse_time(_status(run).get("startTime")) or parse_time(_meta(run).get("creationTimestamp"))
        return when or datetime.min.replace(tzinfo=UTC)

    headers = ["NAME", "RUN-ID", "STATUS", "TRIGGER", "STARTED", "DURATION"]
    if wide:
        headers += ["REGISTRY", "TYPE", "MESSAGE"]
    rows = []
    ordered = sorted(runs, key=started, reverse=True)
    for run in ordered:
        status = _status(run)
        start, finish = parse_time(status.get("startTime")), parse_time(status.get("finishTime"))
        row = [
            str(_meta(run).get("name", "")),
            str(status.get("runId") or "-"),
            run_state(run),
            str((run.get("spec") or {}).get("trigger") or "Manual"),
            start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if start else "-",
            format_duration(((finish or now) - start).total_seconds()) if start else "-",
        ]
        if wide:
            message = " ".join(str(status.get("message") or "").split())
            row += [run_registry(run, tasks) or "-", str(status.get("runType") or "-"), message[:80]]
        rows.append(row)
    if all_namespaces:
        return with_namespace(rows, headers, [str(_meta(r).get("namespace", "")) for r in ordered])
    return rows, headers


def failing(webhooks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Webhooks whose Ready condition is False (a failing receiver, a missing Secret, a quota)."""
    return [w for w in webhooks if (condition(w, "Ready") or {}).get("status") == "False"]


def running(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in runs if not is_finished(r)]


def status_summary(
    registries: Sequence[Mapping[str, Any]], webhooks: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The `status` screen as data (`-o json|yaml`)."""

    def ref(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {"namespace": _meta(obj).get("namespace"), "name": _meta(obj).get("name")}

    return {
        "registries": [
            {
                **ref(r),
                "sku": (r.get("spec") or {}).get("sku"),
                "ready": ready_text(r),
                "usage": _status(r).get("usage") or {},
            }
            for r in registries
        ],
        "failingWebhooks": [
            {
                **ref(w),
                "reason": (condition(w, "Ready") or {}).get("reason"),
                "message": (condition(w, "Ready") or {}).get("message"),
            }
            for w in failing(webhooks)
        ],
        "runningBuilds": [{**ref(r), "runId": _status(r).get("runId"), "status": run_state(r)} for r in running(runs)],
    }


def status_screen(
    registries: Sequence[Mapping[str, Any]],
    webhooks: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    *,
    all_namespaces: bool,
) -> str:
    """Three sections, each a table or one line saying there is nothing to show."""

    def section(title: str, rows: list[list[str]], headers: list[str], objects: Sequence[Mapping[str, Any]]) -> str:
        if not objects:
            return f"{title}: none"
        if all_namespaces:
            rows, headers = with_namespace(rows, headers, [str(_meta(o).get("namespace", "")) for o in objects])
        return f"{title}:\n{format_table(rows, headers)}"

    rows, headers = registry_rows(registries)
    broken = failing(webhooks)
    webhook_rows = [
        [
            str(_meta(w).get("name", "")),
            str(((w.get("spec") or {}).get("registryRef") or {}).get("name", "")),
            str((condition(w, "Ready") or {}).get("reason", "")),
            " ".join(str((condition(w, "Ready") or {}).get("message", "")).split())[:80],
        ]
        for w in broken
    ]
    active = running(runs)
    build_rows, build_headers = run_rows(active, [], all_namespaces=all_namespaces)
    builds = f"Running builds:\n{format_table(build_rows, build_headers)}" if active else "Running builds: none"
    return "\n\n".join(
        [
            section("Registries", rows, headers, registries),
            section("Failing webhooks", webhook_rows, ["NAME", "REGISTRY", "REASON", "MESSAGE"], broken),
            builds,
        ]
    )
