"""`make bench`: replication between two real registries, beside `skopeo sync` on the same content
between the same two registries.

Set up (hack/replicapair.py, as the integration test): a home registry and a replica `west`, both
CNCF distribution 3.x processes on the configs the operator renders for a Premium Registry and its
Replication, each with its Dockyard token service, notifications into the real event intake; the
replication subscriber and copy engine (4 workers, the operator's default) in this process.

Dataset (generated, incompressible): `--repos` repositories of `--tags` tags; each image one of two
shared base layers (`--base-mib`) plus a layer of its own (`--layer-mib`), pushed to the home with
skopeo before `west` joins the replication.

Runs, in order:
1. `skopeo sync --src yaml --dest docker --all --preserve-digests` of every repository and tag,
   home → west (cold), then again (no-op: everything is there);
2. west's storage wiped, its process restarted; `west` joins: Dockyard's initial fill (cold, from
   joining until the fill is complete and no job waits), then one full comparison (no-op);
3. `--pushes` pushes of a `--push-mib` image (a layer of its own each) to the home at `--rate` per
   second; push → available in west = from skopeo's return (the manifest is in the home) to the tag
   answering HEAD on west (polled every 50 ms).

Checked: after each copy west holds exactly the home's tags and digests (a wrong copy stops the
benchmark). Printed: seconds and MiB/s of each, the ratios (goals: fill ≥ 1.0× skopeo sync's
throughput; push → available p50 ≤ 2 s), and the machine's load average (other processes on the
machine move the figures).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "hack")]

from dockyard.replication.access import Endpoint, ReplicatorClients  # noqa: E402
from dockyard.replication.ledger import HOME  # noqa: E402
from replicapair import NS, REG, WEST, Pair  # noqa: E402

MIB = 1024 * 1024


class Layout:
    """One OCI layout holding many images, each under its own ref name (blobs shared on disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True)
        self.index: list[dict[str, Any]] = []
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def layer(self, size: int) -> dict[str, Any]:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("data.bin")
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar", **self.blob(buffer.getvalue())}

    def image(self, ref: str, layers: list[dict[str, Any]]) -> None:
        config = {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            "config": {"Labels": {"ref": ref}},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **self.blob(json.dumps(config).encode()),
            },
            "layers": layers,
        }
        self.index.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **self.blob(json.dumps(manifest).encode()),
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        )
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.index}))


def skopeo(*args: str) -> None:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"skopeo {args[0]} failed: {done.stderr.strip()}")


def push(pair: Pair, layout: Path, ref: str, reference: str) -> None:
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        pair.creds,
        f"oci:{layout}:{ref}",
        f"docker://127.0.0.1:{pair.home.port}/{reference}",
    )


def held(pair: Pair, where: str) -> dict[tuple[str, str], str]:
    found = pair.engine.observe(NS, REG, where)
    assert found is not None
    return found


