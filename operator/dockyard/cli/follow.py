"""Following a BuildRun from the terminal: wait for its run ID and Job, stream its pod's containers
(`fetch-context`, then `kaniko`) as they run, then wait for the run's final status.

The build pod is found by the Job's label `batch.kubernetes.io/job-name=<status.jobName>`. A
container is followed once it runs or has ended; one that will never run (the pod ended first) is
skipped. Nothing here decides the outcome: the run's `status.status` does.

The live log hides what the operator hides in the kept one: the values of the Secrets the run
names (`secret_values`), a whole line at a time (`LineRedactor`), so a value split across two
chunks is hidden too. When those Secrets cannot be read here, `secret_values` says so (None) and
the caller shows no live log, only the kept one, redacted by the operator, once the run ends.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from dockyard.builds.definition import secret_selectors
from dockyard.builds.logstore import redact
from dockyard.cli.runs import BUILD_RUN_KIND, is_finished
from dockyard.core.apiserver import ApiError
from dockyard.core.kube import Kube
from dockyard.models.base import API_VERSION
from dockyard.models.builds import BuildDefinition, BuildRunSpec, BuildTaskSpec

CONTAINERS: Final = ("fetch-context", "kaniko")
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"
POLL_SECONDS: Final = 1.0

Write = Callable[[str], None]


class RunGone(Exception):
    """The BuildRun was deleted while being followed."""


class LineRedactor:
    """Passes text on with `secrets` hidden, a whole line at a time; `close` passes the rest."""

    def __init__(self, write: Write, secrets: Sequence[str]) -> None:
        self.write, self.secrets, self.pending = write, [s for s in secrets if s], ""

    def __call__(self, chunk: str) -> None:
        if not self.secrets:
            self.write(chunk)
            return
        lines, newline, self.pending = (self.pending + chunk).rpartition("\n")
        if newline:
            self.write(redact(lines + newline, self.secrets))

    def close(self) -> None:
        if self.pending:
            self.write(redact(self.pending, self.secrets))
            self.pending = ""


def _forbidden(error: ApiError) -> bool:
    return error.status in (401, 403)


def secret_values(kube: Kube, namespace: str, run: Mapping[str, Any]) -> list[str] | None:
    """The values of the Secrets a run names (to hide in its live log), or None when they cannot
    be read with the user's own rights."""
    spec = BuildRunSpec.model_validate(run.get("spec") or {})
    definition: BuildDefinition | None = spec.build
    try:
        if definition is None and spec.task_ref is not None:
            task = kube.get(API_VERSION, "BuildTask", namespace, spec.task_ref.name)
            definition = BuildTaskSpec.model_validate(task.get("spec") or {}) if task else None
        values = []
        for name, key in secret_selectors(definition) if definition else ():
            secret = kube.get("v1", "Secret", namespace, name)
            encoded = ((secret or {}).get("data") or {}).get(key)
            if encoded:
                values.append(base64.b64decode(encoded).decode("utf-8", errors="replace"))
    except ApiError as error:
        if _forbidden(error):
            return None
        raise
    except (binascii.Error, ValueError):
        return None
    return values


def container_state(pod: Mapping[str, Any], container: str) -> str:
    """`running`, `terminated`, `waiting` or `absent` for a container or init container."""
    status = pod.get("status") or {}
    for entry in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if entry.get("name") == container:
            state = entry.get("state") or {}
            for key in ("running", "terminated", "waiting"):
                if state.get(key) is not None:
                    return key
    return "absent"


def pod_ended(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def newest(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(objects, key=lambda o: str((o.get("metadata") or {}).get("creationTimestamp") or ""), default=None)


class RunFollower:
    """Follows one BuildRun; `sleep` and `monotonic` are injectable for tests of the waiting logic."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.sleep, self.monotonic = sleep, monotonic

    def get(self) -> dict[str, Any]:
        run = self.kube.get(API_VERSION, BUILD_RUN_KIND, self.namespace, self.name)
        if run is None:
            raise RunGone(f"BuildRun {self.name} was deleted")
        return run

    def wait_for(self, check: Callable[[dict[str, Any]], bool], deadline_s: float | None = None) -> dict[str, Any]:
        """The run once `check(run)` holds or it has finished (or the deadline passed)."""
        end = None if deadline_s is None else self.monotonic() + deadline_s
        while True:
            run = self.get()
            if check(run) or is_finished(run) or (end is not None and self.monotonic() > end):
                return run
            self.sleep(POLL_SECONDS)

    def pod(self, job_name: str) -> dict[str, Any] | None:
        return newest(self.kube.list("v1", "Pod", self.namespace, label_selector=f"{JOB_NAME_LABEL}={job_name}"))

    def stream(self, write: Write, secrets: Sequence[str] = ()) -> int:
        """Stream the build pod's containers while the run goes on, `secrets` hidden; returns the
        bytes read (0 when the pod was gone before any log could be read)."""
        run = self.wait_for(lambda r: bool((r.get("status") or {}).get("jobName")))
        job_name = (run.get("status") or {}).get("jobName")
        if not job_name:
            return 0
        written = 0
        for container in CONTAINERS:
            pod = self._wait_for_container(job_name, container)
            if pod is None:
                continue
            redacted = LineRedactor(write, secrets)
            try:
                for chunk in self.kube.follow_pod_log(self.namespace, pod["metadata"]["name"], container):
                    redacted(chunk)
                    written += len(chunk)
            except ApiError as error:
                if error.status not in (400, 404):  # the pod went away (cancel, timeout) or never ran it
                    raise
            finally:
                redacted.close()
        return written

    def _wait_for_container(self, job_name: str, container: str) -> dict[str, Any] | None:
        """The pod once `container` runs or ran; None if it never will (or the run ended first)."""
        while True:
            pod = self.pod(job_name)
            if pod is not None:
                state = container_state(pod, container)
                if state in ("running", "terminated"):
                    return pod
                if pod_ended(pod) or (state == "absent" and _kubelet_reports(pod)):
                    return None  # it will never run, or the pod has no such container (a source-less task)
            if is_finished(self.get()) and pod is None:
                return None
            self.sleep(POLL_SECONDS)


def _kubelet_reports(pod: Mapping[str, Any]) -> bool:
    """Whether the kubelet reports container statuses yet (before that, absent means not yet)."""
    return bool((pod.get("status") or {}).get("containerStatuses"))
