"""Task-file runs on the single-pod path: which plans it runs, the steps of its pod, and what the
pod's init containers say about each step; and the planning both paths share. Pure.

A plan runs here when `shape.execution_shape` says so: a chain (each step depends on exactly the
step before it, the first on nothing) whose steps need nothing the init-container shape cannot give;
every other plan runs on the Job-per-step path (`stepjobs/`), which reuses the step mapping below
(`plan_task`, `check_translatable`, `_build_step`, `cmd_step`). What a step maps to here:

- build → Kaniko without pushing, the image kept as an OCI layout in the pod (`/dockyard/oci`);
- push  → our pusher from the layout of the latest earlier build step that tagged the image
          (an image no earlier build step tagged is refused);
- cmd   → the step's image and arguments, env and working directory as acr-builder's docker run
          gives them, with docker-run flags, `|| true`/`> /dev/null`, `docker pull`, task secrets
          and secret-file volumes translated by `translate.py` (which also refuses what does not
          map); a plan whose cmd runs (or pulls) an image built earlier in the same run takes the
          Job-per-step path, which stages that image in the run's registry.

`plan_task` plans a run's file with its secrets as placeholders (`translate.py`): the pods get the
Kubernetes Secrets by reference, never their values. `privileged` steps need the operator setting.

Timeouts: the run's timeout covers the chain, and a step running longer than acr-builder's default step
timeout (600 s; a plan with any other takes the Job-per-step path) ends the run as Timeout.
Step status: from `initContainerStatuses`; a step that never started has status Skipped once the
run ended (Queued while it runs).
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from dockyard.builds.definition import qualify, split_reference
from dockyard.builds.manifests.job import FETCH_CONTAINER, WORKSPACE
from dockyard.builds.manifests.steps import BuildStep, CmdStep, PushStep, Step, step_container_names
from dockyard.builds.observe import NEVER_STARTS, PULLING_FAILS, Verdict, failure_message, parse_digests, parse_time
from dockyard.builds.shape import DEFAULT_STEP_TIMEOUT, Shape, execution_shape
from dockyard.builds.taskfile.arguments import container_working_directory
from dockyard.builds.taskfile.plan import Plan, PlannedStep, normalize_image, plan
from dockyard.builds.template import RunVariables
from dockyard.builds.translate import (
    BUSYBOX,
    DockerStop,
    NotRunnable,
    SecretRef,
    TaskVolume,
    build_options,
    check_no_secret,
    check_secrets_whole,
    docker_cli,
    is_docker_cli,
    placeholders,
    refuse,
    run_options,
    secret_refs,
    secrets_in,
    shell_effects,
    step_mounts,
    translation_warnings,
    wrapped_command,
)

JOB_PER_STEP: Final = "runs on the Job-per-step path (`stepjobs/`)"


# -- plan → steps --------------------------------------------------------------------------------


def check_translatable(plan: Plan, allow_privileged: bool = False) -> None:
    """What neither execution shape maps, refused before anything runs (the per-step translations
    in `cmd_step`/`_build_step` refuse the rest as they meet it)."""
    if not plan.steps:
        raise NotRunnable("the task file has no steps")
    for step in plan.steps:
        # on a build or push step `privileged` reaches no container that matters (a planner warning)
        if step.privileged and step.type == "cmd" and not allow_privileged:
            raise refuse(step, PRIVILEGED_REFUSED)


def _check_shape(plan: Plan, allow_privileged: bool) -> None:
    check_translatable(plan, allow_privileged)
    shape, why = execution_shape(plan)
    if shape is not Shape.POD:  # the caller chose the shape (`shape.py`): a guard, not a user's message
        raise NotRunnable(f"{why}: it {JOB_PER_STEP}")


PRIVILEGED_REFUSED: Final = (
    "privileged containers are not allowed (the operator setting DOCKYARD_BUILD_ALLOW_PRIVILEGED_STEPS allows them)"
)


def _workdir(step: PlannedStep) -> str:
    return container_working_directory(step.working_directory)


def _build_step(step: PlannedStep, container: str, registry: str, refs: tuple[SecretRef, ...] = ()) -> BuildStep:
    context = step.context or "."
    if "://" in context or context.startswith("git@") or context == "-":
        raise refuse(step, f"build context {context!r}: only a directory of the run's source is built yet")
    if step.detach:
        raise refuse(
            step,
            "detach on a build step is not translated: on ACR the step succeeds as soon as the build starts, "
            "so no later step can rely on its image",
        )
    if step.disable_working_directory_override:
        raise refuse(
            step,
            "disableWorkingDirectoryOverride on a build step is not translated: on ACR the build then runs in "
            "the docker CLI image's own directory, not the source (remove it)",
        )
    options = build_options(step)
    if step.volume_mounts:
        raise refuse(
            step,
            "volumeMounts on a build step serve docker build flags (--secret src=…) that are not translated; "
            "pass a secret as a build argument ({{.Secrets.id}}) instead",
        )
    for what, text in (
        ("the build context", context),
        ("the Dockerfile path", step.dockerfile),
        ("the target", step.target),
        ("the working directory", step.working_directory),
        *(("a tag", tag) for tag in step.tags),
    ):
        check_no_secret(step, what, text)
    workdir = _workdir(step)
    directory = posixpath.normpath(posixpath.join(workdir, context))
    dockerfile = posixpath.normpath(
        posixpath.join(workdir, step.dockerfile) if step.dockerfile else posixpath.join(directory, "Dockerfile")
    )
    for path, what in ((directory, "context"), (dockerfile, "Dockerfile")):
        if path != WORKSPACE and not path.startswith(WORKSPACE + "/"):
            raise refuse(step, f"the {what} {path} is outside the workspace")
    return BuildStep(
        id=step.id,
        container=container,
        context=directory,
        dockerfile=dockerfile,
        destinations=tuple(qualify(tag, registry) for tag in step.tags),
        working_directory=workdir,
        build_args=build_arguments(step),
        target=step.target,
        secrets=secrets_in(" ".join(build_arguments(step)), refs),
        labels=options.labels,
        platform=options.platform,
        cache_repository=build_cache_repository(step, registry) if step.cache and not options.no_cache else None,
    )


def build_arguments(step: PlannedStep) -> tuple[str, ...]:
    """`--build-arg K` without a value takes K from the environment of the docker CLI, which on ACR
    is the step's `env` (task `env` merged): resolved here, since Kaniko's environment is not the
    step's; a K the environment lacks is left out, as docker leaves it out (the ARG's default holds)."""
    env = dict(entry.partition("=")[::2] for entry in step.container_env)
    out = []
    for argument in step.build_args:
        if "=" in argument:
            out.append(argument)
        elif argument in env:
            out.append(f"{argument}={env[argument]}")
    return tuple(out)


def build_cache_repository(step: PlannedStep, registry: str) -> str | None:
    """`cache: enabled`: Kaniko's cache in the run's registry, under the first tag's repository (as
    acr-builder's buildx cache is a tag of it); none for a build without tags, as on ACR."""
    if not step.tags:
        return None
    _, repository, _ = split_reference(qualify(step.tags[0], registry))
    return f"{registry}/{repository}/cache"


