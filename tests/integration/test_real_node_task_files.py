"""Task files on the real node: the single pod of a chain with real Kaniko, real cmd containers and
real pushes, and the step features translated for Kubernetes (builds/translate.py).

    the example task file (examples/taskfile): build → test → push, the pushed image checked
    with skopeo against status.outputImages;
    values and a secret file: a Kubernetes Secret behind `secrets:`, its value in a cmd step's
    env (through the kubelet) and in a volume file, kept out of the status, Events and log;
    `|| true` on a failing command, run by the tools' BusyBox supervisor, and the next step runs.

One Registry `hub` serves the module; the context is uploaded once by the CLI (a no-push quick
build of examples/taskfile) and reused as every run's source; cmd steps run the node's busybox
image, and the tools' BusyBox is that image too (DOCKYARD_STEP_TOOLS_IMAGE). Run it alone, in the node's queue:
`flock /tmp/realnode-queue pytest tests/integration/test_real_node_task_files.py -x`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_real_node import _apply, _until, operator_on_real_node
from test_real_node_builds import NAME, Hub, dockyard, events_text, finished, run_by_id
from test_real_node_registry import Registry, _ready

from localcluster.realnode import RealNodeCluster

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "taskfile"
SECRET_VALUE = "s3cr3t-Value-7f"


@dataclass
class Node:
    hub: Hub
    source: dict[str, Any]
    """The uploaded context, as a BuildRun's `source`."""
    test_image: str
    """An image the node has: cmd steps run it."""


@pytest.fixture(scope="module")
def node(real_node_cluster: RealNodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    cluster = real_node_cluster
    busybox = cluster.images["busybox"].name
    with operator_on_real_node(cluster, "r-tasks", {"DOCKYARD_STEP_TOOLS_IMAGE": busybox}) as (namespace, _):
        _apply(
            cluster,
            namespace,
            {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "Registry",
                "metadata": {"name": NAME},
                "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
            },
        )
        ready = _until(lambda: _ready(cluster, namespace, NAME), f"Registry {NAME} Ready", 180)
        registry = Registry(cluster, namespace, dict(ready), tmp_path_factory.mktemp("hub"))
        hub = Hub(cluster, namespace, registry)
        # a tag, though nothing is pushed: Kaniko refuses --no-push without a --destination
        uploaded = dockyard(hub, "build", "-r", NAME, "-n", namespace, "--no-push", "-t", "upload:check", str(EXAMPLE))
        assert uploaded.returncode == 0, f"{uploaded.stdout}\n{uploaded.stderr}"
        run_id = re.search(r"^Run ID: (\S+)$", uploaded.stdout, re.M)
        assert run_id, uploaded.stdout
        source = run_by_id(hub, run_id[1])["spec"]["build"]["source"]
        assert "oci" in source, source
        yield Node(hub, source, busybox)


def _task_run(node: Node, name: str, task_file: str, values: dict[str, str]) -> dict[str, Any]:
    body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": name},
        "spec": {
            "build": {
                "registryRef": {"name": NAME},
                "source": node.source,
                "taskFile": task_file,
                "values": [{"name": k, "value": v} for k, v in values.items()],
                "timeoutSeconds": 600,
            }
        },
    }
    _apply(node.hub.cluster, node.hub.namespace, body)
    return finished(node.hub, name, 420)


def _steps(status: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(s["id"], s["status"], s.get("exitCode")) for s in status.get("steps") or []]


def _log(node: Node, status: dict[str, Any]) -> str:
    reference = status.get("logReference")
    assert reference, status
    out = dockyard(node.hub, "logs", "-n", node.hub.namespace, status["runId"])
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_example_task_file_builds_tests_and_pushes(node: Node) -> None:
    values = {"version": "1.4.2", "testImage": node.test_image}
    status = _task_run(node, "example", (EXAMPLE / "acr-task.yaml").read_text(), values)
    assert status["status"] == "Succeeded", (status.get("message"), status.get("logTail"))
    assert _steps(status) == [("build", "Succeeded", 0), ("test", "Succeeded", 0), ("push", "Succeeded", 0)]
    outputs = {f"{o['repository']}:{o['tag']}": o["digest"] for o in status["outputImages"]}
    run_id = status["runId"]
    assert set(outputs) == {f"hello-steps:{run_id}", "hello-steps:latest"}
    digest = node.hub.registry.digest(f"hello-steps:{run_id}")
    assert outputs[f"hello-steps:{run_id}"] == digest == outputs["hello-steps:latest"]
    assert "version 1.4.2 ok" in _log(node, status)


def test_values_and_a_secret_file_reach_a_cmd_step_and_the_secret_stays_out_of_everything(node: Node) -> None:
    cluster, namespace = node.hub.cluster, node.hub.namespace
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app-secrets"},
        "stringData": {"token": SECRET_VALUE, "token.b64": base64.b64encode(SECRET_VALUE.encode()).decode()},
    }
    _apply(cluster, namespace, secret)
    config = base64.b64encode(b"greeting=from-a-file\n").decode()
    task_file = f"""\
version: v1.1.0
secrets:
  - id: token
    keyvault: k8s-secret:app-secrets/token
  - id: token-file
    keyvault: k8s-secret:app-secrets/token.b64
volumes:
  - name: conf
    secret:
      app.conf: {config}
      token.txt: {{{{index .Secrets "token-file"}}}}
steps:
  - id: check
    cmd: {{{{.Values.image}}}} sh -c 'grep -q from-a-file /conf/app.conf && test "$(cat /conf/token.txt)" = "$TOKEN" && test "$GREETING" = {{{{.Values.greeting}}}} && echo "token is $TOKEN"'
    env: ["TOKEN={{{{.Secrets.token}}}}", "GREETING={{{{.Values.greeting}}}}"]
    volumeMounts:
      - name: conf
        mountPath: /conf
"""
    status = _task_run(node, "secrets", task_file, {"image": node.test_image, "greeting": "hello"})
    assert status["status"] == "Succeeded", (status.get("message"), status.get("logTail"))
    assert _steps(status) == [("check", "Succeeded", 0)]
    log = _log(node, status)
    assert "token is " in log and SECRET_VALUE not in log
    job = cluster.kubectl("get", "buildrun", "secrets", "-n", namespace, "-o", "json").stdout
    assert SECRET_VALUE not in json.dumps(json.loads(job)["status"])
    assert SECRET_VALUE not in events_text(node.hub)


def test_or_true_ignores_a_failing_command_and_the_chain_goes_on(node: Node) -> None:
    task_file = f"""\
steps:
  - id: flaky
    cmd: {node.test_image} sh -c 'echo trying; exit 3' || true
  - id: quiet
    cmd: {node.test_image} echo this-is-discarded > /dev/null
  - id: after
    cmd: {node.test_image} echo after-the-failure
"""
    status = _task_run(node, "or-true", task_file, {})
    assert status["status"] == "Succeeded", (status.get("message"), status.get("logTail"))
    assert _steps(status) == [("flaky", "Succeeded", 0), ("quiet", "Succeeded", 0), ("after", "Succeeded", 0)]
    log = _log(node, status)
    assert "trying" in log and "exit code 3 ignored (|| true)" in log and "after-the-failure" in log
    assert "this-is-discarded" not in log
