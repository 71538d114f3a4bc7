"""Dispatcher + store micro-bench, no cluster: how many webhook deliveries per second the operator's
webhook pipeline sends to fast local receivers, and how long a delivery waits in the queue.

The pipeline is the operator's own `WebhookService` (SQLite store in a temporary directory, the
dispatcher started as the operator starts it, on the calling event loop, which stands in for kopf's)
with a stand-in Kubernetes client (webhooks are put in the directory directly; status patches are
dropped). Events are fed the way the intake does: one `enqueue` commit (`synchronous=FULL`) per event
with one delivery per webhook, then `wake()`, from a thread of their own, as fast as possible or at
`--rate` events/s (`--backlog` commits them all before the dispatcher starts).

The receivers (`FastReceiver`) are plain asyncio HTTP/1.1 servers with keep-alive on 127.0.0.1, in a
subprocess of their own so they take no time from the pipeline's interpreter; each answers 200 at
once and reports (receive time, port, path, delivery id, attempt, body) back over a pipe.

Reports deliveries/s = deliveries received / (last arrival − first commit) and the latency from the
commit (`accepted_at`) to the receiver's clock, p50/p99. `--loop-load MS` keeps the stand-in kopf
loop busy MS ms out of every 10 ms (handlers, watch streams) to show what that costs the dispatcher.
The machine's load average is printed with the figures: the result depends on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


# --- the receiver, in its own process -------------------------------------------------------------


class _ReceiverProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1: keep-alive, bodies by Content-Length or chunked, 200 with no body."""

    def __init__(self, port: int, out: list[list[Any]]) -> None:
        self.port, self.out = port, out
        self.buffer = bytearray()
        self.head: tuple[float, str, dict[str, str]] | None = None
        self.body = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._step():
            pass

    def _step(self) -> bool:
        """Consume what the buffer holds of the current request; False when more bytes are needed."""
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            received = time.time()  # the request line and headers are read
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.head = (received, lines[0].split(" ")[1], headers)
            self.body = bytearray()
        received, path, headers = self.head
        if "chunked" in headers.get("transfer-encoding", ""):
            while True:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return False
                size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
                if size == 0:
                    trailer = self.buffer.find(b"\r\n\r\n", end)
                    if self.buffer[end : end + 4] == b"\r\n\r\n":
                        del self.buffer[: end + 4]
                    elif trailer >= 0:
                        del self.buffer[: trailer + 4]
                    else:
                        return False
                    break
                if len(self.buffer) < end + 2 + size + 2:
                    return False
                self.body += self.buffer[end + 2 : end + 2 + size]
                del self.buffer[: end + 2 + size + 2]
        else:
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < length:
                return False
            self.body = self.buffer[:length]
            del self.buffer[:length]
        self.head = None
        assert self.transport is not None
        self.transport.write(RESPONSE)
        self.out.append(
            [
                received,
                self.port,
                path,
                headers.get("x-dockyard-delivery", ""),
                int(headers.get("x-dockyard-attempt", "1")),
                bytes(self.body).decode("utf-8", "replace"),
            ]
        )
        return True


async def _serve(count: int) -> None:
    loop = asyncio.get_running_loop()
    out: list[list[Any]] = []
    servers = []
    for _ in range(count):
        holder: dict[str, int] = {}
        server = await loop.create_server(
            lambda h=holder: _ReceiverProtocol(h["port"], out), "127.0.0.1", 0, backlog=1024
        )
        holder["port"] = server.sockets[0].getsockname()[1]
        servers.append(server)
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    while True:
        await asyncio.sleep(0.02)
        if out:
            batch, out[:] = list(out), []
            sys.stdout.write("".join(json.dumps(a) + "\n" for a in batch))
            sys.stdout.flush()


@dataclass(frozen=True)
class Arrival:
    received: float
    port: int
    path: str
    delivery: str
    attempt: int
    body: str


