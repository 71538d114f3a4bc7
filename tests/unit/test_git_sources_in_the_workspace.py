"""Git sources reach the workspace through the fetch container, for one-step builds and task files
alike: what the run reconciler hands the Job builders (`source_fetch`), a task file on a git source
accepted, and its pod's fetcher given the commit and the credential (the steps never see it)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.builds.definition import check_buildable
from dockyard.builds.manifests.job import FETCH_CONTAINER, ArchiveContext, GitContext, OciContext
from dockyard.builds.manifests.steps import TaskPod, build_task_job
from dockyard.builds.sources import source_fetch
from dockyard.builds.taskfile.plan import plan
from dockyard.builds.taskrun import pod_steps
from dockyard.builds.template import RunVariables
from dockyard.core.meta import Owner
from dockyard.models.builds import BuildTaskSpec

HOST = "hub.team.svc:5000"
SHA = "d" * 40
FILE = """\
version: v1.1.0
steps:
  - build: -t app:{{.Run.ID}} .
  - cmd: busybox:1.36 sh -c 'git log --oneline -1 || true'
  - push: [app:{{.Run.ID}}]
"""


def _task(source: dict[str, Any], **rest: Any) -> BuildTaskSpec:
    return BuildTaskSpec.model_validate({"registryRef": {"name": "hub"}, "source": source, **rest})


@pytest.mark.parametrize(
    ("source", "status", "expected"),
    [
        (
            {"git": {"url": "https://git.example/app.git", "revision": "main"}},
            {"commit": SHA, "ref": "refs/heads/main"},
            GitContext("https://git.example/app.git", SHA, "refs/heads/main"),
        ),
        (
            {
                "git": {
                    "url": "http://git.example/app.git",
                    "revision": SHA,
                    "contextSubPath": "svc/api",
                    "authSecretRef": {"name": "git-creds"},
                }
            },
            {"commit": SHA, "ref": "HEAD"},
            GitContext("http://git.example/app.git", SHA, "HEAD", "svc/api", "git-creds"),
        ),
        ({"archive": {"url": "https://x/c.tgz"}}, {}, ArchiveContext("https://x/c.tgz")),
        (
            {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}},
            {},
            OciContext("dockyard/sources", "sha256:" + "a" * 64),
        ),
        ({}, {}, None),
    ],
    ids=["git-branch", "git-sha-sub-path-secret", "archive", "oci", "none"],
)
def test_what_the_fetch_container_puts_into_the_workspace(
    source: dict[str, Any], status: dict[str, str], expected: object
) -> None:
    assert source_fetch(_task(source, taskFile=FILE), status) == expected


def test_a_task_file_on_a_git_source_runs_with_the_commit_fetched_into_its_workspace() -> None:
    git = {"git": {"url": "https://git.example/app.git", "authSecretRef": {"name": "git-creds"}}}
    task = _task(git, taskFile=FILE)
    check_buildable(task)  # no longer refused
    fetch = source_fetch(task, {"commit": SHA, "ref": "refs/heads/main"})
    steps = pod_steps(plan(FILE, RunVariables(ID="ca1", Registry=HOST, Date="20260101-000000z")), HOST)
    pod = build_task_job(
        TaskPod(
            owner=Owner("dockyard.dev/v1alpha1", "BuildRun", "app-1", "team", "uid"),
            registry_host=HOST,
            kaniko_image="kaniko",
            operator_image="dockyard",
            fetch=fetch,
            steps=steps,
            timeout_seconds=600,
            resources={},
        )
    )["spec"]["template"]["spec"]
    fetcher, *step_containers = pod["initContainers"]
    assert fetcher["name"] == FETCH_CONTAINER
    assert "--git-url=https://git.example/app.git" in fetcher["command"]
    assert f"--git-commit={SHA}" in fetcher["command"]
    assert [e["valueFrom"]["secretKeyRef"] for e in fetcher["env"]] == [
        {"name": "git-creds", "key": "username"},
        {"name": "git-creds", "key": "password"},
    ]
    assert len(step_containers) == 3
    assert all("GIT_" not in str(c.get("env")) for c in step_containers)  # the credential is the fetcher's only


# -- a task file's base (base-image tracking of its last build step) ------------------------------

TWO_BUILDS = """\
version: v1.1.0
steps:
  - build: -t base:{{.Run.ID}} -f base.Dockerfile .
  - cmd: busybox:1.36 echo between
  - build: -t web:{{.Run.ID}} -f docker/web.Dockerfile --build-arg FLAVOR=slim --build-arg FROM_ENV --target run ./web
  - push: [base:{{.Run.ID}}, web:{{.Run.ID}}]
"""


def _steps(text: str) -> tuple[Any, ...]:
    return pod_steps(plan(text, RunVariables(ID="ca1", Registry=HOST, Date="20260101-000000z")), HOST)


def test_the_last_build_step_is_the_one_tracked() -> None:
    from dockyard.builds.reconcile import tracked_build_step

    steps = _steps(TWO_BUILDS)
    tracked = tracked_build_step(steps)
    assert tracked is not None and tracked.destinations == (f"{HOST}/web:ca1",)
    assert tracked_build_step(_steps("version: v1.1.0\nsteps:\n  - cmd: busybox:1.36 true\n")) is None


def test_the_fetcher_reports_the_tracked_steps_base() -> None:
    from dockyard.builds.reconcile import tracked_build_step

    steps = _steps(TWO_BUILDS)
    pod = TaskPod(
        owner=Owner("dockyard.dev/v1alpha1", "BuildRun", "web-1", "team", "uid"),
        registry_host=HOST,
        kaniko_image="kaniko",
        operator_image="dockyard",
        fetch=GitContext("https://git.example/app.git", SHA, "refs/heads/main"),
        steps=steps,
        timeout_seconds=600,
        resources={},
        base_step=tracked_build_step(steps),
    )
    fetcher = build_task_job(pod)["spec"]["template"]["spec"]["initContainers"][0]
    command = fetcher["command"]
    assert "--dockerfile=docker/web.Dockerfile" in command  # relative to the workspace, as the step reads it
    assert "--build-arg=FLAVOR=slim" in command and not any("FROM_ENV" in arg for arg in command)
    assert "--target=run" in command
    assert f"--registry={HOST}" in command  # a base in the run's registry: its address and credential
    untracked = build_task_job(TaskPod(**{**vars(pod), "base_step": None}))["spec"]["template"]["spec"]
    assert not any(arg.startswith("--dockerfile") for arg in untracked["initContainers"][0]["command"])


def test_a_task_files_own_images_are_never_its_tracked_base() -> None:
    from dockyard.builds.triggers.images import own_repositories

    task = _task({"archive": {"url": "https://x/c.tgz"}}, taskFile=TWO_BUILDS)
    assert own_repositories(task, HOST) == {(HOST, "base"), (HOST, "web")}
    broken = _task({"archive": {"url": "https://x/c.tgz"}}, taskFile="version: v1.1.0\nsteps: 3\n")
    assert own_repositories(broken, HOST) == frozenset()
