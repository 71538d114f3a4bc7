"""`helm install`, `helm upgrade` and `helm uninstall` of the chart on the local control plane (kwok
runs the operator pod): the release comes up, an upgrade reaches the Deployment, an upgrade with
a typo is refused and changes nothing, and uninstalling removes the operator but keeps the CRDs
(and every Dockyard resource) and the delivery queue's claim."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml
from conftest import build_tool

from realregistry import ROOT

pytestmark = pytest.mark.integration
CHART = ROOT / "helm" / "dockyard"


def _helm(cluster: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [str(build_tool("helm")), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert not check or run.returncode == 0, run.stdout + run.stderr
    return run


def _env(cluster: Any, namespace: str) -> dict[str, str]:
    deployment = json.loads(cluster.kubectl("get", "deployment", "dockyard", "-n", namespace, "-o", "json").stdout)
    return {e["name"]: e.get("value", "") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_install_upgrade_uninstall_keeps_crds_and_the_queue(cluster: Any, namespace: str) -> None:
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
    try:
        _helm(
            cluster, "install", "dy", str(CHART), "-n", namespace, "--set", "image.tag=test", "--wait", "--timeout=120s"
        )
        assert _env(cluster, namespace)["DOCKYARD_LOG_FORMAT"] == "json"
        crds = cluster.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=dockyard", "-o", "name").stdout.split()
        assert len(crds) >= 5
        cluster.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(
                {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "kept"}, "spec": {}}
            ),
        )

        _helm(
            cluster,
            "upgrade",
            "dy",
            str(CHART),
            "-n",
            namespace,
            "--reuse-values",
            "--set",
            "logFormat=plain",
            "--wait",
        )
        assert _env(cluster, namespace)["DOCKYARD_LOG_FORMAT"] == "plain"
        refused = _helm(
            cluster,
            "upgrade",
            "dy",
            str(CHART),
            "-n",
            namespace,
            "--reuse-values",
            "--set",
            "logFormatt=json",
            check=False,
        )
        assert refused.returncode != 0 and "logFormatt" in refused.stderr
        history = json.loads(_helm(cluster, "history", "dy", "-n", namespace, "-o", "json").stdout)
        assert [r["status"] for r in history] == ["superseded", "deployed"], "a refused upgrade leaves no revision"

        _helm(cluster, "uninstall", "dy", "-n", namespace, "--wait")
        gone = cluster.kubectl(
            "get",
            "deployment,service,serviceaccount",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/instance=dy",
            "-o",
            "name",
        ).stdout.split()
        assert gone == []
        assert cluster.kubectl("get", "clusterrole", f"dockyard-{namespace}", check=False).returncode != 0
        assert (
            cluster.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=dockyard", "-o", "name").stdout.split()
            == crds
        )
        assert cluster.kubectl("get", "registry", "kept", "-n", namespace, check=False).returncode == 0
        assert cluster.kubectl("get", "pvc", "dockyard-state", "-n", namespace, check=False).returncode == 0
    finally:
        _helm(cluster, "uninstall", "dy", "-n", namespace, check=False)
        cluster.kubectl("delete", "pv", volume, "--ignore-not-found", "--wait=false", check=False)
