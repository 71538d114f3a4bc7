"""Command lines and config files of the control-plane components."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .pki import Pki
from .stages import NODE_ANNOTATION, NODE_ANNOTATION_VALUE, stage_files

SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"
NODE_IP = "10.255.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class Tuning:
    """Optional client rate limits and API-server concurrency for large bursts (benchmarks).

    None leaves a component's own default (and its command line as it was): API server 400
    read-only / 200 mutating requests in flight, controller-manager 20 QPS / burst 30, scheduler 50
    QPS / burst 100. kwok (v0.8) needs nothing here: its client has no rate limit.
    """

    max_requests_inflight: int | None = None
    max_mutating_requests_inflight: int | None = None
    controller_manager_qps: float | None = None
    controller_manager_burst: int | None = None
    scheduler_qps: float | None = None
    scheduler_burst: int | None = None


DEFAULT_TUNING = Tuning()


def _flags(**values: object) -> list[str]:
    """`--name=value` for every value that is not None, names with dashes for underscores."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in values.items() if value is not None]


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


def etcd_argv(bin_dir: Path, data_dir: Path, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=default",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_argv(
    bin_dir: Path,
    workdir: Path,
    pki: Pki,
    ports: Ports,
    tuning: Tuning = DEFAULT_TUNING,
    service_cidr: str = SERVICE_CIDR,
) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={workdir / 'pki'}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-cluster-ip-range={service_cidr}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.service_account_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--token-auth-file={pki.token_file}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--disable-admission-plugins=ServiceAccount",
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        # Off unless asked for (a bench diagnosis: `/debug/pprof` on the API server).
        "--profiling=" + os.environ.get("LOCALCLUSTER_PROFILING", "false"),
        *_flags(
            max_requests_inflight=tuning.max_requests_inflight,
            max_mutating_requests_inflight=tuning.max_mutating_requests_inflight,
        ),
    ]


def controller_manager_argv(
    bin_dir: Path, workdir: Path, kubeconfig: Path, pki: Pki, ports: Ports, tuning: Tuning = DEFAULT_TUNING
) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authentication-skip-lookup=true",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={workdir / 'controller-manager'}",
        "--leader-elect=false",
        "--controllers=*",
        "--use-service-account-credentials=false",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--profiling=false",
        *_flags(kube_api_qps=tuning.controller_manager_qps, kube_api_burst=tuning.controller_manager_burst),
    ]


def scheduler_config(kubeconfig: Path, tuning: Tuning = DEFAULT_TUNING) -> str:
    """The scheduler's client limits live here: with --config its --kube-api-qps flag is ignored."""
    connection: dict[str, object] = {"kubeconfig": str(kubeconfig)}
    if tuning.scheduler_qps is not None:
        connection["qps"] = tuning.scheduler_qps
    if tuning.scheduler_burst is not None:
        connection["burst"] = tuning.scheduler_burst
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": connection,
        "leaderElection": {"leaderElect": False},
    }
    return json.dumps(config, indent=2) + "\n"


def scheduler_argv(bin_dir: Path, workdir: Path, config: Path, kubeconfig: Path, ports: Ports) -> list[str]:
    return [
        str(bin_dir / "kube-scheduler"),
        f"--config={config}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authentication-skip-lookup=true",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={workdir / 'scheduler'}",
    ]


def kwok_argv(bin_dir: Path, kubeconfig: Path) -> list[str]:
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={kubeconfig}",
        *[f"--config={path}" for path in stage_files()],
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}={NODE_ANNOTATION_VALUE}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP}",
        "--node-lease-duration-seconds=40",
    ]
