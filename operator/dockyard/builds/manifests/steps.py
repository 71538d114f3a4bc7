"""The single pod of a task-file run whose plan is a chain: pure builders.

One Job, one pod, the steps as init containers in plan order (kpack and knative/build do the same):

    fetch-context        the source unpacked into the /workspace emptyDir (as for one-step builds)
    copy-tools           only when a cmd step needs it: a static BusyBox copied into the tools emptyDir
                         (`|| true`, `> /dev/null`, `docker pull`: see builds/translate.py)
    step-<id> …          build: Kaniko, `--no-push`, the image written as an OCI layout under
                         /dockyard/oci/<container> (its own emptyDir); push: `python -m dockyard.builds.push`
                         from those layouts to the registry; cmd: the step's image and arguments,
                         its task-file secrets as env from their Secrets, its volumes from the
                         run's Secret
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
from dockyard.builds.translate import BUSYBOX, TOOLS_DIR, Mount, SecretRef, TaskVolume, kubelet_text
from dockyard.core.meta import Owner
from dockyard.core.names import BuildRunNames

DONE_CONTAINER: Final = "steps-done"
STEP_PREFIX: Final = "step-"
LAYOUT_ROOT: Final = "/dockyard/oci"
"""Built images, in their own emptyDir: inside /workspace they would be part of the next build's
context (a `COPY . .` would copy them into the image)."""
TOOLS_CONTAINER: Final = "copy-tools"
"""Copies a static BusyBox into the tools emptyDir for steps that need a supervisor (`|| true`,
`> /dev/null`, `docker pull`): see `translate.py`."""
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
    secrets: tuple[SecretRef, ...] = ()
    """Secrets its build args use (as `$(DOCKYARD_SECRET_<n>)`)."""
    labels: tuple[str, ...] = ()
    platform: str | None = None
    cache_repository: str | None = None
    """Kaniko's layer cache (`cache: enabled`); None: no cache."""

    @property
    def kaniko_options(self) -> list[str]:
        """Target, labels, platform and cache flags, shared by both execution shapes."""
        args = [f"--target={escape(self.target)}"] if self.target else []
        args += [f"--label={escape(label)}" for label in self.labels]
        if self.platform:
            args.append(f"--custom-platform={escape(self.platform)}")
        if self.cache_repository:
            args += ["--cache=true", f"--cache-repo={escape(self.cache_repository)}"]
        return args

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
    """The image's entrypoint replaced (`entryPoint`, `--entrypoint`, the tools' wrapper); empty keeps it."""
    user: int | None = None
    group: int | None = None
    secrets: tuple[SecretRef, ...] = ()
    """Secrets its arguments and env use, as env vars from their Secrets, defined first."""
    mounts: tuple[Mount, ...] = ()
    uses_tools: bool = False
    """The command is the tools' BusyBox (a wrapper or a pre-pull): mount the tools emptyDir."""
    privileged: bool = False
    always_pull: bool = False
    cpus: str | None = None
    memory: str | None = None


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
    volumes: tuple[TaskVolume, ...] = ()
    """Task-file volumes, their files in the run's Secret."""
    tools_image: str = "busybox:1.36.1-musl"


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
        *(f"--build-arg={kubelet_text(a)}" for a in step.build_args),
    ]
    args += step.kaniko_options
    if pod.ca_config_map:
        args.append(f"--registry-certificate={pod.registry_host}={CA_FILE}")
    if pod.insecure_registry:
        args.append(f"--insecure-registry={pod.registry_host}")
    container: dict[str, Any] = {
        "name": step.container,
        "image": pod.kaniko_image,
        "args": args,
    }
    if step.secrets:
        container["env"] = secret_env(step.secrets)
    return container | {
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
        # Kaniko (root) writes the layout's blobs 0600 (go-containerregistry renames temp files):
        # the pusher reads them as their owner, uid 0, with every capability dropped (no
        # DAC override, so nothing but root's own files).
        "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 0, "capabilities": {"drop": ["ALL"]}},
    }


