"""`dockyard` run as a command against the local control plane and a real registry binary (3.x)
running the operator's rendered config: the upload lands in the Registry, the BuildRun the API
server accepts is created, and the run's outcome, runs table, stored log and cancel behave as the
user sees them.

No build handler exists yet, so the test writes the BuildRun's status the way the operator will
(the contract: runId, status, outputImages, message, logReference); the end-to-end run with Kaniko
on a real node is another test's job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_registry import _apply, crds, operator  # noqa: F401  (fixtures)

from dockyard.builds.artifacts import SOURCES_REPOSITORY, pull_context
from dockyard.builds.context import unpack_context
from dockyard.builds.logstore import store_log
from dockyard.core.names import RegistryNames
from dockyard.distribution import Basic, DistributionClient
from realregistry import LocalRegistry, until
from realregistry import read_configmap as _configmap
from realregistry import read_secret as _secret

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REAL = RegistryNames("real")
DIGEST = "sha256:" + "b" * 64


@pytest.fixture
def local(
    cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path, distribution_v3: Path
) -> Iterator[LocalRegistry]:
    local = LocalRegistry(
        cluster, namespace, "real", tmp_path, str(distribution_v3), realm_host=f"real.{namespace}.svc"
    )
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": True}})
    local.start()
    until(
        lambda: (
            json.loads(cluster.kubectl("get", "registry", "real", "-n", namespace, "-o", "json").stdout)
            .get("status", {})
            .get("loginServer")
        ),
        "status.loginServer",
    )
    try:
        yield local
    finally:
        local.stop()


def _dockyard(
    cluster: Any, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dockyard.cli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(ROOT / "operator"), **(env or {})},
    )


def _finish(process: subprocess.Popen[str], stdin: str | None = None) -> tuple[int, str, str]:
    out, err = process.communicate(stdin, timeout=120)
    return process.returncode, out, err


def _runs(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    return json.loads(cluster.kubectl("get", "buildruns", "-n", namespace, "-o", "json").stdout)["items"]


def _set_status(cluster: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch",
        "buildrun",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _app(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    (root / "src" / "main.txt").write_text("built by dockyard\n")
    (root / "local.secret").write_text("never uploaded\n")
    (root / ".dockerignore").write_text("*.secret\n")
    return root


def _admin_client(cluster: Any, namespace: str, local: LocalRegistry) -> DistributionClient:
    admin = _secret(cluster, namespace, REAL.admin)
    ca = _configmap(cluster, namespace, REAL.ca_config_map)
    assert admin is not None and ca is not None
    return DistributionClient(
        f"real.{namespace}.svc:5000",
        connect_to=f"127.0.0.1:{local.port}",
        ca_pem=ca["ca.crt"],
        credentials=Basic("real", admin["password"]),
    )


def test_build_uploads_the_context_creates_the_run_and_exits_with_its_outcome(
    cluster: Any, namespace: str, local: LocalRegistry, tmp_path: Path
) -> None:
    build = _dockyard(
        cluster,
        "build", "-n", namespace, "-r", "real", "-t", "app:{{.Run.ID}}", "-t", "app:latest",
        "--build-arg", "VERSION=1.2", "--registry-address", f"127.0.0.1:{local.port}",
        str(_app(tmp_path / "app")),
    )  # fmt: skip
    run = until(lambda: (items := _runs(cluster, namespace)) and items[0], "the BuildRun")
    name = run["metadata"]["name"]
    assert name.startswith("real-")
    spec = run["spec"]["build"]
    assert spec["registryRef"] == {"name": "real"}
    assert spec["dockerBuild"]["images"] == ["app:{{.Run.ID}}", "app:latest"]
    assert spec["dockerBuild"]["buildArgs"] == [{"name": "VERSION", "value": "1.2"}]
    source = spec["source"]["oci"]
    assert source["repository"] == SOURCES_REPOSITORY
    with _admin_client(cluster, namespace, local) as client:  # the upload is the directory, minus .dockerignore
        unpack_context(pull_context(client, SOURCES_REPOSITORY, source["digest"]), tmp_path / "uploaded")
        reference = store_log(client, "ca1", run["metadata"]["uid"], "Step 1/2 : FROM scratch\nPushed app:ca1\n")
    assert (tmp_path / "uploaded" / "src" / "main.txt").read_text() == "built by dockyard\n"
    assert not (tmp_path / "uploaded" / "local.secret").exists()

    _set_status(cluster, namespace, name, {"runId": "ca1", "status": "Running", "startTime": "2026-12-01T10:00:00Z"})
    time.sleep(1.5)
    _set_status(
        cluster,
        namespace,
        name,
        {
            "status": "Succeeded",
            "finishTime": "2026-12-01T10:01:00Z",
            "logReference": reference,
            "outputImages": [
                {"registry": f"real.{namespace}.svc:5000", "repository": "app", "tag": "ca1", "digest": DIGEST}
            ],
        },
    )
    code, out, err = _finish(build)
    assert code == 0, err
    assert f"Queued BuildRun {name}" in out and "Run ID: ca1" in out
    assert "Pushed app:ca1" in out, err  # no pod to stream from: the stored log is shown
    assert out.rstrip().endswith(f"real.{namespace}.svc:5000/app:ca1@{DIGEST}")

    table = _dockyard(cluster, "runs", "-n", namespace, "-r", "real")
    code, out, err = _finish(table)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "RUN-ID", "STATUS", "TRIGGER", "STARTED", "DURATION"]
    assert out.splitlines()[1].split() == [name, "ca1", "Succeeded", "Manual", "2026-12-01", "10:00:00", "1m00s"]

    logs = _dockyard(cluster, "logs", "ca1", "-n", namespace, "--registry-address", f"127.0.0.1:{local.port}")
    code, out, err = _finish(logs)
    assert (code, out) == (0, "Step 1/2 : FROM scratch\nPushed app:ca1\n"), err


def test_a_failed_run_exits_1_with_its_message_and_cancel_sets_the_flag(
    cluster: Any, namespace: str, local: LocalRegistry, tmp_path: Path
) -> None:
    admin = _secret(cluster, namespace, REAL.admin)
    assert admin is not None
    build = _dockyard(
        cluster,
        "build", "-n", namespace, "-r", "real", "-t", "app:v1", "--username", "real", "--password-stdin",
        "--registry-address", f"127.0.0.1:{local.port}", str(_app(tmp_path / "app")),
    )  # fmt: skip
    build.stdin.write(admin["password"] + "\n")  # type: ignore[union-attr]
    build.stdin.flush()  # type: ignore[union-attr]
    name = until(lambda: (items := _runs(cluster, namespace)) and items[0]["metadata"]["name"], "the BuildRun")

    canceled = _finish(_dockyard(cluster, "cancel", name, "-n", namespace))
    assert canceled[0] == 0 and f"Canceling BuildRun {name}" in canceled[1]
    assert _runs(cluster, namespace)[0]["spec"]["cancel"] is True

    _set_status(
        cluster,
        namespace,
        name,
        {"runId": "ca2", "status": "Failed", "message": "COPY failed: no such file", "logTail": "error: COPY failed\n"},
    )
    code, out, err = _finish(build)
    assert code == 1
    assert "Run ca2 failed: COPY failed: no such file" in err
    assert "error: COPY failed" in out  # the log tail when no log is stored
    assert admin["password"] not in out + err


def test_without_credentials_the_cli_says_what_to_do(
    cluster: Any, namespace: str, local: LocalRegistry, tmp_path: Path
) -> None:
    _apply(cluster, namespace, "real", {"sku": "Standard", "adminUser": {"enabled": False}})
    until(lambda: _secret(cluster, namespace, REAL.admin) is None, "the admin Secret to be deleted")
    code, _, err = _finish(
        _dockyard(cluster, "build", "-n", namespace, "-r", "real", "-t", "app:v1", str(_app(tmp_path / "app")))
    )
    assert code == 2
    assert "--password-stdin" in err and "adminUser.enabled" in err
    assert _runs(cluster, namespace) == []