def cache_repositories(steps: tuple[Step, ...]) -> tuple[str, ...]:
    """The layer caches the run's build steps push to (the run's credential must grant them)."""
    return tuple(dict.fromkeys(s.cache_repository for s in steps if isinstance(s, BuildStep) and s.cache_repository))


def _same_run_guard(step: PlannedStep, image: str, built: Mapping[str, str]) -> None:
    if normalize_image(image) in built:  # a guard: `shape.py` sends such plans to the Job-per-step path
        raise refuse(
            step, f"runs {image}, built earlier in this run by step {built[normalize_image(image)]}: it {JOB_PER_STEP}"
        )


def cmd_step(
    step: PlannedStep,
    container: str,
    built: Mapping[str, str],
    refs: tuple[SecretRef, ...] = (),
    volumes: tuple[TaskVolume, ...] = (),
    *,
    allow_privileged: bool = False,
) -> CmdStep:
    """A cmd step's container settings (`translate.py`): docker run flags, shell operators,
    `docker pull`, secrets and volumes. `docker stop` is the Job-per-step path's (`stepjobs/steps.py`
    maps it before calling this): here it names no detached step, and is refused as such.
    `built`: normalized tag → the step that built it earlier in the same pod (a guard)."""
    if not step.image:
        raise refuse(step, "cmd names no image")
    check_no_secret(step, "the image name", step.image)
    _same_run_guard(step, step.image, built)
    effects = shell_effects(step)
    if is_docker_cli(step.image):
        action = docker_cli(step, frozenset())
        assert not isinstance(action, DockerStop)  # no detached step given: docker_cli refused it
        _same_run_guard(step, action.image, built)
        return CmdStep(
            id=step.id,
            container=container,
            image=action.image,
            args=(),
            env=(),
            working_directory=None,
            command=(BUSYBOX, "true"),
            uses_tools=True,
            always_pull=True,
        )
    options = run_options(step, volumes)
    if options.privileged and not allow_privileged:
        raise refuse(step, PRIVILEGED_REFUSED)
    command: tuple[str, ...] = (options.entry_point,) if options.entry_point else ()
    args = step.args
    if effects.wrapped:
        words = (*command, *args)
        if not words:
            raise refuse(step, "with `|| true` or `> /dev/null` the program must be named (entryPoint or an argument)")
        command, args = wrapped_command(words, effects), ()
    text = " ".join((*command, *args, *options.env))
    return CmdStep(
        id=step.id,
        container=container,
        image=step.image,
        args=args,
        env=tuple(e for e in options.env if "=" in e),
        working_directory=options.working_directory,
        command=command,
        user=options.user,
        group=options.group,
        secrets=secrets_in(text, refs),
        mounts=step_mounts(step, volumes, options.volumes),
        uses_tools=effects.wrapped,
        privileged=options.privileged,
        always_pull=options.always_pull,
        cpus=options.cpus,
        memory=options.memory,
    )


