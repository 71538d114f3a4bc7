"""The dispatcher's loop as the service runs it (`run`: an event loop and thread of its own): slots
and fairness with the buffer of due deliveries, batched reads, wake-ups, outcomes counted only once
committed, attempts cut short made again, and connections kept per receiver.

Time limits here only keep a broken test from hanging; none is a performance target."""

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from test_webhook_dispatch import BODY, EVENT, URL, entry

from dockyard.webhooks import dispatch
from dockyard.webhooks.directory import Target, WebhookDirectory
from dockyard.webhooks.dispatch import Dispatcher
from dockyard.webhooks.metrics import WebhookMetrics, register_webhook_metrics
from dockyard.webhooks.store import AttemptRecord, DeliveryStore, NewDelivery

WAIT = 10.0
KEY = b"signing-key"


def new(id: str, uid: str) -> NewDelivery:
    return NewDelivery(
        id=id,
        webhook_uid=uid,
        namespace="team",
        webhook=f"hook-{uid}",
        event_id=f"{EVENT.id}-{id}",
        action="push",
        target=EVENT.target_name,
        body=BODY,
        max_attempts=15,
    )


@dataclass
class Setup:
    path: Path
    store: DeliveryStore
    directory: WebhookDirectory = field(default_factory=WebhookDirectory)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    changed: list[str] = field(default_factory=list)
    metrics: WebhookMetrics | None = None

    def dispatcher(self, handler: Callable[[httpx.Request], Any] | None = None, **options: Any) -> Dispatcher:
        async def load_namespace(namespace: str) -> None:
            self.directory.load(namespace, [])

        if self.metrics is None:
            self.metrics = register_webhook_metrics(self.registry, self.store.pending_count)
        return Dispatcher(
            self.store,
            self.directory,
            load_namespace,
            self.metrics,
            self.changed.append,
            user_agent="Dockyard-Webhook/test",
            transport=None if handler is None else httpx.MockTransport(handler),
            **options,
        )

    def delivered(self) -> float:
        return self.registry.get_sample_value("dockyard_webhook_deliveries_total", {"outcome": "delivered"}) or 0.0

    def state(self, id: str) -> tuple[str, int]:
        delivery = self.store.get(id)
        assert delivery is not None
        return delivery.state, delivery.attempts


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    path = tmp_path / "deliveries.sqlite"
    store = DeliveryStore(path)
    setup = Setup(path, store)
    setup.directory.load("team", [])
    yield setup
    store.close()


