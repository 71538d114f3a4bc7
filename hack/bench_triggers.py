"""`make bench`: how fast a BuildTask's automatic runs start (issue #12's goals).

1. base image pushed → rebuild Job created (goal p50 ≤ 5 s): a task tracks `base/py:3.11` in a
   Dockyard registry (the real distribution binary with the operator's rendered config, posting its
   notifications to the operator's event intake); each round pushes a new digest of the base with
   skopeo and times from skopeo's return to the ImageUpdate run's Job being ADDED;
2. commit webhook received → Job created (goal p50 ≤ 1 s): a task with a GitHub-signed push webhook
   on a git repository served over smart HTTP on this host; each round commits, posts the webhook
   and times from the post to the Commit run's Job being ADDED.

The local control plane with kwok playing the node; the operator as a subprocess (`python -m
dockyard`); one watch in this process stamps Jobs' ADDED events with this process's clock. The
first task of each kind is told its base (kwok's pods cannot resolve one) as a first run leaves it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import kubernetes.config
import kubernetes.watch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from gitserver import GitServer  # noqa: E402

from localcluster import LocalCluster, ensure_binaries  # noqa: E402
from realregistry import LocalRegistry, free_port, read_secret, until  # noqa: E402

NAMESPACE = "bench-triggers"
GROUP, VERSION = "dockyard.dev", "v1alpha1"
RUN_LABEL = "dockyard.dev/build-run"
BASE = "base/py"
SECRET = "bench-hook-secret"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _line(label: str, values: list[float], goal_s: float) -> str:
    ms = [v * 1000 for v in values]
    p50 = _pct(ms, 50)
    verdict = "meets" if p50 <= goal_s * 1000 else "MISSES"
    return (
        f"{label}: p50 {p50:.0f} ms, p99 {_pct(ms, 99):.0f} ms, max {max(ms):.0f} ms (n={len(ms)}); "
        f"goal p50 ≤ {goal_s:g} s: {verdict}"
    )


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_images(path: Path, count: int) -> None:
    """An OCI layout with tags v0…v{count-1}: one-layer images that differ, so each has its own digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    manifests = []
    for index in range(count):
        content = f"round {index}\n".encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("round.txt")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        layer, layer_size = blob(buffer.getvalue())
        config, config_size = blob(
            json.dumps(
                {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer]}}
            ).encode()
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
        }
        digest, size = blob(json.dumps(manifest).encode())
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
                "annotations": {"org.opencontainers.image.ref.name": f"v{index}"},
            }
        )
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


