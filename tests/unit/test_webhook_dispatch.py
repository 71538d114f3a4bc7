"""The dispatcher's attempts against an in-process receiver (httpx.MockTransport), one at a time."""

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from dockyard.events.envelope import RegistryEvent
from dockyard.webhooks import signing
from dockyard.webhooks.directory import Problem, Target, WebhookDirectory, WebhookEntry
from dockyard.webhooks.dispatch import Dispatcher
from dockyard.webhooks.metrics import WebhookMetrics, register_webhook_metrics
from dockyard.webhooks.payload import acr_payload, encode
from dockyard.webhooks.scope import EventFilter
from dockyard.webhooks.status import build_webhook_status
from dockyard.webhooks.store import Delivery, DeliveryStore, NewDelivery

UID = "uid-hook"
URL = "https://hooks.example.com/services/T000/url-token-4f1c9a"
HEADER_TOKEN = "Bearer header-token-8e2d7b"
KEY = b"signing-key-0a9c3e"
EVENT = RegistryEvent(
    id="ef77bff6-0001",
    timestamp="2026-11-29T09:06:05.822736285Z",
    action="push",
    repository="team/app",
    tag="v1",
    digest="sha256:bff7",
    size=401,
    length=401,
)
BODY = encode(acr_payload(EVENT))

Handler = Callable[[httpx.Request], httpx.Response]


def entry(
    *,
    uid: str = UID,
    target: Target | None = None,
    enabled: bool = True,
    max_attempts: int = 15,
    problem: Problem | None = None,
) -> WebhookEntry:
    return WebhookEntry(
        uid=uid,
        namespace="team",
        name=f"hook-{uid}",
        registry="reg",
        filter=EventFilter(frozenset({"push"}), "", enabled),
        max_attempts=max_attempts,
        timeout_seconds=5.0,
        target=target
        if target is not None or problem is not None
        else Target(url=URL, headers=(("Authorization", HEADER_TOKEN), ("X-Team", "platform")), signing_key=KEY),
        problem=problem,
    )


@dataclass
class Harness:
    store: DeliveryStore
    directory: WebhookDirectory
    registry: CollectorRegistry
    metrics: WebhookMetrics
    requests: list[httpx.Request] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)

    def enqueue(
        self, id: str = "delivery-1", *, uid: str = UID, max_attempts: int = 15, ping: bool = False
    ) -> Delivery:
        self.store.enqueue(
            [
                NewDelivery(
                    id=id,
                    webhook_uid=uid,
                    namespace="team",
                    webhook=f"hook-{uid}",
                    event_id=EVENT.id,
                    action="ping" if ping else EVENT.action,
                    target=None if ping else EVENT.target_name,
                    body=BODY,
                    max_attempts=1 if ping else max_attempts,
                    ping=ping,
                )
            ]
        )
        return self.get(id)

    def get(self, id: str) -> Delivery:
        delivery = self.store.get(id)
        assert delivery is not None
        return delivery

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def run(
        self,
        handler: Handler,
        scenario: Callable[[Dispatcher], Awaitable[None]],
        load: Callable[[str], None] | None = None,
    ) -> None:
        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            self.requests.append(request)
            return handler(request)

        async def load_namespace(namespace: str) -> None:
            self.loads.append(namespace)
            if load is not None:
                load(namespace)

        async def main() -> None:
            dispatcher = Dispatcher(
                self.store,
                self.directory,
                load_namespace,
                self.metrics,
                self.changed.append,
                user_agent="Dockyard-Webhook/0.1.0",
                transport=httpx.MockTransport(record),
            )
            try:
                await scenario(dispatcher)
            finally:
                await dispatcher.close()

        asyncio.run(main())


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    store = DeliveryStore(tmp_path / "deliveries.sqlite")
    directory = WebhookDirectory()
    directory.put(entry())
    registry = CollectorRegistry()
    yield Harness(store, directory, registry, register_webhook_metrics(registry, store.pending_count))
    store.close()


def attempt_once(harness: Harness, handler: Handler, id: str = "delivery-1") -> Delivery:
    async def scenario(dispatcher: Dispatcher) -> None:
        await dispatcher._attempt(harness.get(id))

    harness.run(handler, scenario)
    return harness.get(id)


def answer(status: int, **headers: str) -> Handler:
    return lambda request: httpx.Response(status, headers=headers)


