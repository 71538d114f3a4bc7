"""A run's task file planned on the execution shape it takes: the one entry both the reconcile and
admission (`task_file_refusal`) use. Pure.

`run_plan` plans the file with its secrets as placeholders (`taskrun.plan_task`), chooses the shape
(`shape.py`) and maps the steps for it: the single pod's steps (`taskrun.pod_steps`) or a Job per
step (`stepjobs/steps.py`). Both get the same translations (`translate.py`): secrets as Secret
references, secret-file volumes, `|| true`/`> /dev/null`, `docker pull`, docker run and docker
build flags, `cache: enabled`, `privileged` behind the operator setting; `docker stop <detached step>` only exists on the
Job-per-step path (a detached step sends a plan there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dockyard.builds.manifests.steps import Step
from dockyard.builds.shape import Shape, execution_shape
from dockyard.builds.stepjobs.steps import JobStep, job_steps
from dockyard.builds.taskfile.plan import Plan, PlanError
from dockyard.builds.taskrun import plan_task, pod_steps
from dockyard.builds.template import RunVariables
from dockyard.builds.translate import NotRunnable, SecretRef, TaskVolume, task_volumes

_PATH_LIKE: Final = re.compile(r"\A[^\s:{}]+\.ya?ml\Z")


@dataclass(frozen=True)
class TaskPlan:
    """A task file planned for a run: the plan (secrets as placeholders), its shape and steps on
    it, the Kubernetes Secrets behind its secrets and its volumes."""

    plan: Plan
    shape: Shape
    steps: tuple[Step, ...] = ()
    """The single pod's steps (shape Pod)."""
    job_steps: tuple[JobStep, ...] = ()
    """The steps as Jobs (shape JobPerStep)."""
    secrets: tuple[SecretRef, ...] = ()
    volumes: tuple[TaskVolume, ...] = ()


def run_plan(
    text: str, run: RunVariables, values: Mapping[str, str], registry: str, *, allow_privileged: bool = False
) -> TaskPlan:
    """Everything a run needs from its task file, or NotRunnable/PlanError. Deterministic for a
    run (same ID, date, values): the Job-per-step path plans again at each step."""
    planned, refs = plan_task(text, run, values)
    volumes = task_volumes(planned.volumes)
    shape, _ = execution_shape(planned)
    if shape is Shape.JOB_PER_STEP:
        jobs = job_steps(planned, registry, run.ID, refs=refs, volumes=volumes, allow_privileged=allow_privileged)
        return TaskPlan(planned, shape, job_steps=jobs, secrets=refs, volumes=volumes)
    steps = pod_steps(planned, registry, refs=refs, volumes=volumes, allow_privileged=allow_privileged)
    return TaskPlan(planned, shape, steps=steps, secrets=refs, volumes=volumes)


def task_file_refusal(
    text: str, values: Mapping[str, str], registry: str, *, allow_privileged: bool = False
) -> str | None:
    """Why a task's file cannot run whatever its run (None: it can, or only a run can tell: a plan
    error may depend on the run's values and is reported on the run)."""
    if _PATH_LIKE.match(text.strip()):
        return (
            f"taskFile: {text.strip()!r} looks like a path; taskFile holds the task file's contents "
            "(Dockyard does not read a task file from the source: paste the file, e.g. "
            "`taskFile: |` followed by its lines)"
        )
    sample = RunVariables(ID="ca0", Registry=registry, Date="20000101-000000z")
    try:
        run_plan(text, sample, values, registry, allow_privileged=allow_privileged)
    except NotRunnable as refused:
        return f"taskFile: {refused}"
    except PlanError:
        return None
    return None
