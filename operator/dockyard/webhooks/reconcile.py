"""Reconciling one Webhook: its signing Secret, its directory entry (filter, quota, target), a
requested ping, and its status (`publish.py`).

Idempotent: the signing key is generated only when its Secret is missing, a ping is sent once per
value of the `dockyard.dev/ping` annotation (the value answered is kept in `status.lastPing.request`),
and status is written only when it changes. The Registry and the sibling Webhooks (quota positions)
come from the watch-fed cache.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from dockyard.core.cache import known
from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.webhook import WebhookSpec
from dockyard.webhooks.directory import WebhookEntry
from dockyard.webhooks.payload import encode, ping_payload
from dockyard.webhooks.resolve import WebhookResolver, build_signing_secret, owner_of, signing_secret_name
from dockyard.webhooks.service import WebhookService
from dockyard.webhooks.store import NewDelivery

PING_ANNOTATION = "dockyard.dev/ping"
KIND = "Webhook"


class RegistryMissing(WaitsForUser):
    """The referenced Registry does not exist (yet); status says so, the caller retries soon."""

    def __init__(self, registry: str) -> None:
        super().__init__(Reason.DEPENDENCY_NOT_READY, f"Registry {registry} not found")


def _registry(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    cached = kube.cache.registry(namespace, name)
    return cached if known(cached) else kube.get(API_VERSION, "Registry", namespace, name)  # type: ignore[return-value]


def _webhooks_of(kube: Kube, namespace: str, registry: str) -> list[dict[str, Any]]:
    cached = kube.cache.webhooks_of(namespace, registry)
    if known(cached):
        return cached  # type: ignore[return-value]
    return [w for w in kube.list(API_VERSION, KIND, namespace) if referenced_registry(w) == registry]


def reconcile_webhook(kube: Kube, service: WebhookService, body: dict[str, Any], spec: WebhookSpec) -> WebhookEntry:
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    if spec.signing_secret_ref is None:
        owner = owner_of(body)
        kube.create_if_missing(
            "v1",
            "Secret",
            namespace,
            signing_secret_name(name),
            lambda: build_signing_secret(owner, secrets.token_hex(32)),
        )
    registry = _registry(kube, namespace, spec.registry_ref.name)
    siblings = _webhooks_of(kube, namespace, spec.registry_ref.name)
    resolver = WebhookResolver(kube)
    locations = resolver.replica_locations(namespace, spec.registry_ref.name) if spec.location else frozenset()
    entry = resolver.entry(body, spec, registry, siblings, locations)
    previous = service.directory.get(uid)
    service.directory.put(entry)
    if entry.filter.enabled and previous is not None and not previous.filter.enabled:
        service.store.release(uid)
    request = (meta.get("annotations") or {}).get(PING_ANNOTATION, "").strip()
    answered = ((body.get("status") or {}).get("lastPing") or {}).get("request")
    if request and request != answered:
        enqueue_ping(service, entry, request)
    service.wake()
    service.publisher.publish(namespace, name, uid=uid)
    if registry is None:
        raise RegistryMissing(spec.registry_ref.name)
    return entry


def reconcile_registry_webhooks(kube: Kube, service: WebhookService, namespace: str, registry: str) -> int:
    """Reconcile every Webhook of a registry (its tier, existence or a sibling changed, which moves
    quota positions); returns how many."""
    count = 0
    for body in _webhooks_of(kube, namespace, registry):
        if body["metadata"].get("deletionTimestamp"):
            continue
        try:
            spec = WebhookSpec.model_validate(body.get("spec") or {})
            reconcile_webhook(kube, service, body, spec)
        except (ValueError, RegistryMissing):
            pass
        count += 1
    return count


def enqueue_ping(service: WebhookService, entry: WebhookEntry, request: str) -> bool:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:{entry.uid}:ping:{request}"))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    added = service.store.enqueue(
        [
            NewDelivery(
                id=event_id,
                webhook_uid=entry.uid,
                namespace=entry.namespace,
                webhook=entry.name,
                event_id=event_id,
                action="ping",
                target=request,
                body=encode(ping_payload(event_id, now)),
                max_attempts=1,
                ping=True,
            )
        ],
        time.time(),
    )
    return added > 0
