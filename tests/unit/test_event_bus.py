"""The event intake and its subscribers: every subscriber accepts before the registry hears 200,
and any refusal makes the registry post the envelope again (503). The intake runs for real on a
loopback port; the registry's token comes from a stand-in for the API."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from dockyard.core.cache import ClusterCache
from dockyard.events.bus import EventBatch
from dockyard.events.intake import Intake, RegistryTokens
from dockyard.events.metrics import register_intake_metrics

PUSH = {
    "id": "e1",
    "timestamp": "2026-01-01T00:00:00Z",
    "action": "push",
    "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "repository": "team/app",
        "tag": "v1",
        "digest": "sha256:ab",
        "url": "https://hub/v2/team/app/manifests/sha256:ab",
    },
}
BLOB = {"id": "e2", "action": "push", "target": {"repository": "team/app", "url": "https://hub/v2/team/app/blobs/x"}}


class TokenSecrets:
    cache = ClusterCache()

    def read_child(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if (namespace, name) == ("team", "hub-events"):
            return {"data": {"token": base64.b64encode(b"good").decode()}}
        return None


class Recorder:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.prepared: list[str] = []
        self.batches: list[EventBatch] = []

    async def prepare(self, namespace: str) -> None:
        self.prepared.append(namespace)

    def accept(self, batch: EventBatch) -> None:
        if self.fail:
            raise OSError("disk full")
        self.batches.append(batch)


def post(subscribers: list[Recorder], token: str, envelope: object) -> tuple[int, dict[str, Any]]:
    async def run() -> tuple[int, dict[str, Any]]:
        intake = Intake(
            RegistryTokens(TokenSecrets()),  # type: ignore[arg-type]
            subscribers,
            register_intake_metrics(CollectorRegistry()),
        )
        await intake.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"http://127.0.0.1:{intake.port}/events/team/hub",
                    content=json.dumps(envelope),
                    headers={"Authorization": f"Bearer {token}"},
                )
                return answer.status_code, answer.json()
        finally:
            await intake.stop()

    return asyncio.run(run())


def test_every_subscriber_gets_the_user_facing_events() -> None:
    webhooks, builds = Recorder("webhooks"), Recorder("builds")
    status, answer = post([webhooks, builds], "good", {"events": [PUSH, BLOB]})
    assert (status, answer) == (200, {"events": 1})
    for subscriber in (webhooks, builds):
        assert subscriber.prepared == ["team"]
        [batch] = subscriber.batches
        assert (batch.namespace, batch.registry, [e.id for e in batch.events]) == ("team", "hub", ["e1"])


def test_a_subscriber_that_cannot_commit_makes_the_registry_retry() -> None:
    status, _ = post([Recorder("webhooks"), Recorder("builds", fail=True)], "good", {"events": [PUSH]})
    assert status == 503


def test_a_wrong_token_reaches_no_subscriber() -> None:
    webhooks = Recorder("webhooks")
    status, _ = post([webhooks], "bad", {"events": [PUSH]})
    assert status == 401 and webhooks.batches == [] and webhooks.prepared == []


def test_an_envelope_of_blob_events_only_bothers_no_subscriber() -> None:
    webhooks = Recorder("webhooks")
    assert post([webhooks], "good", {"events": [BLOB]})[0] == 200
    assert webhooks.batches == []


def test_garbage_is_refused() -> None:
    assert post([Recorder("webhooks")], "good", ["not", "an", "envelope"])[0] == 400
