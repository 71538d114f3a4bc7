"""A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok for nodes and kubelets) for tests and `make dev`.

    bin_dir = ensure_binaries()
    with LocalCluster(bin_dir) as cluster:
        cluster.kubectl("get", "nodes")
"""

from __future__ import annotations

from .build import ensure_binaries
from .cluster import LocalCluster
from .components import Tuning
from .errors import KubectlError, LocalClusterError
from .stages import (
    BUILD_RUN_LABEL,
    EXIT_CODE_ANNOTATION,
    RUN_DURATION_ANNOTATION,
    TERMINATION_MESSAGE_ANNOTATION,
)

__all__ = [
    "BUILD_RUN_LABEL",
    "EXIT_CODE_ANNOTATION",
    "RUN_DURATION_ANNOTATION",
    "TERMINATION_MESSAGE_ANNOTATION",
    "KubectlError",
    "LocalCluster",
    "LocalClusterError",
    "Tuning",
    "ensure_binaries",
]
