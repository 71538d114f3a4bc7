"""hack/localcluster without a cluster: the build script's refusal without Go, port picking,
certificates, the kubeconfig, the kwok stages, the fake nodes, the optional tuning of the
components, process clean-up and start-up failures that name the failing component."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import kubernetes.client
import kubernetes.config
import pytest
import yaml

from localcluster import (
    EXIT_CODE_ANNOTATION,
    TERMINATION_MESSAGE_ANNOTATION,
    LocalCluster,
    LocalClusterError,
    components,
    ensure_binaries,
)
from localcluster.build import BUILD_SCRIPT
from localcluster.errors import KubectlError
from localcluster.kubeconfig import render_kubeconfig
from localcluster.node import fake_node, node_is_schedulable, node_names
from localcluster.pki import create_pki
from localcluster.ports import ephemeral_range, free_port, free_ports
from localcluster.processes import Component, stop_all
from localcluster.stages import BUILD_RUN_LABEL, RUN_DURATION_ANNOTATION, stage_files
from localcluster.waiting import wait_for

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl")
SCRIPT_TOOLS = ("bash", "dirname", "sha256sum", "cut", "cat", "mkdir", "date")


def _path_without_go(tmp_path: Path) -> str:
    """A PATH holding just what the build script needs before it looks for Go."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in SCRIPT_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    return str(tools)


