"""The Job-per-step path's part of a run's reconcile: it applies what `decide` says, nothing more.

    start     → the run's Secret (docker config with push on its tags and its staging area, the
                task volumes' files), the node's pull secret, the workspace claim; `status.executionShape: JobPerStep`, every step Queued
    each step → re-plan (deterministic for the run: same ID, date, values), read the attempts from
                the run's Jobs and pods, `decide`; create the Jobs it asks for (a name that exists
                already is refused by the API server: a restart never duplicates a Job); end the
                pods a `docker stop` step stops (`activeDeadlineSeconds: 1`: the kubelet kills the
                pod and keeps it and its log, as for a step's timeout)
    the end   → every step pod's log read (running ones too, before they are stopped), the final
                status written, then the staging tags, step Jobs (and pods), claim and secrets deleted

A mixin of `RunReconciler` (builds/reconcile.py), whose status writing, log keeping and ending it
uses; kept here so the single-pod reconcile stays as it was.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from dockyard.auth.grants import Grant
from dockyard.builds import definition as defs
from dockyard.builds.access import RegistryAccess, registry_access
from dockyard.builds.logstore import redact
from dockyard.builds.manifests.job import (
    basic_auth_entry,
    build_credentials_secret,
    docker_config,
)
from dockyard.builds.manifests.steps import step_container_names
from dockyard.builds.observe import Verdict, clean, parse_time
from dockyard.builds.shape import Shape
from dockyard.builds.sources import source_fetch
from dockyard.builds.stepjobs.decide import StepState, decide, final_states
from dockyard.builds.stepjobs.manifests import (
    StepRun,
    build_pull_secret,
    build_step_job,
    build_workspace_claim,
    pull_secret_name,
    workspace_claim_name,
)
from dockyard.builds.stepjobs.observe import FETCH_STEP, STEP_CONTAINER, Attempt, attempts
from dockyard.builds.stepjobs.staging import remove_staged
from dockyard.builds.stepjobs.steps import (
    STAGING_TAG,
    JobStep,
    cache_repositories,
    pushed_images,
    staged_cmd_step,
    staging_grant,
    staging_repository,
)
from dockyard.builds.taskfile.plan import Plan, PlanError
from dockyard.builds.translate import NotRunnable, TaskVolume
from dockyard.core import conditions
from dockyard.core.conditions import EventReason
from dockyard.core.kube import Kube
from dockyard.core.meta import Owner
from dockyard.core.names import BUILD_RUN_LABEL, BuildRunNames
from dockyard.models import API_VERSION
from dockyard.models.builds import BuildRunSpec
from dockyard.settings import OperatorSettings

log = logging.getLogger("dockyard.builds")

LOG_LIMIT_BYTES = 64 * 1024 * 1024
PULL_MARGIN_SECONDS = 600


def _owner(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, "BuildRun", meta["name"], meta["namespace"], meta["uid"])


class TaskPlan(Protocol):
    """What this path reads of a run's plan (`runplan.TaskPlan`, made by `RunReconciler._task_plan`)."""

    @property
    def plan(self) -> Plan: ...
    @property
    def job_steps(self) -> tuple[JobStep, ...]: ...
    @property
    def volumes(self) -> tuple[TaskVolume, ...]: ...


