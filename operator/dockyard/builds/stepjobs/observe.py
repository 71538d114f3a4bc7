"""What a run's step Jobs and their pods say: one `Attempt` per Job. Pure.

Each Job is one attempt of one step (labels `dockyard.dev/build-step` and `dockyard.dev/build-attempt`;
the workspace's fetch is the step `fetch-context`). The pod is read first (its `step` container's
end is the fact); the Job's failure conditions stand in when the pod is gone or never came (deleted,
evicted). A pod killed at its `activeDeadlineSeconds` (the step's timeout) is Failed with reason
DeadlineExceeded and keeps its log until the operator deletes the Job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from dockyard.builds.observe import NEVER_STARTS, failure_message, job_failure, parse_time

STEP_LABEL: Final = "dockyard.dev/build-step"
ATTEMPT_LABEL: Final = "dockyard.dev/build-attempt"
STEP_CONTAINER: Final = "step"
FETCH_STEP: Final = "fetch-context"
DEADLINE_REASON: Final = "DeadlineExceeded"  # the kubelet's, for a pod past activeDeadlineSeconds

Phase = Literal["Pending", "Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class Attempt:
    step: str
    """The step's slug (its label value)."""
    number: int
    created: datetime
    phase: Phase
    pod: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    message: str = ""
    termination_message: str = ""
    ip: str | None = None
    node: str | None = None
    timed_out: bool = False

    @property
    def ended(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def _labels(body: Mapping[str, Any]) -> Mapping[str, str]:
    return (body.get("metadata") or {}).get("labels") or {}


def _key(body: Mapping[str, Any]) -> tuple[str, int] | None:
    labels = _labels(body)
    step, number = labels.get(STEP_LABEL), labels.get(ATTEMPT_LABEL)
    if not step or number is None or not str(number).isdigit():
        return None
    return step, int(number)


def _message(terminated: Mapping[str, Any]) -> str:
    text = terminated.get("message") or ""
    found = failure_message(text)
    if found:
        return found
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit code {terminated.get('exitCode')}"


def _attempt(step: str, number: int, job: Mapping[str, Any] | None, pod: Mapping[str, Any] | None) -> Attempt:
    created = parse_time(((job or pod or {}).get("metadata") or {}).get("creationTimestamp")) or datetime.now(UTC)
    if pod is not None:
        status = pod.get("status") or {}
        name = (pod.get("metadata") or {}).get("name")
        node = (pod.get("spec") or {}).get("nodeName")
        ip = status.get("podIP")
        entry: Mapping[str, Any] = next(
            (c for c in status.get("containerStatuses") or [] if c.get("name") == STEP_CONTAINER), {}
        )
        state = entry.get("state") or {}
        terminated, running, waiting = state.get("terminated"), state.get("running"), state.get("waiting") or {}
        base: dict[str, Any] = {"pod": name, "ip": ip, "node": node}
        if terminated is not None:
            code = terminated.get("exitCode")
            return Attempt(
                step,
                number,
                created,
                "Succeeded" if code == 0 else "Failed",
                started=parse_time(terminated.get("startedAt")),
                finished=parse_time(terminated.get("finishedAt")),
                exit_code=code,
                message="" if code == 0 else _message(terminated),
                termination_message=terminated.get("message") or "",
                timed_out=status.get("reason") == DEADLINE_REASON,
                **base,
            )
        if status.get("phase") == "Failed":  # killed before its container ended (deadline, eviction)
            reason = status.get("reason") or "Failed"
            said = f"{reason}: {status.get('message', '')}".strip().rstrip(":")
            return Attempt(step, number, created, "Failed", message=said, timed_out=reason == DEADLINE_REASON, **base)
        if waiting.get("reason") in NEVER_STARTS:
            said = f"the container cannot start: {waiting['reason']}: {waiting.get('message', '')}"
            return Attempt(step, number, created, "Failed", message=said.strip().rstrip(":"), **base)
        if running is not None:
            return Attempt(step, number, created, "Running", started=parse_time(running.get("startedAt")), **base)
        return Attempt(step, number, created, "Pending", message=str(waiting.get("message") or ""), **base)
    failure = job_failure(job) if job is not None else None
    if failure is not None:
        return Attempt(step, number, created, "Failed", message=failure.message, timed_out=failure.status == "Timeout")
    return Attempt(step, number, created, "Pending")


def attempts(jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> dict[str, list[Attempt]]:
    """Attempts by step slug, in attempt order. A pod without its Job (being deleted) still counts;
    of several pods of one Job (there is never more than one: backoffLimit 0) the newest wins."""
    found_jobs = {key: job for job in jobs if (key := _key(job)) is not None}
    found_pods: dict[tuple[str, int], Mapping[str, Any]] = {}
    for pod in pods:
        key = _key(pod)
        if key is None:
            continue
        stamp = (pod.get("metadata") or {}).get("creationTimestamp") or ""
        known = found_pods.get(key)
        if known is None or stamp >= ((known.get("metadata") or {}).get("creationTimestamp") or ""):
            found_pods[key] = pod
    out: dict[str, list[Attempt]] = {}
    for key in sorted(set(found_jobs) | set(found_pods)):
        out.setdefault(key[0], []).append(_attempt(key[0], key[1], found_jobs.get(key), found_pods.get(key)))
    return out
