"""A real Kubernetes node beside the local control plane, for tests that need pods to run:
containerd + runc (Debian), CNI bridge networking with pod IPs reachable from the host, kubelet and
kube-proxy (built from the control plane's wrapper module), CoreDNS for `<svc>.<ns>.svc`,
local-path-provisioner for PersistentVolumeClaims, and images assembled locally (no Docker, no
registry) and imported into containerd.

    binaries = ensure_node_binaries()
    images = ensure_images(binaries)
    with RealNodeCluster(ensure_binaries(), binaries, images) as cluster:
        cluster.kubectl("get", "nodes")

Needs root; one per machine. kwok's LocalCluster stays the choice for tests that need many pods.
"""

from __future__ import annotations

import os
from pathlib import Path

from .build import NodeBinaries, ensure_node_binaries, read_versions
from .cluster import RealNodeCluster
from .config import BRIDGE, GATEWAY, NODE_NAME
from .images import Image, all_images

PROJECT = Path(__file__).resolve().parents[3]
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")


def images_dir() -> Path:
    return Path(os.environ.get("DOCKYARD_CACHE", Path.home() / ".cache" / "dockyard")) / "node" / "images"


def ensure_images(binaries: NodeBinaries, project: Path = PROJECT) -> dict[str, Image]:
    """pause, busybox, registry, kaniko and the operator image (from `project`), cached by content."""
    built = {**binaries.built, "busybox": binaries.busybox}
    return all_images(images_dir(), built, read_versions(), project, DEBIAN_MIRROR)


__all__ = [
    "BRIDGE",
    "GATEWAY",
    "NODE_NAME",
    "Image",
    "NodeBinaries",
    "RealNodeCluster",
    "ensure_images",
    "ensure_node_binaries",
]
