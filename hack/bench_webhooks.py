"""`make bench`: webhook delivery latency and throughput through Dockyard, beside distribution
posting the same pushes straight to the same receivers in the same run.

Set up: the local control plane, the operator as a subprocess (`python -m dockyard`, event intake on
a free local port, SQLite queue in a temporary state directory), a Registry `hub` (Standard for up to
10 Webhooks, Premium beyond) run locally by hack/realregistry.py with exactly what the operator
rendered, `--hooks` Webhooks `hook-0..` selecting every push, and `--receivers` fast HTTP receivers
(hack/bench_dispatch.py's `FastReceiver`: plain asyncio HTTP/1.1 with keep-alive on 127.0.0.1, in a
process of their own, answering 200 at once), the webhooks spread over them. The registry gets one
extra notification endpoint, `direct`, pointing at the first receiver, so every push travels two
paths:
- Dockyard: distribution → intake (`POST /events/…`) → SQLite queue → dispatcher → receiver
  (one delivery per Webhook per push);
- direct: distribution → receiver (one envelope per event; only manifest pushes are counted, as
  distribution also reports blob pushes and the blob HEADs/GETs of every push as pulls).

Latency of one arrival = the receiver's clock when the request's headers are read − the event's
`timestamp`, which distribution sets when it creates the event (same host clock) and Dockyard copies
into the ACR body unchanged: both paths are measured from the same origin. Dockyard's latency is
split at the moment its intake committed the delivery (`accepted_at` in the operator's SQLite queue,
read at the end): the part before is distribution's wait to post (it posts to each endpoint one
envelope at a time), the intake's work and the commit; the part after is queue and dispatch.

Reports, each figure printed as soon as it is measured:
1. p50/p99 latency for pushes made one after another (each push's arrivals awaited before the next);
2. with N pushes made as fast as a few parallel skopeo processes go, deliveries/s = deliveries
   received / (last arrival − first push started), plus latency under that load and the peak of
   `dockyard_webhook_queue_depth` scraped from the operator's metrics; Dockyard cannot deliver
   faster than the pushes come (the offered rate is printed beside it);
3. the dispatcher's throughput: `--events` synthetic push events posted straight to the intake as
   distribution posts them (same token, one event per envelope, `--posters` at once, as fast as the
   intake takes them), so the queue fills faster than it drains: deliveries/s and event → receiver
   latency (timestamp set when posted), split at the commit.
The machine's load average is printed with each part: the figures depend on what else runs.
"""

from __future__ import annotations

import argparse
import calendar
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from bench_dispatch import FastReceiver  # noqa: E402
from bench_probes import cpu_seconds  # noqa: E402
from localcluster import LocalCluster, ensure_binaries  # noqa: E402
from realregistry import LocalRegistry, free_port, read_secret, until, write_oci_image  # noqa: E402

