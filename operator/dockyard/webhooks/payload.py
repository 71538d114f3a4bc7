"""The bodies a webhook receives: ACR's event JSON, and its ping."""

from __future__ import annotations

import json
from typing import Any

from dockyard.events.envelope import RegistryEvent


def acr_payload(event: RegistryEvent) -> dict[str, Any]:
    """The body ACR sends for the event; absent values are left out rather than sent as null."""
    target = {
        "mediaType": event.media_type,
        "size": event.size,
        "digest": event.digest,
        "length": event.length,
        "repository": event.repository,
        "tag": event.tag,
    }
    request = {
        "id": event.request_id,
        "host": event.request_host,
        "method": event.request_method,
        "useragent": event.useragent,
    }
    return {
        "id": event.id,
        "timestamp": event.timestamp,
        "action": event.action,
        "target": {k: v for k, v in target.items() if v is not None},
        "request": {k: v for k, v in request.items() if v is not None},
    }


def ping_payload(event_id: str, timestamp: str) -> dict[str, Any]:
    """ACR's ping: an event with action `ping` and nothing else to say."""
    return {"id": event_id, "timestamp": timestamp, "action": "ping"}


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed); stored once so every retry sends the same body."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()
