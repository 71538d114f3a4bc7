"""A plan as the Job-per-step path runs it: each step's work (Kaniko build, image copy, command)
and what the operator needs to schedule it. Pure.

Built images move between steps through the run's **staging repository** in its registry,
`<registry>/dockyard/staging/<run id>/<step>:built`: a build step that a later push or cmd step
uses pushes its image there (a build nobody uses is built with `--no-push`); a push step copies the
staged image to its tags with the registry client (`copy.py`); a cmd step running an image built
earlier in the run runs the staged image, which the node pulls with the run's pull secret. The image
a push or cmd step names comes from the latest step in file order, among the steps it depends on
(directly or not), that tags it: a build running in parallel has no defined order with it.

Detached steps are reached by their id as a host name (`hostAliases` in the later steps' pods), so
the id must be a DNS label once lower-cased. `docker stop <detached step>…` (`translate.docker_cli`)
is a `StopStep`: no Job of its own; the operator ends the detached steps' pods (`decide.py`), which
keeps their logs. It may only stop detached steps it runs after (`when`): one running in parallel
may not have started yet.

Every other translation (secrets, secret-file volumes, `|| true`, `docker pull`, docker run flags,
privileged behind the operator setting) is the single pod's (`taskrun.cmd_step`, `_build_step`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from dockyard.builds.definition import qualify
from dockyard.builds.manifests.steps import BuildStep, CmdStep, step_container_names
from dockyard.builds.taskfile.plan import Plan, PlannedStep, normalize_image
from dockyard.builds.taskrun import _build_step, check_translatable, cmd_step  # the single pod's step mapping
from dockyard.builds.translate import (
    DockerStop,
    SecretRef,
    TaskVolume,
    check_no_secret,
    docker_cli,
    is_docker_cli,
    refuse,
    shell_effects,
)

STAGING_PREFIX: Final = "dockyard/staging"
STAGING_TAG: Final = "built"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class CopyStep:
    """A push step: staged images copied to their destinations."""

    id: str
    container: str
    images: tuple[tuple[str, str], ...]
    """(staged reference, destination) pairs, in the step's order."""


@dataclass(frozen=True)
class StagedBuild:
    build: BuildStep
    staging: str | None
    """Where the image is pushed for later steps; None: nobody uses it (`--no-push`)."""


@dataclass(frozen=True)
class StopStep:
    """`docker stop <detached step>…`: those steps' pods ended; no Job of its own."""

    id: str
    container: str
    stops: tuple[str, ...]
    """The detached steps' slugs."""


Work = StagedBuild | CopyStep | CmdStep | StopStep


@dataclass(frozen=True)
class JobStep:
    id: str
    type: str
    slug: str
    """The step's name in its Job, pod and container names (`step-<id>` as a DNS label)."""
    depends_on: tuple[str, ...]
    timeout: int
    retries: int
    retry_delay: int
    repeat: int
    ignore_errors: bool
    detach: bool
    start_delay: int
    work: Work
    retry_on_errors: tuple[str, ...] = ()
    """Retry only a failure whose output contains one of these (`decide.retryable`)."""

    @property
    def hostname(self) -> str:
        return self.id.lower()


def staging_repository(run_id: str, slug: str) -> str:
    return f"{STAGING_PREFIX}/{run_id}/{slug.removeprefix('step-')}"


def staging_grant(run_id: str) -> str:
    """The repositories of one run's staging area, as a grant pattern."""
    return f"{STAGING_PREFIX}/{run_id}/*"


def _ancestors(plan: Plan) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for step in plan.steps:
        found[step.id] = set(step.depends_on).union(*(found[d] for d in step.depends_on))
    return found


def _stop_step(step: PlannedStep, slug: str, slugs: Mapping[str, str], plan: Plan, before: set[str]) -> StopStep | None:
    """A `docker stop` step, or None for any other step."""
    if step.type != "cmd" or not step.image or not is_docker_cli(step.image):
        return None
    action = docker_cli(step, frozenset(s.id for s in plan.steps if s.detach))
    if not isinstance(action, DockerStop):
        return None
    shell_effects(step)  # refuses other operators; `|| true` changes nothing: a stop succeeds
    later = [i for i in action.step_ids if i not in before]
    if later:
        raise refuse(
            step,
            f"docker stop {' '.join(later)}: a detached step is stopped by a step that runs after it (when), "
            "else it may not have started yet",
        )
    return StopStep(step.id, slug, tuple(slugs[i] for i in action.step_ids))


