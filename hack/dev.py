"""`make dev`: a local control plane with the Dockyard CRDs, the operator and the examples.

Builds the control plane if needed, starts it, installs `crds/`, runs the operator as a child
process, applies `examples/` into the namespace `dockyard-examples`, prints them, and keeps running
until Ctrl-C, when everything it started is stopped and removed. On a real node it also runs the
quick build of examples/quickbuild and the ACR task file examples/taskfile/acr-task.yaml (build →
test → push), printing their logs.

The cluster has a real node (containerd, kubelet, ... from `localcluster.realnode`: registry pods
really run and serve) when this machine can have one: run as root, the node's binaries and images
built (on first use) and no other real node running. Otherwise, or with DOCKYARD_DEV_NODE=kwok, it
says why in one sentence and uses kwok's fake node, where pods are scheduled but never run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from localcluster import LocalCluster, LocalClusterError, ensure_binaries  # noqa: E402
from localcluster.realnode import (  # noqa: E402
    GATEWAY,
    Image,
    NodeBinaries,
    RealNodeCluster,
    ensure_images,
    ensure_node_binaries,
)

NAMESPACE = "dockyard-examples"
DEV = ROOT / ".dev"
KUBECONFIG = DEV / "kubeconfig"
STATE_DIR = DEV / "state"
LINKS = {DEV / "bin" / "kubectl": "kubectl", DEV / "busybox.oci.tar": "busybox"}
"""Conveniences for the README's commands, removed on exit: kubectl, and an image to push."""
TERMINAL = ("Succeeded", "Failed", "Canceled", "Timeout", "Error")
FAKE_NODE = "make dev: using kwok's fake node (pods are scheduled but never run)"


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_for_probe(url: str, operator: subprocess.Popen[bytes], deadline_s: float) -> None:
    import httpx

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise LocalClusterError(f"the operator exited with code {operator.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise LocalClusterError(f"the operator did not answer its liveness probe at {url}")


def _volumes(count: int) -> str:
    template = (
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: dev-volume-{i}}}\n"
        "spec: {{capacity: {{storage: 500Gi}}, accessModes: [ReadWriteOnce], "
        "persistentVolumeReclaimPolicy: Delete, hostPath: {{path: /tmp/dockyard-dev/{i}}}}}\n"
    )
    return "---\n".join(template.format(i=i) for i in range(count))


def _real_node() -> tuple[NodeBinaries, dict[str, Image]] | None:
    """The node's binaries and images, or None (and one sentence why) where this machine cannot
    have a real node."""
    if os.environ.get("DOCKYARD_DEV_NODE") == "kwok":
        print(f"{FAKE_NODE} because DOCKYARD_DEV_NODE=kwok.", file=sys.stderr)
        return None
    if os.geteuid() != 0:
        print(f"{FAKE_NODE} because a real node needs root (containerd, kubelet, iptables).", file=sys.stderr)
        return None
    try:
        binaries = ensure_node_binaries()
        return binaries, ensure_images(binaries)
    except LocalClusterError as error:
        print(f"{FAKE_NODE} because the real node cannot be built here: {error}", file=sys.stderr)
        return None


def _started(bin_dir: Path) -> LocalCluster:
    real = _real_node()
    if real is not None:
        cluster = RealNodeCluster(bin_dir, *real, startup_timeout=240)
        try:
            cluster.start()
            return cluster
        except LocalClusterError as error:
            print(f"{FAKE_NODE} because the real node did not start: {error}", file=sys.stderr)
    cluster = LocalCluster(bin_dir)
    cluster.start()
    return cluster


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    try:
        bin_dir = ensure_binaries()
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    try:
        cluster = _started(bin_dir)
        try:
            KUBECONFIG.parent.mkdir(exist_ok=True)
            KUBECONFIG.write_text(cluster.kubeconfig.read_text())
            return _run(cluster, bin_dir)
        finally:
            KUBECONFIG.unlink(missing_ok=True)
            for link in LINKS:
                link.unlink(missing_ok=True)
            cluster.stop()
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 0
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _quick_build(cluster: LocalCluster) -> None:
    """The `az acr build` experience on the running example: the CLI packs examples/quickbuild,
    uploads it into contoso, and Kaniko builds and pushes it while the log streams here."""
    command = [
        sys.executable, "-m", "dockyard.cli", "build", "-r", "contoso", "-n", NAMESPACE,
        "-t", "hello:{{.Run.ID}}", "-t", "hello:latest", str(ROOT / "examples" / "quickbuild"),
    ]  # fmt: skip
    print("$ dockyard build -r contoso -n dockyard-examples -t 'hello:{{.Run.ID}}' -t hello:latest examples/quickbuild")
    result = subprocess.run(command, env=cluster.env(), check=False, timeout=600)
    if result.returncode != 0:
        print(f"the quick build did not succeed (exit code {result.returncode}); see above", file=sys.stderr)


