"""The base-image trigger on the real node: a task's first run (real Kaniko) records the base its
Dockerfile stands on, resolved by the build pod's fetch container; the base pushed again with
skopeo under another digest (the same busybox, as a Docker v2 manifest instead of OCI) to the
Dockyard registry starts exactly one `ImageUpdate` run, which really builds on the new base: its
recorded base digest is the one pushed, and the base the image was built on is that digest.

Shares test_real_node_builds' module fixture (the operator, Registry `hub`). Run it alone, in the
real-node queue: `flock /tmp/realnode-queue pytest tests/integration/test_real_node_base_image.py`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from test_real_node import _apply, _until
from test_real_node_builds import Hub, finished, hub, serving  # noqa: F401  (fixture)

from dockyard.builds.context import pack_context

pytestmark = pytest.mark.integration

TRACKED = "base/tracked:1"


def _push_base(hub: Hub, manifest_format: str) -> str:
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
        registry.url(TRACKED),
    )
    assert pushed.returncode == 0, pushed.stderr
    return registry.digest(TRACKED)


def _update_runs(hub: Hub) -> dict[str, dict[str, Any]]:
    out = hub.cluster.kubectl("get", "buildruns", "-n", hub.namespace, "-o", "json").stdout
    return {r["metadata"]["name"]: r for r in json.loads(out)["items"] if r["spec"].get("trigger") == "ImageUpdate"}


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
