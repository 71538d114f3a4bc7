"""Task-file runs on the real control plane with kwok playing the node: the single-pod path, and the
Job-per-step path (its step pods end by their step's name: `step-fail…` exits 1, `step-slow…` runs).

kwok's build-pod stage (hack/localcluster/stages/build-pod-complete.yaml) finishes a run's pod by
the run's name: every `step-…` init container exits 0 with one `<destination>@sha256:<sha256 of the
destination>` line per `--destination` (the push step's lines are the run's images), or, for
`fail-…`, the first `step-…` container exits 1 and the containers after it never start. Real
Kaniko and real pushes are the real node's business (not here)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import yaml
from test_builds import _apply, _ended, _events, _get, _registry, _status, _until, crds, operator  # noqa: F401

from dockyard.builds.stepjobs.manifests import pull_secret_name, workspace_claim_name
from dockyard.core.names import BuildRunNames

pytestmark = pytest.mark.integration

OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
CHAIN = """\
version: v1.1.0
steps:
  - id: build-web
    build: -t {{.Run.Registry}}/web:{{.Run.ID}} -f Dockerfile .
  - id: test
    cmd: busybox:1.36 sh -c 'test -f /workspace/Dockerfile'
  - id: push
    push: ["{{.Run.Registry}}/web:{{.Run.ID}}"]
"""


def _task_run(name: str, task_file: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": name},
        "spec": {"build": {"registryRef": {"name": "hub"}, "source": OCI, "taskFile": task_file}},
    }


def _digest(reference: str) -> str:
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def test_a_chain_runs_in_one_pod_with_per_step_status_and_its_pushed_images(
    cluster: Any, operator: str, namespace: str
) -> None:
    host = _registry(cluster, namespace)
    # a key acr-builder ignores: the run goes ahead and says so
    _apply(cluster, namespace, _task_run("chain", CHAIN.replace("steps:\n", "continueOnError: true\nsteps:\n", 1)))
    status = _until(lambda: _ended(cluster, namespace, "chain"), "run chain ended", 90)
    assert status["status"] == "Succeeded", status
    assert status["runType"] == "QuickRun" and status["runId"].startswith("ca")
    steps = status["steps"]
    assert [(s["id"], s["type"], s["status"], s["exitCode"]) for s in steps] == [
        ("build-web", "build", "Succeeded", 0),
        ("test", "cmd", "Succeeded", 0),
        ("push", "push", "Succeeded", 0),
    ]
    assert all(s.get("startTime") and s.get("finishTime") for s in steps)
    pushed = f"{host}/web:{status['runId']}"
    assert status["outputImages"] == [
        {"registry": host, "repository": "web", "tag": status["runId"], "digest": _digest(pushed)}
    ]
    started = [e["message"] for e in _events(cluster, namespace, "chain") if e["reason"] == "RunStarted"]
    assert started == [f"run {status['runId']} runs build-web → test → push"]
    warned = [e["message"] for e in _events(cluster, namespace, "chain") if e["reason"] == "PlanWarning"]
    assert warned == ["line 2: task: unknown key 'continueOnError' is ignored (as acr-builder ignores it)"]
    # the Job and its pod went once the status was written
    _until(lambda: _get(cluster, namespace, "job", BuildRunNames("chain").job) is None, "the run's Job deleted", 60)


def test_the_first_failing_step_fails_the_run_and_the_rest_never_start(
    cluster: Any, operator: str, namespace: str
) -> None:
    _registry(cluster, namespace)
    _apply(cluster, namespace, _task_run("fail-chain", CHAIN))
    status = _until(lambda: _ended(cluster, namespace, "fail-chain"), "run fail-chain ended", 90)
    assert status["status"] == "Failed", status
    assert status["message"].startswith("step build-web failed:"), status["message"]
    assert [(s["id"], s["status"], s.get("exitCode")) for s in status["steps"]] == [
        ("build-web", "Failed", 1),
        ("test", "Skipped", None),
        ("push", "Skipped", None),
    ]
    assert not status.get("outputImages")


def workspace_volume(cluster: Any, namespace: str, run: str) -> None:
    """kwok provisions no volumes: a PersistentVolume bound ahead to the run's workspace claim."""
    name = f"{namespace}-{run}"[:63]
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"test.dockyard.dev/namespace": namespace}},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": f"/tmp/{name}"},
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": namespace, "name": workspace_claim_name(run)},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(volume))


