"""The event intake: the HTTP endpoint every Registry's distribution posts its notifications to.

`POST /events/{namespace}/{registry}` with `Authorization: Bearer <token>`, the token being the
`token` key of the Registry's `<registry>-events` Secret, so a registry can post events only for
itself; its replicas (Replications) post with the same token and `?location=<location>`. The envelope's user-facing events (`envelope.py`) go to every subscriber (`bus.py`), each
of which commits its share before the answer:
- 200: committed (or nothing selected); distribution drops the envelope;
- 400: not an envelope; 401: wrong or missing token (distribution retries; fix the Secret);
  the token is in the registry pod's environment and distribution logs its endpoint headers at
  start-up, so whoever may read that pod's logs could post events for that registry;
- 503: the Kubernetes API or the store failed; distribution keeps the envelope and retries.
Duplicate envelopes (distribution retrying after a lost answer) add nothing: subscribers key what
they keep by event id. `GET /healthz` answers 200 while the server runs.

Other features may serve their own inbound HTTP beside it (`routes`: git push webhooks of build
triggers at `/git/…`); they share the server and its loop, never the registry path or its metrics.

The intake serves on an event loop of its own, in its own thread, so a registry's post is answered
as soon as it is committed, not after the work kopf and the dispatcher queue on the main loop.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from dockyard.core.cache import known
from dockyard.core.kube import Kube
from dockyard.core.names import RegistryNames
from dockyard.events.bus import EventBatch, Subscriber
from dockyard.events.envelope import events_from_envelope, tag_deletes_from_envelope
from dockyard.events.metrics import IntakeMetrics

logger = logging.getLogger(__name__)

TOKEN_KEY = "token"
TOKEN_REFRESH_SECONDS = 2.0
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
MAX_CACHED_TOKENS = 10_000
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class RegistryTokens:
    """The events token of each registry, read from its Secret and cached; a token that does not
    match triggers one re-read at most every TOKEN_REFRESH_SECONDS (a regenerated Secret). Names
    that cannot be a namespace or a Registry are refused without a lookup, and the cache is bounded,
    so unauthenticated callers cannot grow it without limit."""

    def __init__(self, kube: Kube, known: Callable[[str, str], bool] | None = None) -> None:
        self.kube = kube
        self.known = known or self._watched
        """Whether a registry of that name is being watched; others are refused without a lookup."""
        self._tokens: dict[tuple[str, str], tuple[str | None, float]] = {}

    def _watched(self, namespace: str, registry: str) -> bool:
        cached = self.kube.cache.registry(namespace, registry)
        return cached is not None if known(cached) else True

    def _read(self, namespace: str, registry: str) -> str | None:
        secret = self.kube.read_child("v1", "Secret", namespace, RegistryNames(registry).events)
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


Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]
"""(method, path, handler) of another feature's endpoint on the intake's server."""


class Intake:
    def __init__(
        self,
        tokens: RegistryTokens,
        subscribers: Sequence[Subscriber],
        metrics: IntakeMetrics,
        routes: Sequence[Route] = (),
    ) -> None:
        self.tokens = tokens
        self.subscribers = tuple(subscribers)
        self.metrics = metrics
        self.routes = tuple(routes)
        # Its own thread: a registry waits for this commit, so it must not queue behind other work
        # in the loop's shared pool.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-intake")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Serve on `host:port` (0: a free port, then in `self.port`) from a thread of its own."""
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(host, port, started), name="dockyard-intake-loop", daemon=True
        )
        self._thread.start()
        self.port = await asyncio.wrap_future(started)

    def _serve(self, host: str, port: int, started: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(self.app(), access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port)
            loop.run_until_complete(site.start())
        except BaseException as error:
            loop.run_until_complete(runner.cleanup())
            loop.close()
            started.set_exception(error)
            return
        sockets = getattr(site._server, "sockets", None) or []
        self._loop = loop
        started.set_result(sockets[0].getsockname()[1] if sockets else port)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join)
        self._executor.shutdown(wait=True)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_ENVELOPE_BYTES)
        app.router.add_post("/events/{namespace}/{registry}", self.receive)
        app.router.add_get("/healthz", self.healthz)
        for method, path, handler in self.routes:
            app.router.add_route(method, path, handler)
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
        location = request.query.get("location") or None
        if location is not None and not _DNS_LABEL.match(location):
            return self._refuse("invalid", 400, "location must be a DNS label")
        try:
            envelope = json.loads(await request.read())
            events = events_from_envelope(envelope)
            tag_deletes = tag_deletes_from_envelope(envelope)
        except ValueError as error:
            return self._refuse("invalid", 400, str(error))
        batch = EventBatch(namespace, registry, tuple(events), location, tuple(tag_deletes))
        try:
            if events or tag_deletes:
                for subscriber in self.subscribers:
                    await subscriber.prepare(namespace)
                await asyncio.get_running_loop().run_in_executor(self._executor, self._accept, batch)
        except Exception as error:
            logger.warning("events of %s/%s not accepted, the registry will retry: %r", namespace, registry, error)
            return self._refuse("unavailable", 503, "cannot accept events now")
        self.metrics.envelopes.labels(outcome="accepted").inc()
        for event in events:
            self.metrics.events.labels(action=event.action).inc()
        return web.json_response({"events": len(events)})

    def _accept(self, batch: EventBatch) -> None:
        for subscriber in self.subscribers:
            subscriber.accept(batch)
