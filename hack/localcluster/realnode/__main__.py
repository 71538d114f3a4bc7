"""`python -m localcluster.realnode build` builds the node's binaries and images (cached);
`up --kubeconfig PATH` runs a control plane with a real node until Ctrl-C (needs root)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from ..build import ensure_binaries
from ..errors import LocalClusterError
from . import RealNodeCluster, ensure_images, ensure_node_binaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster.realnode", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the node's binaries and images (if needed) and print the images")
    up = commands.add_parser("up", help="start a control plane with a real node; Ctrl-C stops it")
    up.add_argument("--kubeconfig", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        bin_dir = ensure_binaries()
        binaries = ensure_node_binaries()
        began = time.monotonic()
        images = ensure_images(binaries)
        print(f"images ready in {time.monotonic() - began:.1f}s", file=sys.stderr)
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    if args.command == "build":
        for role, image in images.items():
            print(f"{role} {image.name} {image.archive}")
        return 0
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with RealNodeCluster(bin_dir, binaries, images) as cluster:
            shutil.copyfile(cluster.kubeconfig, args.kubeconfig)
            print(
                f"ready in {cluster.startup_seconds:.1f}s: export KUBECONFIG={args.kubeconfig.resolve()}\n"
                f"logs: {cluster.workdir / 'logs'}\nimages: {' '.join(i.name for i in images.values())}",
                flush=True,
            )
            stop.wait()
            args.kubeconfig.unlink(missing_ok=True)
    except LocalClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
