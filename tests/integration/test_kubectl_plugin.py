"""`kubectl dockyard` run as a process against the local control plane (kubectl finds the
`kubectl-dockyard` console script on the PATH), with the operator reconciling: status, runs,
login, ping, deliveries and cancel as a user sees them, kubectl's output habits, and one-sentence
errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import running_operator
from test_webhooks import receiving

from realregistry import until

pytestmark = pytest.mark.integration
NAMESPACE = "t-kubectl-plugin"
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
BUILD = {"registryRef": {"name": "hub"}, "source": OCI, "dockerBuild": {"images": ["app:{{.Run.ID}}"]}}


def _until(check: Callable[[], Any], what: str, deadline_s: float = 90) -> Any:
    try:
        return until(check, what, deadline_s)
    except TimeoutError as timeout:
        pytest.fail(str(timeout))


class Plugin:
    def __init__(self, cluster: Any, home: Path) -> None:
        self.cluster, self.home = cluster, home
        scripts = Path(sys.executable).parent
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "PATH": f"{scripts}:{cluster.bin_dir}:{os.environ['PATH']}",
            "HOME": str(home),
        }
        self.env.pop("DOCKER_CONFIG", None)
        self.env.pop("REGISTRY_AUTH_FILE", None)

    def __call__(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl dockyard ARGS -n NAMESPACE` through the suite's kubectl, as a user runs it."""
        argv = [str(self.cluster.bin_dir / "kubectl"), "dockyard", *args]
        if "-A" not in args and "-n" not in args:
            argv += ["-n", NAMESPACE]
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=120, env={**self.env, **(env or {})}
        )