def _cache_key() -> str:
    versions = dict(
        line.split("=", 1)
        for line in (BUILD_SCRIPT.parent / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return f"k8s-{versions['KUBERNETES_VERSION']}_etcd-{versions['ETCD_VERSION']}_kwok-{versions['KWOK_VERSION']}"


def test_build_script_without_go_exits_3_with_one_sentence(tmp_path: Path) -> None:
    env = {"PATH": _path_without_go(tmp_path), "HOME": str(tmp_path), "DOCKYARD_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Go is not installed" in lines[0]


def test_ensure_binaries_raises_the_scripts_sentence_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_without_go(tmp_path))
    monkeypatch.setenv("DOCKYARD_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LocalClusterError) as raised:
        ensure_binaries()
    assert str(raised.value).startswith("Go is not installed")


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go to get as far as the proxy check")
def test_build_script_without_a_module_proxy_exits_3_with_one_sentence(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        DOCKYARD_CACHE=str(tmp_path / "cache"),
        GOPROXY="off",
        GOMODCACHE=str(tmp_path / "modcache"),
        GOFLAGS="",
    )
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "module proxy" in lines[0] and "did not serve k8s.io/kubernetes" in lines[0]


def test_cached_binaries_need_no_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "cache" / _cache_key() / "bin"
    bin_dir.mkdir(parents=True)
    for name in BINARIES:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", _path_without_go(tmp_path))
    monkeypatch.setenv("DOCKYARD_CACHE", str(tmp_path / "cache"))
    assert ensure_binaries() == bin_dir


def test_free_ports_are_distinct_bindable_and_never_ephemeral() -> None:
    """An ephemeral port may become some connection's source port before the component binds it."""
    low, high = ephemeral_range()
    ports = free_ports(50)
    assert len(set(ports)) == 50
    assert not [port for port in ports if low <= port <= high or port < 10000]
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    assert not low <= free_port() <= high


def test_the_ephemeral_range_is_read_from_the_kernel_or_linux_default(tmp_path: Path) -> None:
    (tmp_path / "range").write_text("40000\t50000\n")
    assert ephemeral_range(str(tmp_path / "range")) == (40000, 50000)
    assert ephemeral_range(str(tmp_path / "missing")) == (32768, 60999)


def test_kubeconfig_renders_token_auth_with_the_inline_ca(tmp_path: Path) -> None:
    text = render_kubeconfig("https://127.0.0.1:6443", "s3cret", b"-----BEGIN CERTIFICATE-----\nabc\n")
    config = yaml.safe_load(text)
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]
    user = next(u for u in config["users"] if u["name"] == context["user"])["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert user == {"token": "s3cret"}

    path = tmp_path / "kubeconfig"
    path.write_text(text)
    client_config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=client_config)
    assert client_config.host == "https://127.0.0.1:6443"
    assert list(client_config.api_key.values()) == ["Bearer s3cret"]
    assert Path(str(client_config.ssl_ca_cert)).read_bytes() == b"-----BEGIN CERTIFICATE-----\nabc\n"
    assert client_config.verify_ssl


def test_pki_serving_cert_is_signed_by_the_ca_for_loopback(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki.ca_cert), str(pki.serving_cert)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(pki.serving_cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text
    assert pki.token_file.read_text() == f'{pki.admin_token},admin,admin-uid,"system:masters"\n'
    assert pki.service_account_key.stat().st_mode & 0o077 == 0


def test_stage_files_are_kwok_stages_for_nodes_and_pods() -> None:
    stages = [yaml.safe_load(path.read_text()) for path in stage_files()]
    assert {s["apiVersion"] for s in stages} == {"kwok.x-k8s.io/v1alpha1"}
    assert {s["kind"] for s in stages} == {"Stage"}
    by_name = {s["metadata"]["name"]: s for s in stages}
    assert set(by_name) == {
        "node-initialize",
        "node-heartbeat",
        "pod-ready",
        "pod-complete",
        "build-pod-complete",
        "pod-delete",
    }
    assert {name: s["spec"]["resourceRef"]["kind"] for name, s in by_name.items()} == {
        "node-initialize": "Node",
        "node-heartbeat": "Node",
        "pod-ready": "Pod",
        "pod-complete": "Pod",
        "build-pod-complete": "Pod",
        "pod-delete": "Pod",
    }
    assert by_name["pod-delete"]["spec"]["next"]["delete"] is True
    complete = by_name["pod-complete"]["spec"]
    template = complete["next"]["statusTemplate"]
    assert EXIT_CODE_ANNOTATION in template and TERMINATION_MESSAGE_ANNOTATION in template
    assert RUN_DURATION_ANNOTATION in complete["delay"]["durationFrom"]["jq"]["expression"]
    assert {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]} in complete["selector"][
        "matchExpressions"
    ]


def test_build_pods_complete_by_their_own_stage_only() -> None:
    """kwok picks at random among matching stages: the build stage's selector is pod-complete's plus
    the build-run label, which pod-complete excludes."""
    by_name = {s["metadata"]["name"]: s for s in (yaml.safe_load(p.read_text()) for p in stage_files())}
    plain = by_name["pod-complete"]["spec"]["selector"]["matchExpressions"]
    build = by_name["build-pod-complete"]["spec"]["selector"]["matchExpressions"]
    label = f'.metadata.labels["{BUILD_RUN_LABEL}"]'
    assert {"key": label, "operator": "DoesNotExist"} in plain
    assert {"key": label, "operator": "Exists"} in build
    assert [e for e in plain if e["key"] != label] == [e for e in build if e["key"] != label]
    spec = by_name["build-pod-complete"]["spec"]
    template = spec["next"]["statusTemplate"]
    assert EXIT_CODE_ANNOTATION in template and TERMINATION_MESSAGE_ANNOTATION in template
    assert RUN_DURATION_ANNOTATION in spec["delay"]["durationFrom"]["jq"]["expression"]


def test_kwok_is_given_every_stage_file_and_the_node_selector(tmp_path: Path) -> None:
    argv = components.kwok_argv(tmp_path, tmp_path / "kubeconfig")
    assert argv[0] == str(tmp_path / "kwok")
    assert [a.split("=", 1)[1] for a in argv if a.startswith("--config=")] == [str(p) for p in stage_files()]
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in argv


def test_fake_node_matches_kwoks_selector_and_has_no_taints() -> None:
    node = fake_node("n1")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["status"]["allocatable"]["cpu"] == "32"
    assert "taints" not in node["spec"]


def test_node_is_schedulable_only_when_ready_and_untainted() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {}}
    assert node_is_schedulable(ready)
    assert not node_is_schedulable({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    tainted = {**ready, "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}
    assert not node_is_schedulable(tainted)
    assert not node_is_schedulable({**ready, "spec": {"unschedulable": True}})


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_stop_all_kills_whole_process_groups_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    grandchild_pid = tmp_path / "grandchild.pid"
    polite = Component("polite", ["sleep", "60"], tmp_path / "polite.log")
    stubborn = Component(
        "stubborn",
        ["bash", "-c", f'trap "" TERM; sleep 60 & echo $! > {grandchild_pid}; echo started; wait'],
        tmp_path / "stubborn.log",
    )
    polite.start()
    stubborn.start()
    wait_for(lambda: grandchild_pid.exists() and grandchild_pid.read_text().strip(), what="the grandchild", timeout=10)
    pids = [polite.pid, stubborn.pid, int(grandchild_pid.read_text())]
    began = time.monotonic()
    stop_all([polite, stubborn], grace_seconds=0.5)
    assert time.monotonic() - began < 5
    wait_for(lambda: not any(_alive(pid) for pid in pids if pid), what="every process to be gone", timeout=5)
    assert stubborn.exit_code() == -signal.SIGKILL
    assert polite.exit_code() == -signal.SIGTERM


def test_wait_for_reports_a_component_that_exited_with_its_log(tmp_path: Path) -> None:
    component = Component("broken", ["sh", "-c", "echo 'fatal: port in use' >&2; exit 7"], tmp_path / "broken.log")
    component.start()
    with pytest.raises(LocalClusterError) as raised:
        wait_for(lambda: False, what="nothing", timeout=10, components=[component])
    assert "broken exited with code 7" in str(raised.value)
    assert "fatal: port in use" in str(raised.value)


def _fake_bin_dir(tmp_path: Path, etcd_script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BINARIES:
        (bin_dir / name).write_text("#!/bin/sh\nsleep 60\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / "etcd").write_text(etcd_script)
    return bin_dir


def test_start_up_failure_names_the_component_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    bin_dir = _fake_bin_dir(tmp_path, "#!/bin/sh\necho 'etcdmain: listen tcp: address already in use' >&2\nexit 1\n")
    with pytest.raises(LocalClusterError) as raised:
        with LocalCluster(bin_dir, startup_timeout=30):
            pytest.fail("the cluster should not have started")
    assert "etcd exited with code 1" in str(raised.value)
    assert "address already in use" in str(raised.value)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_start_up_timeout_names_what_it_waited_for_and_stops_everything(tmp_path: Path) -> None:
    bin_dir = _fake_bin_dir(tmp_path, "#!/bin/sh\necho 'etcd is thinking'\nexec sleep 60\n")
    cluster = LocalCluster(bin_dir, startup_timeout=1)
    with pytest.raises(LocalClusterError) as raised:
        cluster.start()
    assert "timed out" in str(raised.value) and "etcd /health" in str(raised.value)
    assert "etcd is thinking" in str(raised.value)
    assert cluster.pids() == {}


def test_missing_binaries_are_named_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError, match="kube-apiserver"):
        LocalCluster(tmp_path).start()


def test_cluster_attributes_need_a_running_cluster(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError, match="not running"):
        _ = LocalCluster(tmp_path).kubeconfig


def test_kubectl_error_carries_stderr_and_is_a_called_process_error() -> None:
    error = KubectlError(1, ["/bin/kubectl", "get", "pods"], "", 'Error from server (NotFound): pods "x" not found\n')
    assert isinstance(error, subprocess.CalledProcessError)
    assert isinstance(error, LocalClusterError)
    assert str(error) == 'kubectl get pods exited with 1: Error from server (NotFound): pods "x" not found'
    assert error.returncode == 1


def test_scheduler_config_points_at_the_kubeconfig_without_leader_election(tmp_path: Path) -> None:
    config = yaml.safe_load(components.scheduler_config(tmp_path / "kubeconfig"))
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert config["clientConnection"]["kubeconfig"] == str(tmp_path / "kubeconfig")
    assert config["leaderElection"]["leaderElect"] is False


def test_env_has_path_and_kubeconfig_for_the_running_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = LocalCluster(tmp_path / "bin")
    monkeypatch.setattr(cluster, "_kubeconfig", tmp_path / "kubeconfig")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = cluster.env()
    assert env["KUBECONFIG"] == str(tmp_path / "kubeconfig")
    assert env["PATH"].split(os.pathsep) == [str(tmp_path / "bin"), "/usr/bin"]


def test_default_tuning_leaves_every_command_line_as_it_was(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    ports = components.Ports(*free_ports(5))
    default = components.Tuning()
    kubeconfig = tmp_path / "kubeconfig"
    apiserver = components.apiserver_argv(tmp_path, tmp_path, pki, ports)
    assert apiserver == components.apiserver_argv(tmp_path, tmp_path, pki, ports, default)
    assert not [a for a in apiserver if "inflight" in a]
    assert "--service-cluster-ip-range=10.0.0.0/24" in apiserver
    manager = components.controller_manager_argv(tmp_path, tmp_path, kubeconfig, pki, ports, default)
    assert not [a for a in manager if "kube-api-" in a]
    config = yaml.safe_load(components.scheduler_config(kubeconfig, default))
    assert config["clientConnection"] == {"kubeconfig": str(kubeconfig)}


def test_tuning_reaches_the_api_server_controller_manager_and_scheduler(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    ports = components.Ports(*free_ports(5))
    kubeconfig = tmp_path / "kubeconfig"
    tuning = components.Tuning(
        max_requests_inflight=3000,
        max_mutating_requests_inflight=1000,
        controller_manager_qps=100,
        controller_manager_burst=200,
        scheduler_qps=150,
        scheduler_burst=300,
    )
    apiserver = components.apiserver_argv(tmp_path, tmp_path, pki, ports, tuning)
    assert "--max-requests-inflight=3000" in apiserver
    assert "--max-mutating-requests-inflight=1000" in apiserver
    manager = components.controller_manager_argv(tmp_path, tmp_path, kubeconfig, pki, ports, tuning)
    assert "--kube-api-qps=100" in manager and "--kube-api-burst=200" in manager
    connection = yaml.safe_load(components.scheduler_config(kubeconfig, tuning))["clientConnection"]
    assert connection == {"kubeconfig": str(kubeconfig), "qps": 150, "burst": 300}


def test_node_names_number_the_nodes_after_the_first() -> None:
    assert node_names("kwok-node-0", 1) == ["kwok-node-0"]
    assert node_names("kwok-node-0", 3) == ["kwok-node-0", "kwok-node-1", "kwok-node-2"]
    assert node_names("cleanup-node", 2) == ["cleanup-node", "cleanup-node-1"]
    with pytest.raises(ValueError):
        node_names("kwok-node-0", 0)


def test_fake_node_takes_its_allocatable_as_capacity_too() -> None:
    sized = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    node = fake_node("n2", sized)
    assert node["status"]["allocatable"] == sized == node["status"]["capacity"]
    assert node["status"]["allocatable"] is not node["status"]["capacity"]
    assert fake_node("n3")["status"]["allocatable"]["pods"] == "500"


def test_a_cluster_of_several_nodes_names_them_all_and_keeps_the_first(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=3, node_allocatable={"pods": "110"})
    assert cluster.node_name == "kwok-node-0"
    assert cluster.node_names == ["kwok-node-0", "kwok-node-1", "kwok-node-2"]
    assert cluster.node_allocatable == {"pods": "110"}
    assert LocalCluster(tmp_path).node_names == ["kwok-node-0"]
    assert LocalCluster(tmp_path).tuning == components.Tuning()


def test_the_service_range_can_be_widened_for_more_than_254_services(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    ports = components.Ports(*free_ports(5))
    argv = components.apiserver_argv(tmp_path, tmp_path, pki, ports, service_cidr="10.0.0.0/16")
    assert "--service-cluster-ip-range=10.0.0.0/16" in argv
    assert LocalCluster(tmp_path).service_cidr == components.SERVICE_CIDR == "10.0.0.0/24"
    assert LocalCluster(tmp_path, service_cidr="10.0.0.0/16").service_cidr == "10.0.0.0/16"
