"""The Helm chart on the real control plane: it lints, its rendered objects are accepted, the
operator Deployment becomes available (kwok plays the node) behind the events Service, and the
operator — run here with the chart's ServiceAccount token instead of cluster-admin — reconciles a
Registry and a Webhook, which proves the ClusterRole grants what the operator uses."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import build_tool
from test_registry import _apply, _until, crds  # noqa: F401  (fixture)
from test_webhooks import Stack, _ready, _webhook

from dockyard.core.names import RegistryNames
from realregistry import ROOT

pytestmark = pytest.mark.integration
CHART = ROOT / "helm" / "dockyard"


@pytest.fixture(scope="session")
def helm() -> Path:
    return build_tool("helm")


def _render(helm: Path, namespace: str, *values: str) -> list[dict[str, Any]]:
    args = [str(helm), "template", "dy", str(CHART), "-n", namespace, "--set", "image.tag=test"]
    for value in values:
        args += ["--set", value]
    rendered = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def test_chart_lints_and_renders_without_crds_by_default(helm: Path) -> None:
    linted = subprocess.run([str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    kinds = sorted(doc["kind"] for doc in _render(helm, "dockyard-system"))
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]
    without = sorted(doc["kind"] for doc in _render(helm, "dockyard-system", "persistence.enabled=false"))
    assert "PersistentVolumeClaim" not in without


def test_events_url_names_the_events_service(helm: Path) -> None:
    docs = {doc["kind"]: doc for doc in _render(helm, "ops")}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    service = docs["Service"]
    assert env["DOCKYARD_EVENTS_URL"] == f"http://{service['metadata']['name']}.ops.svc:8090"
    assert env["DOCKYARD_STATE_DIR"] == "/var/lib/dockyard"
    assert env["DOCKYARD_OPERATOR_IMAGE"] == "ghcr.io/dockyard-dev/dockyard:test"
    assert docs["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}
    assert docs["Deployment"]["spec"]["template"]["spec"]["enableServiceLinks"] is False


@pytest.fixture
def installed(cluster: Any, crds: None, helm: Path, namespace: str) -> Iterator[str]:
    """The chart applied to `namespace`, with a static volume for its claim (kwok provisions none)."""
    volume = f"{namespace}-state"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "hostPath": {"path": f"/tmp/{volume}"},
                    "claimRef": {"namespace": namespace, "name": "dockyard-state"},
                },
            }
        ),
    )
    manifests = yaml.safe_dump_all(_render(helm, namespace))
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifests)
    try:
        yield namespace
    finally:
        cluster.kubectl(
            "delete", "clusterrolebinding,clusterrole", f"dockyard-{namespace}", "--ignore-not-found", check=False
        )
        cluster.kubectl("delete", "pv", volume, "--ignore-not-found", "--wait=false", check=False)


def test_operator_deployment_becomes_available_behind_the_events_service(cluster: Any, installed: str) -> None:
    namespace = installed
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/dockyard", "--timeout=90s")
    claim = json.loads(cluster.kubectl("get", "pvc", "dockyard-state", "-n", namespace, "-o", "json").stdout)
    assert claim["status"]["phase"] == "Bound"

    def ready_endpoints() -> list[Any]:
        slices = json.loads(
            cluster.kubectl(
                "get",
                "endpointslices",
                "-n",
                namespace,
                "-l",
                "kubernetes.io/service-name=dockyard-events",
                "-o",
                "json",
            ).stdout
        )
        return [e for s in slices["items"] for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready")]

    assert len(_until(ready_endpoints, "the events Service to select the operator pod")) == 1


def test_operator_runs_with_only_the_charts_permissions(cluster: Any, installed: str, tmp_path: Path) -> None:
    namespace = installed
    token = cluster.kubectl("create", "token", "dockyard", "-n", namespace, "--duration=1h").stdout.strip()
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["users"] = [{"name": "dockyard", "user": {"token": token}}]
    for context in kubeconfig["contexts"]:
        context["context"]["user"] = "dockyard"
    restricted = tmp_path / "kubeconfig"
    restricted.write_text(yaml.safe_dump(kubeconfig))

    def can(*args: str) -> str:
        return cluster.kubectl(
            "--kubeconfig", str(restricted), "auth", "can-i", *args, "-n", namespace, check=False
        ).stdout.strip()

    assert can("create", "secrets") == "yes" and can("patch", "registries/status") == "yes"
    assert can("watch", "secrets") == "yes", "children are watched (the operator's caches)"
    assert can("update", "secrets") == "no" and can("deletecollection", "secrets") == "no"
    assert can("delete", "namespaces") == "no" and can("update", "registries") == "no"

    stack = Stack(cluster, namespace, tmp_path, tmp_path / "state", 0)
    with stack.operator_process(kubeconfig=restricted) as process:
        _apply(
            cluster,
            namespace,
            "hub",
            {
                "sku": "Standard",
                "adminUser": {"enabled": True},
                "storage": {"s3": {"bucket": "images", "region": "us-east-1"}},
            },
        )
        _webhook(cluster, namespace, "ci", {"serviceUri": "http://127.0.0.1:9/", "actions": ["push"]})
        _until(lambda: (c := _ready(cluster, namespace, "ci")) and c["status"] == "True", "the Webhook Ready", 90)
        registry = _until(
            lambda: (
                (r := json.loads(cluster.kubectl("get", "registry", "hub", "-n", namespace, "-o", "json").stdout))
                and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in r.get("status", {}).get("conditions", [])
                )
                and r
            ),
            "the Registry Ready",
            90,
        )
        assert registry["status"]["credentials"]["adminSecretName"] == RegistryNames("hub").admin
        # a volume, an Ingress, then deletes of the Ingress and the admin Secrets
        _apply(
            cluster,
            namespace,
            "files",
            {"sku": "Basic", "adminUser": {"enabled": True}, "exposure": {"ingress": {"host": "files.example.com"}}},
        )

        def exists(kind: str, name: str) -> bool:
            return cluster.kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0

        _until(
            lambda: (
                exists("pvc", RegistryNames("files").data)
                and exists("ingress", "files")
                and exists("secret", RegistryNames("files").admin)
            ),
            "the children",
            60,
        )
        _apply(cluster, namespace, "files", {"sku": "Basic"})
        _until(
            lambda: not exists("ingress", "files") and not exists("secret", RegistryNames("files").admin),
            "the Ingress and admin Secret deleted",
            60,
        )
        assert process.poll() is None
    log = (tmp_path / "operator.log").read_text()
    assert "forbidden" not in log.lower(), log[-3000:]