class FastReceiver:
    """`count` loopback HTTP servers in a subprocess; `arrivals()` is what they received so far."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.ports: list[int] = []
        self._lines: list[str] = []  # parsed only when asked: the pipeline shares this interpreter
        self._parsed: list[Arrival] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> FastReceiver:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve-receivers", str(self.count)],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._process.stdout is not None
        self.ports = json.loads(self._process.stdout.readline())
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True)
        self._reader.start()
        return self

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)

    def url(self, index: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}{path}"

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            lines = self._lines[len(self._parsed) :]
            self._parsed += [Arrival(*json.loads(line)) for line in lines]
            return list(self._parsed)

    def count_arrived(self) -> int:
        with self._lock:
            return len(self._lines)

    def __exit__(self, *_: Any) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


# --- the pipeline ---------------------------------------------------------------------------------


class FakeKube:
    """What the webhook service asks of the API server here: the Webhook bodies (for status) only."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches = 0

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.bodies.get((namespace, name))

    def list(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return []

    def patch_status(self, *_: Any, **__: Any) -> None:
        self.patches += 1

    def post_event(self, *_: Any, **__: Any) -> None:
        pass


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def event_body(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"event-{i:06d}",
            "timestamp": "2026-11-29T09:06:05.822736285Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": 401,
                "digest": "sha256:bff7" + "0" * 60,
                "length": 401,
                "repository": "team/app",
                "tag": f"v{i}",
            },
            "request": {"id": f"request-{i}", "host": "hub:5000", "method": "PUT", "useragent": "skopeo/1.9.3"},
        },
        separators=(",", ":"),
    ).encode()