def test_delivery_is_a_signed_post_with_the_expected_headers(harness: Harness) -> None:
    harness.enqueue()
    delivered = attempt_once(harness, answer(200))
    [request] = harness.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.content == BODY
    assert json.loads(request.content)["target"]["tag"] == "v1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Dockyard-Webhook/0.1.0"
    assert request.headers["X-Dockyard-Delivery"] == "delivery-1"
    assert request.headers["X-Dockyard-Event"] == "push"
    assert request.headers["X-Dockyard-Attempt"] == "1"
    assert signing.verify(KEY, request.content, request.headers["X-Dockyard-Signature-256"])
    assert request.headers["Authorization"] == HEADER_TOKEN
    assert request.headers["X-Team"] == "platform"
    assert (delivered.state, delivered.attempts, delivered.http_status, delivered.error) == ("delivered", 1, 200, None)
    assert delivered.latency_ms is not None and delivered.latency_ms >= 0
    assert harness.changed == [UID]
    assert harness.store.totals(UID).delivered == 1
    assert harness.metric("dockyard_webhook_deliveries_total", outcome="delivered") == 1
    assert harness.metric("dockyard_webhook_attempts_total", result="success") == 1


def test_custom_headers_cannot_override_the_signature_or_delivery_id(harness: Harness) -> None:
    harness.directory.put(
        entry(
            target=Target(
                url=URL,
                headers=(("X-Dockyard-Signature-256", "sha256=forged"), ("X-Dockyard-Delivery", "forged")),
                signing_key=KEY,
            )
        )
    )
    harness.enqueue()
    attempt_once(harness, answer(204))
    [request] = harness.requests
    assert request.headers.get_list("X-Dockyard-Delivery") == ["delivery-1"]
    assert signing.verify(KEY, request.content, request.headers["X-Dockyard-Signature-256"])


def test_server_error_is_retried_then_delivered_with_the_same_id_and_body(harness: Harness) -> None:
    harness.enqueue()
    statuses = iter([500, 200])
    handler: Handler = lambda request: httpx.Response(next(statuses))
    before = time.time()

    first = attempt_once(harness, handler)
    assert (first.state, first.attempts, first.http_status) == ("pending", 1, 500)
    assert first.next_attempt_at > before
    assert first.last_attempt_at is not None and first.next_attempt_at > first.last_attempt_at
    assert first.next_attempt_at <= time.time() + 1.0  # first backoff is 0.5-1 s
    assert harness.store.totals(UID).failing_attempts == 1

    second = attempt_once(harness, handler)
    assert (second.state, second.attempts, second.http_status) == ("delivered", 2, 200)
    assert [r.headers["X-Dockyard-Attempt"] for r in harness.requests] == ["1", "2"]
    assert {r.headers["X-Dockyard-Delivery"] for r in harness.requests} == {"delivery-1"}
    assert {r.content for r in harness.requests} == {BODY}
    assert harness.store.totals(UID).failing_attempts == 0


def test_retry_after_lengthens_the_wait(harness: Harness) -> None:
    harness.enqueue()
    before = time.time()
    delivery = attempt_once(harness, answer(429, **{"Retry-After": "120"}))
    assert (delivery.state, delivery.http_status) == ("pending", 429)
    assert delivery.next_attempt_at >= before + 120


@pytest.mark.parametrize("status", [410, 400, 404])
def test_client_error_fails_at_once(harness: Harness, status: int) -> None:
    harness.enqueue()
    delivery = attempt_once(harness, answer(status))
    assert (delivery.state, delivery.attempts, delivery.http_status) == ("failed", 1, status)
    assert harness.store.totals(UID).failed == 1
    assert harness.store.due(time.time() + 3600, 10) == []
    assert harness.metric("dockyard_webhook_deliveries_total", outcome="failed") == 1


def test_redirect_is_not_followed_and_fails(harness: Harness) -> None:
    harness.enqueue()
    delivery = attempt_once(harness, answer(302, Location="https://elsewhere.example.com/"))
    assert len(harness.requests) == 1
    assert (delivery.state, delivery.http_status, delivery.error) == ("failed", 302, "redirects are not followed")


def test_last_attempt_fails_the_delivery(harness: Harness) -> None:
    harness.enqueue(max_attempts=2)
    attempt_once(harness, answer(503))
    delivery = attempt_once(harness, answer(503))
    assert (delivery.state, delivery.attempts) == ("failed", 2)


