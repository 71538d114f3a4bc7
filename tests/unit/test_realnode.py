"""hack/localcluster/realnode without a node: config files and command lines, the cleanup plan for a
stopped and for a killed node, the state file, the OCI archives (deterministic, importable
layout), the Dockerfile reading behind the operator image, and the build script's output."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tomllib
from pathlib import Path

import yaml

from localcluster.realnode import config, host, images
from localcluster.realnode.build import parse_build_output, read_versions

ROOT = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/dockyard-cluster-abc")
LAYOUT = config.NodeLayout(WORK)
PORTS = config.NodePorts(
    kubelet=20250, kubelet_healthz=20248, kube_proxy_healthz=20256, kube_proxy_metrics=20249, coredns_ready=20181
)


# ---- config -------------------------------------------------------------------------------------


def test_gateway_is_the_first_address_of_the_pod_subnet_inside_the_cluster_cidr() -> None:
    assert config.GATEWAY == "10.244.0.1"
    import ipaddress

    from localcluster.components import POD_CIDR

    assert ipaddress.ip_network(config.POD_SUBNET).subnet_of(ipaddress.ip_network(POD_CIDR))


def test_containerd_config_keeps_everything_under_the_work_dir_and_restricts_oom_score_adj() -> None:
    text = config.containerd_config(LAYOUT, Path("/usr/sbin/runc"), Path("/usr/lib/cni"), "dockyard.local/pause:3.10")
    parsed = tomllib.loads(text)
    assert parsed["root"] == f"{WORK}/containerd/root"
    assert parsed["state"] == f"{WORK}/containerd/state"
    assert parsed["grpc"]["address"] == f"{WORK}/containerd/containerd.sock"
    cri = parsed["plugins"]["io.containerd.grpc.v1.cri"]
    # Root without CAP_SYS_RESOURCE cannot give the pause container -998: every sandbox would fail.
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "dockyard.local/pause:3.10"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": f"{WORK}/cni/net.d", "max_conf_num": 1}
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"BinaryName": "/usr/sbin/runc", "SystemdCgroup": False}


def test_cni_config_is_a_masquerading_bridge_with_ipam_state_in_the_work_dir() -> None:
    conflist = json.loads(config.cni_conflist(LAYOUT))
    bridge, portmap = conflist["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "dockyard0"
    assert bridge["isGateway"] and bridge["ipMasq"] and bridge["hairpinMode"]
    assert bridge["ipam"]["dataDir"] == f"{WORK}/cni/ipam"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24", "gateway": "10.244.0.1"}]]
    assert portmap["type"] == "portmap"


def test_kubelet_authenticates_the_api_server_by_certificate_and_serves_on_the_gateway_only() -> None:
    kubelet = yaml.safe_load(config.kubelet_config(LAYOUT, PORTS, WORK / "pki" / "ca.crt"))
    assert kubelet["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": f"{WORK}/pki/ca.crt"},
    }
    assert kubelet["authorization"] == {"mode": "Webhook"}
    assert kubelet["address"] == "10.244.0.1" and kubelet["port"] == 20250
    assert kubelet["healthzBindAddress"] == "127.0.0.1" and kubelet["readOnlyPort"] == 0
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["failCgroupV1"] is False
    assert kubelet["clusterDNS"] == ["10.244.0.1"] and kubelet["clusterDomain"] == "cluster.local"
    assert kubelet["resolvConf"] == ""
    assert kubelet["podLogsDir"] == f"{WORK}/pod-logs"
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{WORK}/containerd/containerd.sock"


def test_kubelet_argv_registers_under_the_node_name_with_the_gateway_as_internal_ip() -> None:
    argv = config.kubelet_argv(Path("/b/kubelet"), LAYOUT, WORK / "kubelet.yaml", WORK / "kubelet.kubeconfig", "n1")
    assert argv[0] == "/b/kubelet"
    assert f"--root-dir={WORK}/kubelet" in argv
    assert "--hostname-override=n1" in argv and "--node-ip=10.244.0.1" in argv
    assert f"--kubeconfig={WORK}/kubelet.kubeconfig" in argv


def test_kube_proxy_leaves_host_sysctls_alone_and_opens_node_ports_on_the_gateway_only() -> None:
    proxy = yaml.safe_load(config.kube_proxy_config(WORK / "kp.kubeconfig", PORTS, "n1"))
    assert proxy["mode"] == "iptables" and proxy["clusterCIDR"] == "10.244.0.0/16"
    assert proxy["conntrack"] == {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}
    assert proxy["iptables"] == {"localhostNodePorts": False}
    assert proxy["nodePortAddresses"] == ["10.244.0.1/32"]
    assert proxy["healthzBindAddress"] == "127.0.0.1:20256"
    assert proxy["hostnameOverride"] == "n1"


def test_corefile_serves_the_cluster_domain_on_the_gateway_and_forwards_nothing() -> None:
    text = config.corefile(WORK / "kubeconfig", 20181)
    assert "bind 10.244.0.1" in text
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in text
    assert f"kubeconfig {WORK}/kubeconfig" in text
    assert "ready 127.0.0.1:20181" in text
    assert "forward" not in text


def test_api_server_flags_tokens_and_bindings_for_the_node_and_kube_proxy() -> None:
    flags = config.apiserver_flags(WORK / "c.crt", WORK / "c.key")
    assert "--kubelet-preferred-address-types=InternalIP,Hostname" in flags
    assert f"--kubelet-client-certificate={WORK}/c.crt" in flags
    assert f"--advertise-address={config.GATEWAY}" in flags and "--endpoint-reconciler-type=lease" in flags
    assert "--disable-admission-plugins=ServiceAccount" in config.APISERVER_DROPPED_FLAGS
    lines = config.node_token_lines("nt", "pt", "n1")
    assert lines == ['nt,system:node:n1,node-uid,"system:nodes"', "pt,system:kube-proxy,kube-proxy-uid"]
    roles = {b["roleRef"]["name"]: b["subjects"] for b in config.rbac_bindings()}  # type: ignore[index]
    assert roles["system:node"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]
    assert roles["system:node-proxier"][0]["name"] == "system:kube-proxy"


def test_local_path_volumes_are_world_writable_dirs_under_the_work_dir_and_the_default_class() -> None:
    namespace, storage_class, config_map = config.local_path_manifests(LAYOUT, "dockyard.local/busybox:1.35.0")
    assert namespace["metadata"] == {"name": "local-path-storage"}
    assert storage_class["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}  # type: ignore[index]
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    data = config_map["data"]
    assert json.loads(data["config.json"])["nodePathMap"][0]["paths"] == [f"{WORK}/local-path"]  # type: ignore[index]
    assert 'mkdir -m 0777 -p "$VOL_DIR"' in data["setup"]  # type: ignore[index]
    helper = json.loads(data["helperPod.yaml"])  # type: ignore[index]
    assert helper["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    argv = config.local_path_argv(Path("/b/lpp"), WORK / "kubeconfig", "dockyard.local/busybox:1.35.0")
    assert argv[:2] == ["/b/lpp", "start"] and "--helper-image=dockyard.local/busybox:1.35.0" in argv


# ---- cleanup planning ---------------------------------------------------------------------------

SOCKET = f"{WORK}/containerd/containerd.sock"


def _snapshot(**changes: object) -> host.Snapshot:
    values: dict[str, object] = {
        "sysctls": {"net.ipv4.ip_forward": "0", "kernel.panic": "1", "vm.overcommit_memory": "0"},
        "nft_tables": [],
        "iptables": {},
        "dirs": ["/var/lib/kubelet"],
        "netns": ["/run/netns/other"],
        "kubepods": False,
    }
    values.update(changes)
    return host.Snapshot(**values)  # type: ignore[arg-type]


def _record(snapshot: host.Snapshot | None = None) -> host.NodeRecord:
    return host.NodeRecord(
        owner=host.ProcessRecord("owner", 100, "/usr/bin/python3.11", 5),
        workdir=str(WORK),
        bridge="dockyard0",
        containerd_socket=SOCKET,
        snapshot=snapshot or _snapshot(),
        processes=[
            host.ProcessRecord("containerd", 200, "/usr/bin/containerd", 10),
            host.ProcessRecord("kubelet", 201, "/c/node/kubelet", 11),
            host.ProcessRecord("etcd", 202, "/c/etcd", 12),
        ],
    )


def _observation(**changes: object) -> host.Observation:
    values: dict[str, object] = {
        "processes": {
            100: ("/usr/bin/python3.11", 5, "python -m pytest"),
            200: ("/usr/bin/containerd", 10, f"containerd --config {WORK}/containerd/config.toml"),
            201: ("/c/node/kubelet", 99, "some other process that got the pid"),
            300: (
                "/usr/bin/containerd-shim-runc-v2",
                20,
                f"/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id x -address {SOCKET}",
            ),
            301: (
                "/usr/bin/containerd-shim-runc-v2",
                21,
                "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id y -address /run/other.sock",
            ),
            400: ("/bin/busybox", 30, "sleep 1000"),
        },
        "kubepods_pids": [400],
        "kubepods_cgroups": [
            "/sys/fs/cgroup/pids/kubepods",
            "/sys/fs/cgroup/pids/kubepods/besteffort",
            "/sys/fs/cgroup/pids/kubepods/besteffort/pod1",
        ],
        "mounts": [
            "/",
            "/proc",
            f"{WORK}/kubelet",
            f"{WORK}/kubelet/pods/u/volumes/x",
            f"{WORK}/containerd/state/shm",
            "/tmp/dockyard-cluster-abcdef",
        ],
        "netns": ["/run/netns/other", "/run/netns/cni-1234"],
        "links": ["lo", "eth0", "dockyard0", "veth1"],
        "nft_tables": ["ip filter", "ip nat", "ip6 filter"],
        "sysctls": {"net.ipv4.ip_forward": "1", "kernel.panic": "10", "vm.overcommit_memory": "1"},
        "dirs": ["/run/containerd", "/var/lib/cni", "/run/netns", "/var/lib/kubelet"],
    }
    values.update(changes)
    return host.Observation(**values)  # type: ignore[arg-type]


def _targets(actions: list[host.Action], kind: str) -> list[str]:
    return [a.target for a in actions if a.kind == kind]


def test_cleanup_kills_recorded_processes_only_while_they_are_the_same_process() -> None:
    actions = host.plan_cleanup(_record(), _observation())
    killed = _targets(actions, "kill")
    assert "200" in killed  # containerd: same exe, same start time
    assert "201" not in killed  # the kubelet's pid now belongs to another process
    assert "202" not in killed  # etcd is gone
    assert "100" not in killed  # never the owner


def test_cleanup_kills_shims_of_its_own_containerd_and_container_processes() -> None:
    killed = _targets(host.plan_cleanup(_record(), _observation()), "kill")
    assert "300" in killed and "301" not in killed
    assert "400" in killed


def test_cleanup_leaves_another_kubelets_pods_alone() -> None:
    record = _record(_snapshot(kubepods=True))
    actions = host.plan_cleanup(record, _observation())
    assert "400" not in _targets(actions, "kill")
    assert _targets(actions, "rmdir-cgroup") == []


def test_cleanup_unmounts_under_the_work_dir_deepest_first_and_nothing_else() -> None:
    mounts = _targets(host.plan_cleanup(_record(), _observation()), "umount")
    assert mounts == [f"{WORK}/kubelet/pods/u/volumes/x", f"{WORK}/containerd/state/shm", f"{WORK}/kubelet"]


def test_cleanup_restores_network_sysctls_and_directories_that_were_not_there() -> None:
    actions = host.plan_cleanup(_record(), _observation())
    assert _targets(actions, "rm-netns") == ["/run/netns/cni-1234"]
    assert _targets(actions, "delete-link") == ["dockyard0"]
    assert _targets(actions, "delete-nft-table") == ["ip filter", "ip nat", "ip6 filter"]
    assert _targets(actions, "iptables-restore") == []
    assert sorted(_targets(actions, "sysctl")) == ["kernel.panic=1", "net.ipv4.ip_forward=0", "vm.overcommit_memory=0"]
    assert _targets(actions, "rmdir-cgroup")[0] == "/sys/fs/cgroup/pids/kubepods/besteffort/pod1"
    assert _targets(actions, "rmdir-cgroup")[-1] == "/sys/fs/cgroup/pids/kubepods"
    assert _targets(actions, "remove-dir") == ["/run/containerd", "/var/lib/cni", "/run/netns"]
    assert actions[-1] == host.Action("remove-tree", str(WORK))


def test_cleanup_keeps_tables_that_existed_and_restores_their_rules() -> None:
    record = _record(_snapshot(nft_tables=["ip filter"], iptables={"ip": "*filter\nCOMMIT\n"}))
    actions = host.plan_cleanup(record, _observation())
    assert _targets(actions, "delete-nft-table") == ["ip nat", "ip6 filter"]
    assert _targets(actions, "iptables-restore") == ["ip"]


def test_cleanup_orders_kills_before_unmounts_before_network_before_directories() -> None:
    kinds = [a.kind for a in host.plan_cleanup(_record(), _observation())]
    order = [
        "kill",
        "umount",
        "rm-netns",
        "delete-link",
        "delete-nft-table",
        "sysctl",
        "rmdir-cgroup",
        "remove-dir",
        "remove-tree",
    ]
    positions = [max(i for i, k in enumerate(kinds) if k == kind) for kind in order]
    assert positions == sorted(positions)


def test_cleanup_of_a_clean_host_only_removes_the_work_dir() -> None:
    clean = _observation(
        processes={100: ("/usr/bin/python3.11", 5, "python")},
        kubepods_pids=[],
        kubepods_cgroups=[],
        mounts=["/"],
        netns=["/run/netns/other"],
        links=["lo", "eth0"],
        nft_tables=[],
        sysctls={"net.ipv4.ip_forward": "0", "kernel.panic": "1", "vm.overcommit_memory": "0"},
        dirs=["/var/lib/kubelet"],
    )
    assert host.plan_cleanup(_record(), clean) == [host.Action("remove-tree", str(WORK))]


def test_node_record_round_trips_through_json() -> None:
    record = _record()
    assert host.NodeRecord.from_json(record.to_json()) == record


def test_leftovers_names_what_a_stopped_node_left_behind(tmp_path: Path) -> None:
    before = _observation(
        processes={}, mounts=["/"], netns=[], links=["lo"], nft_tables=[], kubepods_cgroups=[], dirs=[]
    )
    after = _observation()
    found = host.leftovers(before, after, str(tmp_path))
    assert any(f.startswith("process 300") for f in found)
    assert "link dockyard0" in found and "nft table ip nat" in found
    assert f"directory {tmp_path}" in found
    assert host.leftovers(before, before, str(tmp_path / "gone")) == []


# ---- images -------------------------------------------------------------------------------------


def _archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_oci_archive_is_deterministic_and_names_the_image(tmp_path: Path) -> None:
    layer = (
        images.Layer()
        .file("/bin/tool", b"#!/bin/sh\n", 0o755)
        .dir("/tmp", 0o1777)
        .symlink("/usr/bin/tool", "/bin/tool")
    )
    config = images.ImageConfig(entrypoint=["/bin/tool"], user="65535:65535", exposed_ports=["5000"])
    first = images.write_oci_archive(tmp_path / "a.tar", "dockyard.local/tool:1", [images.Blob.of(layer.tar())], config)
    second = images.write_oci_archive(
        tmp_path / "b.tar", "dockyard.local/tool:1", [images.Blob.of(layer.tar())], config
    )
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    files = _archive(tmp_path / "a.tar")
    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]
    assert entry["digest"] == first
    assert entry["annotations"]["io.containerd.image.name"] == "dockyard.local/tool:1"
    manifest = json.loads(files["blobs/sha256/" + first.split(":")[1]])
    image_config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert image_config["config"]["Entrypoint"] == ["/bin/tool"]
    assert image_config["config"]["ExposedPorts"] == {"5000/tcp": {}}
    for blob in manifest["layers"]:
        data = files["blobs/sha256/" + blob["digest"].split(":")[1]]
        assert hashlib.sha256(data).hexdigest() == blob["digest"].split(":")[1]
        raw = gzip.decompress(data)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == image_config["rootfs"]["diff_ids"][0]
        with tarfile.open(fileobj=io.BytesIO(raw)) as layer_tar:
            members = {m.name: m for m in layer_tar.getmembers()}
    assert members["tmp"].mode == 0o1777 and members["bin/tool"].mode == 0o755
    assert members["usr/bin/tool"].issym() and members["usr/bin/tool"].linkname == "/bin/tool"
    assert {m.uid for m in members.values()} == {0} and {m.mtime for m in members.values()} == {0}
    assert list(members) == sorted(members)


def test_content_key_changes_with_file_contents(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    first = images.content_key("x", tmp_path / "pkg")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"ignored")
    assert images.content_key("x", tmp_path / "pkg") == first
    (tmp_path / "pkg" / "a.py").write_text("a = 2\n")
    assert images.content_key("x", tmp_path / "pkg") != first


def test_the_projects_dockerfile_gives_the_operator_images_runtime_settings() -> None:
    stage = images.parse_dockerfile((ROOT / "Dockerfile").read_text(), images.PYTHON_SLIM_ENV)
    assert stage.base.startswith("python:3.11")
    assert stage.user == "10001:10001"
    assert stage.entrypoint == ["python", "-m", "dockyard"]
    assert stage.env["PATH"] == "/opt/dockyard/bin:" + images.DEFAULT_PATH
    assert stage.env["PYTHONUNBUFFERED"] == "1" and stage.env["DOCKYARD_LOG_FORMAT"] == "json"
    assert stage.volumes == ["/var/lib/dockyard"] and set(stage.exposed_ports) == {"8080", "9090", "8090"}
    # What the image build does in place of the RUN steps must still be what they do.
    runs = " ".join(stage.run)
    assert f"--uid {images.OPERATOR_UID}" in runs and images.STATE_DIR in runs
    assert images.VENV in (ROOT / "Dockerfile").read_text()


def test_dockerfile_parsing_handles_continuations_and_exec_forms() -> None:
    text = 'FROM a AS b\nENV X=1\nFROM debian:12\nENV A=1 \\\n    B="two words" \\\n    C=${A}:$PATH\nCMD echo hi\nUSER 5\n'
    stage = images.parse_dockerfile(text, {"PATH": "/bin"})
    assert stage.base == "debian:12"
    assert stage.env == {"PATH": "/bin", "A": "1", "B": "two words", "C": "1:/bin"}
    assert stage.cmd == ["/bin/sh", "-c", "echo hi"] and stage.user == "5"


# ---- the build script ---------------------------------------------------------------------------


def test_build_output_lines_name_each_binary() -> None:
    out = "kubelet /c/node/kubernetes-v1/kubelet\nnoise\ncoredns /c/node/coredns-v1/coredns\n"
    assert parse_build_output(out) == {
        "kubelet": Path("/c/node/kubernetes-v1/kubelet"),
        "coredns": Path("/c/node/coredns-v1/coredns"),
    }


def test_versions_pin_the_node_components() -> None:
    versions = read_versions()
    for key in ("KUBERNETES_VERSION", "KANIKO_VERSION", "COREDNS_VERSION", "LOCAL_PATH_VERSION", "PAUSE_VERSION"):
        assert versions[key].strip()


def test_build_script_refuses_unknown_items(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-node.sh"), "nonsense"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DOCKYARD_CACHE": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "unknown item nonsense" in result.stderr
