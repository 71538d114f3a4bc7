"""Task-file runs on the single-pod path: which plans it runs, the steps of its pod, and what the
pod's init containers say about each step. Pure.

A plan runs here when `shape.execution_shape` says so: a chain (each step depends on exactly the
step before it, the first on nothing) whose steps need nothing the init-container shape cannot give;
every other plan runs on the Job-per-step path (`stepjobs/`), which reuses the step mapping below
(`check_translatable`, `_build_step`, `_cmd_step`). What a step maps to here:

- build → Kaniko without pushing, the image kept as an OCI layout in the pod (`/dockyard/oci`);
- push  → our pusher from the layout of the latest earlier build step that tagged the image
          (an image no earlier build step tagged is refused);
- cmd   → the step's image and arguments, env and working directory as acr-builder's docker run
          gives them (a plan whose cmd runs an image built earlier in the same run takes the
          Job-per-step path, which stages that image in the run's registry).

Timeouts: the run's timeout covers the chain; a step's own `timeout` is not enforced on this path.
Step status: from `initContainerStatuses`; a step that never started has status Skipped once the
run ended (Queued while it runs).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dockyard.builds.definition import qualify
from dockyard.builds.manifests.job import FETCH_CONTAINER, WORKSPACE
from dockyard.builds.manifests.steps import BuildStep, CmdStep, PushStep, Step, step_container_names
from dockyard.builds.observe import NEVER_STARTS, PULLING_FAILS, Verdict, failure_message, parse_digests
from dockyard.builds.shape import Shape, execution_shape
from dockyard.builds.taskfile.arguments import container_working_directory
from dockyard.builds.taskfile.plan import Plan, PlannedStep, normalize_image

JOB_PER_STEP: Final = "runs on the Job-per-step path (`stepjobs/`)"
IGNORED_RUN_FLAGS: Final = frozenset({"--rm", "-i", "-t", "-it", "-ti", "--interactive", "--tty"})
DOCKER_CLI_IMAGES: Final = frozenset({"docker", "docker-cli", "cli"})


class NotRunnable(ValueError):
    """The plan cannot run on the single-pod path; the message names the step and the cause."""


# -- plan → steps --------------------------------------------------------------------------------


def _refuse(step: PlannedStep, why: str) -> NotRunnable:
    return NotRunnable(f"step {step.id}: {why}")


def check_translatable(plan: Plan) -> None:
    """What neither execution shape maps (yet): refused before anything runs, on either path."""
    if not plan.steps:
        raise NotRunnable("the task file has no steps")
    if plan.secrets:
        raise NotRunnable(f"secrets ({', '.join(s.id for s in plan.secrets)}): task-file secrets are not built yet")
    if plan.volumes:
        raise NotRunnable("volumes: task-file volumes are not built yet")
    for step in plan.steps:
        if step.volume_mounts:
            raise _refuse(step, "volumeMounts: task-file volumes are not built yet")
        if step.privileged:
            raise _refuse(step, "privileged containers are not allowed")


def _check_shape(plan: Plan) -> None:
    check_translatable(plan)
    shape, why = execution_shape(plan)
    if shape is not Shape.POD:  # the caller chose the shape (`shape.py`): a guard, not a user's message
        raise NotRunnable(f"{why}: it {JOB_PER_STEP}")


def _workdir(step: PlannedStep) -> str:
    return container_working_directory(step.working_directory)


def _build_step(step: PlannedStep, container: str, registry: str) -> BuildStep:
    context = step.context or "."
    if "://" in context or context.startswith("git@") or context == "-":
        raise _refuse(step, f"build context {context!r}: only a directory of the run's source is built yet")
    workdir = _workdir(step)
    directory = posixpath.normpath(posixpath.join(workdir, context))
    dockerfile = posixpath.normpath(
        posixpath.join(workdir, step.dockerfile) if step.dockerfile else posixpath.join(directory, "Dockerfile")
    )
    for path, what in ((directory, "context"), (dockerfile, "Dockerfile")):
        if path != WORKSPACE and not path.startswith(WORKSPACE + "/"):
            raise _refuse(step, f"the {what} {path} is outside the workspace")
    return BuildStep(
        id=step.id,
        container=container,
        context=directory,
        dockerfile=dockerfile,
        destinations=tuple(qualify(tag, registry) for tag in step.tags),
        working_directory=workdir,
        build_args=step.build_args,
        target=step.target,
    )


def _user(step: PlannedStep) -> int | None:
    if not step.user:
        return None
    if not step.user.isdigit():
        raise _refuse(step, f"user {step.user!r}: only a numeric user id maps to Kubernetes")
    return int(step.user)


def _cmd_step(step: PlannedStep, container: str, built: Mapping[str, str]) -> CmdStep:
    if step.shell_operators:
        raise _refuse(step, f"host-shell operators ({' '.join(step.shell_operators)}) are not built yet")
    if not step.image:
        raise _refuse(step, "cmd names no image")
    if normalize_image(step.image) in built:  # a guard: `shape.py` sends such plans to the Job-per-step path
        raise _refuse(
            step,
            f"runs {step.image}, built earlier in this run by step {built[normalize_image(step.image)]}: "
            f"it {JOB_PER_STEP}",
        )
    name = step.image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    if name in DOCKER_CLI_IMAGES:
        raise _refuse(step, "Docker CLI steps need a Docker daemon, which Kubernetes does not give")
    env = list(step.container_env)
    workdir = step.container_working_directory
    command: tuple[str, ...] = (step.entry_point,) if step.entry_point else ()
    flags = list(step.run_flags)
    while flags:
        flag = flags.pop(0)
        name_, eq, value = flag.partition("=")
        if name_ in IGNORED_RUN_FLAGS:
            continue
        if name_ in ("-e", "--env", "-w", "--workdir", "--entrypoint"):
            if not eq:
                if not flags:
                    raise _refuse(step, f"docker run flag {flag} has no value")
                value = flags.pop(0)
            if name_ in ("-e", "--env"):
                env.append(value)
            elif name_ in ("-w", "--workdir"):
                workdir = value
            else:
                command = (value,)
            continue
        raise _refuse(step, f"docker run flag {flag} is not translated yet")
    return CmdStep(
        id=step.id,
        container=container,
        image=step.image,
        args=step.args,
        env=tuple(e for e in env if "=" in e),
        working_directory=workdir,
        command=command,
        user=_user(step),
    )


def pod_steps(plan: Plan, registry: str) -> tuple[Step, ...]:
    """The pod's steps for a chain plan, or NotRunnable naming the first step that cannot run here."""
    _check_shape(plan)
    containers = step_container_names([s.id for s in plan.steps])
    layouts: dict[str, str] = {}  # normalized tag → layout of the latest build step that made it
    built: dict[str, str] = {}  # normalized tag → id of that step
    steps: list[Step] = []
    for step, container in zip(plan.steps, containers, strict=True):
        if step.type == "build":
            build = _build_step(step, container, registry)
            for tag in step.tags:
                layouts[normalize_image(tag)] = build.layout
                built[normalize_image(tag)] = step.id
            steps.append(build)
        elif step.type == "push":
            images = []
            for image in step.images:
                layout = layouts.get(normalize_image(image))
                if layout is None:
                    raise _refuse(step, f"image {image} is not built by any earlier step")
                images.append((layout, qualify(image, registry)))
            steps.append(PushStep(step.id, container, tuple(images)))
        else:
            steps.append(_cmd_step(step, container, built))
    return tuple(steps)


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
    declared: list[Mapping[str, Any]], job_verdict: Verdict | None, pod: Mapping[str, Any] | None
) -> tuple[Verdict, tuple[StepView, ...]]:
    """The run's state and its steps' from the pod; `job_verdict` is what the Job alone says (its
    failure conditions), used when the pod says nothing final. The images pushed are the push
    steps' termination messages (`repo:tag@digest` lines)."""
    steps = view_steps(declared, pod)
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
