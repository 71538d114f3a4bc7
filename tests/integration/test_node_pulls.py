"""Kubelets pull from a Dockyard registry (`spec.exposure.nodePull`) on the real node: a pod with
`imagePullSecrets: [<name>-pull]` runs an image that skopeo pushed, a pod without the Secret is
refused, and turning nodePull off, or deleting the Registry, takes its files off the node again.

Nothing on the node is edited by the test: the operator is told the containerd registry
`config_path` the node's own containerd config names (as an admin sets
DOCKYARD_NODE_REGISTRY_CONFIG_DIR for their distribution), and its node-trust DaemonSet writes there.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_real_node import _apply, _get, _until, operator_on_real_node

from localcluster.realnode import RealNodeCluster
from localcluster.realnode.images import Blob, ImageConfig, Layer, write_oci_archive
from realregistry import read_configmap, read_secret

pytestmark = pytest.mark.integration

REGISTRY = "shipyard"


def node_registry_config_dir(cluster: RealNodeCluster) -> Path:
    """The registry `config_path` of the node's containerd, read from its config file."""
    config = tomllib.loads((cluster.workdir / "containerd" / "config.toml").read_text())
    return Path(config["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"])


@pytest.fixture(scope="module")
def operator(real_node_cluster: RealNodeCluster) -> Iterator[str]:
    """The CRDs and the operator (in this process) watching a namespace of its own, with the
    locally built images, an event intake on the bridge gateway and the node's config_path."""
    config_dir = {"DOCKYARD_NODE_REGISTRY_CONFIG_DIR": str(node_registry_config_dir(real_node_cluster))}
    with operator_on_real_node(real_node_cluster, "r-pulls", config_dir) as (namespace, _):
        try:
            yield namespace
        finally:
            real_node_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _ready_registry(cluster: RealNodeCluster, namespace: str) -> dict[str, Any] | None:
    """Ready, with the node trust ready on the one node (status is refreshed at the drift interval)."""
    body = _get(cluster, namespace, "registry", REGISTRY) or {}
    status = body.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    return (
        body if ready and status.get("nodeLoginServer") and status.get("nodePull") == {"nodes": 1, "ready": 1} else None
    )


def _daemonset_ready(cluster: RealNodeCluster, namespace: str) -> bool:
    status = (_get(cluster, namespace, "daemonset", f"{REGISTRY}-node-trust") or {}).get("status") or {}
    return bool(status.get("desiredNumberScheduled")) and status.get("numberReady") == status["desiredNumberScheduled"]


def _skopeo(workdir: Path, ca_pem: str, *args: str) -> subprocess.CompletedProcess[str]:
    """skopeo on the host: the node login server is an address, so no name needs resolving."""
    certs = workdir / "certs"
    certs.mkdir(exist_ok=True)
    (certs / "ca.crt").write_text(ca_pem)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(workdir), "SSL_CERT_FILE": str(certs / "ca.crt")}
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=180, env=env)


def _write_image(cluster: RealNodeCluster, path: Path, greeting: str) -> None:
    """busybox plus a layer of this run only (so the node cannot have its blobs already)."""
    base = Layer().busybox(cluster.node_binaries.busybox).dir("/tmp", 0o1777)
    mine = Layer().file("/greeting.txt", greeting.encode())
    config = ImageConfig(cmd=("cat", "/greeting.txt"))
    write_oci_archive(path, "dockyard.test/greeter:1", [Blob.of(base.tar()), Blob.of(mine.tar())], config)


def _pod(name: str, image: str, pull_secret: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        # Always: the kubelet asks the registry every time, whatever the node has already pulled.
        "containers": [{"name": "main", "image": image, "imagePullPolicy": "Always"}],
    }
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _pull_failure(cluster: RealNodeCluster, namespace: str, name: str) -> str | None:
    pod = _get(cluster, namespace, "pod", name) or {}
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
            return str(waiting.get("message") or waiting["reason"])
    return None


