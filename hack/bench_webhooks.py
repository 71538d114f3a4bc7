"""`make bench`: webhook delivery latency and throughput through Dockyard, beside distribution
posting the same pushes straight to the same receiver in the same run.

Set up: the local control plane, the operator as a subprocess (`python -m dockyard`, event intake on
a free local port, SQLite queue in a temporary state directory), a Registry `hub` (Standard) run
locally by hack/realregistry.py with exactly what the operator rendered, 10 Webhooks `hook-0..9`
selecting every push, and one HTTP receiver in this process. The registry gets one extra
notification endpoint, `direct`, pointing at the same receiver, so every push travels two paths:
- Dockyard: distribution → intake (`POST /events/…`) → SQLite queue → dispatcher → receiver
  (10 deliveries per push, one per Webhook);
- direct: distribution → receiver (one envelope per event; only manifest pushes are counted, as
  distribution also reports blob pushes and the blob HEADs/GETs of every push as pulls).

Latency of one arrival = the receiver's clock when the request's headers are read − the event's
`timestamp`, which distribution sets when it creates the event (same host clock) and Dockyard copies
into the ACR body unchanged: both paths are measured from the same origin. Dockyard's latency is
split at the moment its intake committed the delivery (`accepted_at` in the operator's SQLite queue,
read at the end): the part before is distribution's wait to post (it posts to each endpoint one
envelope at a time), the intake's work and the commit; the part after is queue and dispatch.

Reports (1) p50/p99 latency for pushes made one after another (each push's 11 arrivals awaited
before the next), and (2) with N pushes made as fast as a few parallel skopeo processes go,
deliveries/s = deliveries received / (last arrival − first push started), plus latency under that
load and the peak of `dockyard_webhook_queue_depth` scraped from the operator's metrics.
"""

from __future__ import annotations

import argparse
import calendar
import http.server
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from localcluster import LocalCluster, ensure_binaries  # noqa: E402
from realregistry import LocalRegistry, free_port, read_secret, until, write_oci_image  # noqa: E402

NAMESPACE = "bench-webhooks"
REGISTRY = "hub"
HOOKS = [f"hook-{i}" for i in range(10)]
DELIVERY_HEADER = "x-dockyard-delivery"  # dockyard.webhooks.signing.DELIVERY_HEADER
ATTEMPT_HEADER = "x-dockyard-attempt"

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an RFC 3339 time with any number of fractional digits (Go writes nanoseconds)."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) + float(match.group(7) or 0)
    zone = match.group(8)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


@dataclass(frozen=True)
class Arrival:
    path: str  # "/direct" or "/hook-<i>"
    received: float
    tag: str
    event_id: str
    event_time: float
    delivery: str  # Dockyard's delivery id; the event id for direct posts
    attempt: int

    @property
    def latency(self) -> float:
        return self.received - self.event_time


@dataclass
class Receiver:
    """Every POST answered 200 at once; arrivals of manifest pushes recorded with their receive time."""

    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    other_direct: dict[str, int] = field(default_factory=dict)  # direct events not counted, by kind
    unparsed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, path: str, received: float, headers: dict[str, str], body: bytes) -> None:
        try:
            data = json.loads(body)
        except ValueError:
            with self.lock:
                self.unparsed += 1
            return
        found: list[Arrival] = []
        if path == "/direct":
            for event in data.get("events", []) if isinstance(data, dict) else []:
                target = event.get("target") or {}
                if event.get("action") == "push" and "/manifests/" in str(target.get("url", "")):
                    found.append(
                        Arrival(
                            path,
                            received,
                            str(target.get("tag", "")),
                            event["id"],
                            parse_timestamp(event["timestamp"]),
                            event["id"],
                            1,
                        )
                    )
                else:
                    kind = (
                        f"{event.get('action')} {'manifest' if '/manifests/' in str(target.get('url', '')) else 'blob'}"
                    )
                    with self.lock:
                        self.other_direct[kind] = self.other_direct.get(kind, 0) + 1
        elif isinstance(data, dict) and data.get("action") == "push":
            found.append(
                Arrival(
                    path,
                    received,
                    str(data["target"].get("tag", "")),
                    data["id"],
                    parse_timestamp(data["timestamp"]),
                    headers.get(DELIVERY_HEADER, ""),
                    int(headers.get(ATTEMPT_HEADER, "1")),
                )
            )
        with self.lock:
            self.arrivals.extend(found)

    def of(self, tags: set[str]) -> tuple[list[Arrival], list[Arrival]]:
        """(Dockyard deliveries, direct manifest pushes) of these tags, first arrival of each
        delivery id only."""
        with self.lock:
            arrivals = list(self.arrivals)
        seen: set[tuple[str, str]] = set()
        dockyard: list[Arrival] = []
        direct: list[Arrival] = []
        for arrival in arrivals:
            key = (arrival.path, arrival.delivery)
            if arrival.tag not in tags or key in seen:
                continue
            seen.add(key)
            (direct if arrival.path == "/direct" else dockyard).append(arrival)
        return dockyard, direct

    def duplicates(self) -> int:
        with self.lock:
            return len(self.arrivals) - len({(a.path, a.delivery) for a in self.arrivals})


