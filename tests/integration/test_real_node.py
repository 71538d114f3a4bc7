"""A real node beside the local control plane (containerd + runc, CNI bridge, kubelet, kube-proxy,
CoreDNS, local-path-provisioner, locally built images): pods really run and log, Services answer
on their ClusterIPs from the host and from pods, `<svc>.<ns>.svc` resolves in pods, claims bind,
and the Dockyard operator's Registry serves pushes and pulls through its Service with the admin
credentials and the operator-issued CA, and a Kaniko Job builds from it and pushes into it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import running_operator

from localcluster.realnode import GATEWAY, RealNodeCluster, host
from realregistry import read_configmap, read_secret, write_oci_image

pytestmark = pytest.mark.integration


def _until(check: Callable[[], Any], what: str, deadline_s: float = 90, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {deadline_s:.0f}s waiting for {what}")


def _accepts(host: str, port: int) -> bool:
    """Whether a TCP connection is accepted. Ready follows the Deployment, but kube-proxy programs
    the Service's rules from the EndpointSlice a moment later; until then the node's own rules
    refuse the connection."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _apply(cluster: RealNodeCluster, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def _get(cluster: RealNodeCluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _pod_phase(cluster: RealNodeCluster, namespace: str, name: str) -> str:
    return ((_get(cluster, namespace, "pod", name) or {}).get("status") or {}).get("phase", "")


def _busybox(cluster: RealNodeCluster) -> str:
    return cluster.images["busybox"].name


def _run_pod(cluster: RealNodeCluster, namespace: str, name: str, script: str, deadline_s: float = 60) -> str:
    """A busybox pod running `script` to completion; returns its log (kubectl logs, through the kubelet).
    (Debian's busybox 1.35 `wget -T` segfaults: bound waits with `timeout` instead.)"""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [{"name": "main", "image": _busybox(cluster), "command": ["sh", "-c", script]}],
        },
    }
    _apply(cluster, namespace, pod)
    phase = _until(
        lambda: (p := _pod_phase(cluster, namespace, name)) in ("Succeeded", "Failed") and p, f"pod {name}", deadline_s
    )
    logs = cluster.kubectl("logs", "-n", namespace, name).stdout
    assert phase == "Succeeded", f"pod {name} {phase}: {logs}"
    return logs


@pytest.fixture
def real_namespace(real_node_cluster: RealNodeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    name = f"r-{slug}-{secrets.token_hex(3)}"
    real_node_cluster.kubectl("create", "namespace", name)
    # Pods are admitted once the namespace's ServiceAccount `default` exists.
    _until(
        lambda: _get(real_node_cluster, name, "serviceaccount", "default"), f"ServiceAccount {name}/default", 30, 0.1
    )
    try:
        yield name
    finally:
        real_node_cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.mark.before_real_node
def test_a_killed_node_is_cleaned_up_at_the_next_start(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """First in the session (before the session's node exists): a node in another process, with a
    pod running, is killed outright; the next start (the session fixture) finds its state file and
    undoes it: no process, mount, network namespace or work dir of it is left."""
    if os.geteuid() != 0:
        pytest.skip("the real node needs root (containerd, kubelet, iptables and mounts)")
    kubeconfig = tmp_path / "kubeconfig"
    hack = Path(__file__).resolve().parents[2] / "hack"
    process = subprocess.Popen(
        [sys.executable, "-m", "localcluster.realnode", "up", "--kubeconfig", str(kubeconfig)],
        cwd=hack,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "up.log").open("w"),
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready.startswith("ready in"), (tmp_path / "up.log").read_text()[-3000:]
        logs = process.stdout.readline().split("logs: ", 1)[1].strip()
        workdir = str(Path(logs).parent)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        kubectl = [str(request.getfixturevalue("bin_dir") / "kubectl")]
        names = process.stdout.readline().split()
        busybox = next(name for name in names if "/busybox:" in name)
        pod = [*kubectl, "run", "sleeper", f"--image={busybox}", "--restart=Never", "--", "sleep", "600"]
        subprocess.run(pod, env=env, check=True, capture_output=True)
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "pod/sleeper", "--timeout=90s"],
            env=env,
            check=True,
            capture_output=True,
        )
    finally:
        process.kill()
        process.wait()
    killed = host.observe()
    assert any(workdir in m for m in killed.mounts) and "dockyard0" in killed.links  # what a crash leaves

    cluster = request.getfixturevalue("real_node_cluster")
    after = host.observe()
    assert not Path(workdir).exists()
    assert not [m for m in after.mounts if m.startswith(workdir)]
    assert not [c for _, _, c in after.processes.values() if workdir in c]
    assert cluster.workdir != Path(workdir)