class Jobs:
    """ADDED times of build Jobs, by run label, stamped on arrival."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.added: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lister = kubernetes.client.BatchV1Api(api).list_namespaced_job
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        version = self._lister(NAMESPACE).metadata.resource_version
        while not self._stop.is_set():
            for event in kubernetes.watch.Watch().stream(
                self._lister, NAMESPACE, resource_version=version, timeout_seconds=5, label_selector=RUN_LABEL
            ):
                now = time.monotonic()
                version = event["object"].metadata.resource_version
                if event["type"] == "ADDED":
                    with self._lock:
                        self.added.setdefault((event["object"].metadata.labels or {})[RUN_LABEL], now)

    def at(self, run: str) -> float | None:
        with self._lock:
            return self.added.get(run)

    def stop(self) -> None:
        self._stop.set()


def _task(name: str, source: dict[str, Any], triggers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BuildTask",
        "metadata": {"name": name},
        "spec": {
            "registryRef": {"name": "hub"},
            "source": source,
            "dockerBuild": {"images": ["app:{{.Run.ID}}"]},
            "triggers": triggers,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="pushes and webhooks timed, each")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="dockyard-bench-triggers-") as tmp,
        LocalCluster(ensure_binaries()) as cluster,
        GitServer(Path(tmp) / "git", host="127.0.0.1") as git,
    ):
        work = Path(tmp)
        (work / "registry").mkdir()
        write_images(work / "images", args.rounds + 1)
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
        )
        cluster.kubectl("create", "namespace", NAMESPACE)
        events_port = free_port()
        env = cluster.env() | {
            "DOCKYARD_HEALTH_PORT": str(free_port()),
            "DOCKYARD_METRICS_HOST": "127.0.0.1",
            "DOCKYARD_METRICS_PORT": str(free_port()),
            "DOCKYARD_EVENTS_HOST": "127.0.0.1",
            "DOCKYARD_EVENTS_PORT": str(events_port),
            "DOCKYARD_EVENTS_URL": f"http://127.0.0.1:{events_port}",
            "DOCKYARD_STATE_DIR": str(work / "state"),
            "DOCKYARD_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT / "operator"),
        }
        operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        custom = kubernetes.client.CustomObjectsApi(api)
        jobs = Jobs(api)
        registry: LocalRegistry | None = None
        try:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Registry",
                "metadata": {"name": "hub"},
                "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
            }
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(body))
            registry = LocalRegistry(cluster, NAMESPACE, "hub", work / "registry")
            registry.start()
            admin = until(lambda: read_secret(cluster, NAMESPACE, "hub-admin"), "the admin Secret")
            creds = f"hub:{admin['password']}"

            def login() -> str | None:
                found = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "registries", "hub")
                return (found.get("status") or {}).get("loginServer")

            host = until(login, "the registry's login server", 120)

            def push(index: int) -> tuple[str, float]:
                """Push round `index`'s image; its digest and when skopeo's copy returned."""
                target = f"docker://127.0.0.1:{registry.port}/{BASE}:3.11"  # type: ignore[union-attr]
                copied = registry.skopeo(  # type: ignore[union-attr]
                    "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{work / 'images'}:v{index}", target
                )
                if copied.returncode != 0:
                    raise RuntimeError(f"skopeo copy failed: {copied.stderr}")
                pushed = time.monotonic()
                raw = registry.skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, target)  # type: ignore[union-attr]
                return f"sha256:{hashlib.sha256(raw.stdout.encode()).hexdigest()}", pushed

            # -- 1. base image pushed → rebuild Job created --------------------------------------
            first, _ = push(0)
            oci = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
            task = _task("rebuilt", oci, {"baseImageUpdate": {}})
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(task))
            recorded = {"registry": host, "repository": BASE, "tag": "3.11", "digest": first}
            cluster.kubectl(
                "patch", "buildtask", "rebuilt", "-n", NAMESPACE, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"baseImage": recorded}}),
            )  # fmt: skip
            time.sleep(12)  # two trigger ticks: the base is watched
            print(f"1. base image pushed → rebuild Job created, {args.rounds} rounds ({load_average()})", flush=True)
            base_times = []
            for index in range(1, args.rounds + 1):
                digest, pushed = push(index)
                run = f"rebuilt-base-{digest.removeprefix('sha256:')[:12]}"
                added = until(lambda r=run: jobs.at(r), f"the Job of {run}", 60)
                base_times.append(added - pushed)

                def ended(name: str = run) -> bool:
                    found = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "buildruns", name)
                    return bool((found.get("status") or {}).get("finishTime"))

                until(ended, f"{run} ended", 60)  # the next push is not coalesced into a pending run
            print("   " + _line("base image pushed → rebuild Job created", base_times, 5), flush=True)

            # -- 2. commit webhook received → Job created ------------------------------------------
            git.make_repo("app", {"Dockerfile": "FROM scratch\n"})
            cluster.kubectl("create", "secret", "generic", "hook", "-n", NAMESPACE, f"--from-literal=secret={SECRET}")
            hook = {"sourceCommit": {"mode": "Webhook", "webhookSecretRef": {"name": "hook", "key": "secret"}}}
            task = _task("hooked", {"git": {"url": git.url("app"), "revision": "main"}}, hook)
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(task))
            url = f"http://127.0.0.1:{events_port}/git/{NAMESPACE}/hooked"
            print(f"2. commit webhook received → Job created, {args.rounds} rounds ({load_average()})", flush=True)
            hook_times = []
            with httpx.Client(timeout=10) as client:
                for index in range(args.rounds):
                    sha = git.commit("app", {"README": f"round {index}\n"})
                    payload = json.dumps(
                        {"ref": "refs/heads/main", "after": sha, "repository": {"default_branch": "main"}}
                    ).encode()
                    signature = hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
                    headers = {
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "push",
                        "X-GitHub-Delivery": f"bench-{index}",
                        "X-Hub-Signature-256": f"sha256={signature}",
                    }
                    sent = time.monotonic()
                    answer = client.post(url, content=payload, headers=headers)
                    if answer.status_code == 401 and index == 0:  # the task's first reconcile is still running
                        time.sleep(2)
                        sent = time.monotonic()
                        answer = client.post(url, content=payload, headers=headers)
                    if answer.status_code != 200:
                        raise RuntimeError(f"webhook answered {answer.status_code}: {answer.text}")
                    run = answer.json()["run"]
                    added = until(lambda r=run: jobs.at(r), f"the Job of {run}", 60)
                    hook_times.append(added - sent)
            print("   " + _line("commit webhook received → Job created", hook_times, 1), flush=True)
            return 0
        finally:
            jobs.stop()
            if registry is not None:
                registry.stop()
            operator.terminate()
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()


if __name__ == "__main__":
    sys.exit(main())
