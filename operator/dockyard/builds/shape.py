"""How a task-file run executes: one pod of ordered steps, or one Job per step. Pure, and the one
place this is decided.

The single pod (`taskrun.py`, `manifests/steps.py`) is cheaper: one scheduling, one image pull per
step image, an emptyDir workspace, no volume to provision and no operator-side scheduling. It can
only run a chain whose steps need nothing but "start when the previous one exited 0": init
containers run one after the other, have no deadline, restart or delay of their own, and the node
can only run an image the registry already serves when the pod is created.

So a plan takes the Job-per-step path (`stepjobs/`) as soon as one step needs more:
parallel `when` (a step not depending on exactly the step before it), `detach`, `retries`,
`repeat`, `ignoreErrors`, `startDelay`, a `timeout` other than acr-builder's default of 600 s (init
containers cannot enforce it; on the pod path only the run's timeout holds), or a cmd step running
(or `docker pull`ing) an image built earlier in the same run (the image must be pushed to the
staging repository before the pod that runs it exists). `docker stop` needs a detached step, so it
is on this path already.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from dockyard.builds.taskfile.plan import Plan, PlannedStep, normalize_image
from dockyard.builds.translate import is_docker_cli

DEFAULT_STEP_TIMEOUT: Final = 600


def _images_run(step: PlannedStep) -> tuple[str, ...]:
    """The images a cmd step runs: its own, or the one a `docker pull` step pulls."""
    if not step.image:
        return ()
    if is_docker_cli(step.image) and step.args[:1] == ("pull",):
        return tuple(a for a in step.args[1:] if not a.startswith("-"))
    return (step.image,)


class Shape(StrEnum):
    POD = "Pod"
    JOB_PER_STEP = "JobPerStep"


def execution_shape(plan: Plan) -> tuple[Shape, str]:
    """The shape of a run of `plan` and why (the first step that needs the Job-per-step path)."""
    built: set[str] = set()
    previous: str | None = None
    for step in plan.steps:
        expected = (previous,) if previous else ()
        why = None
        if step.depends_on != expected:
            why = "runs in parallel with other steps (when)"
        elif step.detach:
            why = "is a detached service"
        elif step.retries > 0 and step.type != "push":  # a push step's are ignored (`plan.unused_fields`)
            why = "has retries"
        elif step.repeat > 0 and step.type != "push":
            why = "repeats"
        elif step.ignore_errors:
            why = "ignores its errors"
        elif step.start_delay > 0:
            why = "has a startDelay"
        elif step.timeout != DEFAULT_STEP_TIMEOUT:
            why = f"has its own timeout ({step.timeout}s)"
        elif step.type == "cmd" and any(normalize_image(image) in built for image in _images_run(step)):
            why = "runs an image built earlier in the run"
        if why:
            return Shape.JOB_PER_STEP, f"step {step.id} {why}"
        if step.type == "build":
            built.update(normalize_image(tag) for tag in step.tags)
        previous = step.id
    return Shape.POD, "the steps form a plain chain"