def test_the_node_is_real_and_pods_run_and_log(real_node_cluster: RealNodeCluster, real_namespace: str) -> None:
    node = json.loads(real_node_cluster.kubectl("get", "node", "dockyard-node", "-o", "json").stdout)
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert info["kubeletVersion"].startswith("v1.")
    logs = _run_pod(real_node_cluster, real_namespace, "hello", "echo hello from $(hostname) uid=$(id -u)")
    assert "hello from hello uid=0" in logs
    pod = _get(real_node_cluster, real_namespace, "pod", "hello")
    assert pod is not None and pod["status"]["podIP"].startswith("10.244.0.")


@pytest.fixture(scope="module")
def web(real_node_cluster: RealNodeCluster) -> Iterator[tuple[str, str]]:
    """A busybox httpd behind a Service `web` in its own namespace: (namespace, ClusterIP)."""
    namespace = f"r-web-{secrets.token_hex(3)}"
    cluster = real_node_cluster
    cluster.kubectl("create", "namespace", namespace)
    script = "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": _busybox(cluster),
                            "command": ["sh", "-c", script],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    _apply(cluster, namespace, deployment, service)
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=90s", timeout=120)
    cluster_ip = (_get(cluster, namespace, "service", "web") or {})["spec"]["clusterIP"]
    try:
        yield namespace, cluster_ip
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _http_get(url: str) -> str | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as response:
            return str(response.read().decode())
    except OSError:
        return None


def test_service_cluster_ip_answers_from_the_host_and_from_a_pod(
    real_node_cluster: RealNodeCluster, real_namespace: str, web: tuple[str, str]
) -> None:
    _, cluster_ip = web
    assert cluster_ip.startswith("10.0.0.")
    body = _until(lambda: _http_get(f"http://{cluster_ip}/"), f"http://{cluster_ip}/ from the host", 30)
    assert body.startswith("served-by-web-")
    logs = _run_pod(real_node_cluster, real_namespace, "client", f"timeout 10 wget -qO- http://{cluster_ip}/")
    assert logs.startswith("served-by-web-")


def test_cluster_dns_resolves_services_in_pods(
    real_node_cluster: RealNodeCluster, real_namespace: str, web: tuple[str, str]
) -> None:
    namespace, cluster_ip = web
    script = f"nslookup web.{namespace}.svc.cluster.local && timeout 10 wget -qO- http://web.{namespace}.svc/"
    logs = _run_pod(real_node_cluster, real_namespace, "resolver", script)
    assert cluster_ip in logs
    assert "served-by-web-" in logs


