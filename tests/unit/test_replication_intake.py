"""The intake's share in replication: a replica's envelopes carry its location (`?location=`),
and per-tag deletes reach the subscribers beside the user-facing events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from test_event_bus import PUSH, Recorder, TokenSecrets

from dockyard.events.intake import Intake, RegistryTokens
from dockyard.events.metrics import register_intake_metrics

UNTAG = {
    "id": "e3",
    "timestamp": "2026-01-01T00:00:01Z",
    "action": "delete",
    "target": {"repository": "team/app", "tag": "v1"},
}


def post(recorder: Recorder, query: str, envelope: object) -> int:
    async def run() -> int:
        intake = Intake(RegistryTokens(TokenSecrets()), [recorder], register_intake_metrics(CollectorRegistry()))  # type: ignore[arg-type]
        await intake.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"http://127.0.0.1:{intake.port}/events/team/hub{query}",
                    content=json.dumps(envelope),
                    headers={"Authorization": "Bearer good"},
                )
                return answer.status_code
        finally:
            await intake.stop()

    return asyncio.run(run())


def test_a_replicas_envelope_carries_its_location() -> None:
    recorder = Recorder("replication")
    assert post(recorder, "?location=west", {"events": [PUSH]}) == 200
    (batch,) = recorder.batches
    assert batch.location == "west" and [e.id for e in batch.events] == ["e1"]


def test_the_registrys_own_envelope_has_no_location() -> None:
    recorder = Recorder("replication")
    assert post(recorder, "", {"events": [PUSH]}) == 200
    assert recorder.batches[0].location is None


def test_a_location_that_is_no_dns_label_is_refused() -> None:
    recorder = Recorder("replication")
    assert post(recorder, "?location=West_1", {"events": [PUSH]}) == 400
    assert recorder.batches == []


def test_an_untag_alone_reaches_the_subscribers() -> None:
    recorder = Recorder("replication")
    envelope: dict[str, Any] = {"events": [UNTAG]}
    assert post(recorder, "?location=west", envelope) == 200
    (batch,) = recorder.batches
    assert batch.events == () and [(e.repository, e.tag) for e in batch.tag_deletes] == [("team/app", "v1")]