NAMESPACE = "bench-webhooks"
REGISTRY = "hub"
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
    """Every POST answered 200 at once (by `FastReceiver`); arrivals of push events recorded with
    their receive time. Port 0 serves `/direct`; webhook i posts to port i % receivers."""

    fast: FastReceiver
    arrivals: list[Arrival] = field(default_factory=list)
    other_direct: dict[str, int] = field(default_factory=dict)  # direct events not counted, by kind
    unparsed: int = 0
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, index: int = 0) -> str:
        return self.fast.url(index, path)

    def _update(self) -> None:
        with self.lock:
            raw = self.fast.arrivals()
            for a in raw[self.seen :]:
                self._record(a.path.split("?")[0], a.received, a.delivery, a.attempt, a.body.encode())
            self.seen = len(raw)

    def _record(self, path: str, received: float, delivery: str, attempt: int, body: bytes) -> None:
        try:
            data = json.loads(body)
        except ValueError:
            self.unparsed += 1
            return
        if path == "/direct":
            for event in data.get("events", []) if isinstance(data, dict) else []:
                target = event.get("target") or {}
                if event.get("action") == "push" and "/manifests/" in str(target.get("url", "")):
                    self.arrivals.append(
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
                    self.other_direct[kind] = self.other_direct.get(kind, 0) + 1
        elif isinstance(data, dict) and data.get("action") == "push":
            self.arrivals.append(
                Arrival(
                    path,
                    received,
                    str(data["target"].get("tag", "")),
                    data["id"],
                    parse_timestamp(data["timestamp"]),
                    delivery,
                    attempt,
                )
            )

    def count(self) -> int:
        return self.fast.count_arrived()

    def of(self, tags: set[str]) -> tuple[list[Arrival], list[Arrival]]:
        """(Dockyard deliveries, direct manifest pushes) of these tags, first arrival of each
        delivery id only."""
        self._update()
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
        self._update()
        with self.lock:
            return len(self.arrivals) - len({(a.path, a.delivery) for a in self.arrivals})


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


def _webhooks_ready(cluster: LocalCluster, hooks: list[str]) -> bool:
    result = cluster.kubectl("get", "webhooks", "-n", NAMESPACE, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    ready = {
        item["metadata"]["name"]
        for item in json.loads(result.stdout)["items"]
        for c in item.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    }
    return ready >= set(hooks)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def operator_cpu(pid: int) -> float:
    """CPU time (user + system) the operator has used so far, all its threads."""
    used = cpu_seconds(pid)
    if used is None:
        raise RuntimeError(f"the operator (pid {pid}) is gone")
    return used


def rfc3339_now() -> str:
    """What distribution writes: UTC with nanoseconds."""
    now = time.time()
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{int(now % 1 * 1e9):09d}Z"


def synthetic_envelope(tag: str, registry_port: int) -> bytes:
    """One manifest push as distribution 2.8 posts it."""
    digest = "sha256:" + uuid.uuid4().hex * 2
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": rfc3339_now(),
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 401,
            "digest": digest,
            "length": 401,
            "repository": "team/app",
            "url": f"http://127.0.0.1:{registry_port}/v2/team/app/manifests/{digest}",
            "tag": tag,
        },
        "request": {"id": str(uuid.uuid4()), "addr": "127.0.0.1", "host": "127.0.0.1", "method": "PUT"},
        "actor": {"name": REGISTRY},
        "source": {"addr": "bench", "instanceID": "bench"},
    }
    return json.dumps({"events": [event]}).encode()


