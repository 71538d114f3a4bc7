"""Git sources reach the workspace through the fetch container, for one-step builds and task files
alike: what the run reconciler hands the Job builders (`source_fetch`), a task file on a git source
accepted, and its pod's fetcher given the commit and the credential (the steps never see it)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.builds.definition import check_buildable
from dockyard.builds.manifests.job import FETCH_CONTAINER, ArchiveContext, GitContext, OciContext
from dockyard.builds.manifests.steps import TaskPod, build_task_job
from dockyard.builds.reconcile import source_fetch
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
