"""Advancing one BuildRun, from what its Job and pod show, one idempotent step at a time.

    no run ID     → take one (`ids.py`), write it with status Queued
    git source    → resolve the revision to a commit once, write it (Kaniko builds exactly that);
                    a commit run (spec.triggeredBy.commit) builds the commit it was started for
    no Job        → create the run's docker-config Secret and its Job (deterministic names: a second
                    create after a crash is refused by the API server, so there is one Job per run);
                    a task file is planned first and runs as one pod of ordered steps when its plan
                    is a chain (`taskrun.py`), else it ends as Error before anything is created
    steps         → a task run's `status.steps` follow its pod's init containers (`taskrun.judge_task`)
    Job running   → Queued/Running; cancel or timeout end it
    Job ended     → read the log, keep it in the registry, write the final status, then delete the
                    Job (and with it the pod) and the Secret

Guarantees: one Job per run whatever restarts happen (the name is fixed, and a run that recorded a
Job but finds none ends as Error rather than building twice); the final status is written before
the Job is deleted, so a restart in between finds a finished run and only finishes the clean-up;
the log is read before anything is deleted, also on cancel and timeout; Secret values never reach
the status, Events or the kept log (values of Secrets the run names are redacted).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from dockyard.builds import definition as defs
from dockyard.builds.access import RegistryAccess, registry_access, run_grants
from dockyard.builds.baseimage import reported_base
from dockyard.builds.git import GitError
from dockyard.builds.ids import allocate_run_id
from dockyard.builds.logstore import redact
from dockyard.builds.manifests.job import (
    FETCH_CONTAINER,
    KANIKO_CONTAINER,
    WORKSPACE,
    KanikoBuild,
    SecretArg,
    basic_auth_entry,
    build_credentials_secret,
    build_job,
    docker_config,
)
from dockyard.builds.manifests.steps import BuildStep, Step, TaskPod, build_task_job, step_container_names
from dockyard.builds.metrics import BuildMetrics, register_build_metrics
from dockyard.builds.observe import TERMINAL, Verdict, clean, failure_message, job_failure, judge, parse_time, tail
from dockyard.builds.runplan import TaskPlan, run_plan
from dockyard.builds.shape import Shape
from dockyard.builds.sources import source_fetch
from dockyard.builds.stepjobs.reconcile import StepJobsReconciler
from dockyard.builds.taskfile.plan import PlanError
from dockyard.builds.taskrun import (
    cache_repositories,
    declared_steps,
    final_steps,
    judge_task,
    pushed_images,
    view_steps,
)
from dockyard.builds.template import RunVariables, run_date
from dockyard.builds.translate import NotRunnable, volume_files
from dockyard.core import conditions
from dockyard.core.conditions import ConditionType, EventReason, Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube, contains
from dockyard.core.meta import Owner
from dockyard.core.names import BuildRunNames
from dockyard.models import API_VERSION
from dockyard.models.builds import BuildRunSpec, BuildTaskSpec
from dockyard.settings import OperatorSettings

log = logging.getLogger("dockyard.builds")

KIND: Final = "BuildRun"
MEMO_KEY: Final = "builds"
REASONS: Final = {
    "Queued": ("Unknown", Reason.QUEUED),
    "Running": ("Unknown", Reason.RUNNING),
    "Succeeded": ("True", Reason.SUCCEEDED),
    "Failed": ("False", Reason.BUILD_FAILED),
    "Canceled": ("False", Reason.CANCELED),
    "Timeout": ("False", Reason.TIMED_OUT),
    "Error": ("False", Reason.RUN_ERROR),
}
CREDENTIAL_MARGIN_SECONDS: Final = 600
LOG_LIMIT_BYTES: Final = 64 * 1024 * 1024
LATEST_KEPT: Final = 10_000


class LogKeeper(Protocol):
    """Where finished runs' logs live (the run's registry; see `builds/logs.py`)."""

    def store(self, access: RegistryAccess, run_id: str, run_uid: str, text: str) -> str: ...

    def delete(self, access: RegistryAccess, reference: str) -> bool: ...


class GitResolver(Protocol):
    def __call__(
        self, url: str, revision: str, username: str | None, password: str | None
    ) -> tuple[str | None, str]: ...


def format_time(moment: datetime) -> str:
    return conditions.format_time(moment)


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, KIND, meta["name"], meta["namespace"], meta["uid"])


@dataclass(frozen=True)
class Observed:
    """The run's Job and newest pod as the watches show them (None: not seen); on the Job-per-step
    path every Job and pod of the run."""

    job: Mapping[str, Any] | None
    pod: Mapping[str, Any] | None
    jobs: tuple[Mapping[str, Any], ...] = ()
    pods: tuple[Mapping[str, Any], ...] = ()


class RunReconciler(StepJobsReconciler):
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        logs: LogKeeper,
        resolve_git: GitResolver,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: BuildMetrics | None = None,
    ) -> None:
        self.kube, self.settings, self.logs, self.resolve_git, self.now = kube, settings, logs, resolve_git, now
        self.metrics = metrics or register_build_metrics(None)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()
        self._latest: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        """The last status this process wrote per run (by uid): a run's Job, pod and own events
        arrive on different watches, and a body from one may predate what another just wrote."""

    # -- the one entry point -------------------------------------------------------------------

    def advance(self, body: Mapping[str, Any], observed: Observed, task: Mapping[str, Any] | None) -> None:
        """One step for one run; steps of the same run never overlap in this process."""
        uid = body["metadata"]["uid"]
        with self._guard:
            lock = self._locks[uid]
        with lock:
            self._advance(self._freshest(body), observed, task)

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)
            self._latest.pop(uid, None)

    def _freshest(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fresh = dict(body)
        with self._guard:
            latest = self._latest.get(body["metadata"]["uid"])
        if latest is not None and _version(latest) > _version(body):
            fresh["metadata"], fresh["status"] = dict(latest["metadata"]), dict(latest.get("status") or {})
        return fresh

    def _advance(self, body: dict[str, Any], observed: Observed, task: Mapping[str, Any] | None) -> None:
        status = dict(body.get("status") or {})
        if status.get("status") in TERMINAL:
            if observed.job is not None:  # a restart between the final status and the clean-up
                self._clean_up(body)
            return
        spec = BuildRunSpec.model_validate(body.get("spec") or {})
        task_spec = None
        if spec.task_ref is not None:
            if task is None:
                raise WaitsForUser(Reason.WAITING, f"BuildTask {spec.task_ref.name} does not exist")
            task_spec = BuildTaskSpec.model_validate(task.get("spec") or {})
        run = defs.resolve(spec, spec.task_ref.name if spec.task_ref else None, task_spec)
        if spec.cancel and not status.get("jobName") and not status.get("executionShape"):
            self._finish(body, Verdict("Canceled", "canceled before the build started"), None, None)
            return
        try:
            defs.check_buildable(run.definition)
        except defs.NotBuildable as error:
            self._finish(body, Verdict("Error", str(error)), None, None)
            return
        namespace = body["metadata"]["namespace"]
        access = registry_access(self.kube, namespace, run.definition.registry_ref.name)
        if not status.get("runId"):
            status = self._take_run_id(body, status, access, run)
        if run.definition.source.git is not None and not status.get("commit"):
            status = self._resolve_commit(body, status, run)
            if status.get("status") in TERMINAL:
                return
        if status.get("executionShape") == Shape.JOB_PER_STEP:
            self._advance_step_jobs(body, status, spec, access, run, observed)
            return
        job = observed.job
        if job is None and not status.get("jobName"):
            start = self._start_task if run.definition.task_file is not None else self._start
            job = start(body, status, access, run)
            status = dict(body.get("status") or {})
            if status.get("status") in TERMINAL:  # refused before any Job
                return
            if status.get("executionShape") == Shape.JOB_PER_STEP:
                self._advance_step_jobs(body, status, spec, access, run, observed)
                return
            status = {**status, "jobName": BuildRunNames(body["metadata"]["name"]).job}
        elif job is None:
            job = self.kube.get("batch/v1", "Job", namespace, status["jobName"])
            if job is None:
                self._finish(body, Verdict("Error", "the build Job was deleted before the run ended"), None, access)
                return
        if spec.cancel:
            self._finish(body, Verdict("Canceled", "canceled by spec.cancel"), observed.pod, access)
            return
        started = parse_time(status.get("startTime"))
        if started is not None and self.now() >= started + timedelta(seconds=run.timeout_seconds):
            verdict = Verdict("Timeout", f"the run exceeded its timeout of {run.timeout_seconds}s")
            self._finish(body, verdict, observed.pod, access)
            return
        fields: dict[str, Any] = _base_image_fields(observed.pod, status)  # base-image tracking
        if status.get("steps"):
            failure = job_failure(job) if job is not None else None
            verdict, steps = judge_task(status["steps"], failure, observed.pod, self.now())
            fields["steps"] = [step.as_status() for step in steps]
        else:
            verdict = judge(job, observed.pod)
        if verdict.finished:
            self._finish(body, verdict, observed.pod, access)
        else:
            fields["status"] = verdict.status
            self._write(body, fields, verdict.status, verdict.message or _progress(verdict))

    def deadline(self, body: Mapping[str, Any], task: Mapping[str, Any] | None) -> datetime | None:
        """When a running run times out (for the timer that checks)."""
        status = body.get("status") or {}
        started = parse_time(status.get("startTime"))
        if started is None or status.get("status") in TERMINAL:
            return None
        spec = BuildRunSpec.model_validate(body.get("spec") or {})
        timeout = spec.timeout_seconds or (
            spec.build.timeout_seconds
            if spec.build
            else BuildTaskSpec.model_validate((task or {}).get("spec") or {}).timeout_seconds
            if task
            else 3600
        )
        return started + timedelta(seconds=timeout)

    # -- steps ------------------------------------------------------------------------------------

    def _take_run_id(
        self, body: Mapping[str, Any], status: dict[str, Any], access: RegistryAccess, run: defs.RunDefinition
    ) -> dict[str, Any]:
        run_id = allocate_run_id(self.kube, access.owner)
        fields = {"runId": run_id, "status": "Queued", "runType": run.run_type}
        if run.task_name:
            fields["taskName"] = run.task_name
        self._write(body, fields, "Queued", f"run {run_id} is queued")
        return {**status, **fields}

    def _resolve_commit(
        self, body: Mapping[str, Any], status: dict[str, Any], run: defs.RunDefinition
    ) -> dict[str, Any]:
        git = run.definition.source.git
        assert git is not None
        namespace = body["metadata"]["namespace"]
        username = password = None
        if git.auth_secret_ref is not None:
            secret = self._secret(namespace, git.auth_secret_ref.name)
            username, password = _decoded(secret, "username"), _decoded(secret, "password")
        cause = BuildRunSpec.model_validate(body.get("spec") or {}).triggered_by
        pinned = cause.commit if cause is not None else None
        try:
            # a commit run builds the commit pushed, not whatever the branch holds by now
            ref, commit = self.resolve_git(git.url, pinned or git.revision, username, password)
            if pinned and cause is not None and cause.branch:
                ref = f"refs/heads/{cause.branch}"  # Kaniko clones the branch, then checks the commit out
        except GitError as error:
            self._finish(body, Verdict("Error", f"source.git: {error}"), None, None)
            return {**status, "status": "Error"}
        fields = {"commit": commit, "ref": ref}
        self._write(body, fields, "Queued", f"building commit {commit[:12]}")
        return {**status, **fields}

    def _start(
        self, body: Mapping[str, Any], status: dict[str, Any], access: RegistryAccess, run: defs.RunDefinition
    ) -> Mapping[str, Any] | None:
        owner = owner_of(body)
        started = self.now()
        build = run.definition.docker_build
        assert build is not None
        variables = self._variables(body, status, access, run, started)
        try:
            pushed = defs.destinations(build.images, variables, run.values)
        except ValueError as error:
            self._finish(body, Verdict("Error", str(error)), None, None)
            return None
        cache = defs.cache_repository(run.definition, pushed, access.host)
        own = defs.own_repositories((*pushed, *((cache,) if cache else ())), access.host)
        kaniko = self._kaniko_build(owner, access, run, status, pushed, cache)
        self.kube.create_if_missing(
            "v1",
            "Secret",
            owner.namespace,
            BuildRunNames(owner.name).credentials,
            lambda: build_credentials_secret(owner, self._docker_config(owner, access, run, own)),
        )
        created = self.kube.create(build_job(kaniko))
        fields = {"jobName": BuildRunNames(owner.name).job, "startTime": format_time(started)}
        self._write(body, fields, "Queued", f"run {status['runId']} is queued")
        if created is not None:
            images = ", ".join(pushed) or "no image (noPush)"
            self.kube.post_event(
                dict(body), "Normal", EventReason.RUN_STARTED, f"run {status['runId']} builds {images}"
            )
        return created

    def _start_task(
        self, body: Mapping[str, Any], status: dict[str, Any], access: RegistryAccess, run: defs.RunDefinition
    ) -> Mapping[str, Any] | None:
        """A task file's run on its shape (`runplan.py`): a chain as one pod (`taskrun.py`), else a
        Job per step (`stepjobs/`); its volume files go into the run's Secret either way. A plan that
        cannot run ends as Error naming the step, before anything is created."""
        owner = owner_of(body)
        started = self.now()
        try:
            task = self._task_plan(body, status, access, run, started)
            files = volume_files(
                task.volumes,
                {ref.id: self._secret_value(owner.namespace, ref.secret, ref.key) for ref in task.secrets},
                task.secrets,
            )
        except (PlanError, NotRunnable) as error:
            self._finish(body, Verdict("Error", f"taskFile: {error}"), None, None)
            return None
        if task.shape is Shape.JOB_PER_STEP:
            self._start_step_jobs(body, status, access, run, task, files)
            return None
        planned, steps = task.plan, task.steps
        pushed = pushed_images(steps)
        own = defs.own_repositories((*pushed, *cache_repositories(steps)), access.host)
        fetch = source_fetch(run.definition, status)  # None: no source (a context-less task file)
        task_pod = TaskPod(
            owner=owner,
            registry_host=access.host,
            kaniko_image=run.definition.builder_image or self.settings.kaniko_image,
            operator_image=self.settings.operator_image,
            fetch=fetch,
            steps=steps,
            timeout_seconds=run.timeout_seconds,
            resources=self._resources(run),
            ca_config_map=access.ca_config_map,
            insecure_registry=access.plain_http,
            base_step=tracked_build_step(steps) if run.task_name is not None else None,  # base-image tracking
            volumes=task.volumes,
            tools_image=self.settings.step_tools_image,
        )
        self.kube.create_if_missing(
            "v1",
            "Secret",
            owner.namespace,
            BuildRunNames(owner.name).credentials,
            lambda: build_credentials_secret(owner, self._docker_config(owner, access, run, own), files),
        )
        created = self.kube.create(build_task_job(task_pod))
        fields = {
            "jobName": BuildRunNames(owner.name).job,
            "startTime": format_time(started),
            "steps": declared_steps(steps),
        }
        self._write(body, fields, "Queued", f"run {status['runId']} is queued")
        if created is not None:
            chain = " → ".join(step.id for step in steps)
            self.kube.post_event(dict(body), "Normal", EventReason.RUN_STARTED, f"run {status['runId']} runs {chain}")
            if planned.warnings:
                self.kube.post_event(
                    dict(body), "Warning", EventReason.PLAN_WARNING, "; ".join(planned.warnings)[:1024]
                )
        return created

    def _task_plan(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        access: RegistryAccess,
        run: defs.RunDefinition,
        started: datetime,
    ) -> TaskPlan:
        """The run's task file planned on its shape; the same for every call of one run."""
        assert run.definition.task_file is not None
        return run_plan(
            run.definition.task_file,
            self._variables(body, status, access, run, started),
            run.values,
            access.host,
            allow_privileged=self.settings.build_allow_privileged_steps,
        )

    def _variables(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        access: RegistryAccess,
        run: defs.RunDefinition,
        started: datetime,
    ) -> RunVariables:
        return RunVariables(
            ID=status["runId"],
            Registry=access.host,
            Date=run_date(started),
            Commit=status.get("commit") or "",
            Branch=_branch(status.get("ref")),
            TaskName=run.task_name or "",
            TriggeredBy=str((body.get("spec") or {}).get("trigger") or "Manual"),
        )

    def _resources(self, run: defs.RunDefinition) -> Mapping[str, Any]:
        settings = self.settings
        if run.definition.resources is not None:
            return run.definition.resources.model_dump(exclude_none=True)
        return {
            "requests": {"cpu": settings.build_cpu_request, "memory": settings.build_memory_request},
            "limits": {"cpu": settings.build_cpu_limit, "memory": settings.build_memory_limit},
        }

    def _kaniko_build(
        self,
        owner: Owner,
        access: RegistryAccess,
        run: defs.RunDefinition,
        status: Mapping[str, Any],
        pushed: tuple[str, ...],
        cache: str | None,
    ) -> KanikoBuild:
        definition, settings = run.definition, self.settings
        build = definition.docker_build
        assert build is not None
        fetch = source_fetch(definition, status)
        assert fetch is not None  # check_buildable: a dockerBuild has a source
        resources = self._resources(run)
        return KanikoBuild(
            owner=owner,
            registry_host=access.host,
            kaniko_image=definition.builder_image or settings.kaniko_image,
            fetcher_image=settings.operator_image,
            context=f"dir://{WORKSPACE}",
            dockerfile=build.dockerfile,
            destinations=pushed,
            timeout_seconds=run.timeout_seconds,
            resources=resources,
            ca_config_map=access.ca_config_map,
            fetch=fetch,
            build_args=tuple((a.name, a.value) for a in build.build_args if a.value is not None),
            secret_args=tuple(
                SecretArg(a.name, a.value_from.name, a.value_from.key) for a in build.build_args if a.value_from
            ),
            target=build.target,
            platform=build.platform,
            no_push=build.no_push,
            cache_repository=cache,
            insecure_registry=access.plain_http,
            report_base=run.task_name is not None,  # base-image tracking
        )

    def _docker_config(
        self, owner: Owner, access: RegistryAccess, run: defs.RunDefinition, own: tuple[str, ...]
    ) -> str:
        auths: dict[str, Mapping[str, Any]] = {}
        for reference in run.definition.pull_secrets:
            secret = self._secret(owner.namespace, reference.name)
            text = _decoded(secret, ".dockerconfigjson")
            if text is None:
                raise WaitsForUser(Reason.WAITING, f"pullSecrets: Secret {reference.name} has no .dockerconfigjson key")
            auths.update((json.loads(text).get("auths") or {}).items())
        subject = f"buildrun:{owner.namespace}/{owner.name}"
        ttl = run.timeout_seconds + CREDENTIAL_MARGIN_SECONDS
        auths[access.host] = basic_auth_entry(*access.delegation(subject, run_grants(own), ttl))
        return docker_config(auths)

    def _secret_value(self, namespace: str, name: str, key: str) -> str:
        """A task-file secret's value (for a volume file only: containers get it from the kubelet)."""
        value = _decoded(self._secret(namespace, name), key)
        if value is None:
            raise WaitsForUser(Reason.WAITING, f"Secret {name} has no key {key}")
        return value

    def _secret(self, namespace: str, name: str) -> dict[str, Any]:
        secret = self.kube.get("v1", "Secret", namespace, name)
        if secret is None:
            raise WaitsForUser(Reason.WAITING, f"Secret {name} does not exist")
        return secret

    # -- the end ------------------------------------------------------------------------------------

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
        """Read and keep the log, write the final status, then remove the Job and the Secret
        (`steps`, `log_text`: the Job-per-step path's, read from its pods)."""
        status = dict(body.get("status") or {})
        finished = self.now()
        fields: dict[str, Any] = {"status": verdict.status, "finishTime": format_time(finished)}
        fields |= _base_image_fields(pod, status)  # base-image tracking
        started = parse_time(status.get("startTime"))
        seconds = (finished - started).total_seconds() if started is not None else None
        if seconds is not None:
            fields["duration"] = format_duration(seconds)
        message = verdict.message
        declared = status.get("steps") or []
        if steps is not None:
            fields["steps"] = steps
        elif declared:
            fields["steps"] = final_steps(view_steps(declared, pod), verdict.status)
        text = self._read_log(body, pod) if log_text is None else log_text
        if text:
            if verdict.status == "Failed" and not declared:  # a step's verdict names the step already
                message = failure_message(text) or message
            fields["logTail"] = tail(text)
            if access is not None and status.get("runId"):
                fields["logReference"] = self._keep_log(body, access, status["runId"], text)
        if verdict.status == "Succeeded":
            fields["outputImages"] = [image.as_status() for image in verdict.outputs]
        fields["message"] = message or None
        self._write(body, fields, verdict.status, message or f"run {status.get('runId', '')} succeeded".strip())
        self.metrics.observe_finish(verdict.status, status.get("runType"), seconds)
        kind: Literal["Normal", "Warning"] = "Normal" if verdict.status == "Succeeded" else "Warning"
        summary = f"run {status.get('runId') or '(no ID)'} {verdict.status.lower()}"
        self.kube.post_event(
            dict(body), kind, EventReason.RUN_FINISHED, f"{summary}: {message}" if message else summary
        )
        self._clean_up(body)

    def _read_log(self, body: Mapping[str, Any], pod: Mapping[str, Any] | None) -> str:
        if pod is None:
            return ""
        namespace, name = body["metadata"]["namespace"], pod["metadata"]["name"]
        parts = []
        declared = (body.get("status") or {}).get("steps") or []
        if declared:
            # a task run: every step that started, in order, under a header as ACR prints one
            ids = tuple(str(step["id"]) for step in declared)
            containers = [(FETCH_CONTAINER, None), *zip(step_container_names(ids), ids, strict=True)]
        else:
            containers = [(FETCH_CONTAINER, None), (KANIKO_CONTAINER, None)]
        for container, step_id in containers:
            text = self.kube.pod_log(namespace, name, container, limit_bytes=LOG_LIMIT_BYTES)
            if text is None or (not text and step_id is None):  # None: the container never started
                continue
            if step_id is None:
                parts.append(text)
                continue
            parts.append(f"\n----- Executing step ID: {step_id} -----\n")
            parts.append(text if not text or text.endswith("\n") else text + "\n")
        return redact(clean("".join(parts)), self._secret_values(body))

    def _secret_values(self, body: Mapping[str, Any]) -> list[str]:
        """Values of the Secrets the run names, to be kept out of its log."""
        spec = BuildRunSpec.model_validate(body.get("spec") or {})
        definition = spec.build
        namespace = body["metadata"]["namespace"]
        if definition is None and spec.task_ref is not None:
            task = self.kube.get(API_VERSION, "BuildTask", namespace, spec.task_ref.name)
            definition = BuildTaskSpec.model_validate((task or {}).get("spec") or {}) if task else None
        if definition is None:
            return []
        values = []
        for name, key in defs.secret_selectors(definition):
            secret = self.kube.get("v1", "Secret", namespace, name)
            value = _decoded(secret, key) if secret else None
            if value:
                values.append(value)
        return values

    def _keep_log(self, body: Mapping[str, Any], access: RegistryAccess, run_id: str, text: str) -> str | None:
        try:
            return self.logs.store(access, run_id, body["metadata"]["uid"], text)
        except Exception as error:  # any failure to keep a log must not block the run's end
            log.warning("keeping the log of %s failed: %s", body["metadata"]["name"], error)
            self.kube.post_event(
                dict(body), "Warning", EventReason.LOG_NOT_STORED, f"the log is not kept in the registry: {error}"[:512]
            )
            return None

    def _clean_up(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        names = BuildRunNames(meta["name"])
        if (body.get("status") or {}).get("executionShape") == Shape.JOB_PER_STEP:
            self._clean_up_step_jobs(body)
        self.kube.delete("batch/v1", "Job", meta["namespace"], names.job, propagation="Background")
        self.kube.delete("v1", "Secret", meta["namespace"], names.credentials)

    def _write(self, body: Mapping[str, Any], fields: Mapping[str, Any], run_status: str, message: str) -> None:
        current = dict(body.get("status") or {})
        condition_status, reason = REASONS[run_status]
        generation = int(body["metadata"].get("generation") or 1)
        patch = dict(fields)
        patch |= conditions.status_patch(
            current,
            type=ConditionType.SUCCEEDED,
            status=condition_status,  # type: ignore[arg-type]
            reason=reason,
            message=message,
            observed_generation=generation,
            now=self.now(),
        )
        if not patch or contains(current, patch):
            return
        meta = body["metadata"]
        stored = self.kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], patch)
        if isinstance(body, dict):
            body.setdefault("status", {}).update(patch)
        if stored is not None:
            with self._guard:
                self._latest[meta["uid"]] = {"metadata": stored["metadata"], "status": stored.get("status") or {}}
                self._latest.move_to_end(meta["uid"])
                while len(self._latest) > LATEST_KEPT:
                    self._latest.popitem(last=False)