FAN_IN = """\
version: v1.1.0
steps:
  - id: build-web
    build: -t {{.Run.Registry}}/web:{{.Run.ID}} .
  - id: build-api
    build: -t {{.Run.Registry}}/api:{{.Run.ID}} -f api/Dockerfile api
    when: ['-']
  - id: push
    push: ["{{.Run.Registry}}/web:{{.Run.ID}}", "{{.Run.Registry}}/api:{{.Run.ID}}"]
    when: [build-web, build-api]
"""


def test_a_parallel_plan_runs_a_job_per_step_and_joins(cluster: Any, operator: str, namespace: str) -> None:
    host = _registry(cluster, namespace)
    workspace_volume(cluster, namespace, "fan-in")
    _apply(cluster, namespace, _task_run("fan-in", FAN_IN))
    status = _until(lambda: _ended(cluster, namespace, "fan-in"), "run fan-in ended", 120)
    assert status["status"] == "Succeeded", status
    assert status["executionShape"] == "JobPerStep"
    steps = {s["id"]: s for s in status["steps"]}
    assert [(s["id"], s["type"], s["status"], s["exitCode"]) for s in status["steps"]] == [
        ("build-web", "build", "Succeeded", 0),
        ("build-api", "build", "Succeeded", 0),
        ("push", "push", "Succeeded", 0),
    ]
    # the join started only after both builds ended (times have a second's resolution)
    assert steps["push"]["startTime"] >= max(steps["build-web"]["finishTime"], steps["build-api"]["finishTime"])
    run_id = status["runId"]
    assert status["outputImages"] == [
        {"registry": host, "repository": "web", "tag": run_id, "digest": _digest(f"{host}/web:{run_id}")},
        {"registry": host, "repository": "api", "tag": run_id, "digest": _digest(f"{host}/api:{run_id}")},
    ]
    started = [e["message"] for e in _events(cluster, namespace, "fan-in") if e["reason"] == "RunStarted"]
    assert started == [f"run {run_id} runs build-web, build-api, push as a Job per step"]
    # every step Job, the workspace claim and the pull secret go once the status is written
    _until(
        lambda: (
            not cluster.kubectl(
                "get", "jobs", "-n", namespace, "-l", "dockyard.dev/build-run=fan-in", "-o", "name"
            ).stdout.strip()
        ),
        "the run's Jobs deleted",
        60,
    )
    _until(lambda: _get(cluster, namespace, "pvc", workspace_claim_name("fan-in")) is None, "the workspace deleted", 60)
    assert _get(cluster, namespace, "secret", pull_secret_name("fan-in")) is None


def test_the_first_failing_step_stops_the_running_ones_and_skips_the_rest(
    cluster: Any, operator: str, namespace: str
) -> None:
    _registry(cluster, namespace)
    workspace_volume(cluster, namespace, "fan-fail")
    failing = """\
version: v1.1.0
steps:
  - id: slow-service-test
    cmd: busybox:1.36 sleep 3600
    when: ['-']
  - id: fail-unit
    cmd: busybox:1.36 false
    when: ['-']
  - id: report
    cmd: busybox:1.36 echo never
    when: [fail-unit, slow-service-test]
"""
    _apply(cluster, namespace, _task_run("fan-fail", failing))
    status = _until(lambda: _ended(cluster, namespace, "fan-fail"), "run fan-fail ended", 120)
    assert status["status"] == "Failed", status
    assert status["message"].startswith("step fail-unit failed:"), status["message"]
    assert [(s["id"], s["status"], s.get("exitCode")) for s in status["steps"]] == [
        ("slow-service-test", "Canceled", None),
        ("fail-unit", "Failed", 1),
        ("report", "Skipped", None),
    ]
    assert status["steps"][0]["message"] == "stopped: the run ended (Failed)"
    _until(
        lambda: (
            not cluster.kubectl(
                "get", "pods", "-n", namespace, "-l", "dockyard.dev/build-run=fan-fail", "-o", "name"
            ).stdout.strip()
        ),
        "the running step's pod stopped",
        60,
    )


