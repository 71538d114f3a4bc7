"""`make bench`: how fast a BuildRun becomes a Job, beside how fast the Job controller makes the
Job's pod, in the same run; and a burst of runs: IDs unique, exactly one Job each.

Set up: the local control plane with kwok playing the node (its build-pod stage finishes a pod like
Kaniko would, in about a second), the operator as a subprocess (`python -m dockyard`), a Registry
`hub` (object storage, so kwok can make it Ready). One watch in this process on Jobs and pods of the
namespace stamps every ADDED event with this process's clock, so both figures are measured the same
way:
1. `--sequential` runs one after another: BuildRun created (the create call returned) → its Job
   seen; and the yardstick, Job seen → its pod seen (kube-controller-manager's Job controller);
2. `--burst` runs created at once from `--parallel` threads: every run's ID (all distinct), the Jobs
   the API server ever created (exactly one per run), time until every Job exists and until every
   run has ended.
Each figure is printed as soon as it is measured, with the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from localcluster import LocalCluster, ensure_binaries  # noqa: E402
from realregistry import free_port, until  # noqa: E402

NAMESPACE = "bench-builds"
GROUP, VERSION = "dockyard.dev", "v1alpha1"
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
RUN_LABEL = "dockyard.dev/build-run"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _line(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{label}: p50 {_pct(ms, 50):.0f} ms, p99 {_pct(ms, 99):.0f} ms, max {max(ms):.0f} ms (n={len(ms)})"


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


class Seen:
    """ADDED times of Jobs and pods (by run label), stamped on arrival."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.jobs: dict[str, float] = {}
        self.pods: dict[str, float] = {}
        self.job_adds: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._watch, args=(kubernetes.client.BatchV1Api(api).list_namespaced_job, "job"), daemon=True
            ),
            threading.Thread(
                target=self._watch, args=(kubernetes.client.CoreV1Api(api).list_namespaced_pod, "pod"), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _watch(self, lister: Any, kind: str) -> None:
        version = lister(NAMESPACE).metadata.resource_version
        while not self._stop.is_set():
            for event in kubernetes.watch.Watch().stream(
                lister, NAMESPACE, resource_version=version, timeout_seconds=5, label_selector=RUN_LABEL
            ):
                now = time.monotonic()
                obj = event["object"]
                version = obj.metadata.resource_version
                if event["type"] != "ADDED":
                    continue
                run = (obj.metadata.labels or {}).get(RUN_LABEL, "")
                with self._lock:
                    if kind == "job":
                        self.job_adds[obj.metadata.name] += 1
                        self.jobs.setdefault(run, now)
                    else:
                        self.pods.setdefault(run, now)

    def stop(self) -> None:
        self._stop.set()


def _run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BuildRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "build": {"registryRef": {"name": "hub"}, "source": OCI, "dockerBuild": {"images": ["app:{{.Run.ID}}"]}}
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=30, help="runs created one after another")
    parser.add_argument("--burst", type=int, default=100, help="runs created at once")
    parser.add_argument("--parallel", type=int, default=8, help="threads creating the burst")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="dockyard-bench-builds-") as tmp,
        LocalCluster(ensure_binaries()) as cluster,
    ):
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
        )
        cluster.kubectl("create", "namespace", NAMESPACE)
        env = cluster.env() | {
            "DOCKYARD_HEALTH_PORT": str(free_port()),
            "DOCKYARD_METRICS_HOST": "127.0.0.1",
            "DOCKYARD_METRICS_PORT": str(free_port()),
            "DOCKYARD_EVENTS_PORT": "0",
            "DOCKYARD_STATE_DIR": str(Path(tmp) / "state"),
            "DOCKYARD_LOG_LEVEL": "warning",
        }
        operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        custom = kubernetes.client.CustomObjectsApi(api)
        seen = Seen(api)
        try:
            registry = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Registry",
                "metadata": {"name": "hub"},
                "spec": {"storage": {"s3": {"bucket": "images", "region": "us-east-1"}}},
            }
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(registry))

            def ready() -> bool:
                body = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "registries", "hub")
                conditions = (body.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

            until(ready, "Registry hub Ready", 120)

            def ended(names: list[str]) -> list[dict[str, Any]] | None:
                items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "buildruns")["items"]
                done = [
                    i for i in items if i["metadata"]["name"] in names and (i.get("status") or {}).get("finishTime")
                ]
                return done if len(done) == len(names) else None

            print(f"1. {args.sequential} runs one after another ({load_average()})", flush=True)
            to_job, to_pod = [], []
            for i in range(args.sequential):
                name = f"seq-{i}"
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "buildruns", _run(name))
                created = time.monotonic()
                until(lambda n=name: n in seen.pods, f"{name}'s pod", 60)
                to_job.append(seen.jobs[name] - created)
                to_pod.append(seen.pods[name] - seen.jobs[name])
            print("   " + _line("BuildRun created → Job created (Dockyard)", to_job), flush=True)
            print("   " + _line("Job created → Pod created (Job controller, yardstick)", to_pod), flush=True)
            until(lambda: ended([f"seq-{i}" for i in range(args.sequential)]), "sequential runs ended", 300)

            names = [f"burst-{i}" for i in range(args.burst)]
            print(f"2. {args.burst} runs at once from {args.parallel} threads ({load_average()})", flush=True)
            began = time.monotonic()
            with ThreadPoolExecutor(args.parallel) as pool:
                list(
                    pool.map(
                        lambda n: custom.create_namespaced_custom_object(
                            GROUP, VERSION, NAMESPACE, "buildruns", _run(n)
                        ),
                        names,
                    )
                )
            created = time.monotonic() - began
            until(lambda: all(n in seen.jobs for n in names), "every burst Job", 600)
            jobs_at = max(seen.jobs[n] for n in names) - began
            print(f"   created in {created:.1f}s; every Job created {jobs_at:.1f}s after the first create", flush=True)
            done = until(lambda: ended(names), "every burst run ended", 900)
            ended_at = time.monotonic() - began
            ids = [d["status"]["runId"] for d in done]
            adds = sum(seen.job_adds[f"{n}-build"] for n in names)
            succeeded = sum(1 for d in done if d["status"]["status"] == "Succeeded")
            print(
                f"   every run ended {ended_at:.1f}s after the first create; {succeeded}/{len(names)} Succeeded; "
                f"run IDs distinct: {len(set(ids))}/{len(ids)}; Jobs the API server created: {adds} "
                f"(distinct {sum(1 for n in names if seen.job_adds[f'{n}-build'])}) ({load_average()})",
                flush=True,
            )
            return 0 if len(set(ids)) == len(ids) == adds == len(names) else 1
        finally:
            seen.stop()
            operator.terminate()
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()


if __name__ == "__main__":
    sys.exit(main())
