"""The base-image trigger on the real node: a task's first run (real Kaniko) records the base its
Dockerfile stands on, resolved by the build pod's fetch container; the base pushed again with
skopeo under another digest (the same busybox, as a Docker v2 manifest instead of OCI) to the
Dockyard registry starts exactly one `ImageUpdate` run, which really builds on the new base: its
recorded base digest is the one pushed, and the base the image was built on is that digest. The same
for a task file on a git source (its last build step's base), served by tests/integration/gitserver.py.

Shares test_real_node_builds' module fixture (the operator, Registry `hub`). Run it alone, in the
real-node queue: `flock /tmp/realnode-queue pytest tests/integration/test_real_node_base_image.py`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from gitserver import GitServer
from test_real_node import _apply, _until
from test_real_node_builds import Hub, finished, hub, serving  # noqa: F401  (fixture)

from dockyard.builds.context import pack_context

pytestmark = pytest.mark.integration

TRACKED = "base/tracked:1"


def _push_base(hub: Hub, manifest_format: str, tracked: str = TRACKED) -> str:
    registry = hub.registry
    pushed = registry.skopeo(
        "copy",
        "--dest-creds",
        registry.creds,
        "--dest-cert-dir",
        str(registry.skopeo.certs),
        "--format",
        manifest_format,
        f"oci-archive:{hub.cluster.images['busybox'].archive}",
        registry.url(tracked),
    )
    assert pushed.returncode == 0, pushed.stderr
    return registry.digest(tracked)


def _update_runs(hub: Hub, task: str = "tracked") -> dict[str, dict[str, Any]]:
    out = hub.cluster.kubectl("get", "buildruns", "-n", hub.namespace, "-o", "json").stdout
    return {
        r["metadata"]["name"]: r
        for r in json.loads(out)["items"]
        if r["spec"].get("trigger") == "ImageUpdate" and (r["spec"].get("taskRef") or {}).get("name") == task
    }


def _task_base_digest(hub: Hub, task: str) -> str | None:
    out = hub.cluster.kubectl("get", "buildtask", task, "-n", hub.namespace, "-o", "json").stdout
    return (json.loads(out).get("status") or {}).get("baseImageDigest")


def test_a_base_pushed_with_skopeo_rebuilds_on_the_new_base(hub: Hub, tmp_path: Path) -> None:
    first = _push_base(hub, "oci")
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("ARG BASE=unset\nFROM $BASE AS base\nFROM base\nCOPY stamp.txt /stamp.txt\n")
    (source / "stamp.txt").write_text("rebuilt\n")
    with serving("/tracked.tar.gz", pack_context(source)) as url:
        task = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildTask",
            "metadata": {"name": "tracked"},
            "spec": {
                "registryRef": {"name": "hub"},
                "source": {"archive": {"url": url}},
                "dockerBuild": {
                    "images": ["tracked:{{.Run.ID}}"],
                    "buildArgs": [{"name": "BASE", "value": f"{hub.login}/{TRACKED}"}],
                },
                "triggers": {"baseImageUpdate": {}},
            },
        }
        _apply(hub.cluster, hub.namespace, task)
        _apply(
            hub.cluster,
            hub.namespace,
            {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "BuildRun",
                "metadata": {"name": "tracked-first"},
                "spec": {"taskRef": {"name": "tracked"}},
            },
        )
        status = finished(hub, "tracked-first")
        assert status["status"] == "Succeeded", status
        expected = {"registry": hub.login, "repository": "base/tracked", "tag": "1", "digest": first}
        assert status["baseImage"] == expected
        _until(
            lambda: (
                (
                    json.loads(
                        hub.cluster.kubectl("get", "buildtask", "tracked", "-n", hub.namespace, "-o", "json").stdout
                    ).get("status")
                    or {}
                ).get("baseImageDigest")
                == first
            ),
            "the task records its base",
            60,
        )
        time.sleep(10)  # two trigger ticks: the task's base is watched
        assert _update_runs(hub) == {}

        second = _push_base(hub, "v2s2")
        assert second != first
        runs = _until(lambda: _update_runs(hub), "the ImageUpdate run", 60)
        (name,) = runs
        assert runs[name]["spec"]["triggeredBy"]["baseImageDigest"] == second
        rebuilt = finished(hub, name)
    assert rebuilt["status"] == "Succeeded", rebuilt
    assert rebuilt["baseImage"] == expected | {"digest": second}
    assert list(_update_runs(hub)) == [name]
    # the image really stands on the new base: its first layers are the base's
    (image,) = rebuilt["outputImages"]
    inspected = hub.registry.skopeo(
        "inspect",
        "--creds",
        hub.registry.creds,
        "--cert-dir",
        str(hub.registry.skopeo.certs),
        hub.registry.url(f"tracked@{image['digest']}"),
    )
    base = hub.registry.skopeo(
        "inspect",
        "--creds",
        hub.registry.creds,
        "--cert-dir",
        str(hub.registry.skopeo.certs),
        hub.registry.url(f"base/tracked@{second}"),
    )
    assert inspected.returncode == 0 and base.returncode == 0, inspected.stderr + base.stderr
    base_layers = json.loads(base.stdout)["Layers"]
    assert json.loads(inspected.stdout)["Layers"][: len(base_layers)] == base_layers


GIT_TRACKED = "base/tracked-git:1"
GIT_TASK_FILE = """\
version: v1.1.0
steps:
  - build: -t gittask:{{.Run.ID}} .
  - cmd: {{.Values.busybox}} cat /workspace/stamp.txt
