"""Exactly once on the Job-per-step path, proven by killing the operator: `python -m dockyard` is
SIGKILLed again and again while runs of a parallel plan (fetch → two builds at once → a push that
joins them) are scheduled, and restarted each time. A watch from this test records every Job the
API server ever creates: each step attempt's Job exists once, every run succeeds, and everything a
run created (Jobs, workspace claim, pull secret) is gone at the end."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest
from test_builds_sigkill import OCI, S3, JobRecorder, Operator, _apply, crds, operator  # noqa: F401
from test_task_runs_on_cluster import FAN_IN, workspace_volume

from dockyard.builds.stepjobs.manifests import step_job_name, workspace_claim_name
from realregistry import until

pytestmark = pytest.mark.integration

STEPS = ("fetch-context", "step-build-web", "step-build-api", "step-push")


def _run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": name},
        "spec": {"build": {"registryRef": {"name": "hub"}, "source": OCI, "taskFile": FAN_IN}},
    }


def _ready(cluster: Any, namespace: str) -> bool:
    registry = json.loads(cluster.kubectl("get", "registry", "hub", "-n", namespace, "-o", "json").stdout)
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (registry.get("status") or {}).get("conditions", [])
    )


def test_sigkill_never_duplicates_a_step_job(cluster: Any, crds: None, namespace: str, operator: Operator) -> None:
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
    names = [f"steps-{i}" for i in range(6)]
    for name in names:
        workspace_volume(cluster, namespace, name)
    recorder = JobRecorder(cluster, namespace)
    try:
        operator.start()
        until(lambda: _ready(cluster, namespace), "Registry hub Ready", 90)
        operator.kill()
        rng = random.Random(11)
        for batch in range(3):
            _apply(cluster, namespace, *(_run(name) for name in names[batch * 2 : batch * 2 + 2]))
            for _ in range(2):
                operator.start()
                threading.Event().wait(rng.uniform(1.5, 4.0))
                operator.kill()
        operator.start()

        def all_ended() -> list[dict[str, Any]] | None:
            runs = json.loads(cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout)["items"]
            ended = [r for r in runs if (r.get("status") or {}).get("status") in ("Succeeded", "Failed", "Error")]
            return runs if len(ended) == len(names) else None

        runs = until(all_ended, "every run ended", 240)
    finally:
        recorder.stop()

    by_name = {r["metadata"]["name"]: r["status"] for r in runs}
    assert all(status["status"] == "Succeeded" for status in by_name.values()), by_name
    for name in names:
        for step in STEPS:
            assert recorder.added[step_job_name(name, step, 0)] == 1, (name, step, dict(recorder.added))
    assert sum(recorder.added.values()) == len(names) * len(STEPS), dict(recorder.added)
    until(
        lambda: not cluster.kubectl("get", "jobs", "-n", namespace, "-o", "name").stdout.strip(),
        "every step Job cleaned up",
        60,
    )
    claims = [workspace_claim_name(name) for name in names]
    until(
        lambda: (
            not set(claims)
            & set(
                cluster.kubectl("get", "pvc", "-n", namespace, "-o", "name")
                .stdout.replace("persistentvolumeclaim/", "")
                .split()
            )
        ),
        "every workspace claim deleted",
        60,
    )