def pod_steps(
    plan: Plan,
    registry: str,
    *,
    refs: tuple[SecretRef, ...] = (),
    volumes: tuple[TaskVolume, ...] = (),
    allow_privileged: bool = False,
) -> tuple[Step, ...]:
    """The pod's steps for a chain plan, or NotRunnable naming the first step that cannot run here."""
    _check_shape(plan, allow_privileged)
    containers = step_container_names([s.id for s in plan.steps])
    layouts: dict[str, str] = {}  # normalized tag → layout of the latest build step that made it
    built: dict[str, str] = {}  # normalized tag → id of that step
    steps: list[Step] = []
    for step, container in zip(plan.steps, containers, strict=True):
        if step.type == "build":
            build = _build_step(step, container, registry, refs)
            for tag in step.tags:
                layouts[normalize_image(tag)] = build.layout
                built[normalize_image(tag)] = step.id
            steps.append(build)
        elif step.type == "push":
            images = []
            for image in step.images:
                check_no_secret(step, "an image name", image)
                layout = layouts.get(normalize_image(image))
                if layout is None:
                    raise refuse(step, f"image {image} is not built by any earlier step")
                images.append((layout, qualify(image, registry)))
            steps.append(PushStep(step.id, container, tuple(images)))
        else:
            steps.append(cmd_step(step, container, built, refs, volumes, allow_privileged=allow_privileged))
    return tuple(steps)


def plan_task(text: str, run: RunVariables, values: Mapping[str, str]) -> tuple[Plan, tuple[SecretRef, ...]]:
    """The plan with each declared secret as its placeholder (`translate.py`), and the Secrets
    behind them; NotRunnable for a Key Vault secret, PlanError as acr-builder refuses."""
    first = plan(text, run, values)
    refs = secret_refs(first.secrets)
    if not refs:
        return dataclasses.replace(first, warnings=first.warnings + translation_warnings(first)), ()
    planned = plan(text, run, values, placeholders(refs))
    check_secrets_whole(text, planned.rendered, refs)
    ignored = ("has no value in this plan",)
    kept = tuple(w for w in planned.warnings if not any(i in w for i in ignored))
    return dataclasses.replace(planned, warnings=kept + translation_warnings(planned)), refs


def pushed_images(steps: tuple[Step, ...]) -> tuple[str, ...]:
    return tuple(destination for step in steps if isinstance(step, PushStep) for _, destination in step.images)


# -- pod → step statuses and the run's verdict --------------------------------------------------


@dataclass(frozen=True)
class StepView:
    id: str
    type: str
    container: str
    status: str
    start_time: str | None = None
    finish_time: str | None = None
    exit_code: int | None = None
    message: str | None = None
    termination_message: str = ""

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "type": self.type, "status": self.status}
        for key, value in (
            ("startTime", self.start_time),
            ("finishTime", self.finish_time),
            ("exitCode", self.exit_code),
            ("message", self.message),
        ):
            if value is not None:
                entry[key] = value
        return entry


def _statuses(pod: Mapping[str, Any] | None, key: str) -> dict[str, Mapping[str, Any]]:
    return {entry.get("name", ""): entry for entry in ((pod or {}).get("status") or {}).get(key) or []}


def _step_message(terminated: Mapping[str, Any]) -> str:
    text = terminated.get("message") or ""
    found = failure_message(text)
    if found:
        return found
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit code {terminated.get('exitCode')}"


