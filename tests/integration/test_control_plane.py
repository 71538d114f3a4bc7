"""The local control plane behaves like a cluster: scheduled pods become Ready, Jobs finish (or
fail on request), owners' deletion collects their dependants, namespaces with content go away,
and the cluster leaves nothing behind when it stops."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from localcluster import EXIT_CODE_ANNOTATION, TERMINATION_MESSAGE_ANNOTATION, LocalCluster

pytestmark = pytest.mark.integration

HACK = Path(__file__).resolve().parents[2] / "hack"
T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def job(name: str, annotations: dict[str, str] | None = None) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations=annotations),
                spec=client.V1PodSpec(
                    restart_policy="Never", containers=[client.V1Container(name="main", image="busybox")]
                ),
            ),
        ),
    )


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx")]),
            ),
        ),
    )


def condition(obj: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (obj.status.conditions or []))


def job_with_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> client.V1Job | None:
    found = batch.read_namespaced_job(name, namespace)
    return found if condition(found, kind) else None


def test_fake_node_is_ready_with_the_advertised_capacity(api: client.ApiClient, cluster: LocalCluster) -> None:
    node = client.CoreV1Api(api).read_node(cluster.node_name)
    assert condition(node, "Ready")
    assert not node.spec.taints
    assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert node.metadata.labels["kubernetes.io/arch"] == "amd64"
    assert node.metadata.labels["kubernetes.io/hostname"] == cluster.node_name
    assert node.status.allocatable["cpu"] == "32"
    assert node.status.allocatable["pods"] == "500"


def test_kubectl_and_server_are_both_1_34(cluster: LocalCluster) -> None:
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"].startswith("v1.34.")
    assert versions["serverVersion"]["gitVersion"].startswith("v1.34.")


def test_env_puts_the_matching_kubectl_first_and_targets_the_cluster(cluster: LocalCluster) -> None:
    env = cluster.env()
    assert env["KUBECONFIG"] == str(cluster.kubeconfig)
    assert shutil.which("kubectl", path=env["PATH"]) == str(cluster.bin_dir / "kubectl")
    out = subprocess.run(
        ["kubectl", "get", "namespace", "default", "-o", "name"], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "namespace/default"


def test_deployment_gets_ready_pods(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=3))
    eventually(
        lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 3,
        "3 ready replicas",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.status.pod_ip
        assert all(status.ready and status.state.running for status in pod.status.container_statuses)


def test_job_completes(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, job("succeeds"))
    done = eventually(lambda: job_with_condition(batch, namespace, "succeeds", "Complete"), "the Job to complete")
    assert done.status.succeeded == 1
    assert not done.status.failed


def test_job_fails_with_the_annotated_exit_code_and_message(api: client.ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    digest = "sha256:" + "ab" * 32
    annotations = {EXIT_CODE_ANNOTATION: "3", TERMINATION_MESSAGE_ANNOTATION: digest}
    batch.create_namespaced_job(namespace, job("fails", annotations))
    failed = eventually(lambda: job_with_condition(batch, namespace, "fails", "Failed"), "the Job to fail")
    assert failed.status.failed == 1
    assert not failed.status.succeeded
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=fails").items
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.message == digest
    assert terminated.reason == "Error"


def test_deleting_an_owner_collects_its_dependants(api: client.ApiClient, namespace: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    reference = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[reference]))
    )
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
    eventually(lambda: len(core.list_namespaced_pod(namespace).items) == 2, "the Deployment's pods")

    core.delete_namespaced_config_map("owner", namespace)
    apps.delete_namespaced_deployment("web", namespace)

    eventually(lambda: gone(lambda: core.read_namespaced_config_map("child", namespace)), "the child ConfigMap to go")
    eventually(lambda: not apps.list_namespaced_replica_set(namespace).items, "the ReplicaSet to go")
    eventually(lambda: not core.list_namespaced_pod(namespace).items, "the pods to go")


def test_namespace_with_content_is_deleted(api: client.ApiClient, cluster: LocalCluster) -> None:
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    name = f"t-delete-me-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    apps.create_namespaced_deployment(name, deployment("web", replicas=2))
    batch.create_namespaced_job(name, job("runs", {"kwok.dockyard.dev/run-duration": "10m"}))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="data")))
    eventually(
        lambda: sum(p.status.phase == "Running" for p in core.list_namespaced_pod(name).items) == 3,
        "three running pods",
    )
    core.delete_namespace(name)
    eventually(lambda: gone(lambda: core.read_namespace(name)), "the namespace to disappear", timeout=120)


def test_cluster_cleans_up_when_the_block_raises(bin_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="test failure"):
        with LocalCluster(bin_dir, node_name="cleanup-node") as second:
            pids = second.pids()
            workdir = second.workdir
            assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
            assert second.kubectl("get", "node", "cleanup-node", "-o", "name").stdout.strip() == "node/cleanup-node"
            raise RuntimeError("test failure")
    assert not workdir.exists()
    assert [name for name, pid in pids.items() if alive(pid)] == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_up_serves_until_signalled_then_removes_everything(
    bin_dir: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = dict(os.environ, PYTHONPATH=str(HACK))
    stderr = tmp_path / "stderr"
    process = subprocess.Popen(
        [sys.executable, "-m", "localcluster", "up", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        assert "Press Ctrl-C" in output, output + stderr.read_text()
        logs = Path(re.search(r"Component logs: (\S+)", output).group(1))  # type: ignore[union-attr]
        nodes = subprocess.run(
            [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", "get", "nodes", "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert nodes.stdout.strip() == "node/kwok-node-0"
        children = _children_of(process.pid)
        assert len(children) == 5

        process.send_signal(signum)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not kubeconfig.exists()
    assert not logs.parent.exists()
    assert [pid for pid in children if alive(pid)] == []


def _children_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
