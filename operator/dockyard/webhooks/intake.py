"""The event intake: the HTTP endpoint every Registry's distribution posts its notifications to.

`POST /events/{namespace}/{registry}` with `Authorization: Bearer <token>`, the token being the
`token` key of the Registry's `<registry>-events` Secret, so a registry can post events only for
itself. The envelope's user-facing events (`events.py`) are matched against that registry's
Webhooks and the resulting deliveries committed to the store before the answer:
- 200: committed (or nothing selected); distribution drops the envelope;
- 400: not an envelope; 401: wrong or missing token (distribution retries; fix the Secret);
  the token is in the registry pod's environment and distribution logs its endpoint headers at
  start-up, so whoever may read that pod's logs could post events for that registry;
- 503: the Kubernetes API or the store failed; distribution keeps the envelope and retries.
Duplicate envelopes (distribution retrying after a lost answer) add nothing: a delivery is keyed by
webhook and event id. `GET /healthz` answers 200 while the server runs.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from ..builders.registry_config import RegistryNames
from ..kube import Kube
from .directory import WebhookDirectory
from .events import RegistryEvent, acr_payload, encode, events_from_envelope
from .metrics import WebhookMetrics
from .store import DeliveryStore, NewDelivery

logger = logging.getLogger(__name__)

TOKEN_KEY = "token"
TOKEN_REFRESH_SECONDS = 2.0
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
MAX_CACHED_TOKENS = 10_000
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def delivery_id(webhook_uid: str, event_id: str) -> str:
    """Stable for a (webhook, event) pair: the receiver's de-duplication key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:{webhook_uid}:{event_id}"))


class RegistryTokens:
    """The events token of each registry, read from its Secret and cached; a token that does not
    match triggers one re-read at most every TOKEN_REFRESH_SECONDS (a regenerated Secret). Names
    that cannot be a namespace or a Registry are refused without a lookup, and the cache is bounded,
    so unauthenticated callers cannot grow it without limit."""

    def __init__(self, kube: Kube, known: Callable[[str, str], bool] = lambda namespace, registry: True) -> None:
        self.kube = kube
        self.known = known
        """Whether a registry of that name is being watched; others are refused without a lookup."""
        self._tokens: dict[tuple[str, str], tuple[str | None, float]] = {}

    def _read(self, namespace: str, registry: str) -> str | None:
        secret = self.kube.get("v1", "Secret", namespace, RegistryNames(registry).events)
        value = ((secret or {}).get("data") or {}).get(TOKEN_KEY)
        return base64.b64decode(value).decode() if value else None

    async def verify(self, namespace: str, registry: str, presented: str) -> bool:
        if not (_DNS_LABEL.match(namespace) and _DNS_LABEL.match(registry)) or not presented:
            return False
        if not self.known(namespace, registry):
            return False
        key = (namespace, registry)
        token, read_at = self._tokens.get(key, (None, 0.0))
        if token is not None and hmac.compare_digest(token.encode(), presented.encode()):
            return True
        if time.monotonic() - read_at < TOKEN_REFRESH_SECONDS:
            return False
        token = await asyncio.to_thread(self._read, namespace, registry)
        if len(self._tokens) >= MAX_CACHED_TOKENS:
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] is not None}
        self._tokens[key] = (token, time.monotonic())
        return token is not None and hmac.compare_digest(token.encode(), presented.encode())


class Intake:
    def __init__(
        self,
        store: DeliveryStore,
        directory: WebhookDirectory,
        tokens: RegistryTokens,
        load_namespace: Callable[[str], Awaitable[None]],
        metrics: WebhookMetrics,
        on_enqueued: Callable[[list[str]], None],
    ) -> None:
        self.store = store
        self.directory = directory
        self.tokens = tokens
        self.load_namespace = load_namespace
        self.metrics = metrics
        self.on_enqueued = on_enqueued
        # Its own thread: a registry waits for this commit, so it must not queue behind the
        # dispatcher's and status writer's work in the loop's shared pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-intake")

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_ENVELOPE_BYTES)
        app.router.add_post("/events/{namespace}/{registry}", self.receive)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _refuse(self, outcome: str, status: int, message: str) -> web.Response:
        self.metrics.envelopes.labels(outcome=outcome).inc()
        return web.json_response({"error": message}, status=status)

    async def receive(self, request: web.Request) -> web.Response:
        namespace, registry = request.match_info["namespace"], request.match_info["registry"]
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not await self.tokens.verify(namespace, registry, presented.strip()):
                return self._refuse("unauthorized", 401, "a valid bearer token of this registry is required")
        except Exception as error:  # the API server is unreachable: let distribution retry
            logger.warning(
                "events of %s/%s: cannot read the registry's token: %s", namespace, registry, type(error).__name__
            )
            return self._refuse("unavailable", 503, "cannot verify the token now")
        try:
            events = events_from_envelope(json.loads(await request.read()))
        except ValueError as error:
            return self._refuse("invalid", 400, str(error))
        try:
            if events and not self.directory.is_loaded(namespace):
                await self.load_namespace(namespace)
            deliveries = self._fan_out(namespace, registry, events)
            await asyncio.get_running_loop().run_in_executor(self._executor, self.store.enqueue, deliveries)
        except Exception as error:
            logger.warning("events of %s/%s not accepted, the registry will retry: %r", namespace, registry, error)
            return self._refuse("unavailable", 503, "cannot accept events now")
        self.metrics.envelopes.labels(outcome="accepted").inc()
        for event in events:
            self.metrics.events.labels(action=event.action).inc()
        if deliveries:
            self.on_enqueued(sorted({d.webhook_uid for d in deliveries}))
        return web.json_response({"events": len(events), "deliveries": len(deliveries)})

    def _fan_out(self, namespace: str, registry: str, events: list[RegistryEvent]) -> list[NewDelivery]:
        webhooks = [e for e in self.directory.for_registry(namespace, registry) if e.receives_events]
        deliveries = []
        for event in events:
            body = None
            for webhook in webhooks:
                if not webhook.filter.selects(event):
                    continue
                body = body or encode(acr_payload(event))
                deliveries.append(
                    NewDelivery(
                        id=delivery_id(webhook.uid, event.id),
                        webhook_uid=webhook.uid,
                        namespace=namespace,
                        webhook=webhook.name,
                        event_id=event.id,
                        action=event.action,
                        target=event.target_name,
                        body=body,
                        max_attempts=webhook.max_attempts,
                    )
                )
        return deliveries
