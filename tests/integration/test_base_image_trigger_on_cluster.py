"""The base-image trigger on the real control plane with a real registry binary (the operator's
rendered distribution + token service, `realregistry.py`) posting its notifications to the
operator's event intake: a base pushed with skopeo to the Dockyard registry starts exactly one
`ImageUpdate` run for its new digest; the same digest pushed again, or once more after the run,
starts nothing.

kwok plays the build pods, so no first run can resolve the base here: the task's `status.baseImage`
is written as a first run leaves it (the real-node test, test_real_node_base_image.py, covers the
fetch container resolving and recording it)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from test_registry import _until, crds  # noqa: F401  (fixture)
from test_webhooks import Stack, stack  # noqa: F401  (fixture)

from realregistry import write_oci_image

pytestmark = pytest.mark.integration

TICK = 5  # handlers/triggers.py TICK_SECONDS
BASE = "base/py"


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False).stdout
    return json.loads(out) if out.strip() else None


def _update_runs(cluster: Any, namespace: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout
    return {r["metadata"]["name"]: r for r in json.loads(out)["items"] if r["spec"].get("trigger") == "ImageUpdate"}


def _push_base(stack: Stack, manifest_format: str) -> str:
    """Push the test image as base/py:3.11 in `manifest_format` (oci or v2s2: two digests of one
    image); returns the digest the tag names now."""
    registry = stack.registry
    assert registry is not None
    target = f"docker://127.0.0.1:{registry.port}/{BASE}:3.11"
    pushed = registry.skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        stack.creds,
        "--format",
        manifest_format,
        f"oci:{stack.workdir / 'base'}:v1",
        target,
    )
    assert pushed.returncode == 0, pushed.stderr
    raw = registry.skopeo("inspect", "--raw", "--tls-verify=false", "--creds", stack.creds, target)
    assert raw.returncode == 0, raw.stderr
    return f"sha256:{hashlib.sha256(raw.stdout.encode()).hexdigest()}"


def test_a_base_pushed_to_a_dockyard_registry_starts_exactly_one_update_run(
    stack: Stack,
    cluster: Any,
    namespace: str,
) -> None:
    write_oci_image(stack.workdir / "base")
    with stack.operator():
        stack.start_registry()
        login = _until(
            lambda: ((_get(cluster, namespace, "registry", "hub") or {}).get("status") or {}).get("loginServer"),
            "the registry's login server",
        )
        first = _push_base(stack, "oci")
        task = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildTask",
            "metadata": {"name": "app"},
            "spec": {
                "registryRef": {"name": "hub"},
                "source": {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}},
                "dockerBuild": {"images": ["app:{{.Run.ID}}"]},
                "triggers": {"baseImageUpdate": {}},
            },
        }
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(task))
        # what the first run left: the base it stood on (kwok cannot resolve it; see the docstring)
        recorded = {"registry": login, "repository": BASE, "tag": "3.11", "digest": first}
        cluster.kubectl(
            "patch",
            "buildtask",
            "app",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"baseImage": recorded}}),
        )
        time.sleep(2 * TICK)  # watched now; the same digest again starts nothing
        _push_base(stack, "oci")
        time.sleep(TICK)
        assert _update_runs(cluster, namespace) == {}

        second = _push_base(stack, "v2s2")
        assert second != first
        runs = _until(lambda: _update_runs(cluster, namespace), "the ImageUpdate run", 30)
        assert list(runs) == [f"app-base-{second.removeprefix('sha256:')[:12]}"]
        run = next(iter(runs.values()))
        assert run["spec"]["triggeredBy"] == {"baseImage": f"{login}/{BASE}:3.11", "baseImageDigest": second}
        assert run["spec"]["taskRef"] == {"name": "app"}

        _push_base(stack, "v2s2")  # the same digest pushed again: nothing more
        time.sleep(3 * TICK)
        assert list(_update_runs(cluster, namespace)) == list(runs)
        events = cluster.kubectl(
            "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=app", "-o", "json"
        ).stdout
        triggered = [e for e in json.loads(events)["items"] if e["reason"] == "RunTriggered"]
        assert len(triggered) == 1 and "base image" in triggered[0]["message"]


def test_a_task_without_a_source_is_admitted_and_runs_while_a_dockerfile_build_needs_one(
    stack: Stack,
    cluster: Any,
    namespace: str,
) -> None:
    purge = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildTask",
        "metadata": {"name": "purge"},
        "spec": {
            "registryRef": {"name": "hub"},
            "taskFile": "version: v1.1.0\nsteps:\n  - cmd: busybox:1.36 sh -c 'echo purging'\n",
            "triggers": {"timers": [{"name": "nightly", "schedule": "0 1 * * *"}]},
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(purge))
    refused = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            purge
            | {
                "metadata": {"name": "nocontext"},
                "spec": {**purge["spec"], "taskFile": None, "dockerBuild": {"images": ["a:1"]}},
            }
        ),
        check=False,
    )
    assert refused.returncode != 0 and "dockerBuild needs a build context" in refused.stderr
    with stack.operator():
        stack.start_registry()
        run = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildRun",
            "metadata": {"name": "purge-now"},
            "spec": {"taskRef": {"name": "purge"}},
        }
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(run))
        job_name = _until(
            lambda: ((_get(cluster, namespace, "buildrun", "purge-now") or {}).get("status") or {}).get("jobName"),
            "the run's Job",
        )
        job = _until(lambda: _get(cluster, namespace, "job", job_name), "the Job")
        init = [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]]
        assert "fetch-context" not in init
        status = _until(
            lambda: (
                s
                if (s := (_get(cluster, namespace, "buildrun", "purge-now") or {}).get("status") or {}).get("status")
                in ("Succeeded", "Failed", "Error")
                else None
            ),
            "the run's end",
            90,
        )
        assert status["status"] == "Succeeded", status
