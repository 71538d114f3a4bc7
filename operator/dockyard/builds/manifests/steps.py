"""The single pod of a task-file run whose plan is a chain: pure builders.

One Job, one pod, the steps as init containers in plan order (kpack and knative/build do the same):

    fetch-context        the source unpacked into the /workspace emptyDir (as for one-step builds)
    step-<id> …          build: Kaniko, `--no-push`, the image written as an OCI layout under
                         /dockyard/oci/<container> (its own emptyDir); push: `python -m dockyard.builds.push`
                         from those layouts to the registry; cmd: the step's image and arguments
    steps-done           a no-op main container: a pod needs one, and its ending means every step did

The kubelet starts an init container only when the one before it exited 0, so the first failing step
ends the pod and the later ones never start: that is ACR's "the first failing step ends the run" for
a chain. Every step sees the same /workspace (ACR mounts the source there for every step). Security
as in `job.py`: no service-account token, no Service links, Secret values only through the kubelet;
every container but the cmd steps' own images runs with the images the operator is configured with.
A step's own `timeout` is not enforced on this path (init containers have no deadline of their own):
the run's timeout covers the whole chain.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.builds.manifests.job import (
    CA_DIR,
    CA_FILE,
    DOCKER_CONFIG_DIR,
    TERMINATION_LOG,
    WORKSPACE,
    KanikoBuild,
    SourceFetch,
    escape,
    fetch_container,
    run_job,
    run_volumes,
)
from dockyard.core.meta import Owner

DONE_CONTAINER: Final = "steps-done"
STEP_PREFIX: Final = "step-"
LAYOUT_ROOT: Final = "/dockyard/oci"
"""Built images, in their own emptyDir: inside /workspace they would be part of the next build's
context (a `COPY . .` would copy them into the image)."""
SMALL: Final = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
PUSH_RESOURCES: Final = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


@dataclass(frozen=True)
class BuildStep:
    id: str
    container: str
    context: str
    """Absolute directory in the workspace."""
    dockerfile: str
    """Absolute path of the Dockerfile."""
    destinations: tuple[str, ...]
    """Names only (`--no-push`): the image is kept as an OCI layout, pushed by a push step."""
    working_directory: str
    build_args: tuple[str, ...] = ()
    target: str | None = None

    @property
    def layout(self) -> str:
        return f"{LAYOUT_ROOT}/{self.container}"


@dataclass(frozen=True)
class PushStep:
    id: str
    container: str
    images: tuple[tuple[str, str], ...]
    """(OCI layout directory, destination) pairs, in the step's order."""


@dataclass(frozen=True)
class CmdStep:
    id: str
    container: str
    image: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    working_directory: str | None
    command: tuple[str, ...] = ()
    """The image's entrypoint replaced (`entryPoint`, `--entrypoint`); empty keeps it."""
    user: int | None = None


Step = BuildStep | PushStep | CmdStep


@dataclass(frozen=True)
class TaskPod:
    """Everything a chain run's pod needs, decided before building it."""

    owner: Owner
    registry_host: str
    kaniko_image: str
    operator_image: str
    fetch: SourceFetch | None
    """None: the task has no source (its steps need no context)."""
    steps: tuple[Step, ...]
    timeout_seconds: int
    resources: Mapping[str, Any]
    ca_config_map: str | None = None
    insecure_registry: bool = False
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    base_step: BuildStep | None = None
    """The build step whose base image the fetch container reports (base-image tracking)."""