def post_envelopes(port: int, token: str, bodies: list[bytes]) -> int:
    """POST each envelope to the intake over one keep-alive connection, again on 503 (as
    distribution does); returns how many were refused for good."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    refused = 0
    try:
        for body in bodies:
            for _ in range(20):
                connection.request(
                    "POST",
                    f"/events/{NAMESPACE}/{REGISTRY}",
                    body=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/vnd.docker.distribution.events.v1+json",
                    },
                )
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
                if response.status != 503:
                    refused += 1
                    break
                time.sleep(0.2)
    finally:
        connection.close()
    return refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hooks", type=int, default=50, help="Webhooks, each selecting every push")
    parser.add_argument("--receivers", type=int, default=10, help="receiver ports the webhooks are spread over")
    parser.add_argument("--sequential", type=int, default=30, help="pushes one after another")
    parser.add_argument("--burst", type=int, default=60, help="pushes as fast as possible")
    parser.add_argument("--parallel", type=int, default=4, help="skopeo processes at once during the burst")
    parser.add_argument("--events", type=int, default=200, help="synthetic events posted to the intake (part 3)")
    parser.add_argument("--posters", type=int, default=4, help="connections posting them at once")
    parser.add_argument(
        "--operator",
        type=Path,
        default=ROOT / "operator",
        help="the operator source tree to run (another version's, to compare both under the same load)",
    )
    args = parser.parse_args()
    hooks = [f"hook-{i}" for i in range(args.hooks)]
    sku = "Standard" if args.hooks <= 10 else "Premium"
    with (
        FastReceiver(args.receivers) as fast,
        tempfile.TemporaryDirectory(prefix="dockyard-bench-webhooks-") as tmp,
        LocalCluster(ensure_binaries()) as cluster,
    ):
        receiver = Receiver(fast)
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
            "PYTHONPATH": str(args.operator.resolve()),
        }
        operator = subprocess.Popen([sys.executable, "-m", "dockyard"], env=env)
        registry: BenchRegistry | None = None
        try:
            cluster.kubectl("create", "namespace", NAMESPACE)
            registry_body = {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": "Registry",
                "metadata": {"name": REGISTRY},
                "spec": {"sku": sku, "adminUser": {"enabled": True}},
            }
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(registry_body))
            registry = BenchRegistry(
                cluster, NAMESPACE, REGISTRY, work / "registry", direct_url=receiver.url("/direct")
            )
            registry.start()
            started_registry = registry
            manifests = [
                {
                    "apiVersion": "dockyard.dev/v1alpha1",
                    "kind": "Webhook",
                    "metadata": {"name": name},
                    "spec": {
                        "registryRef": {"name": REGISTRY},
                        "serviceUri": receiver.url(f"/{name}", i),
                        "actions": ["push"],
                    },
                }
                for i, name in enumerate(hooks)
            ]
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(manifests))
            until(lambda: _webhooks_ready(cluster, hooks), f"{len(hooks)} Webhooks Ready=True", 300)
            admin = until(lambda: read_secret(cluster, NAMESPACE, f"{REGISTRY}-admin"), "the admin Secret")
            creds = f"{REGISTRY}:{admin['password']}"

            def push(tag: str) -> float:
                started = time.monotonic()
                result = started_registry.push(creds, tag)
                if result.returncode != 0:
                    raise RuntimeError(f"skopeo push of {tag} failed: {result.stderr}")
                return time.monotonic() - started

            def arrived(tags: set[str], timeout: float, direct: bool = True) -> tuple[list[Arrival], list[Arrival]]:
                want = (len(hooks) * len(tags), len(tags) if direct else 0)

                def complete() -> bool:
                    if fast.count_arrived() < want[0] + want[1]:
                        return False
                    dockyard, direct_ = receiver.of(tags)
                    return len(dockyard) >= want[0] and len(direct_) >= want[1]

                try:
                    until(complete, f"{want} arrivals", timeout)
                except TimeoutError:
                    got = tuple(map(len, receiver.of(tags)))
                    print(
                        f"warning: {got} of {want} (Dockyard, direct) arrivals for {len(tags)} tag(s) after {timeout:.0f} s",
                        file=sys.stderr,
                    )
                return receiver.of(tags)

            def split(arrivals: list[Arrival]) -> tuple[list[float], list[float]]:
                accepted = accepted_times(work / "state")
                known = [(a, accepted[a.delivery]) for a in arrivals if a.delivery in accepted]
                return [t - a.event_time for a, t in known], [a.received - t for a, t in known]

            def cpu_line(cpu: float, wall: float, deliveries: int) -> str:
                return (
                    f"   operator CPU {cpu:.2f} s = {1000 * cpu / max(1, deliveries):.2f} ms per delivery, "
                    f"{100 * cpu / wall:.0f}% of one core over the {wall:.1f} s"
                )

            def rate(arrivals: list[Arrival], since: float) -> str:
                if not arrivals:
                    return "none arrived"
                span = max(a.received for a in arrivals) - since
                return f"{len(arrivals):5d} in {span:6.2f} s = {len(arrivals) / span:7.1f}/s"

            # Warm-up: blobs uploaded once, token service and intake paths loaded; not measured.
            push("warmup")
            arrived({"warmup"}, 60)
            print()
            print(
                f"webhook delivery: {len(hooks)} Webhooks on one {sku} registry, each selecting every push, "
                f"over {args.receivers} receivers; 'direct' = distribution posting to the first receiver"
                + (
                    f"; operator from {args.operator}"
                    if args.operator.resolve() != (ROOT / "operator").resolve()
                    else ""
                ),
                flush=True,
            )

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
            if args.sequential:
                print(
                    f"1. {args.sequential} pushes one after another (skopeo copy p50 {_pct(push_seconds, 50):.2f} s), "
                    f"latency = receiver time - event timestamp; {load_average()}"
                )
                print(_line("   direct (distribution -> receiver)", seq_direct))
                print(_line(f"   Dockyard, each of {len(hooks)} deliveries", seq_dockyard))
                print(_line(f"   Dockyard, last of the {len(hooks)} deliveries of a push", seq_fanout))
                intake, queue = split(seq_dockyard_arrivals)
                if intake:
                    print(_line("     of which event -> committed by the intake", intake))
                    print(_line("     of which committed -> at the receiver", queue))
                sys.stdout.flush()

            # 2. A burst of pushes, as fast as `parallel` skopeo processes go.
            if args.burst:
                tags = [f"burst-{i}" for i in range(args.burst)]
                with QueueDepth(f"http://127.0.0.1:{metrics_port}/metrics") as depth:
                    cpu = operator_cpu(operator.pid)
                    first_push = time.time()
                    with ThreadPoolExecutor(args.parallel) as pool:
                        list(pool.map(push, tags))
                    pushed = time.time() - first_push
                    burst_dockyard, burst_direct = arrived(set(tags), 600)
                    cpu, wall = operator_cpu(operator.pid) - cpu, time.time() - first_push
                    time.sleep(0.5)
                retries = sum(1 for a in burst_dockyard if a.attempt > 1)
                print(
                    f"2. {args.burst} pushes by {args.parallel} parallel skopeo processes ({pushed:.2f} s to push, "
                    f"{args.burst / pushed:.1f} pushes/s = {len(hooks) * args.burst / pushed:.0f} deliveries/s offered); "
                    f"rate = arrivals / (last arrival - first push started); {load_average()}"
                )
                print(f"   direct                 {rate(burst_direct, first_push)}   (expected {args.burst})")
                print(
                    f"   Dockyard               {rate(burst_dockyard, first_push)}   (expected {len(hooks) * args.burst})"
                )
                print(_line("   direct latency under load", [a.latency for a in burst_direct]))
                print(_line("   Dockyard latency under load", [a.latency for a in burst_dockyard]))
                intake, queue = split(burst_dockyard)
                if intake:
                    print(_line("     of which event -> committed by the intake", intake))
                    print(_line("     of which committed -> at the receiver", queue))
                print(
                    f"   Dockyard queue depth peak {depth.peak:.0f} ({depth.samples} samples); "
                    f"retried deliveries {retries}"
                )
                print(cpu_line(cpu, wall, len(burst_dockyard)), flush=True)

            # 3. The dispatcher's throughput: the intake fed faster than deliveries drain.
            if args.events:
                token = until(lambda: read_secret(cluster, NAMESPACE, f"{REGISTRY}-events"), "the events Secret")[
                    "token"
                ]
                tags = [f"synthetic-{i}" for i in range(args.events)]
                chunks = [tags[i :: args.posters] for i in range(args.posters)]
                with QueueDepth(f"http://127.0.0.1:{metrics_port}/metrics") as depth:
                    cpu = operator_cpu(operator.pid)
                    first_post = time.time()
                    with ThreadPoolExecutor(args.posters) as pool:
                        refused = sum(
                            pool.map(
                                lambda chunk: post_envelopes(
                                    events_port, token, [synthetic_envelope(t, started_registry.port) for t in chunk]
                                ),
                                chunks,
                            )
                        )
                    posted = time.time() - first_post
                    synthetic, _ = arrived(set(tags), 600, direct=False)
                    cpu, wall = operator_cpu(operator.pid) - cpu, time.time() - first_post
                    time.sleep(0.5)
                print(
                    f"3. {args.events} events posted to the intake by {args.posters} connections ({posted:.2f} s, "
                    f"{args.events / posted:.0f} events/s = {len(hooks) * args.events / posted:.0f} deliveries/s offered"
                    f"{f'; {refused} refused' if refused else ''}); {load_average()}"
                )
                print(
                    f"   Dockyard               {rate(synthetic, first_post)}   (expected {len(hooks) * args.events})"
                )
                print(_line("   Dockyard latency (event posted -> receiver)", [a.latency for a in synthetic]))
                intake, queue = split(synthetic)
                if intake:
                    print(_line("     of which event -> committed by the intake", intake))
                    print(_line("     of which committed -> at the receiver", queue))
                print(
                    f"   Dockyard queue depth peak {depth.peak:.0f} ({depth.samples} samples); "
                    f"retried deliveries {sum(1 for a in synthetic if a.attempt > 1)}"
                )
                print(cpu_line(cpu, wall, len(synthetic)), flush=True)
            receiver.of(set())
            others = ", ".join(f"{k}: {v}" for k, v in sorted(receiver.other_direct.items())) or "none"
            print(
                f"duplicate arrivals {receiver.duplicates()}; other direct events (not counted): {others}"
                + (f"; unparsable bodies: {receiver.unparsed}" if receiver.unparsed else "")
            )
        finally:
            if registry is not None:
                registry.stop()
            operator.terminate()
            operator.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
