"""The Job-per-step scheduler, as a pure function: the plan's steps, the attempts the run's Jobs
show and the clock → which Jobs to create now, each step's status, the run's verdict, and when to
look again. The reconcile applies it; running it twice on the same input gives the same answer, and
the Jobs it asks for have deterministic names, so nothing is created twice.

acr-builder's semantics (spec builds.md §0 and §1), step by step:

- the workspace is fetched first (one Job); a step starts when every step it depends on succeeded
  (`when`), plus its `startDelay` (after the last dependency ended, or the fetch for the first steps);
- an attempt that fails is tried again after `retryDelay` seconds, `retries` times; with
  `retryOnErrors`, only when the attempt's output contains one of those texts (acr-builder's
  containsAnyError on stdout/stderr; here the failed container's termination message, which the
  kubelet fills with the last 80 lines / 2 KiB of its log, and the attempt's failure message); the
  step runs `repeat + 1` times, even after a failed repetition, and fails if any repetition failed;
- one `timeout` covers all attempts of a step, from its first Job's creation: the pod's
  `activeDeadlineSeconds` is what is left of it, and the clock ends a step whose pod hangs pending;
- `ignoreErrors`: a failed (or timed-out) step counts as succeeded, its exit code and error kept;
- `detach`: the step succeeds once its container started; it serves later steps (reachable by its id
  through `hostAliases` with its pod's IP) until the run ends, or until a `docker stop <its id>`
  step (no Job of its own) runs: the decision names the pods to stop, and the stop step succeeds once
  they ended (within its `timeout`);
- the first failing step ends the run as Failed: no new Job is created, the running ones are stopped
  by the reconcile after their logs are read; steps that never started end Skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dockyard.builds.observe import Verdict, parse_digests
from dockyard.builds.stepjobs.observe import FETCH_STEP, Attempt
from dockyard.builds.stepjobs.steps import JobStep, StopStep


@dataclass(frozen=True)
class Create:
    """One Job to create: attempt `number` of the step `step` (its slug)."""

    step: str
    number: int
    deadline_seconds: int | None = None
    hosts: tuple[tuple[str, str], ...] = ()
    """(IP, host name) of the detached steps running now."""


@dataclass(frozen=True)
class StepState:
    id: str
    type: str
    status: str
    start_time: datetime | None = None
    finish_time: datetime | None = None
    exit_code: int | None = None
    message: str | None = None
    attempts: int = 0

    def as_status(self, format_time: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "type": self.type, "status": self.status}
        for key, value in (
            ("startTime", format_time(self.start_time) if self.start_time else None),
            ("finishTime", format_time(self.finish_time) if self.finish_time else None),
            ("exitCode", self.exit_code),
            ("message", self.message),
            ("attempts", self.attempts or None),
        ):
            if value is not None:
                entry[key] = value
        return entry


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    steps: tuple[StepState, ...]
    create: tuple[Create, ...] = ()
    wake_at: datetime | None = None
    """The earliest moment a delay (startDelay, retryDelay) ends: look again then."""
    stop: tuple[str, ...] = ()
    """Pods of detached steps that a `docker stop` step ends now."""


@dataclass(frozen=True)
class _Result:
    state: StepState
    ok_at: datetime | None = None
    """When the step counted as succeeded (its dependents may start); None: not (yet)."""
    failed: bool = False
    """Failed for good, errors not ignored: the run fails."""
    create: int | None = None
    deadline: int | None = None
    wake: datetime | None = None
    outputs_from: str = ""
    stop: tuple[str, ...] = ()


def _ended(
    step: JobStep, tries: Sequence[Attempt], base: StepState, failure: Attempt | None, timed_out: bool
) -> _Result:
    """A step that ended: succeeded, failed, or failed with errors ignored."""
    last = tries[-1]
    finish = last.finished or last.created
    if failure is None:
        state = StepState(
            **{**base.__dict__, "status": "Succeeded", "finish_time": finish, "exit_code": last.exit_code}
        )
        return _Result(state, ok_at=finish, outputs_from=last.termination_message)
    said = f"timed out after {step.timeout}s" if timed_out else failure.message or f"exit code {failure.exit_code}"
    if step.ignore_errors:
        state = StepState(
            **{
                **base.__dict__,
                "status": "Succeeded",
                "finish_time": finish,
                "exit_code": failure.exit_code,
                "message": f"errors ignored: {said}",
            }
        )
        return _Result(state, ok_at=finish)
    state = StepState(
        **{
            **base.__dict__,
            "status": "Timeout" if timed_out else "Failed",
            "finish_time": finish,
            "exit_code": failure.exit_code,
            "message": said,
        }
    )
    return _Result(state, failed=True)


def _step(
    step: JobStep, tries: Sequence[Attempt], deps: Sequence[_Result], base_time: datetime, now: datetime
) -> _Result:
    queued = StepState(step.id, step.type, "Queued")
    if any(dep.ok_at is None for dep in deps):
        return _Result(queued)
    due = max((dep.ok_at for dep in deps if dep.ok_at is not None), default=base_time) + timedelta(
        seconds=step.start_delay
    )
    if not tries:
        if now < due:
            return _Result(queued, wake=due)
        return _Result(queued, create=0, deadline=None if step.detach else step.timeout)
    first = tries[0]
    deadline_at = first.created + timedelta(seconds=step.timeout)
    started = next((a.started for a in tries if a.started), None)
    base = StepState(step.id, step.type, "Running" if started else "Queued", start_time=started, attempts=len(tries))
    if step.detach:
        if first.started is not None:  # docker run --detach: succeeded once the container started
            said = "ran as a service until stopped" if first.ended else "runs as a service until the run ends"
            state = StepState(**{**base.__dict__, "status": "Succeeded", "message": said})
            return _Result(state, ok_at=first.started)
        if first.ended:
            return _ended(step, tries, base, first, first.timed_out)
        if now >= deadline_at:
            return _ended(step, tries, base, first, True)
        return _Result(base)
    repetition = failures_in_repetition = failed_repetitions = 0
    failure: Attempt | None = None
    for attempt in tries:
        if not attempt.ended:
            if now >= deadline_at:
                return _ended(step, tries, base, attempt, True)
            return _Result(base)
        if attempt.phase == "Succeeded":
            repetition, failures_in_repetition = repetition + 1, 0
            continue
        failure = attempt
        if attempt.timed_out:  # one deadline for every attempt: no retry after it
            return _ended(step, tries, base, attempt, True)
        failures_in_repetition += 1
        if failures_in_repetition > step.retries or not retryable(step.retry_on_errors, attempt):
            failed_repetitions, repetition, failures_in_repetition = failed_repetitions + 1, repetition + 1, 0
    if repetition > step.repeat:
        return _ended(step, tries, base, failure if failed_repetitions else None, False)
    if now >= deadline_at:
        return _ended(step, tries, base, failure or tries[-1], True)
    last = tries[-1]
    delay = step.retry_delay if failures_in_repetition else 0
    next_at = (last.finished or now) + timedelta(seconds=delay)
    waiting = StepState(**{**base.__dict__, "status": "Running", "exit_code": last.exit_code})
    if now < next_at:
        return _Result(waiting, wake=next_at)
    remaining = max(1, math.ceil((deadline_at - now).total_seconds()))
    return _Result(waiting, create=len(tries), deadline=remaining)


def retryable(retry_on_errors: Sequence[str], attempt: Attempt) -> bool:
    """Whether a failed attempt may be retried: always without `retryOnErrors`, else when its output
    (the termination message: the log's tail) or its failure message contains one of the texts."""
    if not retry_on_errors:
        return True
    said = f"{attempt.termination_message}\n{attempt.message}"
    return any(text in said for text in retry_on_errors)


def _stop(
    step: JobStep,
    work: StopStep,
    attempts: Mapping[str, Sequence[Attempt]],
    deps: Sequence[_Result],
    base_time: datetime,
    now: datetime,
) -> _Result:
    """`docker stop`: once its dependencies succeeded (and its startDelay passed), the detached
    steps' pods are ended; it succeeds when they did, fails (Timeout) when they do not within its
    `timeout`."""
    queued = StepState(step.id, step.type, "Queued")
    if any(dep.ok_at is None for dep in deps):
        return _Result(queued)
    due = max((dep.ok_at for dep in deps if dep.ok_at is not None), default=base_time) + timedelta(
        seconds=step.start_delay
    )
    if now < due:
        return _Result(queued, wake=due)
    targets = [tries[0] for slug in work.stops if (tries := attempts.get(slug))]
    running = tuple(a.pod for a in targets if not a.ended and a.pod)
    if not running:
        finish = max((a.finished or due for a in targets), default=due)
        state = StepState(step.id, step.type, "Succeeded", due, finish, 0, "stopped " + ", ".join(work.stops))
        return _Result(state, ok_at=finish)
    if now >= due + timedelta(seconds=step.timeout):
        said = f"timed out after {step.timeout}s: the detached steps did not stop"
        if step.ignore_errors:
            state = StepState(step.id, step.type, "Succeeded", due, now, None, f"errors ignored: {said}")
            return _Result(state, ok_at=due + timedelta(seconds=step.timeout))
        return _Result(StepState(step.id, step.type, "Timeout", due, now, None, said), failed=True)
    return _Result(StepState(step.id, step.type, "Running", due), stop=running)


def decide(steps: Sequence[JobStep], attempts: Mapping[str, Sequence[Attempt]], now: datetime) -> Decision:
    """What to do now for a run on the Job-per-step path (see the module's docstring)."""
    queued = tuple(StepState(s.id, s.type, "Queued") for s in steps)
    fetches = attempts.get(FETCH_STEP) or []
    if not fetches:
        return Decision(Verdict("Queued"), queued, (Create(FETCH_STEP, 0),))
    fetch = fetches[-1]
    if fetch.phase == "Failed":
        message = (
            fetch.message if fetch.message.startswith("fetching") else f"fetching the context failed: {fetch.message}"
        )
        return Decision(Verdict("Error", message, failed_container=FETCH_STEP), queued)
    if fetch.phase != "Succeeded":
        return Decision(Verdict("Running" if fetch.phase == "Running" else "Queued"), queued)
    hosts = tuple(
        (a.ip, s.hostname)
        for s in steps
        if s.detach
        for a in (attempts.get(s.slug) or [])[:1]
        if a.phase == "Running" and a.ip
    )
    results: dict[str, _Result] = {}
    for step in steps:
        deps = [results[d] for d in step.depends_on]
        base_time = fetch.finished or fetch.created
        if isinstance(step.work, StopStep):
            results[step.id] = _stop(step, step.work, attempts, deps, base_time, now)
        else:
            results[step.id] = _step(step, attempts.get(step.slug) or [], deps, base_time, now)
    states = tuple(r.state for r in results.values())
    failed = [(step, results[step.id]) for step in steps if results[step.id].failed]
    if failed:
        first, result = min(failed, key=lambda pair: pair[1].state.finish_time or now)
        verb = "timed out" if result.state.status == "Timeout" else "failed"
        detail = "" if result.state.status == "Timeout" else f": {result.state.message}"
        return Decision(Verdict("Failed", f"step {first.id} {verb}{detail}", failed_container=first.slug), states)
    if all(r.ok_at is not None for r in results.values()):
        outputs = tuple(
            o for step in steps if step.type == "push" for o in parse_digests(results[step.id].outputs_from)
        )
        return Decision(Verdict("Succeeded", outputs=outputs), states)
    creates = tuple(
        Create(step.slug, r.create, r.deadline, hosts) for step in steps if (r := results[step.id]).create is not None
    )
    wakes = [r.wake for r in results.values() if r.wake is not None]
    started = any(attempts.get(s.slug) for s in steps)
    stops = tuple(pod for r in results.values() for pod in r.stop)
    return Decision(Verdict("Running" if started else "Queued"), states, creates, min(wakes, default=None), stops)


def final_states(states: Sequence[StepState], run_status: str) -> tuple[StepState, ...]:
    """Step statuses once the run ended: a step that never started is Skipped; one still running was
    stopped (Canceled when another step failed the run, else the run's own end: Canceled, Timeout,
    Error)."""
    out = []
    for state in states:
        if state.status == "Queued":
            out.append(StepState(state.id, state.type, "Skipped"))
        elif state.status == "Running":
            stopped = "Canceled" if run_status in ("Failed", "Succeeded") else run_status
            out.append(
                StepState(**{**state.__dict__, "status": stopped, "message": f"stopped: the run ended ({run_status})"})
            )
        else:
            out.append(state)
    return tuple(out)