def job_steps(
    plan: Plan,
    registry: str,
    run_id: str,
    *,
    refs: tuple[SecretRef, ...] = (),
    volumes: tuple[TaskVolume, ...] = (),
    allow_privileged: bool = False,
) -> tuple[JobStep, ...]:
    """The plan's steps on this path, or NotRunnable naming the first step that cannot run.
    `refs`/`volumes`: the task file's secrets and volumes (`taskrun.plan_task`, `translate.task_volumes`)."""
    check_translatable(plan, allow_privileged)
    slugs = dict(zip((s.id for s in plan.steps), step_container_names([s.id for s in plan.steps]), strict=True))
    ancestors = _ancestors(plan)
    producers: dict[str, list[tuple[str, str]]] = {}  # normalized tag → [(step id, staged ref)] in file order
    used: set[str] = set()  # build steps whose image a later step uses
    works: dict[str, Work] = {}

    def produced(step: PlannedStep, image: str) -> str | None:
        for producer, staged in reversed(producers.get(normalize_image(image), [])):
            if producer in ancestors[step.id]:
                used.add(producer)
                return staged
        return None

    for step in plan.steps:
        slug = slugs[step.id]
        if step.detach and not _DNS_LABEL.match(step.id.lower()):
            raise refuse(step, "a detached step's id must be a DNS label (letters, digits, '-') to be its host name")
        if step.type == "build":
            staged = f"{registry}/{staging_repository(run_id, slug)}:{STAGING_TAG}"
            for tag in step.tags:
                producers.setdefault(normalize_image(tag), []).append((step.id, staged))
            works[step.id] = StagedBuild(_build_step(step, slug, registry, refs), staged)
        elif step.type == "push":
            images = []
            for image in step.images:
                check_no_secret(step, "an image name", image)
                source = produced(step, image)
                if source is None:
                    raise refuse(step, f"image {image} is not built by any step it runs after")
                images.append((source, qualify(image, registry)))
            works[step.id] = CopyStep(step.id, slug, tuple(images))
        elif (stop := _stop_step(step, slug, slugs, plan, ancestors[step.id])) is not None:
            works[step.id] = stop
        else:
            cmd = cmd_step(step, slug, {}, refs, volumes, allow_privileged=allow_privileged)
            staged_image = produced(step, cmd.image)
            works[step.id] = replace(cmd, image=staged_image) if staged_image else cmd
    steps = []
    for step in plan.steps:
        work = works[step.id]
        if isinstance(work, StagedBuild) and step.id not in used:
            work = StagedBuild(work.build, None)
        steps.append(
            JobStep(
                id=step.id,
                type=step.type,
                slug=slugs[step.id],
                depends_on=step.depends_on,
                timeout=step.timeout,
                # acr-builder's push has its own tries and no retries/repeat (`plan.unused_fields`)
                retries=0 if step.type == "push" else step.retries,
                retry_delay=step.retry_delay,
                repeat=0 if step.type == "push" else step.repeat,
                ignore_errors=step.ignore_errors,
                detach=step.detach and step.type == "cmd",
                start_delay=step.start_delay,
                work=work,
                retry_on_errors=() if step.type == "push" else step.retry_on_errors,
            )
        )
    return tuple(steps)


def pushed_images(steps: tuple[JobStep, ...]) -> tuple[str, ...]:
    return tuple(d for s in steps if isinstance(s.work, CopyStep) for _, d in s.work.images)


def cache_repositories(steps: tuple[JobStep, ...]) -> tuple[str, ...]:
    """The layer caches the run's build steps push to (`cache: enabled`)."""
    return tuple(
        dict.fromkeys(
            s.work.build.cache_repository
            for s in steps
            if isinstance(s.work, StagedBuild) and s.work.build.cache_repository
        )
    )


def staged_images(steps: tuple[JobStep, ...]) -> tuple[str, ...]:
    return tuple(s.work.staging for s in steps if isinstance(s.work, StagedBuild) and s.work.staging)


def staged_cmd_step(steps: tuple[JobStep, ...], registry: str) -> str | None:
    """The first cmd step running an image built in the run (the node must pull it), if any."""
    prefix = f"{registry}/{STAGING_PREFIX}/"
    return next((s.id for s in steps if isinstance(s.work, CmdStep) and s.work.image.startswith(prefix)), None)
