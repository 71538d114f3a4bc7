"""The children of a run on the Job-per-step path: pure builders (golden-tested).

    <run>-workspace     PersistentVolumeClaim, ReadWriteOnce: the shared /workspace (the source,
                        and whatever a step leaves for the next); every step pod mounts it. A
                        node-local volume (local-path and other topology-aware classes) keeps every
                        step on the node it was provisioned on, so parallel steps share it; a
                        multi-node cluster with network disks needs a ReadWriteMany class
                        (`build_workspace_storage_class`)
    <run>-build-pull    kubernetes.io/dockerconfigjson Secret: the node pulls staged images (and the
                        run's registry's images) for cmd steps with the run's delegated credential
    <run>-<step>-<n>    one Job per step attempt (`<run>-fetch-context-0` fetches the workspace):
                        backoffLimit 0 (the operator retries), the step's remaining timeout as the
                        pod's activeDeadlineSeconds (the kubelet kills the pod but keeps it and its
                        log, unlike a Job deadline), detached steps' IPs as hostAliases; a cmd
                        step's pod mounts its task volumes (files in the run's Secret) and, for
                        `|| true`, `> /dev/null` and `docker pull`, the tools BusyBox copied by a
                        `copy-tools` init container (as in the single pod, `manifests/steps.py`)

Every pod is locked down as the single pod is (`manifests/job.py`): no service-account token, no
Service links; only the operator's images hold the docker config; the step's own image (cmd) gets
the workspace, never the docker config.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.builds.manifests.job import (
    CA_DIR,
    CA_FILE,
    DEADLINE_GRACE_SECONDS,
    DOCKER_CONFIG_DIR,
    TERMINATION_LOG,
    WORKSPACE,
    KanikoBuild,
    SourceFetch,
    child_metadata,
    escape,
    fetch_container,
)
from dockyard.builds.manifests.steps import (
    PUSH_RESOURCES,
    TaskPod,
    secret_env,
    step_container,
    task_volume,
    tools_container,
)
from dockyard.builds.stepjobs.observe import ATTEMPT_LABEL, FETCH_STEP, STEP_CONTAINER, STEP_LABEL
from dockyard.builds.stepjobs.steps import CopyStep, JobStep, StagedBuild, StopStep
from dockyard.builds.translate import TaskVolume, kubelet_text
from dockyard.core.meta import Owner
from dockyard.core.names import BuildRunNames, shortened

STEP_COMPONENT: Final = "build-step"


def step_job_name(run: str, slug: str, number: int) -> str:
    """Deterministic: a second create after a crash is refused by the API server. 52 characters
    leave room for the pod name's suffix within a label value's 63."""
    return shortened(f"{run}-{slug}-{number}", 52)


def workspace_claim_name(run: str) -> str:
    return shortened(f"{run}-workspace", 253)


def pull_secret_name(run: str) -> str:
    return shortened(f"{run}-build-pull", 253)


@dataclass(frozen=True)
class StepRun:
    """What every step Job of a run shares, decided before building any."""

    owner: Owner
    registry_host: str
    kaniko_image: str
    operator_image: str
    fetch: SourceFetch
    timeout_seconds: int
    resources: Mapping[str, Any]
    ca_config_map: str | None = None
    insecure_registry: bool = False
    node_registry_host: str | None = None
    """Where the node pulls the run's registry's images (`status.nodeLoginServer`): a cmd step's
    image at the login server (`*.svc`, which the node cannot resolve) is pulled from there."""
    workspace_size: str = "2Gi"
    storage_class: str | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[TaskVolume, ...] = ()
    """Task-file volumes, their files in the run's Secret."""
    tools_image: str = "busybox:1.36.1-musl"

    @property
    def task_pod(self) -> TaskPod:
        """The single pod's settings, for the container builders both paths share."""
        return TaskPod(
            owner=self.owner,
            registry_host=self.registry_host,
            kaniko_image=self.kaniko_image,
            operator_image=self.operator_image,
            fetch=self.fetch,
            steps=(),
            timeout_seconds=self.timeout_seconds,
            resources=self.resources,
            ca_config_map=self.ca_config_map,
            insecure_registry=self.insecure_registry,
            volumes=self.volumes,
            tools_image=self.tools_image,
        )


def build_workspace_claim(run: StepRun) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": run.workspace_size}},
    }
    if run.storage_class:
        spec["storageClassName"] = run.storage_class
    meta = child_metadata(run.owner, workspace_claim_name(run.owner.name), "build-workspace")
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def build_pull_secret(owner: Owner, config_json: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": child_metadata(owner, pull_secret_name(owner.name), "build-pull"),
        "data": {".dockerconfigjson": base64.b64encode(config_json.encode()).decode()},
    }


