"""Exactly once, proven by killing the operator: `python -m dockyard` is SIGKILLed again and again
while a batch of BuildRuns is being started, and restarted each time. A watch from this test records
every Job the API server ever creates: each run gets exactly one, and the run IDs never repeat.
A Job that already exists when its run is first seen (the operator died between creating it and
recording it) is taken over, not duplicated."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import pytest
import yaml

from dockyard.builds.manifests.job import KanikoBuild, build_job
from dockyard.core.meta import Owner
from dockyard.core.names import BUILD_RUN_LABEL, BuildRunNames
from localcluster.ports import free_port
from realregistry import until

pytestmark = pytest.mark.integration

S3 = {"s3": {"bucket": "images", "region": "us-east-1"}}
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )


class Operator:
    """`python -m dockyard` watching one namespace, startable and killable."""

    def __init__(self, cluster: Any, namespace: str, state: Path) -> None:
        self.env = {k: v for k, v in cluster.env().items() if not k.startswith("DOCKYARD_")} | {
            "DOCKYARD_NAMESPACE": namespace,
            "DOCKYARD_HEALTH_HOST": "127.0.0.1",
            "DOCKYARD_HEALTH_PORT": str(free_port()),
            "DOCKYARD_METRICS_HOST": "127.0.0.1",
            "DOCKYARD_METRICS_PORT": str(free_port()),
            "DOCKYARD_EVENTS_PORT": "0",
            "DOCKYARD_STATE_DIR": str(state),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # One process at a time: a second start would leave the first running beside it (two
        # operators, not a restart) and orphaned after the test.
        assert self.process is None or self.process.poll() is not None, "the operator is running already"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dockyard"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    process = Operator(cluster, namespace, tmp_path / "state")
    try:
        yield process
    finally:
        process.kill()


class JobRecorder:
    """Every ADDED Job in the namespace, from a watch that starts before the operator does."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        self.added: Counter[str] = Counter()
        self._stop = threading.Event()
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self._batch = kubernetes.client.BatchV1Api(api)
        listed = self._batch.list_namespaced_job(namespace)
        self.added.update(job.metadata.name for job in listed.items)
        self._version = listed.metadata.resource_version
        self._namespace = namespace
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            stream = kubernetes.watch.Watch()
            for event in stream.stream(
                self._batch.list_namespaced_job,
                self._namespace,
                resource_version=self._version,
                timeout_seconds=5,
            ):
                self._version = event["object"].metadata.resource_version
                if event["type"] == "ADDED":
                    self.added[event["object"].metadata.name] += 1
                if self._stop.is_set():
                    break

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _apply(cluster: Any, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def _run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": name},
        "spec": {
            "build": {"registryRef": {"name": "hub"}, "source": OCI, "dockerBuild": {"images": ["app:{{.Run.ID}}"]}}
        },
    }


def _runs(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    return list(json.loads(cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout)["items"])


def test_sigkill_never_duplicates_a_job_or_a_run_id(
    cluster: Any, crds: None, namespace: str, operator: Operator
) -> None:
    _apply(
        cluster,
        namespace,
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": "hub"},
            "spec": {"storage": S3},
        },
    )
    recorder = JobRecorder(cluster, namespace)
    try:
        operator.start()
        until(
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (
                    json.loads(cluster.kubectl("get", "registry", "hub", "-n", namespace, "-o", "json").stdout).get(
                        "status"
                    )
                    or {}
                ).get("conditions", [])
            ),
            "Registry hub Ready",
            90,
        )
        # A Job created by an operator that died before recording it: the run must take it over.
        cluster_run = _run("adopted")
        _apply(cluster, namespace, cluster_run)
        operator.kill()
        stored = json.loads(cluster.kubectl("get", "buildrun", "adopted", "-n", namespace, "-o", "json").stdout)
        if not (stored.get("status") or {}).get("jobName"):
            owner = Owner("dockyard.dev/v1alpha1", "BuildRun", "adopted", namespace, stored["metadata"]["uid"])
            job = build_job(
                KanikoBuild(
                    owner=owner,
                    registry_host="hub:5000",
                    kaniko_image="kaniko",
                    fetcher_image="fetcher",
                    context="dir:///workspace",
                    dockerfile="Dockerfile",
                    destinations=("hub:5000/app:pre",),
                    timeout_seconds=600,
                    resources={},
                )
            )
            cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(job), check=False)

        rng = random.Random(7)
        names = [f"kill-{i}" for i in range(12)]
        for batch in range(4):
            _apply(cluster, namespace, *(_run(name) for name in names[batch * 3 : batch * 3 + 3]))
            operator.start()
            threading.Event().wait(rng.uniform(1.0, 4.0))
            operator.kill()
        operator.start()

        def all_ended() -> list[dict[str, Any]] | None:
            runs = _runs(cluster, namespace)
            done = [r for r in runs if (r.get("status") or {}).get("status") in ("Succeeded", "Failed", "Error")]
            return runs if len(done) == len(names) + 1 else None

        runs = until(all_ended, "every run ended", 180)
    finally:
        recorder.stop()

    by_name = {r["metadata"]["name"]: r["status"] for r in runs}
    assert all(status["status"] == "Succeeded" for status in by_name.values()), by_name
    ids = [status["runId"] for status in by_name.values()]
    assert len(set(ids)) == len(ids), ids
    for name in by_name:
        assert recorder.added[BuildRunNames(name).job] == 1, (name, dict(recorder.added))
    assert sum(recorder.added.values()) == len(by_name)
    leftovers = cluster.kubectl("get", "pods", "-n", namespace, "-l", BUILD_RUN_LABEL, "-o", "name").stdout.split()
    until(
        lambda: not cluster.kubectl("get", "jobs", "-n", namespace, "-o", "name").stdout.strip(),
        f"every Job cleaned up (pods left: {leftovers})",
        60,
    )