def declared_steps(plan_steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    """`status.steps` when the pod is created: every step Queued, with its type."""
    kinds = {BuildStep: "build", PushStep: "push", CmdStep: "cmd"}
    return [{"id": step.id, "type": kinds[type(step)], "status": "Queued"} for step in plan_steps]


def view_steps(declared: list[Mapping[str, Any]], pod: Mapping[str, Any] | None) -> tuple[StepView, ...]:
    """The steps as the pod shows them; `declared`: `status.steps` as written at the start."""
    statuses = _statuses(pod, "initContainerStatuses")
    ids = tuple(str(entry["id"]) for entry in declared)
    views = []
    for entry, container in zip(declared, step_container_names(ids), strict=True):
        step_id, kind = str(entry["id"]), str(entry.get("type") or "")
        state = (statuses.get(container) or {}).get("state") or {}
        terminated, running = state.get("terminated"), state.get("running")
        if terminated is not None:
            code = terminated.get("exitCode")
            ok = code == 0
            views.append(
                StepView(
                    step_id,
                    kind,
                    container,
                    "Succeeded" if ok else "Failed",
                    terminated.get("startedAt"),
                    terminated.get("finishedAt"),
                    code,
                    None if ok else _step_message(terminated),
                    terminated.get("message") or "",
                )
            )
        elif running is not None:
            views.append(StepView(step_id, kind, container, "Running", running.get("startedAt")))
        else:
            views.append(StepView(step_id, kind, container, "Queued"))
    return tuple(views)


def judge_task(
    declared: list[Mapping[str, Any]],
    job_verdict: Verdict | None,
    pod: Mapping[str, Any] | None,
    now: datetime | None = None,
) -> tuple[Verdict, tuple[StepView, ...]]:
    """The run's state and its steps' from the pod; `job_verdict` is what the Job alone says (its
    failure conditions), used when the pod says nothing final. The images pushed are the push
    steps' termination messages (`repo:tag@digest` lines). With `now`, a step running longer than
    acr-builder's step timeout (every step on this path has the default: `shape.py` sends others
    to the Job-per-step path) ends the run as Timeout, as acr-builder kills a hung step."""
    steps = view_steps(declared, pod)
    if now is not None:
        for step in steps:
            began = parse_time(step.start_time) if step.status == "Running" else None
            if began is not None and (now - began).total_seconds() >= DEFAULT_STEP_TIMEOUT:
                message = f"step {step.id} exceeded its timeout of {DEFAULT_STEP_TIMEOUT}s"
                return Verdict("Timeout", message, failed_container=step.container), steps
    init = _statuses(pod, "initContainerStatuses")
    fetch = (init.get(FETCH_CONTAINER) or {}).get("state", {}).get("terminated")
    if fetch and fetch.get("exitCode") != 0:
        text = (fetch.get("message") or "").strip().splitlines()
        reason = text[-1] if text else f"exit code {fetch.get('exitCode')}"
        return Verdict("Error", f"fetching the context failed: {reason}", failed_container=FETCH_CONTAINER), steps
    for step in steps:
        if step.status == "Failed":
            return Verdict("Failed", f"step {step.id} failed: {step.message}", failed_container=step.container), steps
    done = next(iter(_statuses(pod, "containerStatuses").values()), {}).get("state", {}).get("terminated")
    if done is not None and done.get("exitCode") == 0 and all(s.status == "Succeeded" for s in steps):
        outputs = tuple(o for s in steps if s.type == "push" for o in parse_digests(s.termination_message))
        return Verdict("Succeeded", outputs=outputs), steps
    for name, entry in (*init.items(), *_statuses(pod, "containerStatuses").items()):
        waiting = (entry.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in NEVER_STARTS:
            return Verdict(
                "Error", f"container {name} cannot start: {waiting['reason']}: {waiting.get('message', '')}"
            ), steps
    if job_verdict is not None and job_verdict.finished:
        return job_verdict, steps
    started = any(s.status in ("Running", "Succeeded") for s in steps) or bool(
        (init.get(FETCH_CONTAINER) or {}).get("state", {}).get("running")
    )
    for name, entry in init.items():
        waiting = (entry.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULLING_FAILS:
            message = f"container {name} waits for its image: {waiting['reason']}: {waiting.get('message', '')}"
            return Verdict("Running" if started else "Queued", message.strip().rstrip(":")), steps
    return Verdict("Running" if started else "Queued"), steps


def final_steps(steps: tuple[StepView, ...], run_status: str) -> list[dict[str, Any]]:
    """Step statuses once the run ended: a step still running takes the run's end (Canceled,
    Timeout, Error); one that never started is Skipped."""
    out = []
    for step in steps:
        if step.status == "Queued":
            out.append({"id": step.id, "type": step.type, "status": "Skipped"})
        elif step.status == "Running":
            out.append({**step.as_status(), "status": run_status if run_status != "Succeeded" else "Error"})
        else:
            out.append(step.as_status())
    return out