def _apply(cluster: Any, kind: str, name: str, spec: dict[str, Any]) -> None:
    manifest = {"apiVersion": "dockyard.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(manifest))


def _get(cluster: Any, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json").stdout))


@pytest.fixture(scope="module")
def plugin(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        with running_operator(cluster, "-n", NAMESPACE), receiving() as receiver:
            _apply(
                cluster,
                "Registry",
                "hub",
                {"adminUser": {"enabled": True}, "storage": {"s3": {"bucket": "images", "region": "us-east-1"}}},
            )
            _apply(
                cluster,
                "Webhook",
                "ci",
                {"registryRef": {"name": "hub"}, "serviceUri": receiver.url("/ci"), "actions": ["push"]},
            )
            _apply(
                cluster,
                "Webhook",
                "down",
                {"registryRef": {"name": "hub"}, "serviceUri": "http://127.0.0.1:9/", "actions": ["push"]},
            )
            _apply(cluster, "BuildRun", "quick", {"build": BUILD})
            _apply(cluster, "BuildRun", "slow-quick", {"build": BUILD})
            _until(
                lambda: _get(cluster, "buildrun", "quick").get("status", {}).get("status") == "Succeeded",
                "quick succeeded",
            )
            _until(
                lambda: _get(cluster, "buildrun", "slow-quick").get("status", {}).get("status") == "Running",
                "slow running",
            )
            for webhook in ("ci", "down"):
                _until(
                    lambda webhook=webhook: any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in _get(cluster, "webhook", webhook).get("status", {}).get("conditions", [])
                    ),
                    f"webhook {webhook} Ready",
                )
            yield Plugin(cluster, tmp_path_factory.mktemp("home"))
    finally:
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", "--ignore-not-found", check=False)


def test_status_is_one_screen_and_data_with_o_json(plugin: Plugin) -> None:
    shown = plugin("status")
    assert shown.returncode == 0, shown.stderr
    registries, webhooks, builds = shown.stdout.split("\n\n")
    assert registries.startswith("Registries:") and "hub" in registries and "True" in registries
    assert " 2/10 " in registries, "two webhooks against the Standard tier's ten"
    assert webhooks == "Failing webhooks: none"
    assert [line.split()[0] for line in builds.splitlines()[2:]] == ["slow-quick"], builds
    data = json.loads(plugin("status", "-o", "json").stdout)
    assert [r["name"] for r in data["registries"]] == ["hub"]
    assert [b["name"] for b in data["runningBuilds"]] == ["slow-quick"]
    everywhere = plugin("status", "-A")
    assert everywhere.stdout.splitlines()[1].startswith("NAMESPACE")


def test_runs_follow_kubectls_output_habits(plugin: Plugin) -> None:
    table = plugin("runs", "-o", "wide").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "RUN-ID", "STATUS"] and "REGISTRY" in table[0]
    assert {line.split()[0] for line in table[1:]} == {"quick", "slow-quick"}
    assert all(" hub " in line for line in table[1:])
    listed = json.loads(plugin("runs", "-o", "json").stdout)
    assert listed["kind"] == "List" and {i["metadata"]["name"] for i in listed["items"]} == {"quick", "slow-quick"}
    assert yaml.safe_load(plugin("runs", "-o", "yaml").stdout)["kind"] == "List"
    assert plugin("runs", "-A").stdout.splitlines()[0].startswith("NAMESPACE")
    assert plugin("runs", "-r", "other").stderr.strip() == f"No BuildRuns found in namespace {NAMESPACE}."


def test_login_writes_docker_and_podman_credentials_from_the_admin_secret(plugin: Plugin, tmp_path: Path) -> None:
    registry = _get(plugin.cluster, "registry", "hub")
    server = registry["status"]["loginServer"]
    secret = _get(plugin.cluster, "secret", registry["status"]["credentials"]["adminSecretName"])
    user, password = (base64.b64decode(secret["data"][k]).decode() for k in ("username", "password"))
    logged = plugin("login", "hub")
    assert logged.returncode == 0, logged.stderr
    config = plugin.home / ".docker" / "config.json"
    assert password not in logged.stdout + logged.stderr
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    auth = json.loads(config.read_text())["auths"][server]["auth"]
    assert base64.b64decode(auth).decode() == f"{user}:{password}"
    podman = tmp_path / "auth.json"
    podman.write_text(json.dumps({"auths": {"other.example.com": {"auth": "eDp5"}}}))
    token = plugin(
        "login",
        "hub",
        "--for",
        "podman",
        "--username",
        "ci-token",
        "--password-stdin",
        stdin="s3cret\n",
        env={"REGISTRY_AUTH_FILE": str(podman)},
    )
    assert token.returncode == 0, token.stderr
    auths = json.loads(podman.read_text())["auths"]
    assert set(auths) == {"other.example.com", server}
    assert base64.b64decode(auths[server]["auth"]).decode() == "ci-token:s3cret"


def test_ping_waits_for_the_result(plugin: Plugin) -> None:
    delivered = plugin("ping", "ci")
    assert delivered.returncode == 0, delivered.stderr
    assert delivered.stdout.startswith("Ping delivered: HTTP 200") and "Pinging webhook ci" in delivered.stderr
    failed = plugin("ping", "down", "--timeout", "60")
    assert failed.returncode == 1 and failed.stdout.startswith("Ping failed"), failed.stdout + failed.stderr
    records = json.loads(plugin("deliveries", "down", "-o", "json").stdout)
    assert records["kind"] == "List"
    assert plugin("deliveries", "ci").returncode == 0


def test_cancel_and_logs_are_the_build_clis(plugin: Plugin) -> None:
    canceled = plugin("cancel", "slow-quick")
    assert canceled.returncode == 0 and "Canceling BuildRun slow-quick" in canceled.stdout, canceled.stderr
    _until(lambda: _get(plugin.cluster, "buildrun", "slow-quick")["status"]["status"] == "Canceled", "run canceled")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ping", "missing"), f"error: no Webhook missing in namespace {NAMESPACE}"),
        (("login", "nowhere"), "error: "),
        (("redeliver", "ci", "d-1"), "error: no running Dockyard operator pod found"),
    ],
)
def test_errors_are_one_sentence(plugin: Plugin, args: tuple[str, ...], message: str) -> None:
    result = plugin(*args)
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