"""


def test_a_task_file_on_a_git_source_runs_and_rebuilds_on_its_new_base(hub: Hub, tmp_path: Path) -> None:
    """A task file on a git source (the fetch container checks the commit out into the workspace)
    builds with Kaniko and a cmd step reads the commit's file; the build step's base is recorded,
    and that base pushed again with skopeo starts one ImageUpdate run of the task, which builds on
    the new base. (No push step: this branch's push step cannot read Kaniko's 0600 layout as its
    non-root user, fixed on the task-file branches.)"""
    first = _push_base(hub, "oci", GIT_TRACKED)
    with GitServer(tmp_path / "git") as server:
        commit = server.make_repo(
            "steps",
            {"Dockerfile": f"FROM {hub.login}/{GIT_TRACKED}\nCOPY stamp.txt /stamp.txt\n", "stamp.txt": "git task\n"},
        )
        task = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildTask",
            "metadata": {"name": "gittask"},
            "spec": {
                "registryRef": {"name": "hub"},
                "source": {"git": {"url": server.pod_url("steps"), "revision": "main"}},
                "taskFile": GIT_TASK_FILE,
                "values": [{"name": "busybox", "value": hub.cluster.images["busybox"].name}],
                "triggers": {"baseImageUpdate": {}},
            },
        }
        run = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildRun",
            "metadata": {"name": "gittask-first"},
            "spec": {"taskRef": {"name": "gittask"}},
        }
        _apply(hub.cluster, hub.namespace, task, run)
        status = finished(hub, "gittask-first")
        assert status["status"] == "Succeeded", (status.get("message"), status.get("steps"), status.get("logTail"))
        assert status["commit"] == commit
        expected = {"registry": hub.login, "repository": "base/tracked-git", "tag": "1", "digest": first}
        assert status["baseImage"] == expected
        assert [s["status"] for s in status["steps"]] == ["Succeeded", "Succeeded"]
        assert "git task" in status["logTail"]  # the cmd step read the checked-out file
        _until(lambda: _task_base_digest(hub, "gittask") == first, "the task records its base", 60)
        time.sleep(10)  # two trigger ticks: the task's base is watched
        assert _update_runs(hub, "gittask") == {}

        second = _push_base(hub, "v2s2", GIT_TRACKED)
        assert second != first
        runs = _until(lambda: _update_runs(hub, "gittask"), "the ImageUpdate run", 60)
        (name,) = runs
        rebuilt = finished(hub, name)
    assert rebuilt["status"] == "Succeeded", rebuilt
    assert rebuilt["baseImage"] == expected | {"digest": second}
    assert list(_update_runs(hub, "gittask")) == [name]