def test_a_claim_binds_to_a_local_path_volume_a_non_root_pod_can_write(
    real_node_cluster: RealNodeCluster, real_namespace: str
) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "writer"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "containers": [
                {
                    "name": "main",
                    "image": _busybox(real_node_cluster),
                    "command": ["sh", "-c", "echo persisted > /data/file && cat /data/file"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }
    _apply(real_node_cluster, real_namespace, claim, pod)
    _until(lambda: _pod_phase(real_node_cluster, real_namespace, "writer") == "Succeeded", "pod writer", 90)
    bound = _get(real_node_cluster, real_namespace, "pvc", "data")
    assert bound is not None and bound["status"]["phase"] == "Bound"
    volume = _get(real_node_cluster, "", "pv", bound["spec"]["volumeName"])
    assert volume is not None
    path = Path(volume["spec"]["hostPath"]["path"] if "hostPath" in volume["spec"] else volume["spec"]["local"]["path"])
    assert path.is_relative_to(real_node_cluster.workdir / "local-path")
    assert (path / "file").read_text() == "persisted\n"


# ---- the Dockyard operator on the real node -----------------------------------------------------


@pytest.fixture(scope="module")
def operator(real_node_cluster: RealNodeCluster) -> Iterator[tuple[str, str]]:
    """The CRDs, a namespace, and the operator (in this process) watching it, configured with the
    locally built images and an event intake on the bridge gateway that registry pods can reach:
    (namespace, metrics URL)."""
    with operator_on_real_node(real_node_cluster, "r-operator") as running:
        yield running


@contextlib.contextmanager
def operator_on_real_node(
    cluster: RealNodeCluster, prefix: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """The CRDs installed, a namespace `<prefix>-<random>`, and the operator watching it with the
    locally built images, its event intake on the bridge gateway and `env` set: (namespace, metrics
    URL). Registries are deleted while the operator still runs (its finalizers would block it)."""
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKYARD_REGISTRY_IMAGE", cluster.images["registry"].name)
        patch.setenv("DOCKYARD_OPERATOR_IMAGE", cluster.images["operator"].name)
        patch.setenv("DOCKYARD_KANIKO_IMAGE", cluster.images["kaniko"].name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        with running_operator(cluster, "-n", namespace, events_host=GATEWAY) as metrics:
            try:
                yield namespace, metrics
            finally:
                cluster.kubectl("delete", "registries", "--all", "-n", namespace, "--timeout=60s", check=False)


@pytest.fixture(scope="module")
def contoso(real_node_cluster: RealNodeCluster, operator: tuple[str, str]) -> dict[str, Any]:
    """The Registry `contoso` (Standard, admin user, self-signed TLS, a claim), Ready because its
    pod runs distribution and the operator image's token service."""
    registry = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Registry",
        "metadata": {"name": "contoso"},
        "spec": {"sku": "Standard", "adminUser": {"enabled": True}, "tls": {"mode": "SelfSigned"}},
    }
    operator_namespace = operator[0]
    began = time.monotonic()
    _apply(real_node_cluster, operator_namespace, registry)

    def ready() -> dict[str, Any] | None:
        body = _get(real_node_cluster, operator_namespace, "registry", "contoso") or {}
        for condition in (body.get("status") or {}).get("conditions") or []:
            if condition["type"] == "Ready" and condition["status"] == "True":
                return body
        return None

    try:
        body = _until(ready, "Registry contoso Ready", 180)
    except BaseException:
        pods = real_node_cluster.kubectl("get", "pods", "-n", operator_namespace, "-o", "wide", check=False).stdout
        events = real_node_cluster.kubectl("get", "events", "-n", operator_namespace, check=False).stdout
        print(f"pods:\n{pods}\nevents:\n{events}")
        raise
    print(f"Registry contoso Ready {time.monotonic() - began:.1f}s after apply")
    cluster_ip = (_get(real_node_cluster, operator_namespace, "service", "contoso") or {})["spec"]["clusterIP"]
    _until(
        lambda: _accepts(cluster_ip, 5000) and _accepts(cluster_ip, 5001),
        "contoso's Service accepting connections",
        60,
    )
    return dict(body)


class Skopeo:
    """skopeo on the host, seeing `<registry>.<namespace>.svc` at the Service's ClusterIP (an
    /etc/hosts of its own in a private mount namespace: the host's files stay untouched) and
    trusting the operator-issued CA."""

    def __init__(self, workdir: Path, host: str, cluster_ip: str, ca_pem: str) -> None:
        self.workdir = workdir
        self.hosts = workdir / "hosts"
        self.hosts.write_text(f"127.0.0.1 localhost\n{cluster_ip} {host}\n")
        self.certs = workdir / "certs"
        self.certs.mkdir()
        (self.certs / "ca.crt").write_text(ca_pem)
        (workdir / "ca.pem").write_text(ca_pem)

    def bounded(self, timeout: str, *args: str) -> subprocess.CompletedProcess[str]:
        """skopeo with `--command-timeout` (a Go duration): the attempt gives up on its own."""
        return self(f"--command-timeout={timeout}", *args)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        script = f'mount -n --bind "{self.hosts}" /etc/hosts && exec skopeo "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "skopeo", *args]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.workdir),
            "SSL_CERT_FILE": str(self.workdir / "ca.pem"),
        }
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def test_operator_registry_runs_and_serves_push_and_pull_through_its_service(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], contoso: dict[str, Any], tmp_path: Path
) -> None:
    namespace, metrics_url = operator
    status = contoso["status"]
    assert status["loginServer"] == f"contoso.{namespace}.svc:5000"
    credentials = status["credentials"]
    pods = json.loads(
        real_node_cluster.kubectl(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance=contoso", "-o", "json"
        ).stdout
    )["items"]
    assert pods, "no registry pod"
    running = {c["name"]: "running" in c["state"] for c in pods[0]["status"]["containerStatuses"]}
    assert running == {"registry": True, "token": True}

    admin = read_secret(real_node_cluster, namespace, credentials["adminSecretName"])
    ca = read_configmap(real_node_cluster, namespace, credentials["caConfigMapName"])
    assert admin is not None and ca is not None
    cluster_ip = (_get(real_node_cluster, namespace, "service", "contoso") or {})["spec"]["clusterIP"]
    skopeo = Skopeo(tmp_path, f"contoso.{namespace}.svc", cluster_ip, ca["ca.crt"])
    write_oci_image(tmp_path / "image")
    target = f"docker://{status['loginServer']}/team/app:v1"
    creds = f"{admin['username']}:{admin['password']}"

    pushed = skopeo(
        "copy", "--dest-creds", creds, "--dest-cert-dir", str(skopeo.certs), f"oci:{tmp_path / 'image'}:v1", target
    )
    assert pushed.returncode == 0, pushed.stderr
    pulled = skopeo(
        "copy", "--src-creds", creds, "--src-cert-dir", str(skopeo.certs), target, f"oci:{tmp_path / 'pulled'}:v1"
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "index.json").exists()
    refused = skopeo("inspect", "--cert-dir", str(skopeo.certs), "--creds", f"{admin['username']}:wrong", target)
    assert refused.returncode != 0

    # The registry's push notification reaches the operator's intake on the bridge gateway.
    _until(
        lambda: 'dockyard_webhook_events_total{action="push"}' in httpx.get(metrics_url, timeout=2).text,
        "the push event at the operator's intake",
        30,
    )


def test_kaniko_builds_from_the_registry_and_pushes_into_it(
    real_node_cluster: RealNodeCluster, operator: tuple[str, str], contoso: dict[str, Any], tmp_path: Path
) -> None:
    namespace = operator[0]
    status = contoso["status"]
    login = status["loginServer"]
    credentials = status["credentials"]
    admin = read_secret(real_node_cluster, namespace, credentials["adminSecretName"])
    ca = read_configmap(real_node_cluster, namespace, credentials["caConfigMapName"])
    assert admin is not None and ca is not None
    cluster_ip = (_get(real_node_cluster, namespace, "service", "contoso") or {})["spec"]["clusterIP"]
    skopeo = Skopeo(tmp_path, f"contoso.{namespace}.svc", cluster_ip, ca["ca.crt"])
    creds = f"{admin['username']}:{admin['password']}"
    write_oci_image(tmp_path / "image")
    base = skopeo(
        "copy",
        "--dest-creds",
        creds,
        "--dest-cert-dir",
        str(skopeo.certs),
        f"oci:{tmp_path / 'image'}:v1",
        f"docker://{login}/team/base:1",
    )
    assert base.returncode == 0, base.stderr

    context = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "build-context"},
        "data": {
            "Dockerfile": f"FROM {login}/team/base:1\nCOPY extra.txt /extra.txt\n",
            "extra.txt": "built by kaniko\n",
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "build"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "kaniko",
                            "image": real_node_cluster.images["kaniko"].name,
                            "args": [
                                "--context=dir:///workspace",
                                f"--destination={login}/team/built:1",
                                "--digest-file=/dev/termination-log",
                                "--log-format=text",
                            ],
                            "volumeMounts": [
                                {"name": "context", "mountPath": "/workspace"},
                                {"name": "docker-config", "mountPath": "/kaniko/.docker"},
                                {"name": "ca", "mountPath": "/kaniko/ssl/certs/registry-ca.crt", "subPath": "ca.crt"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "context", "configMap": {"name": "build-context"}},
                        {
                            "name": "docker-config",
                            "secret": {
                                "secretName": credentials["pullSecretName"],
                                "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                            },
                        },
                        {"name": "ca", "configMap": {"name": credentials["caConfigMapName"]}},
                    ],
                }
            },
        },
    }
    began = time.monotonic()
    _apply(real_node_cluster, namespace, context, job)

    def finished() -> str | None:
        body = _get(real_node_cluster, namespace, "job", "build") or {}
        for condition in (body.get("status") or {}).get("conditions") or []:
            if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                return str(condition["type"])
        return None

    outcome = _until(finished, "the Kaniko Job", 180)
    logs = real_node_cluster.kubectl("logs", "-n", namespace, "job/build", check=False).stdout
    assert outcome == "Complete", logs
    print(f"Kaniko Job complete {time.monotonic() - began:.1f}s after apply")
    pod = json.loads(
        real_node_cluster.kubectl("get", "pods", "-n", namespace, "-l", "job-name=build", "-o", "json").stdout
    )["items"][0]
    digest = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"].strip()
    inspected = skopeo("inspect", "--creds", creds, "--cert-dir", str(skopeo.certs), f"docker://{login}/team/built:1")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == digest
    assert len(json.loads(inspected.stdout)["Layers"]) == 2
