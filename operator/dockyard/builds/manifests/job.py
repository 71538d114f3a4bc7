"""The Kaniko Job of a run, and its docker config Secret: pure builders.

Security, as a platform team expects it: the pod mounts no service-account token and gets no
Service links; it reads only the Secrets its run names (its own docker config, Secret build
arguments, the git credential) through the kubelet; Kaniko trusts the registry's CA
(`--registry-certificate`), never `--skip-tls-verify`; Secret values reach Kaniko through
environment variables that the kubelet expands into its arguments (`$(VAR)`), so the Job's spec
holds their names only; the git credential reaches only the fetch container, as environment
variables from secretKeyRefs (`GIT_USERNAME`, `GIT_PASSWORD`). Every source is fetched into the
workspace by that init container (`builds/fetch.py`) and Kaniko builds `dir:///workspace`. Kaniko writes `repo:tag@digest` per destination to the termination message
(`--image-name-tag-with-digest-file=/dev/termination-log`), which the operator trusts only with exit
code 0 (Kaniko writes it before pushing); on failure the kubelet fills the message with the log's
last lines instead.

`activeDeadlineSeconds` is a backstop only: the operator ends a run at its timeout itself, after
saving the log, because the Job controller deletes the pod (and its log) when the deadline passes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.core.meta import Owner, metadata
from dockyard.core.names import BUILD_RUN_LABEL, BuildRunNames, labels

KANIKO_CONTAINER: Final = "kaniko"
FETCH_CONTAINER: Final = "fetch-context"
WORKSPACE: Final = "/workspace"
DOCKER_CONFIG_DIR: Final = "/kaniko/.docker"
CA_DIR: Final = "/dockyard/ca"
CA_FILE: Final = f"{CA_DIR}/ca.crt"
TERMINATION_LOG: Final = "/dev/termination-log"
DEADLINE_GRACE_SECONDS: Final = 300
SECRET_ARG_PREFIX: Final = "DOCKYARD_BUILD_ARG_"
GIT_USERNAME_VARIABLE: Final = "GIT_USERNAME"
GIT_PASSWORD_VARIABLE: Final = "GIT_PASSWORD"


@dataclass(frozen=True)
class OciContext:
    """An uploaded context the fetch init container unpacks into the workspace."""

    repository: str
    digest: str


@dataclass(frozen=True)
class ArchiveContext:
    """A tar.gz at an http(s) URL, fetched and unpacked into the workspace (Kaniko itself fetches
    only https with its own CA bundle; the fetcher takes http too and the run's registry CA)."""

    url: str


@dataclass(frozen=True)
class GitContext:
    """A git commit the fetcher checks out into the workspace (`builds/gitfetch.py`): the commit the
    operator resolved, `ref` where to find it when the server will not give a commit by id,
    `sub_path` the directory that is the context, `auth_secret` the Secret with `username` and
    `password`."""

    url: str
    commit: str
    ref: str | None = None
    sub_path: str | None = None
    auth_secret: str | None = None


SourceFetch = OciContext | ArchiveContext | GitContext
"""What the fetch init container puts into the workspace."""


@dataclass(frozen=True)
class SecretArg:
    name: str
    secret: str
    key: str


@dataclass(frozen=True)
class KanikoBuild:
    """Everything a run's pod needs, decided before building it."""

    owner: Owner
    registry_host: str
    kaniko_image: str
    fetcher_image: str
    context: str
    dockerfile: str
    destinations: tuple[str, ...]
    timeout_seconds: int
    resources: Mapping[str, Any]
    ca_config_map: str | None = None
    fetch: SourceFetch | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    secret_args: tuple[SecretArg, ...] = ()
    target: str | None = None
    platform: str | None = None
    no_push: bool = False
    cache_repository: str | None = None
    insecure_registry: bool = False
    """The run's registry speaks plain HTTP (its tls.mode is Disabled)."""
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    report_base: bool = False
    """The fetch container reports the Dockerfile's base image and its digest (`builds/fetch.py`):
    the task tracks its base (triggers.baseImageUpdate)."""

    @property
    def names(self) -> BuildRunNames:
        return BuildRunNames(self.owner.name)


def escape(value: str) -> str:
    """Literal text in container args: `$(X)` would be expanded by the kubelet; `$$` keeps it."""
    return value.replace("$(", "$$(")


def kaniko_args(build: KanikoBuild) -> list[str]:
    args = [f"--context={escape(build.context)}", f"--dockerfile={escape(build.dockerfile)}"]
    args += [f"--destination={escape(d)}" for d in build.destinations]
    if build.no_push:
        args.append("--no-push")
    args.append(f"--image-name-tag-with-digest-file={TERMINATION_LOG}")
    args += [f"--build-arg={escape(name)}={escape(value)}" for name, value in build.build_args]
    args += [f"--build-arg={arg.name}=$({SECRET_ARG_PREFIX}{arg.name})" for arg in build.secret_args]
    if build.target:
        args.append(f"--target={escape(build.target)}")
    if build.platform:
        args.append(f"--custom-platform={build.platform}")
    if build.cache_repository:
        args += ["--cache=true", f"--cache-repo={escape(build.cache_repository)}"]
    if build.ca_config_map:
        args.append(f"--registry-certificate={build.registry_host}={CA_FILE}")
    if build.insecure_registry:
        args.append(f"--insecure-registry={build.registry_host}")
    args.append("--push-retry=2")
    return args


def _kaniko_env(build: KanikoBuild) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{SECRET_ARG_PREFIX}{arg.name}",
            "valueFrom": {"secretKeyRef": {"name": arg.secret, "key": arg.key}},
        }
        for arg in build.secret_args
    ]