def test_canceling_a_run_of_step_jobs_stops_its_steps(cluster: Any, operator: str, namespace: str) -> None:
    _registry(cluster, namespace)
    workspace_volume(cluster, namespace, "fan-cancel")
    slow = "version: v1.1.0\nsteps:\n  - id: slow-a\n    cmd: busybox:1.36 sleep 600\n    retries: 1\n  - id: b\n    cmd: busybox:1.36 true\n"
    _apply(cluster, namespace, _task_run("fan-cancel", slow))

    def step_running() -> bool:
        steps = _status(cluster, namespace, "fan-cancel").get("steps") or []
        return bool(steps) and steps[0]["status"] == "Running"

    _until(step_running, "the slow step running", 90)
    cluster.kubectl(
        "patch", "buildrun", "fan-cancel", "-n", namespace, "--type=merge", "-p", '{"spec": {"cancel": true}}'
    )
    status = _until(lambda: _ended(cluster, namespace, "fan-cancel"), "run fan-cancel ended", 60)
    assert status["status"] == "Canceled", status
    assert [(s["id"], s["status"]) for s in status["steps"]] == [("slow-a", "Canceled"), ("b", "Skipped")]
    _until(
        lambda: (
            not cluster.kubectl(
                "get", "jobs", "-n", namespace, "-l", "dockyard.dev/build-run=fan-cancel", "-o", "name"
            ).stdout.strip()
        ),
        "the run's Jobs deleted",
        60,
    )


def test_a_task_says_whether_its_file_runs_and_its_runs_run_it(cluster: Any, operator: str, namespace: str) -> None:
    _registry(cluster, namespace)

    def task(name: str, task_file: str) -> dict[str, Any]:
        return {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildTask",
            "metadata": {"name": name},
            "spec": {"registryRef": {"name": "hub"}, "source": OCI, "taskFile": task_file},
        }

    def ready(name: str) -> dict[str, Any] | None:
        conditions = ((_get(cluster, namespace, "buildtask", name) or {}).get("status") or {}).get("conditions")
        return next((c for c in conditions or [] if c["type"] == "Ready"), None)

    _apply(
        cluster,
        namespace,
        task("chained", CHAIN),
        task("fanned", CHAIN.replace("    cmd:", "    when: ['-']\n    cmd:")),
    )
    assert _until(lambda: ready("chained"), "task chained reconciled")["status"] == "True"
    refused = _until(lambda: ready("fanned"), "task fanned reconciled")
    assert refused["status"] == "False" and refused["reason"] == "NotImplemented"
    # the push no longer waits for the build: its image has no producer
    assert refused["message"].startswith("taskFile: step push: image"), refused
    run = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "BuildRun", "metadata": {"name": "chained-1"}}
    run["spec"] = {"taskRef": {"name": "chained"}}
    _apply(cluster, namespace, run)
    status = _until(lambda: _ended(cluster, namespace, "chained-1"), "run chained-1 ended", 90)
    assert (status["status"], status["runType"], status["taskName"]) == ("Succeeded", "AutoRun", "chained")
    assert [s["status"] for s in status["steps"]] == ["Succeeded"] * 3
