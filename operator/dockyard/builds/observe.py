"""What a run's Job and pod say about the run: pure functions from their bodies to a verdict.

The pod is read first: Kaniko's container ending is the fact (exit 0 → Succeeded with the digests of
its termination message; anything else → Failed), the Job's conditions come a moment later and are
the fallback when the pod is gone (deadline, eviction, deletion → Timeout or Error). A container
that can never start (its image name is invalid, a Secret key it reads is missing) is an Error at
once instead of a run that hangs until its timeout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from dockyard.builds.manifests.job import FETCH_CONTAINER, KANIKO_CONTAINER


def parse_time(text: str | None) -> datetime | None:
    """A Kubernetes timestamp (`2026-01-01T12:00:00Z`) as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if text else None


Status = Literal["Queued", "Running", "Succeeded", "Failed", "Canceled", "Error", "Timeout"]
TERMINAL: Final = frozenset({"Succeeded", "Failed", "Canceled", "Error", "Timeout"})
# Kubernetes' own reasons (kubelet and Job controller), not Dockyard's
NEVER_STARTS: Final = frozenset({"InvalidImageName", "CreateContainerConfigError", "ErrImageNeverPull"})
PULLING_FAILS: Final = frozenset({"ErrImagePull", "ImagePullBackOff"})
JOB_DEADLINE_EXCEEDED: Final = "DeadlineExceeded"
TAIL_LINES: Final = 20
TAIL_BYTES: Final = 2048

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_INSTRUCTION = re.compile(
    r"^(?:\S*INFO\S*\s+|time=\S+ level=info msg=\")?((?:RUN|COPY|ADD|WORKDIR|USER|ENV|ARG|FROM)\s.*?)\"?$"
)
_ERROR = re.compile(r"error building image: (.*)$")
_FATAL = re.compile(r"(?:^|\s)(?:ERRO|FATA|level=(?:error|fatal))\S*\s+(?:msg=\")?(.*?)\"?$")


@dataclass(frozen=True)
class OutputImage:
    registry: str
    repository: str
    tag: str | None
    digest: str

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"registry": self.registry, "repository": self.repository, "digest": self.digest}
        if self.tag:
            entry["tag"] = self.tag
        return entry


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str = ""
    outputs: tuple[OutputImage, ...] = ()
    failed_container: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def _container(pod: Mapping[str, Any], name: str, init: bool = False) -> Mapping[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for entry in (pod.get("status") or {}).get(key) or []:
        if entry.get("name") == name:
            return dict(entry)
    return {}


def _condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return dict(condition)
    return None


def judge(job: Mapping[str, Any] | None, pod: Mapping[str, Any] | None) -> Verdict:
    """The run's state from its Job and newest pod (either may be None)."""
    if pod is not None:
        fetch = (_container(pod, FETCH_CONTAINER, init=True).get("state") or {}).get("terminated")
        if fetch and fetch.get("exitCode") != 0:
            text = (fetch.get("message") or "").strip().splitlines()
            said = text[-1] if text else f"exit code {fetch.get('exitCode')}"
            # the fetcher's own line already says what failed ("fetching the build context failed: …")
            message = said if said.startswith("fetching") else f"fetching the context failed: {said}"
            return Verdict("Error", message, failed_container=FETCH_CONTAINER)
        state = _container(pod, KANIKO_CONTAINER).get("state") or {}
        terminated = state.get("terminated")
        if terminated is not None:
            if terminated.get("exitCode") == 0:
                return Verdict("Succeeded", outputs=parse_digests(terminated.get("message") or ""))
            fallback = f"the build exited with code {terminated.get('exitCode')}"
            return Verdict(
                "Failed",
                failure_message(terminated.get("message") or "") or fallback,
                failed_container=KANIKO_CONTAINER,
            )
        for name, init in ((FETCH_CONTAINER, True), (KANIKO_CONTAINER, False)):
            waiting = (_container(pod, name, init).get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in NEVER_STARTS:
                return Verdict(
                    "Error", f"container {name} cannot start: {waiting['reason']}: {waiting.get('message', '')}"
                )
        if state.get("running") is not None:
            return Verdict("Running")
    if job is not None:
        failure = job_failure(job)
        if failure is not None:
            return failure
        if pod is None and _condition(job, "Complete") is not None:
            return Verdict("Error", "the build pod is gone; its outcome is unknown")
    if pod is not None:
        waiting = (_container(pod, KANIKO_CONTAINER).get("state") or {}).get("waiting") or {}
        init_waiting = (_container(pod, FETCH_CONTAINER, True).get("state") or {}).get("running")
        if init_waiting is not None:
            return Verdict("Running")
        if waiting.get("reason") in PULLING_FAILS:
            return Verdict(
                "Queued", f"waiting for the builder image: {waiting['reason']}: {waiting.get('message', '')}"
            )
    return Verdict("Queued")


def job_failure(job: Mapping[str, Any]) -> Verdict | None:
    """What a Job's failure conditions say (deadline → Timeout, else the pod was lost → Error)."""
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed is None:
        return None
    if failed.get("reason") == JOB_DEADLINE_EXCEEDED:
        return Verdict("Timeout", "the Job's deadline passed before the build ended")
    return Verdict("Error", f"the build pod was lost: {failed.get('reason')}: {failed.get('message', '')}".strip())


def parse_digests(message: str) -> tuple[OutputImage, ...]:
    """Kaniko's `--image-name-tag-with-digest-file` lines, `host/repo:tag@sha256:…`."""
    outputs = []
    for line in message.splitlines():
        reference, at, digest = line.strip().rpartition("@")
        if not at or not digest.startswith("sha256:"):
            continue
        host, slash, rest = reference.partition("/")
        if not slash:
            continue
        name, colon, tag = rest.rpartition(":")
        repository, tag_or_none = (name, tag) if colon and "/" not in tag else (rest, None)
        outputs.append(OutputImage(host, repository, tag_or_none, digest))
    return tuple(outputs)


def clean(text: str) -> str:
    """The log as people read it: Kaniko colours its level names."""
    return _ANSI.sub("", text).replace("\r\n", "\n")


def failure_message(log: str) -> str | None:
    """The failing build line and its error, from Kaniko's log: e.g.
    `RUN make test: error building stage: failed to execute command: … exit status 2`."""
    lines = clean(log).splitlines()
    error = None
    for line in reversed(lines):
        match = _ERROR.search(line) or _FATAL.search(line)
        if match and match.group(1).strip():
            error = match.group(1).strip()
            break
    if error is None:
        return None
    instruction = None
    for line in lines:
        match = _INSTRUCTION.match(line.strip())
        if match:
            instruction = match.group(1).strip()
    if instruction and "failed to execute command" in error:
        return f"{instruction}: {error}"
    return error


def tail(log: str, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> str:
    text = "\n".join(clean(log).rstrip("\n").splitlines()[-lines:])
    encoded = text.encode()
    return encoded[-limit:].decode("utf-8", errors="ignore") if len(encoded) > limit else text