def secret_env(secrets: tuple[SecretRef, ...]) -> list[dict[str, Any]]:
    """Env vars filled by the kubelet from the Secrets; `$(DOCKYARD_SECRET_<n>)` in args refers to them."""
    return [
        {"name": ref.variable, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}} for ref in secrets
    ]


def cmd_container(step: CmdStep, mounts: list[dict[str, Any]], resources: Mapping[str, Any]) -> dict[str, Any]:
    """A cmd step's container, given the run's own mounts (the workspace, the CA) and resources;
    the step's task volumes and the tools are mounted here. Shared by every execution shape."""
    container: dict[str, Any] = {"name": step.container, "image": step.image}
    if step.always_pull:
        container["imagePullPolicy"] = "Always"
    if step.command:
        container["command"] = [kubelet_text(word) for word in step.command]
    container["args"] = [kubelet_text(word) for word in step.args]
    env = secret_env(step.secrets)
    for entry in step.env:
        name, _, value = entry.partition("=")
        env.append({"name": name, "value": kubelet_text(value)})
    if env:
        container["env"] = env
    if step.working_directory:
        container["workingDir"] = step.working_directory
    own = list(mounts)
    own += [{"name": m.pod_volume, "mountPath": m.path, "readOnly": True} for m in step.mounts]
    if step.uses_tools:
        own.append({"name": "tools", "mountPath": TOOLS_DIR, "readOnly": True})
    container["volumeMounts"] = own
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    limits = copy.deepcopy(dict(resources))
    for key, amount in (("cpu", step.cpus), ("memory", step.memory)):
        if amount:
            limits.setdefault("limits", {})[key] = amount
            limits.setdefault("requests", {})[key] = amount
    container["resources"] = limits
    security: dict[str, Any] = {}
    if step.user is not None:
        security["runAsUser"] = step.user
    if step.group is not None:
        security["runAsGroup"] = step.group
    if step.privileged:
        security["privileged"] = True
    if security:
        container["securityContext"] = security
    return container


def _cmd_container(pod: TaskPod, step: CmdStep) -> dict[str, Any]:
    # the step's image is the user's: it gets the workspace, never the docker config
    return cmd_container(step, _mounts(pod, docker_config=False, layouts=False), pod.resources)


def tools_container(image: str) -> dict[str, Any]:
    return {
        "name": TOOLS_CONTAINER,
        "image": image,
        "command": ["/bin/busybox", "cp", "/bin/busybox", BUSYBOX],
        "volumeMounts": [{"name": "tools", "mountPath": TOOLS_DIR}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(SMALL),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 65534},
    }


def task_volume(owner: Owner, volume: TaskVolume) -> dict[str, Any]:
    """A task-file volume: exactly its files from the run's Secret, readable by any step user."""
    return {
        "name": volume.pod_volume,
        "secret": {
            "secretName": BuildRunNames(owner.name).credentials,
            "items": [{"key": volume.key(name), "path": name} for name, _ in volume.files],
            "defaultMode": 0o444,
        },
    }


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
    tools = any(isinstance(s, CmdStep) and s.uses_tools for s in pod.steps)
    extra: list[dict[str, Any]] = [{"name": "oci-layouts", "emptyDir": {}}]
    extra += [task_volume(owner, volume) for volume in pod.volumes]
    if tools:
        extra.append({"name": "tools", "emptyDir": {}})
    volumes = run_volumes(owner, pod.ca_config_map, *extra)
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
    init = [fetch_container(fetcher)] if pod.fetch is not None else []  # no source: nothing to fetch
    init += [tools_container(pod.tools_image)] if tools else []
    init += [step_container(pod, s) for s in pod.steps]
    return run_job(owner, pod.extra_labels, pod.timeout_seconds, [done], init, volumes)
