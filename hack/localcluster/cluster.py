"""LocalCluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from . import components
from .errors import KubectlError, LocalClusterError
from .kubeconfig import render_kubeconfig
from .node import fake_node, node_is_schedulable, node_names
from .pki import create_pki
from .ports import free_ports
from .processes import Component, stop_all
from .rest import ApiServer, http_ok, unverified_context
from .waiting import wait_for

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl")
DEFAULT_NODE_NAME = "kwok-node-0"
T = TypeVar("T")

if TYPE_CHECKING:
    from .pki import Pki


class LocalCluster:
    """A throw-away control plane with one fake node (or `nodes` of them); use it as a context manager.

    Everything lives in a fresh temp dir (certificates, etcd data, component logs under
    `workdir / "logs"`) that is removed again on exit. `node_allocatable` sizes every fake node
    (default node.ALLOCATABLE); `tuning` raises client rate limits and API-server concurrency for
    benchmarks (default: each component's own). `service_cidr` (default 10.0.0.0/24: 254 ClusterIPs,
    after which creating a Service fails with 500) can be widened, e.g. to 10.0.0.0/16; keep it
    starting at 10.0.0.0, as the serving certificate names 10.0.0.1, the `kubernetes` Service.
    """

    def __init__(
        self,
        bin_dir: Path,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        nodes: int = 1,
        node_allocatable: Mapping[str, str] | None = None,
        tuning: components.Tuning = components.DEFAULT_TUNING,
        service_cidr: str = components.SERVICE_CIDR,
        startup_timeout: float = 120.0,
    ) -> None:
        self.bin_dir = Path(bin_dir)
        self.node_name = node_name
        self.node_names = node_names(node_name, nodes)
        self.node_allocatable = dict(node_allocatable) if node_allocatable is not None else None
        self.tuning = tuning
        self.service_cidr = service_cidr
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        self._workdir: Path | None = None
        self._kubeconfig: Path | None = None
        self._server: str | None = None
        self._components: list[Component] = []
        self._deadline = 0.0

    @property
    def workdir(self) -> Path:
        return _running(self._workdir)

    @property
    def kubeconfig(self) -> Path:
        return _running(self._kubeconfig)

    @property
    def server(self) -> str:
        return _running(self._server)

    def pids(self) -> dict[str, int]:
        """Process ids of the running components by name."""
        return {c.name: c.pid for c in self._components if c.pid is not None and c.running()}

    def env(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG for this cluster and PATH starting with the bin dir."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the matching kubectl against this cluster; check=True raises KubectlError on failure."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start every component and wait until pods can be scheduled and run on the fake node."""
        if self._workdir is not None:
            raise LocalClusterError("this LocalCluster is already running")
        missing = [name for name in BINARIES if not os.access(self.bin_dir / name, os.X_OK)]
        if missing:
            raise LocalClusterError(f"{self.bin_dir} lacks {', '.join(missing)}; run ensure_binaries() first")
        began = time.monotonic()
        self._deadline = began + self.startup_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="dockyard-cluster-"))
        atexit.register(self.stop)
        try:
            self._start(self._workdir)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Terminate every component (SIGTERM, then SIGKILL) and remove the temp dir; idempotent."""
        atexit.unregister(self.stop)
        try:
            stop_all(self._components)
        finally:
            self._components = []
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = self._kubeconfig = self._server = None

    def _start(self, workdir: Path) -> None:
        logs = workdir / "logs"
        logs.mkdir()
        pki = create_pki(workdir / "pki")
        self._before_apiserver(workdir, pki)
        ports = components.Ports(*free_ports(5))
        server = f"https://127.0.0.1:{ports.apiserver}"
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(render_kubeconfig(server, pki.admin_token, pki.ca_cert.read_bytes()))
        kubeconfig.chmod(0o600)
        self._server, self._kubeconfig = server, kubeconfig
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}

        def launch(name: str, argv: list[str]) -> Component:
            dropped = self._dropped_flags(name)
            argv = [*(arg for arg in argv if arg not in dropped), *self._extra_flags(name)]
            component = Component(name, argv, logs / f"{name}.log", env)
            self._components.append(component)
            component.start()
            return component

        etcd = launch("etcd", components.etcd_argv(self.bin_dir, workdir / "etcd", ports))
        self._wait(lambda: http_ok(f"http://127.0.0.1:{ports.etcd_client}/health"), "etcd /health", etcd)

        apiserver = launch(
            "kube-apiserver",
            components.apiserver_argv(self.bin_dir, workdir, pki, ports, self.tuning, self.service_cidr),
        )
        ca_context = ssl.create_default_context(cafile=str(pki.ca_cert))
        self._wait(lambda: http_ok(f"{server}/readyz", ca_context), "kube-apiserver /readyz", apiserver)

        scheduler_config = workdir / "scheduler.yaml"
        scheduler_config.write_text(components.scheduler_config(kubeconfig, self.tuning))
        controller_manager = launch(
            "kube-controller-manager",
            components.controller_manager_argv(self.bin_dir, workdir, kubeconfig, pki, ports, self.tuning),
        )
        scheduler = launch(
            "kube-scheduler", components.scheduler_argv(self.bin_dir, workdir, scheduler_config, kubeconfig, ports)
        )
        if self._start_real_nodes(workdir, pki, ports):
            return
        kwok = launch("kwok", components.kwok_argv(self.bin_dir, kubeconfig))
        insecure = unverified_context()
        for component, port in ((controller_manager, ports.controller_manager), (scheduler, ports.scheduler)):
            url = f"https://127.0.0.1:{port}/healthz"
            self._wait(partial(http_ok, url, insecure), f"{component.name} /healthz", component)

        api = ApiServer(server, pki.admin_token, str(pki.ca_cert))

        def schedulable(name: str) -> bool:
            return node_is_schedulable(api.get(f"/api/v1/nodes/{name}") or {})

        for name in self.node_names:
            api.create("/api/v1/nodes", fake_node(name, self.node_allocatable))
        for name in self.node_names:
            self._wait(partial(schedulable, name), f"node {name} to be Ready and untainted", kwok)
        self._wait(
            lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            "the default ServiceAccount in namespace default",
            controller_manager,
        )

    # Hooks for a cluster with a real node instead of kwok's (realnode.RealNodeCluster).
    def _before_apiserver(self, workdir: Path, pki: Pki) -> None:
        """Runs once the certificates exist, before any component starts."""

    def _extra_flags(self, component: str) -> list[str]:
        """More command-line flags for a control-plane component."""
        return []

    def _dropped_flags(self, component: str) -> frozenset[str]:
        """Command-line flags (exactly as written) left out of a control-plane component's."""
        return frozenset()

    def _start_real_nodes(self, workdir: Path, pki: Pki, ports: components.Ports) -> bool:
        """Start real nodes once the control plane runs; False starts kwok and its fake node."""
        return False

    def _wait(self, check: Callable[[], bool], what: str, blame: Component) -> None:
        remaining = max(self._deadline - time.monotonic(), 1.0)
        wait_for(check, what=what, timeout=remaining, components=self._components, blame=blame)


def _running(value: T | None) -> T:
    if value is None:
        raise LocalClusterError("the cluster is not running (use `with LocalCluster(bin_dir) as cluster:`)")
    return value
