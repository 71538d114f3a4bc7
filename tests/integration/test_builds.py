"""BuildRuns on the real control plane with kwok playing the node: the fast paths. kwok's build-pod
stage (hack/localcluster/stages) finishes a build pod by its run's name as Kaniko would: `fail-*`
exits 1 with Kaniko's error line, `slow-*` runs for an hour, anything else exits 0 with one
`<destination>@sha256:…` line per `--destination`. Real Kaniko builds are in test_real_node_builds.

Every test asserts what a user sees: run IDs, statuses and conditions, printer columns, Events,
the Job that exists (once), the task's history."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from conftest import running_operator

from dockyard.builds.stepjobs.manifests import workspace_claim_name
from dockyard.core.names import BUILD_RUN_LABEL, BuildRunNames
from realregistry import until

pytestmark = pytest.mark.integration

S3 = {"s3": {"bucket": "images", "region": "us-east-1"}}
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}


def _until(check: Callable[[], Any], what: str, deadline_s: float = 60) -> Any:
    try:
        return until(check, what, deadline_s)
    except TimeoutError as timeout:
        pytest.fail(str(timeout))


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )


@pytest.fixture(scope="module")
def operator(cluster: Any, crds: None) -> Iterator[str]:
    with running_operator(cluster, "-A") as url:
        yield url


def _apply(cluster: Any, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False).stdout
    return json.loads(out) if out.strip() else None


def _status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict((_get(cluster, namespace, "buildrun", name) or {}).get("status") or {})


def _ended(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    status = _status(cluster, namespace, name)
    return status if status.get("status") in ("Succeeded", "Failed", "Canceled", "Error", "Timeout") else None


def _registry(cluster: Any, namespace: str, name: str = "hub") -> str:
    """A Ready Registry; its login server."""
    _apply(
        cluster,
        namespace,
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": name},
            "spec": {"storage": S3},
        },
    )

    def ready() -> str | None:
        status = (_get(cluster, namespace, "registry", name) or {}).get("status") or {}
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        return status.get("loginServer") if ok else None

    return str(_until(ready, f"Registry {name} Ready", 90))


def _run(name: str, images: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    build = {
        "registryRef": {"name": "hub"},
        "source": OCI,
        "dockerBuild": {"images": images if images is not None else ["app:{{.Run.ID}}", "app:latest"]},
    }
    build.update(spec.pop("build", {}))
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": name},
        "spec": {"build": build, **spec},
    }


def _fake_digest(reference: str) -> str:
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def _events(cluster: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return list(json.loads(out)["items"])


def test_a_quick_build_runs_once_and_reports_like_acr(cluster: Any, operator: str, namespace: str) -> None:
    host = _registry(cluster, namespace)
    _apply(cluster, namespace, _run("quick"))
    status = _until(lambda: _ended(cluster, namespace, "quick"), "run quick ended", 90)
    assert status["status"] == "Succeeded", status
    assert status["runId"].startswith("ca") and status["runType"] == "QuickBuild"
    run_id = status["runId"]
    assert status["outputImages"] == [
        {"registry": host, "repository": "app", "tag": run_id, "digest": _fake_digest(f"{host}/app:{run_id}")},
        {"registry": host, "repository": "app", "tag": "latest", "digest": _fake_digest(f"{host}/app:latest")},
    ]
    assert status["startTime"] <= status["finishTime"]
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True" and succeeded["reason"] == "Succeeded"
    cluster.kubectl("wait", "--for=condition=Succeeded", "buildrun/quick", "-n", namespace, "--timeout=5s")
    # the Job is gone once its outcome is recorded, and the run's credentials with it
    job = BuildRunNames("quick").job
    _until(lambda: _get(cluster, namespace, "job", job) is None, "the Job deleted", 30)
    _until(lambda: _get(cluster, namespace, "secret", BuildRunNames("quick").credentials) is None, "creds gone", 30)
    reasons = {e["reason"] for e in _events(cluster, namespace, "quick")}
    assert {"RunStarted", "RunFinished"} <= reasons
    columns = cluster.kubectl("get", "buildruns", "-n", namespace).stdout
    assert "RUN ID" in columns and "DURATION" in columns and run_id in columns and "Succeeded" in columns
    assert status["duration"].endswith("s")


def test_a_failed_build_says_why_and_a_canceled_one_stops(cluster: Any, operator: str, namespace: str) -> None:
    _registry(cluster, namespace)
    _apply(cluster, namespace, _run("fail-build"), _run("slow-build"))
    failed = _until(lambda: _ended(cluster, namespace, "fail-build"), "run fail-build ended", 90)
    assert failed["status"] == "Failed" and failed.get("outputImages", []) == []
    assert "exit" in failed["message"]
    condition = next(c for c in failed["conditions"] if c["type"] == "Succeeded")
    assert condition["status"] == "False" and condition["reason"] == "BuildFailed"

    job = BuildRunNames("slow-build").job
    _until(lambda: _status(cluster, namespace, "slow-build").get("status") == "Running", "slow-build running", 60)
    assert _get(cluster, namespace, "job", job) is not None
    cluster.kubectl(
        "patch", "buildrun", "slow-build", "-n", namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}'
    )
    canceled = _until(lambda: _ended(cluster, namespace, "slow-build"), "slow-build canceled", 60)
    assert canceled["status"] == "Canceled"
    _until(lambda: _get(cluster, namespace, "job", job) is None, "the canceled Job deleted", 30)
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"{BUILD_RUN_LABEL}=slow-build", "-o", "name").stdout
    _until(
        lambda: (
            not cluster.kubectl(
                "get", "pods", "-n", namespace, "-l", f"{BUILD_RUN_LABEL}=slow-build", "-o", "name"
            ).stdout.strip()
        ),
        f"the build pod gone (was {pods.strip()})",
        60,
    )


def test_a_run_waits_for_its_registry_and_refuses_what_is_not_built(
    cluster: Any, operator: str, namespace: str
) -> None:
    _apply(cluster, namespace, _run("early"))

    def waiting() -> dict[str, Any] | None:
        status = _status(cluster, namespace, "early")
        condition = next((c for c in status.get("conditions") or [] if c["type"] == "Succeeded"), None)
        return status if condition and condition["reason"] == "Waiting" else None

    status = _until(waiting, "run early waiting", 60)
    assert status["status"] == "Queued" and "Registry hub" in status["conditions"][0]["message"]
    _registry(cluster, namespace)
    assert (
        _until(lambda: _ended(cluster, namespace, "early"), "early ended once the registry exists", 90)["status"]
        == "Succeeded"
    )

    # a Docker CLI step (no daemon in Kubernetes), in a plan that would run as a Job per step
    docker = "version: v1.1.0\nsteps:\n  - cmd: busybox echo a\n  - cmd: docker ps\n    when: ['-']\n"
    task_file = _run("multi", build={"taskFile": docker})
    del task_file["spec"]["build"]["dockerBuild"]
    _apply(cluster, namespace, task_file)
    refused = _until(lambda: _ended(cluster, namespace, "multi"), "multi ended", 60)
    assert refused["status"] == "Error" and "taskFile: step acb_step_1" in refused["message"], refused
    assert "Docker CLI steps need a Docker daemon" in refused["message"]
    assert _get(cluster, namespace, "pvc", workspace_claim_name("multi")) is None


def test_run_ids_stay_unique_in_a_burst(cluster: Any, operator: str, namespace: str) -> None:
    _registry(cluster, namespace)
    names = [f"burst-{i}" for i in range(20)]
    _apply(cluster, namespace, *(_run(name, ["app:{{.Run.ID}}"]) for name in names))
    statuses = [_until(lambda n=n: _ended(cluster, namespace, n), f"{n} ended", 180) for n in names]
    ids = [s["runId"] for s in statuses]
    assert len(set(ids)) == 20 and all(s["status"] == "Succeeded" for s in statuses)
    numbers = sorted(int(i.removeprefix("ca")) for i in ids)
    assert numbers == list(range(numbers[0], numbers[0] + 20))  # no gaps without a crash


def test_a_task_keeps_its_history_and_takes_its_runs_along(cluster: Any, operator: str, namespace: str) -> None:
    _registry(cluster, namespace)
    task = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildTask",
        "metadata": {"name": "web"},
        "spec": {
            "registryRef": {"name": "hub"},
            "source": {"archive": {"url": "https://files.example.com/web.tar.gz"}},
            "dockerBuild": {"images": ["web:{{.Run.ID}}-{{.Values.flavour}}"]},
            "values": [{"name": "flavour", "value": "plain"}],
            "successfulRunsHistoryLimit": 2,
            "failedRunsHistoryLimit": 1,
        },
    }
    _apply(cluster, namespace, task)

    def ready() -> bool:
        conditions = ((_get(cluster, namespace, "buildtask", "web") or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _until(ready, "task web Ready", 60)

    def task_run(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "BuildRun",
            "metadata": {"name": name},
            "spec": {"taskRef": {"name": "web"}, **spec},
        }

    for name in ("web-1", "web-2", "web-3"):
        _apply(cluster, namespace, task_run(name, values=[{"name": "flavour", "value": "spicy"}]))
        _until(lambda n=name: _ended(cluster, namespace, n), f"{name} ended", 90)
    for name in ("fail-web-1", "fail-web-2"):
        _apply(cluster, namespace, task_run(name))
        _until(lambda n=name: _ended(cluster, namespace, n), f"{name} ended", 90)
    third = _status(cluster, namespace, "web-3")
    host = third["outputImages"][0]["registry"]
    assert third["runType"] == "AutoBuild" and third["taskName"] == "web"
    assert third["outputImages"][0]["tag"] == f"{third['runId']}-spicy"  # the run's values win
    assert host

    def history() -> dict[str, Any] | None:
        status = (_get(cluster, namespace, "buildtask", "web") or {}).get("status") or {}
        last = (status.get("lastRun") or {}).get("name")
        return status if last == "fail-web-2" else None

    status = _until(history, "task web shows its last run", 30)
    assert status["lastRun"]["status"] == "Failed" and status["lastSuccessfulRun"]["name"] == "web-3"
    _until(lambda: _get(cluster, namespace, "buildrun", "web-1") is None, "web-1 pruned (2 successes kept)", 30)
    _until(lambda: _get(cluster, namespace, "buildrun", "fail-web-1") is None, "fail-web-1 pruned (1 failure)", 30)
    assert _get(cluster, namespace, "buildrun", "web-2") is not None
    labelled = cluster.kubectl("get", "buildruns", "-n", namespace, "-l", "dockyard.dev/build-task=web", "-o", "name")
    assert sorted(labelled.stdout.split()) == [
        "buildrun.dockyard.dev/fail-web-2",
        "buildrun.dockyard.dev/web-2",
        "buildrun.dockyard.dev/web-3",
    ]
    cluster.kubectl("delete", "buildtask", "web", "-n", namespace)
    _until(lambda: _get(cluster, namespace, "buildrun", "web-3") is None, "the task's runs deleted with it", 60)


def test_a_run_past_its_timeout_ends_as_timeout(cluster: Any, operator: str, namespace: str) -> None:
    _registry(cluster, namespace)
    _apply(cluster, namespace, _run("slow-timeout", timeoutSeconds=60))
    status = _until(lambda: _ended(cluster, namespace, "slow-timeout"), "slow-timeout ended", 120)
    assert status["status"] == "Timeout" and "60s" in status["message"]
    condition = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert condition["reason"] == "TimedOut"
    _until(lambda: _get(cluster, namespace, "job", BuildRunNames("slow-timeout").job) is None, "Job deleted", 30)