def _task_file_run(cluster: LocalCluster, test_image: str) -> bool:
    """The ACR task file of examples/taskfile on the running example: its directory uploaded into
    contoso (a no-push quick build, the CLI's upload), then run as a task file (build → test →
    push) with that source; its steps and log are printed. True when it succeeded."""
    directory = ROOT / "examples" / "taskfile"
    print("$ dockyard build -r contoso -n dockyard-examples --no-push -t upload:check examples/taskfile")
    cli = [sys.executable, "-m", "dockyard.cli"]
    # a tag, though nothing is pushed: Kaniko refuses --no-push without a --destination
    upload = [*cli, "build", "-r", "contoso", "-n", NAMESPACE, "--no-push", "-t", "upload:check", str(directory)]
    result = subprocess.run(upload, env=cluster.env(), capture_output=True, text=True, check=False, timeout=600)
    found = re.search(r"^Run ID: (\S+)$", result.stdout, re.M)
    if result.returncode != 0 or not found:
        print(f"uploading examples/taskfile failed:\n{result.stdout}{result.stderr}", file=sys.stderr)
        return False
    runs = json.loads(cluster.kubectl("get", "buildruns", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    source = next(r["spec"]["build"]["source"] for r in runs if (r.get("status") or {}).get("runId") == found[1])
    run = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "BuildRun",
        "metadata": {"name": "hello-steps"},
        "spec": {
            "build": {
                "registryRef": {"name": "contoso"},
                "source": source,
                "taskFile": (directory / "acr-task.yaml").read_text(),
                # the test step runs an image the node has (no internet needed)
                "values": [{"name": "version", "value": "1.0.0"}, {"name": "testImage", "value": test_image}],
            }
        },
    }
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(run))
    print("BuildRun hello-steps runs examples/taskfile/acr-task.yaml (build → test → push)")
    status: dict[str, Any] = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and status.get("status") not in TERMINAL:
        time.sleep(2)
        got = cluster.kubectl("get", "buildrun", "hello-steps", "-n", NAMESPACE, "-o", "json", check=False)
        status = (json.loads(got.stdout).get("status") or {}) if got.returncode == 0 else {}
    for step in status.get("steps") or []:
        print(f"  step {step['id']:<6} {step['status']}")
    if status.get("runId"):
        subprocess.run([*cli, "logs", "-n", NAMESPACE, status["runId"]], env=cluster.env(), check=False, timeout=120)
    print(f"BuildRun hello-steps: {status.get('status', 'did not end')} {status.get('message') or ''}".rstrip())
    return status.get("status") == "Succeeded"


def _run(cluster: LocalCluster, bin_dir: Path) -> int:
    real = isinstance(cluster, RealNodeCluster)
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    port = os.environ.get("DOCKYARD_HEALTH_PORT", "8080")
    events_port = os.environ.get("DOCKYARD_EVENTS_PORT", "8090")
    # Registry pods on a real node post their events to the operator on the bridge gateway.
    events_host = GATEWAY if real else "127.0.0.1"
    env = cluster.env() | {
        "DOCKYARD_HEALTH_PORT": port,
        "DOCKYARD_EVENTS_HOST": events_host,
        "DOCKYARD_EVENTS_PORT": events_port,
        "DOCKYARD_EVENTS_URL": f"http://{events_host}:{events_port}",
        "DOCKYARD_STATE_DIR": str(STATE_DIR),
    }
    if isinstance(cluster, RealNodeCluster):
        images = cluster.images
        env |= {
            "DOCKYARD_REGISTRY_IMAGE": images["registry"].name,
            "DOCKYARD_OPERATOR_IMAGE": images["operator"].name,
            "DOCKYARD_KANIKO_IMAGE": images["kaniko"].name,
            # `|| true`, `> /dev/null` and `docker pull` steps copy the node's static BusyBox
            "DOCKYARD_STEP_TOOLS_IMAGE": images["busybox"].name,
        }
        for link, target in LINKS.items():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(bin_dir / "kubectl" if target == "kubectl" else images[target].archive)
    operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
    try:
        _wait_for_probe(f"http://127.0.0.1:{port}/healthz", operator, 60)
        cluster.kubectl("create", "namespace", NAMESPACE)
        if not real:
            # kwok plays the nodes but provisions no volumes: static volumes for the registries' claims
            cluster.kubectl("apply", "-f", "-", input=_volumes(4))
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "examples"))
        # On a real node, wait for what README Quick start uses (fabrikam's S3 endpoint does not exist here).
        waits = (
            (("registry/contoso", 240), ("webhook/contoso-ci", 60)) if real else (("registry", 120), ("webhook", 120))
        )
        for what, seconds in waits:
            target = [what] if "/" in what else [what, "--all"]
            waited = cluster.kubectl(
                "wait", "--for=condition=Ready", *target, "-n", NAMESPACE, f"--timeout={seconds}s", check=False
            )
            print(waited.stdout or waited.stderr)
        if real:
            _quick_build(cluster)
            _task_file_run(cluster, cluster.images["busybox"].name)
        print(cluster.kubectl("get", "dockyard", "-n", NAMESPACE).stdout)
        if real:
            print(cluster.kubectl("get", "pods,pvc", "-n", NAMESPACE).stdout)
        kubectl = f"{DEV / 'bin'}/kubectl" if real else f"{bin_dir}/kubectl"
        node = "a real node (registry pods run: see README Quick start to push and pull)" if real else "kwok"
        print(
            f"Dockyard is running against a local control plane with {node}.\n"
            f"  export KUBECONFIG={KUBECONFIG}\n"
            f"  {kubectl} get dockyard -A\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        while operator.poll() is None:
            time.sleep(1)
        print(f"the operator exited with code {operator.returncode}", file=sys.stderr)
        return 1
    finally:
        if operator.poll() is None:
            operator.terminate()
            try:
                operator.wait(timeout=15)
            except subprocess.TimeoutExpired:
                operator.kill()


if __name__ == "__main__":
    raise SystemExit(main())