def until_fine(check: Any, what: str, deadline_s: float) -> None:
    """Like `realregistry.until`, polled every 20 ms (the time is the measurement)."""
    deadline = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def mib_per_s(size: int, seconds: float) -> str:
    return f"{size / MIB / seconds:8.1f} MiB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=10)
    parser.add_argument("--tags", type=int, default=6)
    parser.add_argument("--base-mib", type=int, default=8)
    parser.add_argument("--layer-mib", type=int, default=2)
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--push-mib", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0, help="pushes per second")
    args = parser.parse_args()
    built = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-tools.sh"), "registry"], capture_output=True, text=True, check=True
    )
    binary = Path(built.stdout.strip().splitlines()[-1])
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-replication-"))
    try:
        run(args, binary, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, binary: Path, work: Path) -> None:
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other processes move the figures)")
    layout = Layout(work / "dataset")
    bases = [layout.layer(args.base_mib * MIB) for _ in range(2)]
    images = {}
    for r in range(args.repos):
        for t in range(args.tags):
            ref = f"bench{r}-t{t}"
            layout.image(ref, [bases[(r + t) % 2], layout.layer(args.layer_mib * MIB)])
            images[ref] = (f"bench{r}", f"t{t}")
    dataset_bytes = sum(p.stat().st_size for p in layout.blobs.iterdir())
    pair = Pair(work / "pair", binary, {WEST: str(binary)}, workers=4)
    try:
        for ref, (repository, tag) in images.items():
            push(pair, layout.path, ref, f"{repository}:{tag}")
        home = held(pair, HOME)
        assert len(home) == len(images)
        print(
            f"dataset: {args.repos} repositories x {args.tags} tags, {dataset_bytes / MIB:.0f} MiB of blobs "
            f"(2 shared {args.base_mib} MiB bases + one {args.layer_mib} MiB layer per image)"
        )

        # 1. skopeo sync, cold then no-op
        config = {
            f"127.0.0.1:{pair.home.port}": {
                "tls-verify": False,
                "credentials": dict(zip(("username", "password"), pair.creds.split(":", 1), strict=True)),
                "images": {f"bench{r}": [f"t{t}" for t in range(args.tags)] for r in range(args.repos)},
            }
        }
        (work / "sync.yaml").write_text(json.dumps(config))
        sync = [
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            pair.creds,
            str(work / "sync.yaml"),
            f"127.0.0.1:{pair.west.port}",
        ]
        started = time.monotonic()
        skopeo(*sync)
        skopeo_cold = time.monotonic() - started
        if held(pair, WEST) != home:
            raise SystemExit("skopeo sync did not copy the dataset exactly")
        started = time.monotonic()
        skopeo(*sync)
        skopeo_noop = time.monotonic() - started

        # 2. west wiped; Dockyard's initial fill, then a no-op full comparison
        pair.west.stop_registry()
        shutil.rmtree(pair.west.work / "data")
        pair.west.start_registry()
        assert not held(pair, WEST)
        started = time.monotonic()
        pair.members.append(WEST)
        pair.engine.wake()

        def filled() -> bool:
            figures = pair.store.figures(NS, REG, WEST)
            return figures.fill_completed is not None and pair.settled()

        until_fine(filled, "the initial fill", 3600)
        fill = time.monotonic() - started
        figures = pair.store.figures(NS, REG, WEST)
        if held(pair, WEST) != home:
            raise SystemExit("the initial fill did not copy the dataset exactly")
        started = time.monotonic()
        pair.engine.full_sync(NS, REG)
        until_fine(pair.settled, "the no-op comparison's repairs", 600)
        noop = time.monotonic() - started

        print(f"initial fill      skopeo sync {skopeo_cold:7.2f} s {mib_per_s(dataset_bytes, skopeo_cold)}")
        print(
            f"                  Dockyard    {fill:7.2f} s {mib_per_s(dataset_bytes, fill)}"
            f"  ({figures.fill_copied}/{figures.fill_total} tags, {figures.fill_bytes / MIB:.0f} MiB copied)"
        )
        print(f"                  throughput ratio Dockyard / skopeo sync: {skopeo_cold / fill:.2f}x (goal >= 1.0x)")
        print(f"no-op resync      skopeo sync {skopeo_noop:7.2f} s   Dockyard full comparison {noop:7.2f} s")
        print(f"                  ratio skopeo / Dockyard: {skopeo_noop / noop:.1f}x")

        # 3. push -> available in west, at a steady rate
        pushes = Layout(work / "pushes")
        for i in range(args.pushes):
            pushes.image(f"p{i}", [pushes.layer(args.push_mib * MIB)])
        latencies = measure_pushes(pair, pushes.path, args.pushes, args.rate)
        p50 = statistics.median(latencies)
        p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1] if len(latencies) >= 2 else p50
        print(
            f"push -> available {args.pushes} pushes of {args.push_mib} MiB at {args.rate:g}/s: "
            f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s (goal p50 <= 2 s)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        pair.stop()


def measure_pushes(pair: Pair, layout: Path, count: int, rate: float) -> list[float]:
    """Seconds from each push's return to its tag on west; pushes started `1/rate` apart."""
    done: dict[str, float] = {}
    available: dict[str, float] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        push(pair, layout, f"p{i}", f"pushes:p{i}")
        with lock:
            done[f"p{i}"] = time.monotonic()

    clients = ReplicatorClients()  # its own connections, not the copier's
    endpoint = Endpoint(f"127.0.0.1:{pair.west.port}", pair.service, pair.signer, pair.ca_pem)
    west = clients.get((NS, REG, "bench-poller"), endpoint)
    deadline = time.monotonic() + 900

    def poll() -> None:
        while len(available) < count and time.monotonic() < deadline:
            with lock:
                waiting = [tag for tag in done if tag not in available]
            for tag in waiting:
                try:
                    if west.head_manifest("pushes", tag) is not None:
                        available[tag] = time.monotonic()
                except Exception:  # the repository appears with its first tag
                    pass
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    threads = []
    started = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, started + i / rate - time.monotonic()))
        thread = threading.Thread(target=one, args=(i,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    poller.join()
    clients.close()
    if len(available) < count:
        raise SystemExit(f"only {len(available)} of {count} pushes reached west")
    return [available[tag] - done[tag] for tag in done]


if __name__ == "__main__":
    main()