def format_duration(seconds: float) -> str:
    """kubectl's style: 45s, 3m7s, 1h2m5s."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _base_image_fields(pod: Mapping[str, Any] | None, status: Mapping[str, Any]) -> dict[str, Any]:
    """`baseImage` once the fetch container reported the base it resolved (base-image tracking)."""
    base = reported_base(pod, FETCH_CONTAINER)
    return {"baseImage": base} if base is not None and status.get("baseImage") != base else {}


def _version(body: Mapping[str, Any]) -> int:
    version = str((body.get("metadata") or {}).get("resourceVersion") or "0")
    return int(version) if version.isdigit() else 0


def _branch(ref: str | None) -> str:
    return ref.removeprefix("refs/heads/") if ref and ref.startswith("refs/heads/") else ""


def _progress(verdict: Verdict) -> str:
    return "the build is running" if verdict.status == "Running" else "waiting for the build pod to start"


def _decoded(secret: Mapping[str, Any] | None, key: str) -> str | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode("utf-8", errors="replace") if value else None


def tracked_build_step(steps: tuple[Step, ...]) -> BuildStep | None:
    """The task file's build step whose base a task tracks: the last one. ACR tracks every build
    step's runtime base; a run records one base here, and the last build step makes the image a
    build → test → push chain ships (a base an earlier step built is the task's own image, which
    the trigger never follows)."""
    return next((step for step in reversed(steps) if isinstance(step, BuildStep)), None)


def reconciler_from(memo: Mapping[str, object]) -> RunReconciler:
    """The run reconciler that startup put into kopf's `memo`."""
    reconciler = memo.get(MEMO_KEY)
    if not isinstance(reconciler, RunReconciler):
        raise LookupError("the build reconciler is not in memo: the startup handler has not run")
    return reconciler