def test_timeout_is_retried(harness: Harness) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    harness.enqueue()
    delivery = attempt_once(harness, timeout)
    assert (delivery.state, delivery.attempts, delivery.http_status) == ("pending", 1, None)
    assert delivery.error == "timed out after 5s"
    assert harness.metric("dockyard_webhook_attempts_total", result="timeout") == 1


def test_connection_error_is_retried_and_redacted(harness: Harness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            f"cannot connect to {request.url} with {request.headers['Authorization']}", request=request
        )

    harness.enqueue()
    delivery = attempt_once(harness, refuse)
    assert (delivery.state, delivery.http_status) == ("pending", None)
    assert delivery.error == "ConnectError: cannot connect to *** with ***"
    status = build_webhook_status(
        {}, 1, harness.directory.get(UID), harness.store.totals(UID), harness.store.recent(UID, 10), None, None
    )
    text = json.dumps(status)
    for secret in (URL, "url-token-4f1c9a", HEADER_TOKEN, "header-token-8e2d7b"):
        assert secret not in text
    assert harness.metric("dockyard_webhook_attempts_total", result="connection_error") == 1


def test_unresolved_target_waits_without_using_an_attempt(harness: Harness) -> None:
    harness.directory.put(entry(problem=Problem("DependencyNotReady", "Secret hook-url not found")))
    harness.enqueue()
    delivery = attempt_once(harness, answer(200))
    assert harness.requests == []
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at > delivery.accepted_at + 5