async def until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def serving(dispatcher: Dispatcher, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run the dispatcher as the service does while `scenario` runs, then stop it."""
    runner = asyncio.create_task(dispatcher.run())
    try:
        await scenario()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await dispatcher.close()


def test_run_serves_on_a_thread_of_its_own_and_needs_nothing_of_the_callers_loop(setup: Setup) -> None:
    setup.directory.put(entry())
    setup.store.enqueue([new(f"d{i}", "uid-hook") for i in range(20)])
    threads: set[str] = set()

    def receiver(request: httpx.Request) -> httpx.Response:
        threads.add(threading.current_thread().name)
        return httpx.Response(200)

    async def scenario() -> None:
        await asyncio.sleep(0)  # `run` has started its thread
        deadline = time.monotonic() + WAIT
        while setup.store.pending_count() and time.monotonic() < deadline:
            time.sleep(0.01)  # the caller's (kopf's) loop is blocked meanwhile

    asyncio.run(serving(setup.dispatcher(receiver), scenario))
    assert setup.store.pending_count() == 0
    assert threads == {"dockyard-dispatch"}
    assert setup.delivered() == 20
    assert setup.changed == ["uid-hook"] * 20


def test_a_wake_from_another_thread_starts_new_deliveries(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "IDLE_WAIT_SECONDS", 60.0)  # only a wake-up can find them in time
    setup.directory.put(entry())
    dispatcher = setup.dispatcher(lambda request: httpx.Response(200))

    async def scenario() -> None:
        await until(lambda: dispatcher._next_at > 0, "the first read of the queue")

        def intake() -> None:
            setup.store.enqueue([new("d1", "uid-hook")])
            dispatcher.wake()

        threading.Thread(target=intake).start()
        await until(lambda: setup.state("d1")[0] == "delivered" if setup.store.get("d1") else False, "d1")

    asyncio.run(serving(dispatcher, scenario))


def test_a_retry_is_made_when_due_without_waiting_for_the_idle_check(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "IDLE_WAIT_SECONDS", 60.0)
    monkeypatch.setattr(dispatch.retry, "next_delay", lambda *args, **kwargs: 0.05)
    setup.directory.put(entry())
    setup.store.enqueue([new("d1", "uid-hook")])
    statuses = iter([503, 200])
    attempts: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        attempts.append(request.headers["X-Dockyard-Attempt"])
        return httpx.Response(next(statuses))

    async def scenario() -> None:
        await until(lambda: setup.state("d1")[0] == "delivered", "the retry")

    asyncio.run(serving(setup.dispatcher(receiver), scenario))
    assert attempts == ["1", "2"]


def test_slots_per_webhook_and_in_all_hold_and_a_backlog_does_not_starve_the_others(setup: Setup) -> None:
    for uid in ("uid-a", "uid-b", "uid-c"):
        setup.directory.put(entry(uid=uid))
    setup.store.enqueue([new(f"a{i:02}", "uid-a") for i in range(40)], now=time.time() - 60)  # older
    setup.store.enqueue([new(f"{x}{i}", f"uid-{x}") for x in "bc" for i in range(4)])
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}
    order: list[str] = []

    async def receiver(request: httpx.Request) -> httpx.Response:
        hook = request.headers["X-Dockyard-Delivery"][0]
        in_flight[hook] = in_flight.get(hook, 0) + 1
        peak[hook] = max(peak.get(hook, 0), in_flight[hook])
        peak["all"] = max(peak.get("all", 0), sum(in_flight.values()))
        await asyncio.sleep(0.005)
        in_flight[hook] -= 1
        order.append(hook)
        return httpx.Response(200)

    async def scenario() -> None:
        await until(lambda: setup.store.pending_count() == 0, "every delivery")

    asyncio.run(serving(setup.dispatcher(receiver, concurrency=6, per_webhook=2), scenario))
    assert len(order) == 48
    assert peak == {"a": 2, "b": 2, "c": 2, "all": 6}
    last_of_others = max(i for i, hook in enumerate(order) if hook in "bc")
    assert last_of_others < 20, f"b and c waited behind a's backlog: {''.join(order)}"


def test_due_deliveries_are_read_in_batches(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    uids = [f"uid-{i}" for i in range(4)]
    for uid in uids:
        setup.directory.put(entry(uid=uid))
    setup.store.enqueue([new(f"{uid}-{i}", uid) for uid in uids for i in range(50)])
    reads = 0
    due = setup.store.due

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return due(*args, **kwargs)

    monkeypatch.setattr(setup.store, "due", counted)

    async def scenario() -> None:
        # The store records an outcome before the metric counts it: wait for both.
        await until(lambda: setup.store.pending_count() == 0 and setup.delivered() == 200, "every delivery")

    asyncio.run(serving(setup.dispatcher(lambda request: httpx.Response(200)), scenario))
    assert setup.delivered() == 200
    assert reads <= 40, f"{reads} reads of the queue for 200 deliveries"


def test_buffered_deliveries_of_a_deleted_webhook_send_nothing(setup: Setup) -> None:
    setup.directory.put(entry(uid="uid-a"))
    setup.store.enqueue([new(f"a{i}", "uid-a") for i in range(10)])
    requests: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        requests.append(request.headers["X-Dockyard-Delivery"])
        setup.directory.remove("uid-a")  # deleted while the others wait in the buffer
        return httpx.Response(200)

    async def scenario() -> None:
        await until(lambda: setup.store.pending_count() == 0, "the rest canceled")

    asyncio.run(serving(setup.dispatcher(receiver, per_webhook=1), scenario))
    assert requests == ["a0"]
    assert [setup.state(f"a{i}")[0] for i in range(10)] == ["delivered"] + ["canceled"] * 9


def test_an_attempt_cut_short_by_shutdown_is_made_again(setup: Setup) -> None:
    setup.directory.put(entry())
    setup.store.enqueue([new("d1", "uid-hook")])
    requests: list[httpx.Request] = []

    async def hangs(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def first() -> None:
        await until(lambda: requests, "the first attempt")

    asyncio.run(serving(setup.dispatcher(hangs), first))
    assert setup.state("d1") == ("pending", 0)
    assert setup.changed == []

    def answers(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    async def second() -> None:
        await until(lambda: setup.state("d1")[0] == "delivered", "the attempt made again")

    asyncio.run(serving(setup.dispatcher(answers), second))
    assert [(r.headers["X-Dockyard-Delivery"], r.headers["X-Dockyard-Attempt"]) for r in requests] == [
        ("d1", "1"),
        ("d1", "1"),
    ]
    assert setup.state("d1") == ("delivered", 1)


def test_an_outcome_counts_only_once_committed_and_a_crash_before_the_commit_means_another_attempt(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.directory.put(entry())
    setup.store.enqueue([new("d1", "uid-hook")])
    committing = threading.Event()
    crash = threading.Event()

    def never_commits(records: Sequence[AttemptRecord]) -> None:
        committing.set()
        crash.wait(WAIT)
        raise SystemError("the process died before the commit")  # nothing was written

    monkeypatch.setattr(setup.store, "record_attempts", never_commits)
    received: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request.headers["X-Dockyard-Attempt"])
        return httpx.Response(200)

    dispatcher = setup.dispatcher(receiver)

    async def first() -> None:
        await until(committing.is_set, "the outcome at the store")
        await asyncio.sleep(0.05)
        assert received == ["1"]
        assert setup.delivered() == 0, "counted as delivered before it was durable"
        assert setup.changed == []
        assert list(dispatcher._inflight) == ["d1"], "its slot is held until the commit"

    async def crashed() -> None:
        runner = asyncio.create_task(dispatcher.run())
        try:
            await first()
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(crashed())
    # The next process, on the same file, before the first one's commit ever happens.
    restarted = Setup(setup.path, DeliveryStore(setup.path), setup.directory)
    try:
        assert restarted.state("d1") == ("pending", 0)

        async def second() -> None:
            await until(lambda: restarted.state("d1")[0] == "delivered", "the attempt made again")

        asyncio.run(serving(restarted.dispatcher(receiver), second))
        assert received == ["1", "1"]
        assert restarted.state("d1") == ("delivered", 1)
    finally:
        crash.set()
        asyncio.run(dispatcher.close())
        restarted.store.close()


class LoopbackReceiver:
    """A real HTTP/1.1 server on 127.0.0.1 that counts connections (all, and the most open at
    once) and requests."""

    def __init__(self, response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", stall: bool = False) -> None:
        self.response, self.stall = response, stall
        self.connections = self.requests = self.open = self.most_open = 0
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests += 1
                writer.write(self.response)
                await writer.drain()
                if self.stall:
                    await asyncio.Event().wait()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


def test_connections_are_kept_and_reused_per_receiver(setup: Setup) -> None:
    receivers = [LoopbackReceiver(), LoopbackReceiver()]

    async def main() -> None:
        servers = [await r.start() for r in receivers]
        for i, r in enumerate(receivers):
            setup.directory.put(
                entry(uid=f"uid-{i}", target=Target(url=f"http://127.0.0.1:{r.port}/hook", headers=(), signing_key=KEY))
            )
            setup.store.enqueue([new(f"{i}-{n}", f"uid-{i}") for n in range(30)])

        async def scenario() -> None:
            await until(lambda: setup.store.pending_count() == 0, "every delivery")

        try:
            await serving(setup.dispatcher(per_webhook=4), scenario)
        finally:
            for server in servers:
                server.close()

    asyncio.run(main())
    assert [r.requests for r in receivers] == [30, 30]
    # At most the webhook's concurrency open at once, and reused: far fewer connections than
    # requests (a connection idle past the keep-alive on a loaded machine is opened again).
    assert all(1 <= r.most_open <= 4 for r in receivers), [r.most_open for r in receivers]
    assert all(r.connections <= 10 for r in receivers), [r.connections for r in receivers]


def test_only_the_first_64_kib_of_a_response_is_read(setup: Setup) -> None:
    # Says 10 MiB, sends 100 KiB, then nothing: waiting for the rest would time out.
    receiver = LoopbackReceiver(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n" + b"x" * 100 * 1024, stall=True)

    async def main() -> None:
        server = await receiver.start()
        setup.directory.put(
            entry(target=Target(url=f"http://127.0.0.1:{receiver.port}/hook", headers=(), signing_key=KEY))
        )
        setup.store.enqueue([new("d1", "uid-hook")])

        async def scenario() -> None:
            await until(lambda: setup.state("d1")[0] != "pending", "the attempt")

        try:
            await serving(setup.dispatcher(), scenario)
        finally:
            server.close()

    asyncio.run(main())
    delivery = setup.store.get("d1")
    assert delivery is not None
    assert (delivery.state, delivery.http_status, delivery.error) == ("delivered", 200, None)


def test_the_harness_url_is_not_reachable_by_accident() -> None:
    assert URL.startswith("https://hooks.example.com/")  # the tests above that use the network use loopback
