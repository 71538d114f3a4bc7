"""How a receiver knows a delivery came from Dockyard and was not altered.

Each POST carries `X-Dockyard-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the exact request
body keyed with the Webhook's signing secret (the bytes of the Secret value, as stored), and
`X-Dockyard-Delivery: <uuid>`, identical on every retry of the same event to the same webhook, so a
receiver can drop duplicates. The body's `id` is the event id, the same for every webhook.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Dockyard-Signature-256"
DELIVERY_HEADER = "X-Dockyard-Delivery"
EVENT_HEADER = "X-Dockyard-Event"
ATTEMPT_HEADER = "X-Dockyard-Attempt"
PREFIX = "sha256="


def sign(key: bytes, body: bytes) -> str:
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(key: bytes, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(key, body).encode(), header.strip().encode())