def start_receiver() -> tuple[Receiver, http.server.ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, for both Dockyard's httpx and distribution's Go client

        def do_POST(self) -> None:
            received = time.time()  # the request line and headers are read; nothing parsed yet
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            receiver.record(self.path.split("?")[0], received, {k.lower(): v for k, v in self.headers.items()}, body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


class BenchRegistry(LocalRegistry):
    """The rendered registry plus a second notification endpoint posting straight to the receiver."""

    def __init__(self, *args: Any, direct_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct_url = direct_url

    def container_env(self) -> dict[str, str]:
        env = super().container_env()
        endpoints = yaml.safe_load(env["REGISTRY_NOTIFICATIONS_ENDPOINTS"])
        endpoints.append(
            {"name": "direct", "url": self.direct_url, "timeout": "5s", "threshold": 3, "backoff": "1s", "headers": {}}
        )
        env["REGISTRY_NOTIFICATIONS_ENDPOINTS"] = yaml.safe_dump(endpoints, sort_keys=True)
        return env


class QueueDepth:
    """Polls `dockyard_webhook_queue_depth` from the operator's metrics endpoint."""

    def __init__(self, url: str) -> None:
        self.url, self.peak, self.samples = url, 0.0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> float | None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("dockyard_webhook_queue_depth "):
                return float(line.split()[1])
        return None

    def _run(self) -> None:
        while not self.stop.is_set():
            value = self.read()
            if value is not None:
                self.peak, self.samples = max(self.peak, value), self.samples + 1
            self.stop.wait(0.25)  # each scrape costs the operator a little CPU

    def __enter__(self) -> QueueDepth:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def accepted_times(state_dir: Path) -> dict[str, float]:
    """When the intake committed each delivery (`accepted_at` by delivery id), read from the
    operator's SQLite queue; empty if it cannot be read (the split below is then left out)."""
    try:
        db = sqlite3.connect(f"file:{state_dir / 'deliveries.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return {str(i): float(t) for i, t in db.execute("SELECT id, accepted_at FROM deliveries")}
        finally:
            db.close()
    except sqlite3.Error as error:
        print(f"warning: cannot read the delivery queue: {error}", file=sys.stderr)
        return {}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<52} n=0"
    ms = [v * 1000 for v in values]
    return f"{label:<52} n={len(ms):<4} p50={_pct(ms, 50):8.1f} ms  p99={_pct(ms, 99):8.1f} ms  max={max(ms):8.1f} ms"


def _webhooks_ready(cluster: LocalCluster) -> bool:
    result = cluster.kubectl("get", "webhooks", "-n", NAMESPACE, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    ready = {
        item["metadata"]["name"]
        for item in json.loads(result.stdout)["items"]
        for c in item.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    }
    return ready >= set(HOOKS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=30, help="pushes one after another")
    parser.add_argument("--burst", type=int, default=60, help="pushes as fast as possible")
    parser.add_argument("--parallel", type=int, default=4, help="skopeo processes at once during the burst")
    args = parser.parse_args()
    hooks = len(HOOKS)
    receiver, server = start_receiver()
    with (
        tempfile.TemporaryDirectory(prefix="dockyard-bench-webhooks-") as tmp,
        LocalCluster(ensure_binaries()) as cluster,
    ):
        work = Path(tmp)
        (work / "registry").mkdir()
        write_oci_image(work / "registry" / "image")
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
        )
        events_port, metrics_port = free_port(), free_port()
        env = cluster.env() | {
            "DOCKYARD_HEALTH_PORT": str(free_port()),
            "DOCKYARD_METRICS_HOST": "127.0.0.1",
            "DOCKYARD_METRICS_PORT": str(metrics_port),
            "DOCKYARD_EVENTS_HOST": "127.0.0.1",
            "DOCKYARD_EVENTS_PORT": str(events_port),
            "DOCKYARD_EVENTS_URL": f"http://127.0.0.1:{events_port}",
            "DOCKYARD_STATE_DIR": str(work / "state"),
            "DOCKYARD_LOG_FORMAT": "plain",
            "DOCKYARD_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT / "operator"),
        }
        operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
        registry: BenchRegistry | None = None
        try:
            cluster.kubectl("create", "namespace", NAMESPACE)
            registry_body = {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "Registry",
                "metadata": {"name": REGISTRY},
                "spec": {"sku": "Standard", "adminUser": {"enabled": True}},
            }
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(registry_body))
            registry = BenchRegistry(
                cluster, NAMESPACE, REGISTRY, work / "registry", direct_url=receiver.url("/direct")
            )
            registry.start()
            started_registry = registry
            for name in HOOKS:
                hook = {
                    "apiVersion": "dockyard.dev/v1alpha1",
                    "kind": "Webhook",
                    "metadata": {"name": name},
                    "spec": {
                        "registryRef": {"name": REGISTRY},
                        "serviceUri": receiver.url(f"/{name}"),
                        "actions": ["push"],
                    },
                }
                cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(hook))
            until(lambda: _webhooks_ready(cluster), "10 Webhooks Ready=True", 120)
            admin = until(lambda: read_secret(cluster, NAMESPACE, f"{REGISTRY}-admin"), "the admin Secret")
            creds = f"{REGISTRY}:{admin['password']}"

            def push(tag: str) -> float:
                started = time.monotonic()
                result = started_registry.push(creds, tag)
                if result.returncode != 0:
                    raise RuntimeError(f"skopeo push of {tag} failed: {result.stderr}")
                return time.monotonic() - started

            def arrived(tags: set[str], timeout: float) -> tuple[list[Arrival], list[Arrival]]:
                want = (hooks * len(tags), len(tags))

                def complete() -> bool:
                    dockyard, direct = receiver.of(tags)
                    return len(dockyard) >= want[0] and len(direct) >= want[1]

                try:
                    until(complete, f"{want} arrivals", timeout)
                except TimeoutError:
                    got = tuple(map(len, receiver.of(tags)))
                    print(
                        f"warning: {got} of {want} (Dockyard, direct) arrivals for {len(tags)} tag(s) after {timeout:.0f} s",
                        file=sys.stderr,
                    )
                return receiver.of(tags)

            # Warm-up: blobs uploaded once, token service and intake paths loaded; not measured.
            push("warmup")
            arrived({"warmup"}, 60)

            # 1. One push at a time.
            seq_dockyard, seq_direct, seq_fanout, push_seconds = [], [], [], []
            seq_dockyard_arrivals: list[Arrival] = []
            for i in range(args.sequential):
                tag = f"seq-{i}"
                push_seconds.append(push(tag))
                dockyard, direct = arrived({tag}, 30)
                seq_dockyard += [a.latency for a in dockyard]
                seq_dockyard_arrivals += dockyard
                seq_direct += [a.latency for a in direct]
                if dockyard:
                    seq_fanout.append(max(a.latency for a in dockyard))

            # 2. A burst of pushes, as fast as `parallel` skopeo processes go.
            tags = [f"burst-{i}" for i in range(args.burst)]
            with QueueDepth(f"http://127.0.0.1:{metrics_port}/metrics") as depth:
                first_push = time.time()
                with ThreadPoolExecutor(args.parallel) as pool:
                    list(pool.map(push, tags))
                pushed = time.time() - first_push
                burst_dockyard, burst_direct = arrived(set(tags), 600)
                time.sleep(0.5)
            retries = sum(1 for a in burst_dockyard if a.attempt > 1)
            accepted = accepted_times(work / "state")

            def split(arrivals: list[Arrival]) -> tuple[list[float], list[float]]:
                known = [(a, accepted[a.delivery]) for a in arrivals if a.delivery in accepted]
                return [t - a.event_time for a, t in known], [a.received - t for a, t in known]

            def rate(arrivals: list[Arrival]) -> str:
                if not arrivals:
                    return "none arrived"
                span = max(a.received for a in arrivals) - first_push
                return f"{len(arrivals):4d} in {span:6.2f} s = {len(arrivals) / span:7.1f}/s"

            print()
            print(
                f"webhook delivery: {hooks} Webhooks on one registry, each selecting every push; "
                f"'direct' = distribution posting to the same receiver"
            )
            print(
                f"1. {args.sequential} pushes one after another (skopeo copy p50 {_pct(push_seconds, 50):.2f} s), "
                "latency = receiver time - event timestamp"
            )
            print(_line("   direct (distribution -> receiver)", seq_direct))
            print(_line(f"   Dockyard, each of {hooks} deliveries", seq_dockyard))
            print(_line(f"   Dockyard, last of the {hooks} deliveries of a push", seq_fanout))
            if accepted:
                intake, queue = split(seq_dockyard_arrivals)
                print(_line("     of which event -> committed by the intake", intake))
                print(_line("     of which committed -> at the receiver", queue))
            print(
                f"2. {args.burst} pushes by {args.parallel} parallel skopeo processes ({pushed:.2f} s to push, "
                f"{args.burst / pushed:.1f} pushes/s); rate = arrivals / (last arrival - first push started)"
            )
            print(f"   direct                 {rate(burst_direct)}   (expected {args.burst})")
            print(f"   Dockyard               {rate(burst_dockyard)}   (expected {hooks * args.burst})")
            print(_line("   direct latency under load", [a.latency for a in burst_direct]))
            print(_line("   Dockyard latency under load", [a.latency for a in burst_dockyard]))
            if accepted:
                intake, queue = split(burst_dockyard)
                print(_line("     of which event -> committed by the intake", intake))
                print(_line("     of which committed -> at the receiver", queue))
            print(
                f"   Dockyard queue depth peak {depth.peak:.0f} ({depth.samples} samples); "
                f"retried deliveries {retries}; duplicate arrivals {receiver.duplicates()}"
            )
            others = ", ".join(f"{k}: {v}" for k, v in sorted(receiver.other_direct.items())) or "none"
            print(
                f"   other direct events (not counted): {others}"
                + (f"; unparsable bodies: {receiver.unparsed}" if receiver.unparsed else "")
            )
        finally:
            if registry is not None:
                registry.stop()
            operator.terminate()
            operator.wait(timeout=30)
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
