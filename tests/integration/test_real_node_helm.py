"""The operator as a user installs it, on the real node: `helm install` of helm/dockyard with the
locally built operator image (and the locally built registry and Kaniko images as the images it
deploys), everything else as the chart's defaults: the operator pod runs with its ServiceAccount,
its state claim is bound by local-path, and it reconciles a Registry in another namespace whose
pod really runs, serves a skopeo push through its Service and posts the push to the operator's
events Service."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import build_tool
from test_real_node import _apply, _get, _until
from test_real_node_registry import Registry, _ready, _running_pod

from localcluster.realnode import RealNodeCluster
from realregistry import ROOT

pytestmark = pytest.mark.integration
CHART = ROOT / "helm" / "dockyard"


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_tool("helm")


@pytest.fixture(scope="module")
def installed(real_node_cluster: RealNodeCluster, helm: Path) -> Iterator[str]:
    """`helm install dockyard` into a fresh namespace, waited for; uninstalled afterwards."""
    cluster = real_node_cluster
    namespace = f"r-dockyard-system-{secrets.token_hex(3)}"
    repository, tag = cluster.images["operator"].name.rsplit(":", 1)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(cluster.workdir / "helm")}

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=timeout, env=env)

    began = time.monotonic()
    install = run(
        "install",
        "dockyard",
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        f"registryImage={cluster.images['registry'].name}",
        "--set",
        f"kanikoImage={cluster.images['kaniko'].name}",
        "--wait",
        "--timeout=180s",
    )
    try:
        if install.returncode != 0:
            pods = cluster.kubectl("get", "pods,pvc", "-n", namespace, "-o", "wide", check=False).stdout
            logs = cluster.kubectl("logs", "-n", namespace, "deploy/dockyard", "--tail=50", check=False).stdout
            pytest.fail(f"helm install failed: {install.stderr}\n{pods}\n{logs}")
        print(f"helm install --wait done in {time.monotonic() - began:.1f}s")
        yield namespace
    finally:
        uninstall = run("uninstall", "dockyard", "-n", namespace, "--wait", "--timeout=60s", timeout=90)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        assert uninstall.returncode == 0 or install.returncode != 0, uninstall.stderr


def test_the_chart_runs_the_operator_image_which_serves_a_registry(
    real_node_cluster: RealNodeCluster, installed: str, tmp_path: Path
) -> None:
    cluster, system = real_node_cluster, installed
    pods = json.loads(
        cluster.kubectl("get", "pods", "-n", system, "-l", "app.kubernetes.io/name=dockyard", "-o", "json").stdout
    )["items"]
    assert len(pods) == 1
    operator_pod = pods[0]
    assert operator_pod["status"]["phase"] == "Running"
    assert operator_pod["spec"]["containers"][0]["image"] == cluster.images["operator"].name
    assert operator_pod["spec"]["serviceAccountName"] == "dockyard"
    claim = _get(cluster, system, "pvc", "dockyard-state") or {}
    assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "local-path"

    namespace = f"r-apps-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        registry = {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Registry",
            "metadata": {"name": "hub"},
            "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
        }
        began = time.monotonic()
        _apply(cluster, namespace, registry)
        try:
            body = _until(lambda: _ready(cluster, namespace, "hub"), "Registry hub Ready", 180)
        except BaseException:
            print(cluster.kubectl("get", "pods,events", "-n", namespace, check=False).stdout)
            print(cluster.kubectl("logs", "-n", system, "deploy/dockyard", "--tail=80", check=False).stdout)
            raise
        print(f"Registry hub Ready {time.monotonic() - began:.1f}s after apply")
        pod = _running_pod(cluster, namespace, "hub")
        assert pod is not None
        assert {c["name"]: c["image"] for c in pod["spec"]["containers"]} == {
            "registry": cluster.images["registry"].name,
            "token": cluster.images["operator"].name,
        }
        assert all("running" in c["state"] for c in pod["status"]["containerStatuses"])

        client = Registry(cluster, namespace, body, tmp_path)
        pushed = client.push("team/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        pulled = client.pull("team/app:v1")
        assert pulled.returncode == 0, pulled.stderr

        # The push went from the registry pod through the chart's events Service to the operator pod.
        metrics = f"http://{operator_pod['status']['podIP']}:9090/metrics"

        def event_counted() -> bool:
            try:
                return 'dockyard_webhook_events_total{action="push"}' in httpx.get(metrics, timeout=2).text
            except httpx.HTTPError:
                return False

        _until(event_counted, "the push event at the operator pod", 30)
        assert "forbidden" not in cluster.kubectl("logs", "-n", system, "deploy/dockyard").stdout.lower()

        # kubectl dockyard reaches the operator pod's delivery store through kubectl exec; a replay
        # starts a fresh set of attempts, so the redelivered one shows as a later failed attempt.
        _apply(
            cluster,
            namespace,
            {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "Webhook",
                "metadata": {"name": "nowhere"},
                "spec": {
                    "registryRef": {"name": "hub"},
                    "serviceUri": "http://127.0.0.1:9/",
                    "actions": ["push"],
                    "delivery": {"maxAttempts": 1},
                },
            },
        )
        _until(lambda: _ready(cluster, namespace, "hub"), "Registry hub Ready again", 60)
        assert client.push("team/app:v2").returncode == 0
        plugin = Path(sys.executable).parent / "kubectl-dockyard"
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PATH": f"{cluster.bin_dir}:{os.environ['PATH']}"}

        def deliveries(*extra: str) -> list[dict[str, Any]]:
            listed = subprocess.run(
                [str(plugin), "deliveries", "nowhere", "-n", namespace, "--all", "-o", "json", *extra],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert listed.returncode == 0, listed.stderr
            return list(json.loads(listed.stdout)["items"])

        failed = _until(lambda: deliveries("--state", "failed"), "a failed delivery in the operator's store", 90)
        again = subprocess.run(
            [str(plugin), "redeliver", "nowhere", failed[0]["id"], "-n", namespace],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert again.returncode == 0 and again.stdout.startswith("1 of 1"), again.stdout + again.stderr
        _until(
            lambda: any(
                d["id"] == failed[0]["id"] and d["state"] == "failed" and d["time"] > failed[0]["time"]
                for d in deliveries()
            ),
            "the redelivered attempt",
            90,
        )
    finally:
        # While the operator runs: its finalizer would hold the Registry (and namespace) otherwise.
        cluster.kubectl("delete", "registries", "--all", "-n", namespace, "--timeout=60s", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
