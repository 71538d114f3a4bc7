"""`dockyard` run as a command against the local control plane and a real registry binary (3.x)
running the operator's rendered config: the upload lands in the Registry, the BuildRun the API
server accepts is created, and the run's outcome, runs table, stored log and cancel behave as the
user sees them.

The operator runs the BuildRuns on kwok, whose build-pod stage plays Kaniko by the run's name (the
CLI names runs after their Registry: a Registry `fail-…` gives failing runs, `slow-…` hour-long
ones). kwok pods have no logs, so the stored-log path is exercised with a log the test keeps in the
registry itself; the end-to-end run with Kaniko on a real node is test_real_node_builds' job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
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


@contextlib.contextmanager
def _local_registry(cluster: Any, namespace: str, name: str, workdir: Path, binary: Path) -> Iterator[LocalRegistry]:
    """A Registry `name` whose rendered config a real distribution 3.x serves on this host."""
    workdir.mkdir(parents=True, exist_ok=True)
    local = LocalRegistry(cluster, namespace, name, workdir, str(binary), realm_host=f"{name}.{namespace}.svc")
    _apply(cluster, namespace, name, {"sku": "Standard", "adminUser": {"enabled": True}})
    local.start()
    until(
        lambda: (
            json.loads(cluster.kubectl("get", "registry", name, "-n", namespace, "-o", "json").stdout)
            .get("status", {})
            .get("loginServer")
        ),
        "status.loginServer",
    )
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def local(
    cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path, distribution_v3: Path
) -> Iterator[LocalRegistry]:
    with _local_registry(cluster, namespace, "real", tmp_path / "real", distribution_v3) as registry:
        yield registry


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

    code, out, err = _finish(build)
    assert code == 0, err
    host = f"real.{namespace}.svc:5000"
    assert f"Queued BuildRun {name}" in out and "Run ID: ca1" in out
    digest = "sha256:" + hashlib.sha256(f"{host}/app:ca1".encode()).hexdigest()  # what kwok's Kaniko reports
    assert f"{host}/app:ca1@{digest}" in out
    status = _runs(cluster, namespace)[0]["status"]
    assert status["status"] == "Succeeded" and status["outputImages"][0]["digest"] == digest

    table = _dockyard(cluster, "runs", "-n", namespace, "-r", "real")
    code, out, err = _finish(table)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "RUN-ID", "STATUS", "TRIGGER", "STARTED", "DURATION"]
    assert out.splitlines()[1].split()[:4] == [name, "ca1", "Succeeded", "Manual"]

    # a log kept in the registry, as the operator keeps a real pod's: `logs` reads it by run ID
    _set_status(cluster, namespace, name, {"logReference": reference})
    logs = _dockyard(cluster, "logs", "ca1", "-n", namespace, "--registry-address", f"127.0.0.1:{local.port}")
    code, out, err = _finish(logs)
    assert (code, out) == (0, "Step 1/2 : FROM scratch\nPushed app:ca1\n"), err


def test_a_failed_run_exits_1_with_its_message_and_cancel_stops_a_run(
    cluster: Any, crds: None, operator: str, namespace: str, tmp_path: Path, distribution_v3: Path
) -> None:
    with _local_registry(cluster, namespace, "fail-real", tmp_path / "fail", distribution_v3) as local:
        admin = _secret(cluster, namespace, RegistryNames("fail-real").admin)
        assert admin is not None
        build = _dockyard(
            cluster,
            "build", "-n", namespace, "-r", "fail-real", "-t", "app:v1", "--username", "fail-real",
            "--password-stdin", "--registry-address", f"127.0.0.1:{local.port}", str(_app(tmp_path / "app")),
        )  # fmt: skip
        code, out, err = _finish(build, admin["password"] + "\n")
        assert code == 1, (out, err)
        run = _runs(cluster, namespace)[0]
        assert run["status"]["status"] == "Failed"
        assert f"failed: {run['status']['message']}" in err and "exit status 1" in err
        assert admin["password"] not in out + err

    with _local_registry(cluster, namespace, "slow-real", tmp_path / "slow", distribution_v3) as local:
        build = _dockyard(
            cluster,
            "build", "-n", namespace, "-r", "slow-real", "-t", "app:v1", "--registry-address",
            f"127.0.0.1:{local.port}", str(_app(tmp_path / "slow-app")),
        )  # fmt: skip

        def running() -> str | None:
            for item in _runs(cluster, namespace):
                if (
                    item["metadata"]["name"].startswith("slow-real-")
                    and item.get("status", {}).get("status") == "Running"
                ):
                    return str(item["metadata"]["name"])
            return None

        name = until(running, "the slow run running", 90)
        canceled = _finish(_dockyard(cluster, "cancel", name, "-n", namespace))
        assert canceled[0] == 0 and f"Canceling BuildRun {name}" in canceled[1]
        code, out, err = _finish(build)
        assert code == 1 and "cancel" in (out + err).lower(), (out, err)
        status = next(i for i in _runs(cluster, namespace) if i["metadata"]["name"] == name)["status"]
        assert status["status"] == "Canceled"


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
