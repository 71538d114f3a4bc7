"""`python -m localcluster build` prints the bin dir; `up --kubeconfig PATH` runs a cluster until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .build import ensure_binaries
from .cluster import LocalCluster
from .errors import LocalClusterError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the control-plane binaries (if needed) and print their directory")
    up = commands.add_parser("up", help="start a local cluster and keep it running until Ctrl-C or SIGTERM")
    up.add_argument("--kubeconfig", type=Path, required=True, help="where to write the cluster's kubeconfig")
    up.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for start-up")
    args = parser.parse_args(argv)
    try:
        bin_dir = ensure_binaries()
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    if args.command == "build":
        print(bin_dir)
        return 0
    return _up(bin_dir, args.kubeconfig, args.startup_timeout)


def _up(bin_dir: Path, kubeconfig: Path, startup_timeout: float) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("starting the local control plane ...", file=sys.stderr, flush=True)
    try:
        with LocalCluster(bin_dir, startup_timeout=startup_timeout) as cluster:
            kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cluster.kubeconfig, kubeconfig)
            os.chmod(kubeconfig, 0o600)
            try:
                print(
                    f"Local cluster ready in {cluster.startup_seconds:.1f}s at {cluster.server}\n"
                    f"  export KUBECONFIG={kubeconfig.resolve()}\n"
                    f"  export PATH={bin_dir}:$PATH   # kubectl matching the API server\n"
                    f"  kubectl get nodes\n"
                    f"Component logs: {cluster.workdir / 'logs'}\n"
                    "Press Ctrl-C to stop.",
                    flush=True,
                )
                stop.wait()
            finally:
                kubeconfig.unlink(missing_ok=True)
    except KeyboardInterrupt:
        print("\nstopped; the cluster and its files are gone", file=sys.stderr)
        return 0
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