def test_a_store_that_cannot_write_holds_the_delivery_back(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.webhooks import dispatch

    harness.enqueue()
    monkeypatch.setattr(dispatch, "STORE_RETRY_SECONDS", 0.2)

    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(harness.store, "record_attempts", full)

    elapsed = 0.0

    async def scenario(dispatcher: Dispatcher) -> None:
        nonlocal elapsed
        started = time.monotonic()
        runner = asyncio.create_task(dispatcher.run())
        while len(harness.requests) < 3 and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    harness.run(answer(200), scenario)
    assert len(harness.requests) >= 3, "sent again once held back"
    assert elapsed >= 2 * 0.2, "held back STORE_RETRY_SECONDS between sends, not a tight loop"
    assert (harness.get("delivery-1").state, harness.get("delivery-1").attempts) == ("pending", 0)
    assert harness.metric("dockyard_webhook_deliveries_total", outcome="delivered") == 0
    assert harness.changed == [], "never reported delivered before it is durable"


def test_disabled_webhook_postpones_without_an_attempt(harness: Harness) -> None:
    harness.directory.put(entry(enabled=False))
    harness.enqueue()
    before = time.time()
    delivery = attempt_once(harness, answer(200))
    assert harness.requests == []
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at >= before + 29


def test_ping_has_one_attempt(harness: Harness) -> None:
    harness.enqueue("ping-1", ping=True)
    delivery = attempt_once(harness, answer(503), "ping-1")
    assert (delivery.state, delivery.attempts, delivery.http_status) == ("failed", 1, 503)
    assert harness.requests[0].headers["X-Dockyard-Event"] == "ping"


def test_ping_of_a_disabled_webhook_fails_without_a_request(harness: Harness) -> None:
    harness.directory.put(entry(enabled=False))
    harness.enqueue("ping-1", ping=True)
    delivery = attempt_once(harness, answer(200), "ping-1")
    assert harness.requests == []
    assert (delivery.state, delivery.error) == ("failed", "the webhook is disabled")


def test_unknown_webhook_is_looked_up_before_anything_is_decided(harness: Harness) -> None:
    harness.directory = WebhookDirectory()  # the webhook is not known yet
    harness.enqueue()

    async def scenario(dispatcher: Dispatcher) -> None:
        await dispatcher._attempt(harness.get("delivery-1"))

    harness.run(answer(200), scenario, load=lambda namespace: harness.directory.load(namespace, [entry()]))
    assert harness.loads == ["team"]
    assert harness.get("delivery-1").state == "delivered"


def test_webhook_missing_after_its_namespace_is_loaded_cancels_its_deliveries(harness: Harness) -> None:
    harness.directory = WebhookDirectory()  # the webhook is not known yet
    harness.directory.put(entry(uid="uid-other"))
    harness.enqueue("d1")
    harness.enqueue("d2")
    harness.enqueue("other", uid="uid-other")

    async def scenario(dispatcher: Dispatcher) -> None:
        await dispatcher._attempt(harness.get("d1"))

    harness.run(answer(200), scenario, load=lambda namespace: harness.directory.load(namespace, []))
    assert harness.loads == ["team"]
    assert harness.requests == []
    assert (harness.get("d1").state, harness.get("d2").state, harness.get("other").state) == (
        "canceled",
        "canceled",
        "pending",
    )
    assert harness.store.pending_count() == 1
    assert harness.metric("dockyard_webhook_deliveries_total", outcome="canceled") == 2


def test_namespace_is_loaded_once(harness: Harness) -> None:
    harness.directory = WebhookDirectory()  # the webhook is not known yet
    harness.directory.load("team", [])
    harness.enqueue()
    attempt_once(harness, answer(200))
    assert harness.loads == []
    assert harness.get("delivery-1").state == "canceled"


def test_queue_depth_gauge_counts_pending(harness: Harness) -> None:
    harness.enqueue("d1")
    harness.enqueue("d2")
    attempt_once(harness, answer(200), "d1")
    assert harness.metric("dockyard_webhook_queue_depth") == 1


def test_run_loop_delivers_what_is_due(harness: Harness) -> None:
    harness.enqueue("d1")
    harness.enqueue("d2")

    async def scenario(dispatcher: Dispatcher) -> None:
        loop = asyncio.create_task(dispatcher.run())
        try:
            for _ in range(200):
                if harness.store.pending_count() == 0:
                    break
                await asyncio.sleep(0.01)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    harness.run(answer(200), scenario)
    assert (harness.get("d1").state, harness.get("d2").state) == ("delivered", "delivered")


def test_header_value_that_cannot_be_sent_is_an_outcome_not_an_exception(harness: Harness) -> None:
    secret = "Bearer t\u00f6ken-8e2d7b"
    harness.directory.put(entry(target=Target(url=URL, headers=(("Authorization", secret),), signing_key=KEY)))
    harness.enqueue()
    delivery = attempt_once(harness, answer(200))
    assert delivery.attempts == 1
    assert delivery.error is not None and secret not in delivery.error


def test_malformed_url_is_an_outcome_not_an_exception(harness: Harness) -> None:
    bad = "http://[::1/hooks?token=abc"
    harness.directory.put(entry(target=Target(url=bad, headers=(), signing_key=KEY)))
    harness.enqueue()
    delivery = attempt_once(harness, answer(200))
    assert delivery.attempts == 1
    assert delivery.state in ("pending", "failed")
    assert delivery.error is not None and bad not in delivery.error


def test_refused_credentials_are_reread_once_and_the_attempt_made_again(harness: Harness) -> None:
    harness.enqueue()
    rotated = entry(target=Target(url=URL, headers=(("Authorization", "Bearer rotated"),), signing_key=KEY))
    refreshed: list[str] = []

    async def refresh(stale: WebhookEntry) -> WebhookEntry | None:
        refreshed.append(stale.uid)
        harness.directory.put(rotated)
        return rotated

    def receiver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.headers["Authorization"] == "Bearer rotated" else 401)

    async def scenario(dispatcher: Dispatcher) -> None:
        dispatcher.refresh = refresh
        await dispatcher._attempt(harness.get("delivery-1"))

    harness.run(receiver, scenario)
    delivery = harness.get("delivery-1")
    assert refreshed == [UID]
    assert [r.headers["Authorization"] for r in harness.requests] == [HEADER_TOKEN, "Bearer rotated"]
    assert (delivery.state, delivery.attempts, delivery.http_status) == ("delivered", 1, 200)


def test_refused_credentials_that_did_not_change_fail_the_delivery(harness: Harness) -> None:
    harness.enqueue()

    async def unchanged(_: WebhookEntry) -> WebhookEntry | None:
        return None

    async def scenario(dispatcher: Dispatcher) -> None:
        dispatcher.refresh = unchanged
        await dispatcher._attempt(harness.get("delivery-1"))

    harness.run(answer(403), scenario)
    assert len(harness.requests) == 1
    assert (harness.get("delivery-1").state, harness.get("delivery-1").http_status) == ("failed", 403)


def test_lookup_failure_postpones_without_counting_an_attempt(harness: Harness) -> None:
    harness.directory = WebhookDirectory()
    harness.enqueue()

    def broken(namespace: str) -> None:
        raise LookupError("the API server is down")

    async def scenario(dispatcher: Dispatcher) -> None:
        await dispatcher._attempt(harness.get("delivery-1"))

    harness.run(answer(200), scenario, load=broken)
    delivery = harness.get("delivery-1")
    assert harness.requests == []
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert delivery.next_attempt_at > delivery.accepted_at + 5
