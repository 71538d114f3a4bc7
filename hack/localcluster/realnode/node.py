"""A real node's processes: containerd, CoreDNS, kubelet, kube-proxy, local-path-provisioner."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import LocalClusterError
from ..kubeconfig import render_kubeconfig
from ..pki import Pki, issue_certificate
from ..ports import free_ports
from ..processes import Component, stop_all
from ..rest import http_ok
from ..waiting import wait_for
from . import config, host
from .build import NodeBinaries
from .images import Image


class RealNode:
    """The node of one cluster. `prepare()` runs before the API server starts (tokens, the
    API server's kubelet client certificate, containerd and the image import), `start()` once the
    control plane answers, `stop()` and `cleanup()` at the end."""

    def __init__(self, binaries: NodeBinaries, images: Mapping[str, Image], workdir: Path, log: Callable[[str], None]):
        self.binaries = binaries
        self.images = dict(images)
        self.layout = config.NodeLayout(workdir)
        self.name = config.NODE_NAME
        self.log = log
        self.components: list[Component] = []
        self.record: host.NodeRecord | None = None
        self.ports = config.NodePorts(*free_ports(5))
        self.node_token = secrets.token_hex(24)
        self.proxy_token = secrets.token_hex(24)
        self.kubelet_client_cert = self.layout.node_pki / "apiserver-kubelet-client.crt"
        self.kubelet_client_key = self.layout.node_pki / "apiserver-kubelet-client.key"
        self._import: threading.Thread | None = None
        self._import_error: BaseException | None = None
        self.timings: dict[str, float] = {}

    # ---- before the API server ------------------------------------------------------------------

    def prepare(self, pki: Pki, owner_pid: int) -> None:
        self.record = host.NodeRecord(
            owner=host.process_record("owner", owner_pid),
            workdir=str(self.layout.workdir),
            bridge=config.BRIDGE,
            containerd_socket=str(self.layout.containerd_socket),
            snapshot=host.snapshot(),
        )
        host.write_record(self.record)
        with pki.token_file.open("a") as tokens:
            tokens.write("\n".join(config.node_token_lines(self.node_token, self.proxy_token, self.name)) + "\n")
        self._client_certificate(pki)
        self._start_containerd()
        self._import = threading.Thread(target=self._import_images, name="image-import", daemon=True)
        self._import.start()

    def apiserver_flags(self) -> list[str]:
        return config.apiserver_flags(self.kubelet_client_cert, self.kubelet_client_key)

    def _client_certificate(self, pki: Pki) -> None:
        self.layout.node_pki.mkdir(parents=True)
        issue_certificate(
            pki,
            self.kubelet_client_key,
            self.kubelet_client_cert,
            f"/O={config.KUBELET_CLIENT_ORGANIZATION}/CN={config.KUBELET_CLIENT_NAME}",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        )

    def _launch(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Component:
        logs = self.layout.workdir / "logs"
        logs.mkdir(exist_ok=True)
        base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "CONTAINERD_ADDRESS")}
        component = Component(name, argv, logs / f"{name}.log", {**base, **(env or {})})
        self.components.append(component)
        component.start()
        if self.record is not None and component.pid is not None:
            self.record.processes.append(host.process_record(name, component.pid))
            host.write_record(self.record)
        return component

    def _wait(self, check: Callable[[], object], what: str, blame: Component, timeout: float = 60) -> None:
        wait_for(check, what=what, timeout=timeout, components=self.components, blame=blame)

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binaries.ctr), "--address", str(self.layout.containerd_socket), "--namespace", "k8s.io"]
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout)

    def _start_containerd(self) -> None:
        began = time.monotonic()
        layout = self.layout
        for directory in (layout.containerd_dir / "certs.d", layout.cni_conf_dir, layout.cni_ipam_dir):
            directory.mkdir(parents=True, exist_ok=True)
        layout.containerd_config.write_text(
            config.containerd_config(layout, self.binaries.runc, self.binaries.cni_bin_dir, self.images["pause"].name)
        )
        (layout.cni_conf_dir / "10-dockyard.conflist").write_text(config.cni_conflist(layout))
        containerd = self._launch(
            "containerd", [str(self.binaries.containerd), "--config", str(layout.containerd_config)]
        )
        self._wait(lambda: self.ctr("version", timeout=10).returncode == 0, "containerd's socket", containerd, 30)
        self.timings["containerd"] = time.monotonic() - began

    def _import_images(self) -> None:
        began = time.monotonic()
        try:
            for image in self.images.values():
                result = self.ctr("images", "import", str(image.archive), timeout=600)
                if result.returncode != 0:
                    raise LocalClusterError(f"ctr images import {image.archive} failed: {result.stderr.strip()}")
        except BaseException as error:  # re-raised by start()
            self._import_error = error
        self.timings["image import"] = time.monotonic() - began

    # ---- once the control plane answers ---------------------------------------------------------

    def start(self, server: str, pki: Pki, kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
        layout = self.layout
        ca = pki.ca_cert.read_bytes()
        node_kubeconfig = layout.workdir / "kubelet.kubeconfig"
        proxy_kubeconfig = layout.workdir / "kube-proxy.kubeconfig"
        admin_kubeconfig = layout.workdir / "kubeconfig"
        for path, token in ((node_kubeconfig, self.node_token), (proxy_kubeconfig, self.proxy_token)):
            path.write_text(render_kubeconfig(server, token, ca))
            path.chmod(0o600)
        host.write_sysctl("net.ipv4.ip_forward", "1")
        self._create_bridge()
        objects = [*config.rbac_bindings(), *config.local_path_manifests(layout, self.images["busybox"].name)]
        kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

        began = time.monotonic()
        corefile = layout.workdir / "Corefile"
        corefile.write_text(config.corefile(admin_kubeconfig, self.ports.coredns_ready))
        coredns = self._launch("coredns", config.coredns_argv(self.binaries["coredns"], corefile))
        ready = f"http://127.0.0.1:{self.ports.coredns_ready}/ready"
        self._wait(lambda: http_ok(ready), "CoreDNS /ready", coredns)
        self.timings["coredns"] = time.monotonic() - began

        began = time.monotonic()
        kubelet_config = layout.workdir / "kubelet.yaml"
        kubelet_config.write_text(config.kubelet_config(layout, self.ports, pki.ca_cert))
        kubelet = self._launch(
            "kubelet",
            config.kubelet_argv(self.binaries["kubelet"], layout, kubelet_config, node_kubeconfig, self.name),
        )
        self._wait(lambda: self._node_ready(kubectl), f"node {self.name} Ready", kubelet, 120)
        self.timings["kubelet (to node Ready)"] = time.monotonic() - began

        began = time.monotonic()
        proxy_config = layout.workdir / "kube-proxy.yaml"
        proxy_config.write_text(config.kube_proxy_config(proxy_kubeconfig, self.ports, self.name))
        proxy = self._launch("kube-proxy", config.kube_proxy_argv(self.binaries["kube-proxy"], proxy_config))
        healthz = f"http://127.0.0.1:{self.ports.kube_proxy_healthz}/healthz"
        self._wait(lambda: http_ok(healthz), "kube-proxy /healthz", proxy)
        self.timings["kube-proxy"] = time.monotonic() - began

        layout.local_path_dir.mkdir(exist_ok=True)
        provisioner = self._launch(
            "local-path-provisioner",
            config.local_path_argv(
                self.binaries["local-path-provisioner"], admin_kubeconfig, self.images["busybox"].name
            ),
        )
        time.sleep(0.5)
        if not provisioner.running():
            raise LocalClusterError(f"local-path-provisioner exited:\n{provisioner.tail()}")
        # The kubelet and kube-proxy need no image to start; pods do, and none is created before this.
        if self._import is not None:
            self._import.join()
        if self._import_error is not None:
            raise self._import_error

    def _create_bridge(self) -> None:
        """The CNI bridge, made before any pod so CoreDNS and the kubelet can bind to its gateway
        address (the bridge plugin adopts it)."""
        prefix = config.POD_SUBNET.split("/")[1]
        for argv in (
            ["ip", "link", "add", config.BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", f"{config.GATEWAY}/{prefix}", "dev", config.BRIDGE],
            ["ip", "link", "set", config.BRIDGE, "up"],
        ):
            result = subprocess.run(argv, capture_output=True, text=True)
            if result.returncode != 0:
                raise LocalClusterError(f"{' '.join(argv)} failed: {result.stderr.strip()}")

    def _node_ready(self, kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> bool:
        result = kubectl("get", "node", self.name, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        node = json.loads(result.stdout)
        conditions = node.get("status", {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        taints = [t for t in node.get("spec", {}).get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
        return ready and not taints

    # ---- stopping -------------------------------------------------------------------------------

    def stop(self, kubectl: Callable[..., subprocess.CompletedProcess[str]] | None) -> None:
        """Pods deleted through the API while the kubelet runs (it tears down their network and
        volumes), kube-proxy's rules removed, then every node process stopped and containers the
        kubelet left behind removed through containerd."""
        by_name = {c.name: c for c in self.components}
        kubelet = by_name.get("kubelet")
        if kubectl is not None and kubelet is not None and kubelet.running():
            kubectl(
                "delete",
                "pods",
                "--all",
                "--all-namespaces",
                "--grace-period=1",
                "--timeout=60s",
                check=False,
                timeout=90,
            )
        proxy = by_name.get("kube-proxy")
        if proxy is not None:
            stop_all([proxy])
            subprocess.run(
                [str(self.binaries["kube-proxy"]), "--cleanup"], capture_output=True, timeout=60, check=False
            )
        stop_all([c for c in (kubelet, by_name.get("local-path-provisioner"), by_name.get("coredns")) if c], 15)
        containerd = by_name.get("containerd")
        if containerd is not None and containerd.running():
            self._remove_containers()
        stop_all(self.components, 10)

    def _remove_containers(self) -> None:
        listed = self.ctr("containers", "ls", "-q", timeout=30)
        for container in listed.stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", container, timeout=30)
            self.ctr("tasks", "delete", "--force", container, timeout=30)
            self.ctr("containers", "delete", container, timeout=30)

    def cleanup(self) -> list[str]:
        """Undo everything on the host (mounts, namespaces, bridge, tables, sysctls, cgroups,
        directories); returns what failed."""
        if self.record is None:
            return []
        log = (self.layout.workdir / "logs" / "cleanup.log").open("a") if self.layout.workdir.exists() else None
        try:
            actions = host.plan_cleanup(self.record, host.observe())
            # The work dir goes with the cluster (LocalCluster.stop), after the state file.
            actions = [a for a in actions if a.kind != "remove-tree"]
            failures = host.run_cleanup(self.record, actions, log)
        finally:
            if log is not None:
                log.close()
        if not failures:
            host.clear_record()
        self.record = None
        return failures
