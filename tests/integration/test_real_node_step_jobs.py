"""Task files on the Job-per-step path on the real node: real Kaniko, real pods sharing a real
volume (local-path), the node pulling a same-run image from the staging repository.

    two builds in parallel joined by a push (the images checked with skopeo), a detached service a
    later step calls by its id and a `docker stop` of it, a cmd step running an image built earlier
    in the same run, a step that succeeds on its retry (the workspace remembers the first try; its
    `retryOnErrors` names the first try's output), a
    secret file read under `|| true` (the tools' BusyBox, the run Secret's volume, the secret
    redacted from the log), the staging tags gone after;
    a failing step that stops the run: the running step stopped, the rest Skipped, its log kept, and
    not retried (its output names none of its `retryOnErrors`).

The operator runs in this process; one Registry `hub` (Standard, admin user, self-signed TLS,
exposure.nodePull so the node pulls staged images) serves the module; the tools' BusyBox is the
node's busybox image (DOCKYARD_STEP_TOOLS_IMAGE). Run it alone, in the queue:
`flock /tmp/realnode-queue pytest tests/integration/test_real_node_step_jobs.py -x`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_node_pulls import node_registry_config_dir
from test_real_node import _apply, _get, _until, operator_on_real_node
from test_real_node_builds import BASE, Hub, children_gone, dockyard, finished, serving
from test_real_node_registry import Registry

from dockyard.builds.context import pack_context
from dockyard.builds.stepjobs.manifests import workspace_claim_name
from localcluster.realnode import RealNodeCluster

pytestmark = pytest.mark.integration

NAME = "hub"
SECRET_VALUE = "s3cr3t-step-jobs-token"


@pytest.fixture(scope="module")
def hub(real_node_cluster: RealNodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    cluster = real_node_cluster
    config_dir = {
        "DOCKYARD_NODE_REGISTRY_CONFIG_DIR": str(node_registry_config_dir(cluster)),
        "DOCKYARD_STEP_TOOLS_IMAGE": cluster.images["busybox"].name,
    }
    with operator_on_real_node(cluster, "r-steps", config_dir) as (namespace, _):
        body = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": NAME},
            "spec": {"sku": "Standard", "adminUser": {"enabled": True}, "exposure": {"nodePull": True}},
        }
        _apply(cluster, namespace, body)

        def ready() -> dict[str, Any] | None:
            found = _get(cluster, namespace, "registry", NAME) or {}
            status = found.get("status") or {}
            ok = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
            return found if ok and status.get("nodeLoginServer") else None

        registry_body = _until(ready, f"Registry {NAME} Ready with a nodeLoginServer", 180)
        _until(lambda: _daemonset_ready_named(cluster, namespace), "the node-trust DaemonSet ready", 90)
        registry = Registry(cluster, namespace, dict(registry_body), tmp_path_factory.mktemp("hub"))
        pushed = registry.skopeo(
            "copy",
            "--dest-creds",
            registry.creds,
            "--dest-cert-dir",
            str(registry.skopeo.certs),
            f"oci-archive:{cluster.images['busybox'].archive}",
            registry.url(BASE),
        )
        assert pushed.returncode == 0, pushed.stderr
        yield Hub(cluster, namespace, registry)


def _daemonset_ready_named(cluster: RealNodeCluster, namespace: str) -> bool:
    status = (_get(cluster, namespace, "daemonset", f"{NAME}-node-trust") or {}).get("status") or {}
    return bool(status.get("desiredNumberScheduled")) and status.get("numberReady") == status["desiredNumberScheduled"]


def _task_run(name: str, url: str, task_file: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": name},
        "spec": {"build": {"registryRef": {"name": NAME}, "source": {"archive": {"url": url}}, "taskFile": task_file}},
    }


def _exists(hub: Hub, reference: str) -> bool:
    inspected = hub.registry.skopeo(
        "inspect",
        "--creds",
        hub.registry.creds,
        "--cert-dir",
        str(hub.registry.skopeo.certs),
        hub.registry.url(reference),
    )
    return inspected.returncode == 0


def test_parallel_builds_a_service_a_same_run_image_and_a_retry(hub: Hub, tmp_path: Path) -> None:
    busybox = hub.cluster.images["busybox"].name
    source = tmp_path / "src"
    (source / "site").mkdir(parents=True)
    (source / "site" / "index.html").write_text("served by the db step\n")
    (source / "web.Dockerfile").write_text(f"FROM {hub.login}/{BASE}\nCOPY web.txt /web.txt\n")
    (source / "api.Dockerfile").write_text(f"FROM {hub.login}/{BASE}\nCOPY api.txt /api.txt\n")
    (source / "web.txt").write_text("web image built in this run\n")
    (source / "api.txt").write_text("api\n")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "step-secrets"},
        "stringData": {"token.b64": base64.b64encode(SECRET_VALUE.encode()).decode()},
    }
    _apply(hub.cluster, hub.namespace, secret)
    task_file = f"""\
version: v1.1.0
secrets:
  - id: token
    keyvault: k8s-secret:step-secrets/token.b64
volumes:
  - name: conf
    secret:
      token.txt: {{{{.Secrets.token}}}}