def _git_env(git: GitContext) -> list[dict[str, Any]]:
    if git.auth_secret is None:
        return []
    return [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": git.auth_secret, "key": key}}}
        for variable, key in ((GIT_USERNAME_VARIABLE, "username"), (GIT_PASSWORD_VARIABLE, "password"))
    ]


def _mounts(build: KanikoBuild) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True},
        {"name": "workspace", "mountPath": WORKSPACE},
    ]
    if build.ca_config_map:
        mounts.append({"name": "registry-ca", "mountPath": CA_DIR, "readOnly": True})
    return mounts


def fetch_container(build: KanikoBuild) -> dict[str, Any]:
    assert build.fetch is not None
    command = ["python", "-m", "dockyard.builds.fetch", f"--into={WORKSPACE}"]
    if isinstance(build.fetch, OciContext):
        command += [
            f"--registry={build.registry_host}",
            f"--repository={build.fetch.repository}",
            f"--digest={build.fetch.digest}",
            f"--docker-config={DOCKER_CONFIG_DIR}/config.json",
        ]
        if build.insecure_registry:
            command.append("--plain-http")
    else:
        if isinstance(build.fetch, GitContext):
            git = build.fetch
            command += [f"--git-url={escape(git.url)}", f"--git-commit={git.commit}"]
            if git.ref:
                command.append(f"--git-ref={escape(git.ref)}")
            if git.sub_path:
                command.append(f"--git-sub-path={escape(git.sub_path)}")
        else:
            command.append(f"--url={escape(build.fetch.url)}")
        if build.report_base:  # the base may be in the run's registry: its address and credential
            command += [f"--registry={build.registry_host}", f"--docker-config={DOCKER_CONFIG_DIR}/config.json"]
            if build.insecure_registry:
                command.append("--plain-http")
    if build.ca_config_map:
        command.append(f"--ca-file={CA_FILE}")
    if build.report_base:
        command.append(f"--dockerfile={escape(build.dockerfile)}")
        command += [f"--build-arg={escape(name)}={escape(value)}" for name, value in build.build_args]
        if build.target:
            command.append(f"--target={escape(build.target)}")
        if build.platform:
            command.append(f"--platform={build.platform}")
    container: dict[str, Any] = {
        "name": FETCH_CONTAINER,
        "image": build.fetcher_image,
        "command": command,
        "volumeMounts": _mounts(build),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    env = _git_env(build.fetch) if isinstance(build.fetch, GitContext) else []
    if env:
        container["env"] = env
    return container


def child_metadata(owner: Owner, name: str, component: str) -> dict[str, Any]:
    """Children's metadata; label values hold at most 63 characters, a run's name up to 253."""
    meta = metadata(owner, name, component)
    short = BuildRunNames(owner.name).label
    meta["labels"] = {**labels(owner.kind, short, component), BUILD_RUN_LABEL: short}
    return meta


def run_volumes(owner: Owner, ca_config_map: str | None, *extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The volumes every run's pod has: its docker config, the workspace, the registry's CA."""
    volumes: list[dict[str, Any]] = [
        {
            "name": "docker-config",
            "secret": {
                "secretName": BuildRunNames(owner.name).credentials,
                "items": [{"key": "config.json", "path": "config.json"}],
            },
        },
        {"name": "workspace", "emptyDir": {}},
        *extra,
    ]
    if ca_config_map:
        volumes.append({"name": "registry-ca", "configMap": {"name": ca_config_map}})
    return volumes


def run_job(
    owner: Owner,
    extra_labels: Mapping[str, str],
    timeout_seconds: int,
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """A run's Job around its pod: locked down (no service-account token, no Service links), never
    retried by the Job controller (the operator decides), with the deadline backstop."""
    meta = child_metadata(owner, BuildRunNames(owner.name).job, "build")
    meta["labels"] = {**meta["labels"], **extra_labels}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 10,
        "containers": containers,
        "volumes": volumes,
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout_seconds + DEADLINE_GRACE_SECONDS,
            "template": {"metadata": {"labels": dict(meta["labels"])}, "spec": pod_spec},
        },
    }


def build_job(build: KanikoBuild) -> dict[str, Any]:
    kaniko = {
        "name": KANIKO_CONTAINER,
        "image": build.kaniko_image,
        "args": kaniko_args(build),
        "workingDir": WORKSPACE,
        "volumeMounts": _mounts(build),
        "terminationMessagePath": TERMINATION_LOG,
        # Success: the digest file. Failure (Kaniko writes no file): the kubelet puts the log's last
        # lines there, so the failing line is known even when the log cannot be read.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": dict(build.resources),
    }
    env = _kaniko_env(build)
    if env:
        kaniko["env"] = env
    init = [fetch_container(build)] if build.fetch is not None else []
    volumes = run_volumes(build.owner, build.ca_config_map)
    return run_job(build.owner, build.extra_labels, build.timeout_seconds, [kaniko], init, volumes)


def docker_config(auths: Mapping[str, Mapping[str, Any]]) -> str:
    return json.dumps({"auths": {host: dict(entry) for host, entry in sorted(auths.items())}}, sort_keys=True)


def basic_auth_entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def build_credentials_secret(owner: Owner, config_json: str, files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run's own Secret: its docker config and, for task files, the files of its volumes
    (`files`: key → base64, projected key by key, so no step sees the docker config)."""
    names = BuildRunNames(owner.name)
    meta = child_metadata(owner, names.credentials, "build-auth")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "data": {"config.json": base64.b64encode(config_json.encode()).decode(), **(files or {})},
    }
