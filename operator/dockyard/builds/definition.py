"""What a run builds: its own inline definition, or its task's with the run's overrides; the image
names rendered with the run's variables and qualified with the registry; the repositories its
delegated credential may push to. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from dockyard.builds.taskfile.plan import PlanError, plan
from dockyard.builds.template import RunVariables, render
from dockyard.builds.translate import NotRunnable, secret_refs
from dockyard.models.builds import BuildDefinition, BuildRunSpec, BuildTaskSpec

RunType = Literal["QuickBuild", "QuickRun", "AutoBuild", "AutoRun"]
DEFAULT_TAG: Final = "latest"


class NotBuildable(ValueError):
    """The definition asks for something runs cannot do (yet); the message names the field."""


@dataclass(frozen=True)
class RunDefinition:
    definition: BuildDefinition
    task_name: str | None
    values: Mapping[str, str]
    timeout_seconds: int
    run_type: RunType


def resolve(spec: BuildRunSpec, task_name: str | None, task: BuildTaskSpec | None) -> RunDefinition:
    if spec.build is not None:
        definition: BuildDefinition = spec.build
        values = {v.name: v.value for v in definition.values}
        run_type: RunType = "QuickBuild" if definition.docker_build is not None else "QuickRun"
    else:
        assert task is not None, "a taskRef run needs its task"
        definition = task
        values = {v.name: v.value for v in task.values} | {v.name: v.value for v in spec.values or ()}
        run_type = "AutoBuild" if task.docker_build is not None else "AutoRun"
    timeout = spec.timeout_seconds or definition.timeout_seconds
    return RunDefinition(definition, task_name, values, timeout, run_type)


def secret_selectors(definition: BuildDefinition) -> list[tuple[str, str]]:
    """(Secret name, key) of every value a run takes from a Secret (Secret build arguments, the git
    password): the values kept out of its log, by the operator and by the CLI's live stream."""
    build = definition.docker_build
    selectors = [(a.value_from.name, a.value_from.key) for a in (build.build_args if build else ()) if a.value_from]
    if definition.source.git and definition.source.git.auth_secret_ref:
        selectors.append((definition.source.git.auth_secret_ref.name, "password"))
    return selectors + task_file_selectors(definition)


def task_file_selectors(definition: BuildDefinition) -> list[tuple[str, str]]:
    """The Kubernetes Secrets behind a task file's `secrets:` (`k8s-secret:<name>/<key>`)."""
    if not definition.task_file:
        return []
    values = {v.name: v.value for v in definition.values}
    sample = RunVariables(ID="ca0", Registry="registry.invalid", Date="20000101-000000z")
    try:
        refs = secret_refs(plan(definition.task_file, sample, values).secrets)
    except (PlanError, NotRunnable):
        return []
    return [(ref.secret, ref.key) for ref in refs]


def has_source(definition: BuildDefinition) -> bool:
    source = definition.source
    return source.git is not None or source.archive is not None or source.oci is not None


def check_buildable(definition: BuildDefinition) -> None:
    if definition.docker_build is not None and not has_source(definition):
        raise NotBuildable("dockerBuild needs a build context: set source.git, source.archive or source.oci")


def is_qualified(name: str) -> bool:
    """Whether an image name starts with a registry host (docker's rule: a first component with a
    dot or a colon, or `localhost`)."""
    first, slash, _ = name.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def qualify(name: str, registry_host: str) -> str:
    """The full reference pushed: the registry host unless the name has one, and `:latest` when it
    has neither tag nor digest."""
    full = name if is_qualified(name) else f"{registry_host}/{name}"
    last = full.rsplit("/", 1)[-1]
    return full if (":" in last or "@" in last) else f"{full}:{DEFAULT_TAG}"


def split_reference(reference: str) -> tuple[str, str, str | None]:
    """(host, repository, tag) of a qualified reference."""
    host, _, rest = reference.partition("/")
    repository, colon, tag = rest.rpartition(":")
    return (host, repository, tag) if colon else (host, rest, None)


def destinations(images: tuple[str, ...] | list[str], run: RunVariables, values: Mapping[str, str]) -> tuple[str, ...]:
    rendered = []
    for image in images:
        text = render(image, run, values).strip()
        if not text or text.endswith((":", "/")):
            raise NotBuildable(f"dockerBuild.images: {image!r} renders to {text!r}, which is not an image name")
        full = qualify(text, run.Registry)
        if full not in rendered:
            rendered.append(full)
    return tuple(rendered)


def own_repositories(references: tuple[str, ...], registry_host: str) -> tuple[str, ...]:
    """Repositories in the run's registry that the run pushes to (its delegated credential's grants)."""
    repositories = []
    for reference in references:
        host, repository, _ = split_reference(reference)
        if host == registry_host and repository not in repositories:
            repositories.append(repository)
    return tuple(repositories)


def cache_repository(definition: BuildDefinition, pushed: tuple[str, ...], registry_host: str) -> str | None:
    build = definition.docker_build
    if build is None or build.cache is None or not build.cache.enabled:
        return None
    if build.cache.repository:
        name = build.cache.repository
        return name if is_qualified(name) else f"{registry_host}/{name}"
    if not pushed:
        return f"{registry_host}/dockyard/cache"
    host, repository, _ = split_reference(pushed[0])
    return f"{host}/{repository}/cache"