def _mounts(run: StepRun, *, docker_config: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [{"name": "workspace", "mountPath": WORKSPACE}]
    if docker_config:
        mounts.insert(0, {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
    if run.ca_config_map:
        mounts.append({"name": "registry-ca", "mountPath": CA_DIR, "readOnly": True})
    return mounts


def _registry_flags(run: StepRun) -> list[str]:
    flags = []
    if run.ca_config_map:
        flags.append(f"--registry-certificate={run.registry_host}={CA_FILE}")
    if run.insecure_registry:
        flags.append(f"--insecure-registry={run.registry_host}")
    return flags


def _build_container(run: StepRun, work: StagedBuild) -> dict[str, Any]:
    step = work.build
    args = [f"--context=dir://{escape(step.context)}", f"--dockerfile={escape(step.dockerfile)}"]
    if work.staging:
        args += [f"--destination={escape(work.staging)}", f"--image-name-tag-with-digest-file={TERMINATION_LOG}"]
    else:
        args.append("--no-push")
    args += [f"--build-arg={kubelet_text(a)}" for a in step.build_args]
    args += step.kaniko_options
    args += [*_registry_flags(run), "--push-retry=2"]
    container: dict[str, Any] = {"name": STEP_CONTAINER, "image": run.kaniko_image, "args": args}
    if step.secrets:
        container["env"] = secret_env(step.secrets)
    return container | {
        "workingDir": step.working_directory,
        "volumeMounts": _mounts(run, docker_config=True),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(dict(run.resources)),
    }


def _copy_container(run: StepRun, work: CopyStep) -> dict[str, Any]:
    args = [f"--docker-config={DOCKER_CONFIG_DIR}/config.json", *_registry_flags(run)]
    for source, destination in work.images:
        args += [f"--source={escape(source)}", f"--destination={escape(destination)}"]
    return {
        "name": STEP_CONTAINER,
        "image": run.operator_image,
        "command": ["python", "-m", "dockyard.builds.stepjobs.copy"],
        "args": args,
        "volumeMounts": _mounts(run, docker_config=True),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": copy.deepcopy(PUSH_RESOURCES),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }


def _fetch_container(run: StepRun) -> dict[str, Any]:
    fetcher = KanikoBuild(
        owner=run.owner,
        registry_host=run.registry_host,
        kaniko_image=run.kaniko_image,
        fetcher_image=run.operator_image,
        context=f"dir://{WORKSPACE}",
        dockerfile="Dockerfile",
        destinations=(),
        timeout_seconds=run.timeout_seconds,
        resources=run.resources,
        ca_config_map=run.ca_config_map,
        fetch=run.fetch,
        insecure_registry=run.insecure_registry,
    )
    return {**fetch_container(fetcher), "name": STEP_CONTAINER}


def _volumes(run: StepRun) -> list[dict[str, Any]]:
    names = BuildRunNames(run.owner.name)
    volumes: list[dict[str, Any]] = [
        {
            "name": "docker-config",
            "secret": {"secretName": names.credentials, "items": [{"key": "config.json", "path": "config.json"}]},
        },
        {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim_name(run.owner.name)}},
    ]
    if run.ca_config_map:
        volumes.append({"name": "registry-ca", "configMap": {"name": run.ca_config_map}})
    return volumes


def build_step_job(
    run: StepRun,
    step: JobStep | None,
    number: int,
    *,
    deadline_seconds: int | None = None,
    hosts: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """Attempt `number` of `step` (None: the workspace's fetch); never a `docker stop` step (no Job)."""
    slug = step.slug if step is not None else FETCH_STEP
    meta = child_metadata(run.owner, step_job_name(run.owner.name, slug, number), STEP_COMPONENT)
    meta["labels"] = {**meta["labels"], **run.extra_labels, STEP_LABEL: slug, ATTEMPT_LABEL: str(number)}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 10,
    }
    volumes = _volumes(run)
    if step is None:
        container = _fetch_container(run)
    elif isinstance(step.work, StagedBuild):
        container = _build_container(run, step.work)
    elif isinstance(step.work, CopyStep):
        container = _copy_container(run, step.work)
    elif isinstance(step.work, StopStep):
        raise ValueError(f"step {step.id} stops detached steps: it has no Job")
    else:
        container = {**step_container(run.task_pod, step.work), "name": STEP_CONTAINER}
        prefix = f"{run.registry_host}/"
        if run.node_registry_host and container["image"].startswith(prefix):
            container["image"] = f"{run.node_registry_host}/{container['image'].removeprefix(prefix)}"
        pod["imagePullSecrets"] = [{"name": pull_secret_name(run.owner.name)}]
        mounted = {mount.pod_volume for mount in step.work.mounts}
        volumes += [task_volume(run.owner, v) for v in run.volumes if v.pod_volume in mounted]
        if step.work.uses_tools:
            volumes.append({"name": "tools", "emptyDir": {}})
            pod["initContainers"] = [tools_container(run.tools_image)]
    if deadline_seconds is not None:
        pod["activeDeadlineSeconds"] = deadline_seconds
    if hosts:
        pod["hostAliases"] = [{"ip": ip, "hostnames": [name]} for ip, name in hosts]
    pod["containers"] = [container]
    pod["volumes"] = volumes
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            # a backstop: the operator ends the run at its timeout, after saving the logs
            "activeDeadlineSeconds": run.timeout_seconds + DEADLINE_GRACE_SECONDS,
            "template": {"metadata": {"labels": dict(meta["labels"])}, "spec": pod},
        },
    }