class StepJobsReconciler:
    kube: Kube
    settings: OperatorSettings
    now: Callable[[], datetime]

    # provided by RunReconciler
    def _write(self, body: Mapping[str, Any], fields: Mapping[str, Any], run_status: str, message: str) -> None:
        raise NotImplementedError

    def _finish(
        self,
        body: Mapping[str, Any],
        verdict: Verdict,
        pod: Mapping[str, Any] | None,
        access: RegistryAccess | None,
        *,
        steps: list[dict[str, Any]] | None = None,
        log_text: str | None = None,
    ) -> None:
        raise NotImplementedError

    def _variables(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        access: RegistryAccess,
        run: defs.RunDefinition,
        started: datetime,
    ) -> Any:
        raise NotImplementedError

    def _resources(self, run: defs.RunDefinition) -> Mapping[str, Any]:
        raise NotImplementedError

    def _docker_config(
        self, owner: Owner, access: RegistryAccess, run: defs.RunDefinition, own: tuple[str, ...]
    ) -> str:
        raise NotImplementedError

    def _secret_values(self, body: Mapping[str, Any]) -> list[str]:
        raise NotImplementedError

    def _task_plan(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        access: RegistryAccess,
        run: defs.RunDefinition,
        started: datetime,
    ) -> TaskPlan:
        raise NotImplementedError

    # -- start ------------------------------------------------------------------------------------

    def _start_step_jobs(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        access: RegistryAccess,
        run: defs.RunDefinition,
        task: TaskPlan,
        files: Mapping[str, str],
    ) -> None:
        """`task`: the run's plan on this path; `files`: its volume files (the run Secret's data)."""
        owner = _owner(body)
        steps, warnings = task.job_steps, task.plan.warnings
        started = self.now()
        run_id = status["runId"]
        if (
            run.definition.source.oci is None
            and run.definition.source.archive is None
            and run.definition.source.git is None
        ):
            message = (
                "taskFile: a task file without a source runs as one pod only (a chain of steps); give the task a "
                "source to run it as a Job per step"
            )
            self._finish(body, Verdict("Error", message), None, None)
            return
        staged = staged_cmd_step(steps, access.host)
        if staged is not None and not access.node_host:
            message = (
                f"taskFile: step {staged}: runs an image built earlier in the run, which the node pulls from "
                "the registry: the Registry needs spec.exposure.nodePull"
            )
            self._finish(body, Verdict("Error", message), None, None)
            return
        pushes = (*pushed_images(steps), *cache_repositories(steps))
        own = (*defs.own_repositories(pushes, access.host), staging_grant(run_id))
        namespace = owner.namespace
        self.kube.create_if_missing(
            "v1",
            "Secret",
            namespace,
            BuildRunNames(owner.name).credentials,
            lambda: build_credentials_secret(owner, self._docker_config(owner, access, run, own), files),
        )
        self.kube.create_if_missing(
            "v1",
            "Secret",
            namespace,
            pull_secret_name(owner.name),
            lambda: build_pull_secret(owner, self._pull_config(owner, access, run)),
        )
        step_run = self._step_run(owner, access, run, status, task)
        self.kube.create_if_missing(
            "v1",
            "PersistentVolumeClaim",
            namespace,
            workspace_claim_name(owner.name),
            lambda: build_workspace_claim(step_run),
        )
        fields = {
            "executionShape": Shape.JOB_PER_STEP.value,
            "startTime": conditions.format_time(started),
            "steps": [{"id": s.id, "type": s.type, "status": "Queued"} for s in steps],
        }
        self._write(body, fields, "Queued", f"run {run_id} is queued")
        waves = ", ".join(s.id for s in steps)
        self.kube.post_event(
            dict(body), "Normal", EventReason.RUN_STARTED, f"run {run_id} runs {waves} as a Job per step"
        )
        if warnings:
            self.kube.post_event(dict(body), "Warning", EventReason.PLAN_WARNING, "; ".join(warnings)[:1024])

    def _pull_config(self, owner: Owner, access: RegistryAccess, run: defs.RunDefinition) -> str:
        """The node's credential: pull only, on the run's registry (staged images and the registry's
        own), plus the run's pull secrets."""
        auths: dict[str, Mapping[str, Any]] = {}
        for reference in run.definition.pull_secrets:
            secret = self.kube.get("v1", "Secret", owner.namespace, reference.name)
            raw = ((secret or {}).get("data") or {}).get(".dockerconfigjson")
            if raw:
                auths.update((json.loads(base64.b64decode(raw)).get("auths") or {}).items())
        subject = f"buildrun:{owner.namespace}/{owner.name}"
        grants = (Grant(repositories="*", actions=("pull",)),)
        credential = access.delegation(subject, grants, run.timeout_seconds + PULL_MARGIN_SECONDS)
        auths[access.host] = basic_auth_entry(*credential)
        if access.node_host:
            auths[access.node_host] = basic_auth_entry(*credential)
        return docker_config(auths)

    def _step_run(
        self, owner: Owner, access: RegistryAccess, run: defs.RunDefinition, status: Mapping[str, Any], task: TaskPlan
    ) -> StepRun:
        fetch = source_fetch(run.definition, status)
        if fetch is None:  # the caller refused it first (`_start_step_jobs`): a guard
            raise ValueError("a Job-per-step run needs a source to fetch into its workspace")
        return StepRun(
            owner=owner,
            registry_host=access.host,
            kaniko_image=run.definition.builder_image or self.settings.kaniko_image,
            operator_image=self.settings.operator_image,
            fetch=fetch,
            timeout_seconds=run.timeout_seconds,
            resources=self._resources(run),
            ca_config_map=access.ca_config_map,
            insecure_registry=access.plain_http,
            node_registry_host=access.node_host,
            workspace_size=self.settings.build_workspace_size,
            storage_class=self.settings.build_workspace_storage_class,
            volumes=task.volumes,
            tools_image=self.settings.step_tools_image,
        )

    # -- each step -----------------------------------------------------------------------------------

    def _plan_steps(
        self, body: Mapping[str, Any], status: Mapping[str, Any], access: RegistryAccess, run: defs.RunDefinition
    ) -> TaskPlan | None:
        """The run's plan, made again exactly as at its start (same ID, date, commit)."""
        started = parse_time(status.get("startTime")) or self.now()
        assert run.definition.task_file is not None
        try:
            task = self._task_plan(body, status, access, run, started)
        except (PlanError, NotRunnable) as error:
            self._end_step_jobs(body, Verdict("Error", f"taskFile: {error}"), (), {}, access)
            return None
        if not task.job_steps:  # the file changed its shape since the run started: a BuildTask edited
            self._end_step_jobs(
                body, Verdict("Error", "taskFile: the plan no longer runs as a Job per step"), (), {}, access
            )
            return None
        return task

    def _advance_step_jobs(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        spec: BuildRunSpec,
        access: RegistryAccess,
        run: defs.RunDefinition,
        observed: Any,
    ) -> None:
        task = self._plan_steps(body, status, access, run)
        if task is None:
            return
        steps = task.job_steps
        found = attempts(observed.jobs, observed.pods)
        now = self.now()
        decision = decide(steps, found, now)
        started = parse_time(status.get("startTime"))
        if spec.cancel:
            self._end_step_jobs(body, Verdict("Canceled", "canceled by spec.cancel"), decision.steps, found, access)
            return
        if started is not None and (now - started).total_seconds() >= run.timeout_seconds:
            verdict = Verdict("Timeout", f"the run exceeded its timeout of {run.timeout_seconds}s")
            self._end_step_jobs(body, verdict, decision.steps, found, access)
            return
        if decision.verdict.finished:
            self._end_step_jobs(body, decision.verdict, decision.steps, found, access)
            return
        if decision.create:
            step_run = self._step_run(_owner(body), access, run, status, task)
            by_slug = {s.slug: s for s in steps}
            for create in decision.create:
                job = build_step_job(
                    step_run,
                    by_slug.get(create.step),  # None: the workspace's fetch
                    create.number,
                    deadline_seconds=create.deadline_seconds,
                    hosts=create.hosts,
                )
                self.kube.create(job)
        for pod in decision.stop:  # `docker stop`: the pod ends, kept with its log until the run's end
            self.kube.patch("v1", "Pod", _owner(body).namespace, pod, {"spec": {"activeDeadlineSeconds": 1}})
        verdict = decision.verdict
        fields = {"status": verdict.status, "steps": [s.as_status(conditions.format_time) for s in decision.steps]}
        running = [s.id for s in decision.steps if s.status == "Running"]
        message = verdict.message or (f"running {', '.join(running)}" if running else "waiting for the next step")
        self._write(body, fields, verdict.status, message)

    # -- the end ----------------------------------------------------------------------------------

    def _end_step_jobs(
        self,
        body: Mapping[str, Any],
        verdict: Verdict,
        states: tuple[StepState, ...],
        found: Mapping[str, list[Attempt]],
        access: RegistryAccess,
    ) -> None:
        """Logs read from every step pod (running ones too) before anything is stopped, the final
        status written, then the clean-up (`_clean_up_step_jobs`, through `_finish`)."""
        declared = (body.get("status") or {}).get("steps") or []
        if not states:
            states = tuple(StepState(str(e["id"]), str(e.get("type") or ""), "Queued") for e in declared)
        final = [s.as_status(conditions.format_time) for s in final_states(states, verdict.status)]
        text = self._step_logs(body, states, found)
        self._finish(body, verdict, None, access, steps=final, log_text=text)

    def _step_logs(
        self, body: Mapping[str, Any], states: tuple[StepState, ...], found: Mapping[str, list[Attempt]]
    ) -> str:
        namespace = body["metadata"]["namespace"]
        ids = tuple(state.id for state in states)
        parts = []
        for attempt in found.get(FETCH_STEP) or []:
            if attempt.pod:
                parts.append(
                    self.kube.pod_log(namespace, attempt.pod, STEP_CONTAINER, limit_bytes=LOG_LIMIT_BYTES) or ""
                )
        for step_id, slug in zip(ids, step_container_names(ids), strict=True):
            tries = [a for a in found.get(slug) or [] if a.pod]
            for attempt in tries:
                text = self.kube.pod_log(namespace, str(attempt.pod), STEP_CONTAINER, limit_bytes=LOG_LIMIT_BYTES)
                if text is None:  # the container never started
                    continue
                which = f" (attempt {attempt.number + 1})" if len(tries) > 1 else ""
                parts.append(f"\n----- Executing step ID: {step_id}{which} -----\n")
                parts.append(text if not text or text.endswith("\n") else text + "\n")
        return redact(clean("".join(parts)), self._secret_values(body))

    def _clean_up_step_jobs(self, body: Mapping[str, Any]) -> None:
        """Staging tags, the workspace and the pull secret, the step Jobs (and their pods) last: a
        restart that finds a Job of the ended run comes back here. Idempotent."""
        meta, status = body["metadata"], body.get("status") or {}
        namespace = meta["namespace"]
        run_id = status.get("runId")
        builds = [str(s["id"]) for s in status.get("steps") or [] if s.get("type") == "build"]
        if run_id and builds:
            self._remove_staging(body, run_id, builds)
        self.kube.delete("v1", "PersistentVolumeClaim", namespace, workspace_claim_name(meta["name"]))
        self.kube.delete("v1", "Secret", namespace, pull_secret_name(meta["name"]))
        label = BuildRunNames(meta["name"]).label
        for job in self.kube.list("batch/v1", "Job", namespace, label_selector=f"{BUILD_RUN_LABEL}={label}"):
            self.kube.delete("batch/v1", "Job", namespace, job["metadata"]["name"], propagation="Background")

    def _remove_staging(self, body: Mapping[str, Any], run_id: str, builds: list[str]) -> None:
        ids = [str(s["id"]) for s in (body.get("status") or {}).get("steps") or []]
        slugs = dict(zip(ids, step_container_names(ids), strict=True))
        spec = body.get("spec") or {}
        registry = ((spec.get("build") or {}).get("registryRef") or {}).get("name")
        namespace = body["metadata"]["namespace"]
        if not registry:
            task = self.kube.get(API_VERSION, "BuildTask", namespace, (spec.get("taskRef") or {}).get("name", ""))
            registry = (((task or {}).get("spec") or {}).get("registryRef") or {}).get("name")
        if not registry:
            return
        try:
            access = registry_access(self.kube, namespace, registry)
            staged = tuple(f"{access.host}/{staging_repository(run_id, slugs[i])}:{STAGING_TAG}" for i in builds)
            remove_staged(access, staging_grant(run_id), staged)
        except Exception as error:  # the registry gone (its staging with it) or down (left): the run ends anyway
            log.warning("removing the staged images of %s failed: %s", body["metadata"]["name"], error)
