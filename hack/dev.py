"""`make dev`: a local control plane with the Dockyard CRDs, the operator and the examples.

Builds the control plane if needed, starts it, installs `crds/`, runs the operator as a child
process, applies `examples/` into the namespace `dockyard-examples`, prints them, and keeps running
until Ctrl-C, when everything it started is stopped and removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from localcluster import LocalCluster, LocalClusterError, ensure_binaries  # noqa: E402

NAMESPACE = "dockyard-examples"
KUBECONFIG = ROOT / ".dev" / "kubeconfig"
STATE_DIR = ROOT / ".dev" / "state"


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


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    try:
        bin_dir = ensure_binaries()
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    try:
        with LocalCluster(bin_dir) as cluster:
            KUBECONFIG.parent.mkdir(exist_ok=True)
            KUBECONFIG.write_text(cluster.kubeconfig.read_text())
            try:
                return _run(cluster, bin_dir)
            finally:
                KUBECONFIG.unlink(missing_ok=True)
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 0
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run(cluster: LocalCluster, bin_dir: Path) -> int:
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    port = os.environ.get("DOCKYARD_HEALTH_PORT", "8080")
    events_port = os.environ.get("DOCKYARD_EVENTS_PORT", "8090")
    env = cluster.env() | {
        "DOCKYARD_HEALTH_PORT": port,
        "DOCKYARD_EVENTS_HOST": "127.0.0.1",
        "DOCKYARD_EVENTS_PORT": events_port,
        "DOCKYARD_EVENTS_URL": f"http://127.0.0.1:{events_port}",
        "DOCKYARD_STATE_DIR": str(STATE_DIR),
    }
    operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
    try:
        _wait_for_probe(f"http://127.0.0.1:{port}/healthz", operator, 60)
        cluster.kubectl("create", "namespace", NAMESPACE)
        # kwok plays the nodes but provisions no volumes: static volumes for the registries' claims
        cluster.kubectl("apply", "-f", "-", input=_volumes(4))
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "examples"))
        for kind in ("registry", "webhook"):
            waited = cluster.kubectl(
                "wait", "--for=condition=Ready", kind, "--all", "-n", NAMESPACE, "--timeout=120s", check=False
            )
            print(waited.stdout or waited.stderr)
        print(cluster.kubectl("get", "dockyard", "-n", NAMESPACE).stdout)
        print(
            "Dockyard is running against a local control plane.\n"
            f"  export KUBECONFIG={KUBECONFIG}\n"
            f"  {bin_dir}/kubectl get dockyard -A\n"
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