def step_container_names(ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Container names for step ids, in order: `step-<id>` made a DNS label (acr ids allow `_`
    and capitals), and `-<n>` added to the second of two ids that read the same."""
    names: list[str] = []
    for index, step_id in enumerate(ids):
        slug = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in step_id.lower()).strip("-")
        name = f"{STEP_PREFIX}{slug or index}"[:50].rstrip("-")
        if name in names:
            name = f"{name}-{index}"
        names.append(name)
    return tuple(names)


def _mounts(pod: TaskPod, *, docker_config: bool = True, layouts: bool = True) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [{"name": "workspace", "mountPath": WORKSPACE}]
    if docker_config:
        mounts.insert(0, {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
    if layouts:
        mounts.append({"name": "oci-layouts", "mountPath": LAYOUT_ROOT})
    if pod.ca_config_map:
        mounts.append({"name": "registry-ca", "mountPath": CA_DIR, "readOnly": True})
    return mounts


def _build_container(pod: TaskPod, step: BuildStep) -> dict[str, Any]:
    args = [
        f"--context=dir://{escape(step.context)}",
        f"--dockerfile={escape(step.dockerfile)}",
        *(f"--destination={escape(d)}" for d in step.destinations),
        "--no-push",
        f"--oci-layout-path={step.layout}",
        *(f"--build-arg={escape(a)}" for a in step.build_args),
    ]
    if step.target:
        args.append(f"--target={escape(step.target)}")
    if pod.ca_config_map:
        args.append(f"--registry-certificate={pod.registry_host}={CA_FILE}")
    if pod.insecure_registry:
        args.append(f"--insecure-registry={pod.registry_host}")
    return {
        "name": step.container,
        "image": pod.kaniko_image,
        "args": args,
        "workingDir": step.working_directory,
        "volumeMounts": _mounts(pod),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(dict(pod.resources)),
    }


def _push_container(pod: TaskPod, step: PushStep) -> dict[str, Any]:
    args = [f"--docker-config={DOCKER_CONFIG_DIR}/config.json"]
    if pod.ca_config_map:
        args.append(f"--registry-certificate={pod.registry_host}={CA_FILE}")
    if pod.insecure_registry:
        args.append(f"--insecure-registry={pod.registry_host}")
    layout = None
    for directory, destination in step.images:
        if directory != layout:
            args.append(f"--layout={directory}")
            layout = directory
        args.append(f"--destination={escape(destination)}")
    return {
        "name": step.container,
        "image": pod.operator_image,
        "command": ["python", "-m", "dockyard.builds.push"],
        "args": args,
        "volumeMounts": _mounts(pod),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(PUSH_RESOURCES),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }


def _cmd_container(pod: TaskPod, step: CmdStep) -> dict[str, Any]:
    container: dict[str, Any] = {"name": step.container, "image": step.image}
    if step.command:
        container["command"] = [escape(word) for word in step.command]
    container["args"] = [escape(word) for word in step.args]
    env = []
    for entry in step.env:
        name, _, value = entry.partition("=")
        env.append({"name": name, "value": escape(value)})
    if env:
        container["env"] = env
    if step.working_directory:
        container["workingDir"] = step.working_directory
    # the step's image is the user's: it gets the workspace, never the docker config
    container["volumeMounts"] = _mounts(pod, docker_config=False, layouts=False)
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    container["resources"] = copy.deepcopy(dict(pod.resources))
    if step.user is not None:
        container["securityContext"] = {"runAsUser": step.user}
    return container


def step_container(pod: TaskPod, step: Step) -> dict[str, Any]:
    if isinstance(step, BuildStep):
        return _build_container(pod, step)
    if isinstance(step, PushStep):
        return _push_container(pod, step)
    return _cmd_container(pod, step)


def _base_query(step: BuildStep | None) -> dict[str, Any]:
    """The fetcher's arguments that make it report `step`'s base (its Dockerfile relative to the
    workspace, its build arguments with a value, its target)."""
    if step is None:
        return {"dockerfile": "Dockerfile"}  # not read: no base is reported
    pairs = tuple((name, value) for name, eq, value in (a.partition("=") for a in step.build_args) if eq)
    dockerfile = posixpath.relpath(step.dockerfile, WORKSPACE)
    return {"report_base": True, "dockerfile": dockerfile, "build_args": pairs, "target": step.target}


def build_task_job(pod: TaskPod) -> dict[str, Any]:
    owner = pod.owner
    volumes = run_volumes(owner, pod.ca_config_map, {"name": "oci-layouts", "emptyDir": {}})
    # the fetcher is the one-step build's, given the same registry settings
    fetcher = KanikoBuild(
        owner=owner,
        registry_host=pod.registry_host,
        kaniko_image=pod.kaniko_image,
        fetcher_image=pod.operator_image,
        context=f"dir://{WORKSPACE}",
        destinations=(),
        timeout_seconds=pod.timeout_seconds,
        resources=pod.resources,
        ca_config_map=pod.ca_config_map,
        fetch=pod.fetch,
        insecure_registry=pod.insecure_registry,
        **_base_query(pod.base_step),
    )
    done = {
        "name": DONE_CONTAINER,
        "image": pod.operator_image,
        "command": ["python", "-c", "pass"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(SMALL),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    fetching = [fetch_container(fetcher)] if pod.fetch is not None else []  # no source: nothing to fetch
    init = [*fetching, *(step_container(pod, s) for s in pod.steps)]
    return run_job(owner, pod.extra_labels, pod.timeout_seconds, [done], init, volumes)