steps:
  - id: build-web
    build: -t {{{{.Run.Registry}}}}/web:{{{{.Run.ID}}}} -f web.Dockerfile .
  - id: build-api
    build: -t {{{{.Run.Registry}}}}/api:{{{{.Run.ID}}}} -f api.Dockerfile .
    when: ['-']
  - id: db
    cmd: {busybox} httpd -f -p 8080 -h /workspace/site
    detach: true
    when: ['-']
  - id: retry-once
    cmd: {busybox} sh -c 'if [ -f /workspace/tried ]; then echo second try; else touch /workspace/tried; echo first try; exit 3; fi'
    retries: 1
    retryDelay: 1
    retryOnErrors: ['first try']
    when: ['-']
  - id: call
    cmd: {{{{.Run.Registry}}}}/web:{{{{.Run.ID}}}} sh -c 'wget -qO- http://db:8080/index.html && cat /web.txt'
    retries: 3
    retryDelay: 2
    when: [build-web, db]
  - id: stop-db
    cmd: docker stop db
    when: [call]
  - id: secret-file
    cmd: {busybox} sh -c 'echo "the file holds $(cat /conf/token.txt), the env $TOKEN"; exit 5' || true
    env: ["TOKEN={{{{.Secrets.token}}}}"]
    volumeMounts:
      - name: conf
        mountPath: /conf
    when: ['-']
  - id: push
    push: ["{{{{.Run.Registry}}}}/web:{{{{.Run.ID}}}}", "{{{{.Run.Registry}}}}/api:{{{{.Run.ID}}}}"]
    when: [stop-db, build-api, retry-once, secret-file]
"""
    with serving("/src.tar.gz", pack_context(source, "web.Dockerfile")) as url:
        _apply(hub.cluster, hub.namespace, _task_run("fan", url, task_file))
        status = finished(hub, "fan", 600)
    assert status["status"] == "Succeeded", status
    assert status["executionShape"] == "JobPerStep"
    steps = {s["id"]: s for s in status["steps"]}
    assert {k: s["status"] for k, s in steps.items()} == dict.fromkeys(steps, "Succeeded")
    assert steps["retry-once"]["attempts"] == 2 and steps["retry-once"]["exitCode"] == 0
    assert steps["push"]["startTime"] >= max(steps[s]["finishTime"] for s in ("stop-db", "build-api", "retry-once"))
    assert steps["db"]["message"] == "ran as a service until stopped", steps["db"]
    assert steps["secret-file"]["exitCode"] == 0
    run_id = status["runId"]
    outputs = {o["repository"]: o["digest"] for o in status["outputImages"]}
    assert outputs == {"web": hub.registry.digest(f"web:{run_id}"), "api": hub.registry.digest(f"api:{run_id}")}
    log = dockyard(hub, "logs", "fan", "-n", hub.namespace, timeout=120)
    assert log.returncode == 0, log.stderr
    assert "served by the db step" in log.stdout and "web image built in this run" in log.stdout
    assert "----- Executing step ID: retry-once (attempt 1) -----" in log.stdout
    assert "first try" in log.stdout and "second try" in log.stdout
    assert "the file holds ***, the env ***" in log.stdout and "exit code 5 ignored (|| true)" in log.stdout
    assert SECRET_VALUE not in log.stdout and secret["stringData"]["token.b64"] not in log.stdout
    # the staging tags, the Jobs, their pods and the workspace are gone
    _until(lambda: not _exists(hub, f"dockyard/staging/{run_id}/build-web:built"), "the staged image deleted", 60)
    assert not _exists(hub, f"dockyard/staging/{run_id}/build-api:built")
    _until(lambda: children_gone(hub, "fan"), "the run's Jobs and pods deleted", 120)
    _until(
        lambda: _get(hub.cluster, hub.namespace, "pvc", workspace_claim_name("fan")) is None,
        "the workspace deleted",
        120,
    )


def test_a_failing_step_stops_the_run_and_its_log_is_kept(hub: Hub, tmp_path: Path) -> None:
    busybox = hub.cluster.images["busybox"].name
    source = tmp_path / "src"
    source.mkdir()
    (source / "README").write_text("nothing to build\n")
    task_file = f"""\
version: v1.1.0
steps:
  - id: long
    cmd: {busybox} sleep 600
    when: ['-']
  - id: unit
    cmd: {busybox} sh -c 'echo checking the unit; sleep 3; echo the unit is broken; exit 4'
    retries: 2
    retryOnErrors: ['connection reset']
    when: ['-']
  - id: after
    cmd: {busybox} echo never
    when: [unit, long]
"""
    with serving("/src.tar.gz", pack_context(source, "README")) as url:
        _apply(hub.cluster, hub.namespace, _task_run("breaks", url, task_file))
        status = finished(hub, "breaks", 300)
    assert status["status"] == "Failed", status
    assert status["message"].startswith("step unit failed:"), status["message"]
    assert [(s["id"], s["status"], s.get("exitCode")) for s in status["steps"]] == [
        ("long", "Canceled", None),
        ("unit", "Failed", 4),
        ("after", "Skipped", None),
    ]
    # retryOnErrors: its output names no retryable error, so the failure is not retried
    assert next(s for s in status["steps"] if s["id"] == "unit")["attempts"] == 1
    log = dockyard(hub, "logs", "breaks", "-n", hub.namespace, timeout=120)
    assert log.returncode == 0, log.stderr
    assert "----- Executing step ID: unit -----\nchecking the unit\nthe unit is broken\n" in log.stdout
    assert "never" not in log.stdout
    _until(lambda: children_gone(hub, "breaks"), "the stopped step's Job and pod deleted", 120)
