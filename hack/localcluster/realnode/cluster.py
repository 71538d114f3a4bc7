"""RealNodeCluster: the local control plane with a real node instead of kwok's fake one."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from .. import components
from ..cluster import LocalCluster
from ..errors import LocalClusterError
from ..pki import Pki
from ..processes import stop_all
from ..rest import ApiServer, http_ok, unverified_context
from . import config, host
from .build import NodeBinaries
from .images import Image
from .node import RealNode


def _log(message: str) -> None:
    print(f"[real node] {message}", file=sys.stderr, flush=True)


class RealNodeCluster(LocalCluster):
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and one real node (containerd,
    runc, CNI bridge, kubelet, kube-proxy, CoreDNS, local-path-provisioner) with `images` imported.

    Needs root. One per machine (a lock under /run); leftovers of a run that was killed are cleaned
    up first. `stop()` puts the host back as it was (see realnode.host).
    """

    def __init__(
        self,
        bin_dir: Path,
        node_binaries: NodeBinaries,
        images: Mapping[str, Image],
        *,
        startup_timeout: float = 180.0,
    ) -> None:
        super().__init__(bin_dir, node_name=config.NODE_NAME, startup_timeout=startup_timeout)
        self.node_binaries = node_binaries
        self.images = dict(images)
        self.node: RealNode | None = None
        self._lock: host.NodeLock | None = None
        self.cleanup_failures: list[str] = []

    @property
    def gateway(self) -> str:
        """The pod bridge's address on the host: pods reach host processes listening there."""
        return config.GATEWAY

    def start(self) -> None:
        if os.geteuid() != 0:
            raise LocalClusterError("a real node needs root (containerd, kubelet, iptables, mounts)")
        self._lock = host.NodeLock()
        try:
            failures = host.clean_leftovers()
            if failures is not None:
                _log("cleaned up after a real node that was not stopped")
                if failures:
                    raise LocalClusterError("could not clean up a previous real node: " + "; ".join(failures))
            super().start()
        except BaseException:
            self._release()
            raise

    def stop(self) -> None:
        try:
            node = self.node
            if node is not None:
                began = time.monotonic()
                by_name = {c.name: c for c in self._components}
                # No controller may replace the pods deleted next.
                stop_all([c for name, c in by_name.items() if name in ("kube-controller-manager", "kube-scheduler")])
                apiserver = by_name.get("kube-apiserver")
                node.stop(self.kubectl if apiserver is not None and apiserver.running() else None)
                stop_all(self._components)
                self.cleanup_failures = node.cleanup()
                self.node = None
                _log(f"stopped in {time.monotonic() - began:.1f}s")
                if self.cleanup_failures:
                    _log("cleanup failures: " + "; ".join(self.cleanup_failures))
            super().stop()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ---- LocalCluster hooks ---------------------------------------------------------------------

    def _before_apiserver(self, workdir: Path, pki: Pki) -> None:
        self.node = RealNode(self.node_binaries, self.images, workdir, _log)
        self.node.prepare(pki, os.getpid())

    def _extra_flags(self, component: str) -> list[str]:
        if component == "kube-apiserver" and self.node is not None:
            return self.node.apiserver_flags()
        return []

    def _dropped_flags(self, component: str) -> frozenset[str]:
        # Pods get ServiceAccount tokens here (an operator installed in the cluster needs one).
        return config.APISERVER_DROPPED_FLAGS if component == "kube-apiserver" else frozenset()

    def _start_real_nodes(self, workdir: Path, pki: Pki, ports: components.Ports) -> bool:
        assert self.node is not None
        if self.node.record is not None:
            self.node.record.processes.extend(
                host.process_record(c.name, c.pid) for c in self._components if c.pid is not None
            )
            host.write_record(self.node.record)
        insecure = unverified_context()
        by_name = {c.name: c for c in self._components}
        for name, port in (("kube-controller-manager", ports.controller_manager), ("kube-scheduler", ports.scheduler)):
            self._wait(
                partial(http_ok, f"https://127.0.0.1:{port}/healthz", insecure), f"{name} /healthz", by_name[name]
            )
        began = time.monotonic()
        self.node.start(self.server, pki, self.kubectl)
        api = ApiServer(self.server, pki.admin_token, str(pki.ca_cert))
        self._wait(
            lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            "the default ServiceAccount in namespace default",
            by_name["kube-controller-manager"],
        )
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in self.node.timings.items())
        _log(f"node {config.NODE_NAME} up in {time.monotonic() - began:.1f}s after the control plane ({timings})")
        return True
