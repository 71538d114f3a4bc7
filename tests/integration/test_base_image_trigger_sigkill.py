"""Base-image pushes never start two runs for one digest, proven by killing the operator: a real
registry binary (the operator's rendered distribution, `realregistry.py`) posts its push events to
the operator's intake while `python -m dockyard` is SIGKILLed right after each push (before, during
or after it handled the event) and restarted; distribution posts every unanswered envelope again,
so the next process sees the push too. A watch started before the operator records every BuildRun
and Job the API server ever creates: one run per pushed digest, created once, with one Job."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port
from test_build_triggers_sigkill import RunRecorder
from test_builds_sigkill import JobRecorder, Operator

from bench_triggers import write_images
from dockyard.core.names import BuildRunNames
from realregistry import LocalRegistry, read_secret, until

pytestmark = pytest.mark.integration

BASE = "base/py"
PUSHES = 4


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    process = Operator(cluster, namespace, tmp_path / "state")
    port = free_port()
    process.env |= {
        "DOCKYARD_EVENTS_PORT": str(port),
        "DOCKYARD_EVENTS_HOST": "127.0.0.1",
        "DOCKYARD_EVENTS_URL": f"http://127.0.0.1:{port}",
    }
    try:
        yield process
    finally:
        process.kill()


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found").stdout
    return dict(json.loads(out)) if out.strip() else {}


def test_sigkill_never_starts_two_runs_for_one_base_digest(
    cluster: Any, crds: None, namespace: str, operator: Operator, tmp_path: Path
) -> None:
    write_images(tmp_path / "images", PUSHES + 1)
    (tmp_path / "registry").mkdir()
    registry_body = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": "hub"},
        "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(registry_body))
    runs_seen, jobs_seen = RunRecorder(cluster, namespace), JobRecorder(cluster, namespace)
    registry = LocalRegistry(cluster, namespace, "hub", tmp_path / "registry")
    try:
        operator.start()
        registry.start()
        admin = until(lambda: read_secret(cluster, namespace, "hub-admin"), "the admin Secret")
        creds = f"hub:{admin['password']}"
        login = until(
            lambda: (_get(cluster, namespace, "registry", "hub").get("status") or {}).get("loginServer"), "loginServer"
        )
        target = f"docker://127.0.0.1:{registry.port}/{BASE}:3.11"

        def push(index: int) -> str:
            copied = registry.skopeo(
                "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'images'}:v{index}", target
            )
            assert copied.returncode == 0, copied.stderr
            raw = registry.skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, target)
            return f"sha256:{hashlib.sha256(raw.stdout.encode()).hexdigest()}"

        first = push(0)
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
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(task))
        recorded = {"registry": login, "repository": BASE, "tag": "3.11", "digest": first}
        cluster.kubectl(
            "patch", "buildtask", "app", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"baseImage": recorded}}),
        )  # fmt: skip
        time.sleep(12)  # two ticks: the base is watched
        rng = random.Random(7)
        pushed = []
        for index in range(1, PUSHES + 1):
            digest = push(index)
            pushed.append(digest)
            time.sleep(rng.uniform(0.0, 1.5))  # killed before, while or after it handles the event
            operator.kill()
            time.sleep(rng.uniform(0.5, 3.0))  # distribution's retries meet a closed port
            operator.start()
            name = f"app-base-{digest.removeprefix('sha256:')[:12]}"
            until(lambda n=name: n in runs_seen.added, f"the run of push {index}", 90)

            def ended(n: str = name) -> bool:
                return (_get(cluster, namespace, "buildrun", n).get("status") or {}).get("status") in (
                    "Succeeded",
                    "Failed",
                    "Error",
                )

            until(ended, f"the run of push {index} ended", 90)
        time.sleep(10)  # late redeliveries and ticks of the last process: nothing more
    finally:
        runs_seen.stop()
        jobs_seen.stop()
        registry.stop()

    created = runs_seen.added
    assert all(count == 1 for count in created.values()), runs_seen.log
    assert set(created) == {f"app-base-{d.removeprefix('sha256:')[:12]}" for d in pushed}, sorted(created)
    for name in created:
        assert jobs_seen.added[BuildRunNames(name).job] == 1, (name, dict(jobs_seen.added))