async def run_bench(args: argparse.Namespace) -> dict[str, float]:
    sys.path.insert(0, str(args.operator.resolve()))
    from prometheus_client import CollectorRegistry

    from dockyard.webhooks.directory import Target, WebhookEntry
    from dockyard.webhooks.scope import EventFilter
    from dockyard.webhooks.service import WebhookService
    from dockyard.webhooks.store import NewDelivery

    namespace, registry = "bench", "hub"
    kube = FakeKube()
    expected = args.events * args.webhooks
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-dispatch-") as tmp, FastReceiver(args.receivers) as rx:
        service = WebhookService(
            kube,  # type: ignore[arg-type]
            Path(tmp),
            CollectorRegistry(),
            history_days=7,
            user_agent="Dockyard-Webhook/bench",
            concurrency=args.concurrency,
        )
        entries = []
        for i in range(args.webhooks):
            name, uid = f"hook-{i}", f"uid-{i:04d}"
            entries.append(
                WebhookEntry(
                    uid=uid,
                    namespace=namespace,
                    name=name,
                    registry=registry,
                    filter=EventFilter(frozenset({"push"}), "", True),
                    max_attempts=15,
                    timeout_seconds=10.0,
                    target=Target(url=rx.url(i, f"/{name}"), headers=(), signing_key=b"k" * 32),
                    generation=1,
                )
            )
            kube.bodies[(namespace, name)] = {"metadata": {"uid": uid, "name": name, "generation": 1}}
        service.directory.load(namespace, entries)

        def commit(i: int) -> None:
            body = event_body(i)
            service.store.enqueue(
                NewDelivery(
                    id=f"{e.uid}:{i}",
                    webhook_uid=e.uid,
                    namespace=namespace,
                    webhook=e.name,
                    event_id=f"event-{i:06d}",
                    action="push",
                    target=f"team/app:v{i}",
                    body=body,
                    max_attempts=15,
                )
                for e in entries
            )
            service._enqueued([e.uid for e in entries])

        def feed(first: list[float]) -> None:
            start = time.monotonic()
            first.append(time.time())
            for i in range(args.events):
                if args.rate:
                    ahead = start + i / args.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                commit(i)

        first: list[float] = []
        if args.backlog:
            feed(first)
        stop_load = threading.Event()

        async def loop_load() -> None:  # a busy kopf: handlers and watch streams on the same loop
            while not stop_load.is_set():
                until = time.perf_counter() + args.loop_load / 1000
                while time.perf_counter() < until:
                    pass
                await asyncio.sleep((10 - args.loop_load) / 1000)

        load_task = asyncio.create_task(loop_load()) if args.loop_load else None
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        # (an intake port to bind for versions whose service also runs the intake)
        await (service.start("127.0.0.1", 0) if inspect.signature(service.start).parameters else service.start())
        feeder = None
        if not args.backlog:
            feeder = threading.Thread(target=feed, args=(first,), daemon=True)
            feeder.start()
        deadline = time.monotonic() + args.timeout
        while rx.count_arrived() < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        stop_load.set()
        if load_task is not None:
            await load_task
        if feeder is not None:
            feeder.join()
        await asyncio.sleep(0.3)  # late duplicates
        arrivals = rx.arrivals()
        accepted = {d.id: d.accepted_at for e in entries for d in service.store.of_webhook(namespace, e.name)}
        pending = service.store.pending_count()
        await service.stop()
    firsts: dict[str, Arrival] = {}
    for a in arrivals:
        firsts.setdefault(a.delivery, a)
    unique = list(firsts.values())
    if not unique:
        print("no delivery arrived", file=sys.stderr)
        return {}
    span = max(a.received for a in unique) - first[0]
    latency = [(a.received - accepted[a.delivery]) * 1000 for a in unique if a.delivery in accepted]
    cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    if args.loop_load:
        cpu -= span * args.loop_load / 10  # the stand-in kopf's own spinning
    result = {
        "deliveries": len(unique),
        "rate": len(unique) / span,
        "span": span,
        "p50": _pct(latency, 50),
        "p99": _pct(latency, 99),
        "max": max(latency),
        "duplicates": len(arrivals) - len(unique),
        "pending": pending,
        "retried": sum(1 for a in unique if a.attempt > 1),
        "cpu_ms": cpu * 1000 / len(unique),
    }
    print(
        f"{'backlog' if args.backlog else 'stream'}: {args.events} events x {args.webhooks} webhooks on "
        f"{args.receivers} receivers, concurrency {args.concurrency}"
        + (f", rate {args.rate}/s" if args.rate else "")
        + (f", kopf loop busy {args.loop_load}/10 ms" if args.loop_load else "")
        + (f", operator from {args.operator}" if args.operator.resolve() != (ROOT / "operator").resolve() else "")
        + f": {len(unique)}/{expected} in {span:.2f} s = {result['rate']:.0f} deliveries/s; "
        f"commit -> receiver p50 {result['p50']:.0f} ms p99 {result['p99']:.0f} ms max {result['max']:.0f} ms; "
        f"CPU {result['cpu_ms']:.2f} ms/delivery (pipeline process, feeding included); "
        f"duplicates {result['duplicates']}, retried {result['retried']}, left pending {pending}; {load_average()}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-receivers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--webhooks", type=int, default=50)
    parser.add_argument("--receivers", type=int, default=10, help="receiver ports; webhooks spread over them")
    parser.add_argument("--events", type=int, default=100, help="events, each delivered to every webhook")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0, help="events/s fed (0: as fast as commits go)")
    parser.add_argument("--backlog", action="store_true", help="commit every event before the dispatcher starts")
    parser.add_argument("--loop-load", type=int, default=0, help="ms of every 10 ms the stand-in kopf loop is busy")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--operator",
        type=Path,
        default=ROOT / "operator",
        help="the operator source tree (another version's, to compare)",
    )
    args = parser.parse_args()
    if args.serve_receivers:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args.serve_receivers))
        return 0
    if not 0 <= args.loop_load < 10:
        parser.error("--loop-load is in [0, 10)")
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for _ in range(args.repeat):
        asyncio.run(run_bench(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
