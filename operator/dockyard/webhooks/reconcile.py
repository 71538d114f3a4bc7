"""Reconciling one Webhook: its signing Secret, its directory entry (filter, quota, target), a
requested ping, and its status.

Idempotent: the signing key is generated only when its Secret is missing, a ping is sent once per
value of the `dockyard.dev/ping` annotation (the value answered is kept in `status.lastPing.request`),
and status is written only when it changes. A flip of `Ready` is also posted as an Event (Warning
with the reason when it turns False, Normal when it recovers), built from the status message, which
holds no secret.
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
from ..models.base import referenced_registry
from ..models.webhook import WebhookSpec
from .directory import WebhookEntry
from .events import encode, ping_payload
from .resolve import WebhookResolver, build_signing_secret, owner_of, signing_secret_name
from .service import WebhookService
from .status import RECENT_DELIVERIES, build_webhook_status
from .store import NewDelivery

PING_ANNOTATION = "dockyard.dev/ping"
KIND = "Webhook"


class RegistryMissing(Exception):
    """The referenced Registry does not exist (yet); status says so, the caller retries soon."""


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
    registry = kube.get(API_VERSION, "Registry", namespace, spec.registry_ref.name)
    siblings = [w for w in kube.list(API_VERSION, KIND, namespace) if referenced_registry(w) == spec.registry_ref.name]
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
    publish_status(kube, service, namespace, name, uid=uid)
    if registry is None:
        raise RegistryMissing(f"Registry {spec.registry_ref.name} not found")
    return entry


def reconcile_registry_webhooks(kube: Kube, service: WebhookService, namespace: str, registry: str) -> int:
    """Reconcile every Webhook of a registry (its tier, existence or a sibling changed, which moves
    quota positions); returns how many."""
    count = 0
    for body in kube.list(API_VERSION, KIND, namespace):
        if referenced_registry(body) != registry or body["metadata"].get("deletionTimestamp"):
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


def publish_status(
    kube: Kube,
    service: WebhookService,
    namespace: str,
    name: str,
    body: dict[str, Any] | None = None,
    *,
    uid: str | None = None,
) -> bool:
    """Write the Webhook's status from the store and directory, if it changed. False when the
    Webhook (with this `uid`, if given) no longer exists."""
    with service.status_lock:
        return _publish_status(kube, service, namespace, name, body, uid)


def _publish_status(
    kube: Kube, service: WebhookService, namespace: str, name: str, body: dict[str, Any] | None, uid: str | None
) -> bool:
    # Read under the lock: a body read before another writer's patch would undo it.
    body = kube.get(API_VERSION, KIND, namespace, name) if body is None else body
    if body is None or (uid is not None and body["metadata"]["uid"] != uid):
        return False
    meta = body["metadata"]
    uid = meta["uid"]
    entry = service.directory.get(uid)
    if entry is None or entry.generation != int(meta.get("generation", 1)):
        # The handler has not resolved this spec yet; it writes the status when it has.
        return True
    spec = body.get("spec") or {}
    pings = service.store.recent(uid, 1, ping=True)
    current = dict(body.get("status") or {})
    status = build_webhook_status(
        current,
        entry.generation,
        entry,
        service.store.totals(uid),
        service.store.recent(uid, RECENT_DELIVERIES),
        pings[0] if pings else None,
        None if spec.get("signingSecretRef") else signing_secret_name(name),
    )
    if contains(current, status):
        return True
    kube.patch_status(API_VERSION, KIND, namespace, name, status)
    before = find_condition(current.get("conditions"), ConditionType.READY)
    after = find_condition(status["conditions"], ConditionType.READY)
    if after is not None and (before or {}).get("status") != after["status"] and (before or after["status"] == "False"):
        kube.post_event(body, "Normal" if after["status"] == "True" else "Warning", after["reason"], after["message"])
    return True
