"""`make bench`: Registry reconcile latency on the local control plane, beside the Deployment
controller's in the same run.

Reports p50/p99 of (a) Registry created → its Deployment created and → Ready=True, for registries
created one after another, (b) Deployment created → ReplicaSet created for plain Deployments, and
(c) the time for N registries created at once to all be Ready. Times are taken by this process
from watch events, so both figures include the same watch latency.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

import kubernetes  # noqa: E402
from kubernetes import watch  # noqa: E402

from localcluster import LocalCluster, ensure_binaries  # noqa: E402

S3 = {"s3": {"bucket": "bench", "region": "us-east-1"}}


class Seen:
    """First time each (kind, name, event) was observed."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()

    def mark(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.times.setdefault(key, time.monotonic())

    def wait(self, keys: list[tuple[str, str]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(k in self.times for k in keys):
                    return
            time.sleep(0.05)
        missing = [k for k in keys if k not in self.times]
        raise TimeoutError(f"{len(missing)} not seen, e.g. {missing[:3]}")


def _watch(
    seen: Seen, namespace: str, api: kubernetes.client.ApiClient, stop: threading.Event
) -> list[threading.Thread]:
    apps = kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)

    def loop(kind: str, func: Any, *args: Any) -> None:
        while not stop.is_set():
            for event in watch.Watch().stream(func, *args, timeout_seconds=5):
                obj = event["object"]
                name = obj["metadata"]["name"] if isinstance(obj, dict) else obj.metadata.name
                seen.mark((kind, name))
                if kind == "registry":
                    for c in obj.get("status", {}).get("conditions", []):
                        if c["type"] == "Ready" and c["status"] == "True":
                            seen.mark(("ready", name))
                if kind == "replicaset":
                    owner = (obj.metadata.owner_references or [None])[0]
                    if owner is not None:
                        seen.mark(("rs-of", owner.name))

    threads = [
        threading.Thread(target=loop, args=("deployment", apps.list_namespaced_deployment, namespace), daemon=True),
        threading.Thread(target=loop, args=("replicaset", apps.list_namespaced_replica_set, namespace), daemon=True),
        threading.Thread(
            target=loop,
            args=(
                "registry",
                custom.list_namespaced_custom_object,
                "dockyard.dev",
                "v1alpha1",
                namespace,
                "registries",
            ),
            daemon=True,
        ),
    ]
    for t in threads:
        t.start()
    return threads


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _line(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{label:<44} n={len(ms):<4} p50={_pct(ms, 50):8.1f} ms  p99={_pct(ms, 99):8.1f} ms  max={max(ms):8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    with LocalCluster(ensure_binaries()) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
        )
        env = cluster.env() | {
            "DOCKYARD_HEALTH_PORT": str(_free_port()),
            "DOCKYARD_METRICS_PORT": str(_free_port()),
            "DOCKYARD_LOG_FORMAT": "plain",
            "DOCKYARD_EVENTS_PORT": "0",
            "DOCKYARD_STATE_DIR": tempfile.mkdtemp(prefix="dockyard-bench-"),
            "DOCKYARD_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT / "operator"),
        }
        operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
        api = kubernetes.config.new_client_from_config(str(cluster.kubeconfig))
        custom = kubernetes.client.CustomObjectsApi(api)
        apps = kubernetes.client.AppsV1Api(api)
        stop = threading.Event()
        try:
            for ns in ("bench-seq", "bench-burst"):
                cluster.kubectl("create", "namespace", ns)
            seen = Seen()
            _watch(seen, "bench-seq", api, stop)
            time.sleep(2)

            def registry(ns: str, name: str) -> float:
                body = {
                    "apiVersion": "dockyard.dev/v1alpha1",
                    "kind": "Registry",
                    "metadata": {"name": name},
                    "spec": {"sku": "Standard", "storage": S3},
                }
                started = time.monotonic()
                custom.create_namespaced_custom_object("dockyard.dev", "v1alpha1", ns, "registries", body)
                return started

            to_deployment, to_ready, to_rs = [], [], []
            for i in range(args.sequential):
                name = f"r{i}"
                started = registry("bench-seq", name)
                seen.wait([("deployment", name), ("ready", name)], 120)
                to_deployment.append(seen.times[("deployment", name)] - started)
                to_ready.append(seen.times[("ready", name)] - started)
            for i in range(args.sequential):
                name = f"plain{i}"
                body = {
                    "metadata": {"name": name},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"containers": [{"name": "c", "image": "x"}]},
                        },
                    },
                }
                started = time.monotonic()
                apps.create_namespaced_deployment("bench-seq", body)
                seen.wait([("rs-of", name)], 60)
                to_rs.append(seen.times[("rs-of", name)] - started)

            burst = Seen()
            _watch(burst, "bench-burst", api, stop)
            time.sleep(2)
            names = [f"b{i}" for i in range(args.burst)]
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: registry("bench-burst", n), names))
            created = time.monotonic() - started
            burst.wait([("ready", n) for n in names], 900)
            all_ready = max(burst.times[("ready", n)] for n in names) - started

            print()
            print(_line("Registry created -> Deployment created", to_deployment))
            print(_line("Registry created -> Ready=True", to_ready))
            print(_line("Deployment created -> ReplicaSet created (kube)", to_rs))
            print(
                f"{args.burst} registries created at once ({created:.1f} s to submit) -> all Ready: {all_ready:.1f} s"
            )
        finally:
            stop.set()
            operator.terminate()
            try:
                # With 250 registries kopf waits for handlers busy on a loaded API server; the
                # figures are printed already, so a slow shutdown is not a failed benchmark.
                operator.wait(timeout=60)
            except subprocess.TimeoutExpired:
                print("the operator did not stop within 60 s of SIGTERM; killed", file=sys.stderr)
                operator.kill()
                operator.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