def test_a_pod_runs_an_image_the_node_pulls_with_the_registry_pull_secret(
    real_node_cluster: RealNodeCluster, operator: str, tmp_path: Path
) -> None:
    cluster, namespace = real_node_cluster, operator
    timings: dict[str, float] = {}
    began = time.monotonic()
    registry = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": REGISTRY},
        "spec": {"sku": "Standard", "adminUser": {"enabled": True}, "exposure": {"nodePull": True}},
    }
    _apply(cluster, namespace, registry)
    body = _until(lambda: _ready_registry(cluster, namespace), "Registry Ready with a nodeLoginServer", 180)
    _until(lambda: _daemonset_ready(cluster, namespace), "the node-trust DaemonSet ready", 90)
    timings["registry and node trust ready"] = time.monotonic() - began

    status = body["status"]
    cluster_ip = (_get(cluster, namespace, "service", REGISTRY) or {})["spec"]["clusterIP"]
    node_login = status["nodeLoginServer"]
    assert node_login == f"{cluster_ip}:5000"
    assert status["loginServer"] == f"{REGISTRY}.{namespace}.svc:5000"
    columns = cluster.kubectl("get", "registry", REGISTRY, "-n", namespace, "-o", "wide").stdout
    assert "NODE LOGIN SERVER" in columns and node_login in columns

    # What the DaemonSet left on the node, in the directory the node's containerd reads.
    host_dir = node_registry_config_dir(cluster) / node_login
    ca = read_configmap(cluster, namespace, f"{REGISTRY}-ca")
    assert ca is not None
    assert (host_dir / "ca.crt").read_text() == ca["ca.crt"]
    assert f'[host."https://{node_login}"]' in (host_dir / "hosts.toml").read_text()

    # The pull Secret names both servers with the admin credentials.
    pull = read_secret(cluster, namespace, f"{REGISTRY}-pull")
    admin = read_secret(cluster, namespace, f"{REGISTRY}-admin")
    assert pull is not None and admin is not None
    assert sorted(json.loads(pull[".dockerconfigjson"])["auths"]) == sorted([node_login, status["loginServer"]])

    # Ready counts ready pods; kube-proxy programs the ClusterIP a moment later.
    trust = ssl.create_default_context(cadata=ca["ca.crt"])

    def answers() -> bool:
        try:
            return httpx.get(f"https://{node_login}/v2/", verify=trust, timeout=3).status_code == 401
        except httpx.TransportError:
            return False

    _until(answers, f"https://{node_login}/v2/ from the host", 30)

    greeting = f"pulled by the kubelet {secrets.token_hex(8)}"
    _write_image(cluster, tmp_path / "greeter.oci.tar", greeting)
    image = f"{node_login}/team/greeter:1"
    began = time.monotonic()
    creds = f"{admin['username']}:{admin['password']}"
    pushed = _skopeo(
        tmp_path,
        ca["ca.crt"],
        "copy",
        "--dest-creds",
        creds,
        "--dest-cert-dir",
        str(tmp_path / "certs"),
        f"oci-archive:{tmp_path / 'greeter.oci.tar'}",
        f"docker://{image}",
    )
    assert pushed.returncode == 0, pushed.stderr
    timings["skopeo push"] = time.monotonic() - began

    # Without the Secret the registry refuses the node (anonymousPull is off).
    began = time.monotonic()
    _apply(cluster, namespace, _pod("no-secret", image, None))
    refused = _until(lambda: _pull_failure(cluster, namespace, "no-secret"), "the pull without Secret to fail", 90)
    # The operator runs in this process under kopf's runner, which captures stdout.
    print(f"pull without the Secret: {refused}", file=sys.__stderr__)
    # containerd's words for the registry's answer: the anonymous token carries no pull scope.
    assert "insufficient_scope" in refused or "401" in refused or "nauthorized" in refused, refused
    timings["refused pull"] = time.monotonic() - began

    began = time.monotonic()
    _apply(cluster, namespace, _pod("with-secret", image, f"{REGISTRY}-pull"))

    def finished() -> str | None:
        phase = ((_get(cluster, namespace, "pod", "with-secret") or {}).get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else _pull_failure(cluster, namespace, "with-secret")

    phase = _until(finished, "the pod with the pull Secret to run", 120)
    assert phase == "Succeeded", phase
    assert cluster.kubectl("logs", "-n", namespace, "with-secret").stdout == greeting
    timings["pull and run with the Secret"] = time.monotonic() - began
    pod = _get(cluster, namespace, "pod", "with-secret") or {}
    assert pod["status"]["containerStatuses"][0]["image"].startswith(node_login), pod["status"]

    # Off again: the DaemonSet goes and its pod takes the registry's files off the node.
    began = time.monotonic()
    patch = {"spec": {"exposure": {"nodePull": False}}}
    cluster.kubectl("patch", "registry", REGISTRY, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    _until(lambda: _get(cluster, namespace, "daemonset", f"{REGISTRY}-node-trust") is None, "the DaemonSet gone", 60)
    _until(lambda: not host_dir.exists(), f"{host_dir} removed from the node", 60)
    timings["nodePull off, node cleaned"] = time.monotonic() - began
    status = (_get(cluster, namespace, "registry", REGISTRY) or {}).get("status") or {}
    assert "nodeLoginServer" not in status and "nodePull" not in status, status

    # On again, then the Registry deleted: garbage collection stops the pod, which cleans up too.
    began = time.monotonic()
    patch = {"spec": {"exposure": {"nodePull": True}}}
    cluster.kubectl("patch", "registry", REGISTRY, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    _until((host_dir / "hosts.toml").exists, f"{host_dir} written again", 90)
    cluster.kubectl("delete", "registry", REGISTRY, "-n", namespace, "--timeout=60s")
    _until(lambda: not host_dir.exists(), f"{host_dir} removed after the Registry's deletion", 60)
    timings["on again, Registry deleted, node cleaned"] = time.monotonic() - began
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), file=sys.__stderr__)
    assert os.listdir(node_registry_config_dir(cluster)) == []
