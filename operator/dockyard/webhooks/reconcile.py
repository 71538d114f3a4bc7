"""Reconciling one Webhook: its signing Secret, its directory entry (filter, quota, target), a
requested ping, and its status.

A flip of `Ready` is also posted as an Event (Warning with the reason when it turns False, Normal
when it recovers), built from the status message, which holds no secret.

Idempotent: the signing key is generated only when its Secret is missing, a ping is keyed by the
annotation's value (asking twice with the same value sends one ping), and status is written only
when it changes.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from ..conditions import ConditionType, find_condition
from ..kube import Kube, contains
from ..models import API_VERSION
from ..models.webhook import WebhookSpec
from .directory import WebhookEntry
from .events import encode, ping_payload
from .resolve import WebhookResolver, build_signing_secret, owner_of, signing_secret_name
from .service import WebhookService
from .status import RECENT_DELIVERIES, build_webhook_status
from .store import NewDelivery

PING_ANNOTATION = "dockyard.dev/ping"
KIND = "Webhook"


def reconcile_webhook(kube: Kube, service: WebhookService, body: dict[str, Any], spec: WebhookSpec) -> WebhookEntry:
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    if spec.signing_secret_ref is None:
        owner = owner_of(body)
        kube.create_if_missing(
            "v1", "Secret", namespace, signing_secret_name(name), lambda: build_signing_secret(owner, secrets.token_hex(32))
        )
    registry = kube.get(API_VERSION, "Registry", namespace, spec.registry_ref.name)
    siblings = [
        w for w in kube.list(API_VERSION, KIND, namespace)
        if (w.get("spec") or {}).get("registryRef", {}).get("name") == spec.registry_ref.name
    ]
    resolver = WebhookResolver(kube)
    locations = resolver.replica_locations(namespace, spec.registry_ref.name) if spec.location else frozenset()
    entry = resolver.entry(body, spec, registry, siblings, locations)
    previous = service.directory.get(uid)
    service.directory.put(entry)
    if entry.filter.enabled and previous is not None and not previous.filter.enabled:
        service.store.release(uid)
    ping = (meta.get("annotations") or {}).get(PING_ANNOTATION, "").strip()
    if ping:
        enqueue_ping(service, entry, ping)
    service.wake()
    publish_status(kube, service, namespace, name, body)
    return entry


def enqueue_ping(service: WebhookService, entry: WebhookEntry, request: str) -> bool:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:{entry.uid}:ping:{request}"))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    added = service.store.enqueue(
        [
            NewDelivery(
                id=event_id, webhook_uid=entry.uid, namespace=entry.namespace, webhook=entry.name,
                event_id=event_id, action="ping", target=None, body=encode(ping_payload(event_id, now)),
                max_attempts=1, ping=True,
            )
        ],
        time.time(),
    )
    return added > 0


def publish_status(kube: Kube, service: WebhookService, namespace: str, name: str, body: dict[str, Any] | None = None) -> None:
    """Write the Webhook's status from the store and directory, if it changed."""
    body = body or kube.get(API_VERSION, KIND, namespace, name)
    if body is None:
        return
    meta = body["metadata"]
    uid = meta["uid"]
    spec = body.get("spec") or {}
    entry = service.directory.get(uid)
    pings = service.store.recent(uid, 1, ping=True)
    current = dict(body.get("status") or {})
    status = build_webhook_status(
        current,
        int(meta.get("generation", 1)),
        entry,
        service.store.totals(uid),
        service.store.recent(uid, RECENT_DELIVERIES),
        pings[0] if pings else None,
        None if spec.get("signingSecretRef") else signing_secret_name(name),
    )
    if contains(current, status):
        return
    kube.patch_status(API_VERSION, KIND, namespace, name, status)
    before = find_condition(current.get("conditions"), ConditionType.READY)
    after = find_condition(status["conditions"], ConditionType.READY)
    if after is not None and (before or {}).get("status") != after["status"] and (before or after["status"] == "False"):
        kube.post_event(body, "Normal" if after["status"] == "True" else "Warning", after["reason"], after["message"])
