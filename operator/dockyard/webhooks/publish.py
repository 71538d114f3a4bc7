"""Writing a Webhook's status from the store and the directory: the one writer of it, used by the
handlers (after a reconcile) and by the service's status writer (after deliveries moved).

Writers are serialised by one lock, and a status equal to the one shown is not written. A flip of
`Ready` is also posted as an Event (Warning with the reason when it turns False, Normal when it
recovers), built from the status message, which holds no secret. The Webhook is read from the
watch-fed cache; only a Webhook the cache cannot answer for is read from the API.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

from dockyard.core.cache import known
from dockyard.core.conditions import ConditionType, find_condition
from dockyard.core.kube import Kube, contains
from dockyard.core.names import WebhookNames
from dockyard.models import API_VERSION
from dockyard.webhooks.directory import WebhookDirectory
from dockyard.webhooks.status import RECENT_DELIVERIES, build_webhook_status
from dockyard.webhooks.store import DeliveryStore

KIND: Final = "Webhook"


class StatusPublisher:
    def __init__(self, kube: Kube, store: DeliveryStore, directory: WebhookDirectory) -> None:
        self.kube = kube
        self.store = store
        self.directory = directory
        self._lock = threading.Lock()

    def publish(
        self, namespace: str, name: str, body: Mapping[str, Any] | None = None, *, uid: str | None = None
    ) -> bool:
        """Write the Webhook's status if it changed. False when the Webhook (with this `uid`, if
        given) no longer exists."""
        with self._lock:
            return self._publish(namespace, name, body, uid)

    def _read(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        cached = self.kube.cache.webhook(namespace, name)
        if known(cached):
            return cached  # type: ignore[return-value]
        return self.kube.get(API_VERSION, KIND, namespace, name)

    def _publish(self, namespace: str, name: str, body: Mapping[str, Any] | None, uid: str | None) -> bool:
        body = self._read(namespace, name) if body is None else body
        if body is None or (uid is not None and body["metadata"]["uid"] != uid):
            return False
        meta = body["metadata"]
        uid = meta["uid"]
        entry = self.directory.get(uid)
        if entry is None or entry.generation != int(meta.get("generation", 1)):
            # The handler has not resolved this spec yet; it writes the status when it has.
            return True
        spec = body.get("spec") or {}
        pings = self.store.recent(uid, 1, ping=True)
        current = dict(body.get("status") or {})
        status = build_webhook_status(
            current,
            entry.generation,
            entry,
            self.store.totals(uid),
            self.store.recent(uid, RECENT_DELIVERIES),
            pings[0] if pings else None,
            None if spec.get("signingSecretRef") else WebhookNames(name).signing,
        )
        if contains(current, status):
            return True
        self.kube.patch_status(API_VERSION, KIND, namespace, name, status)
        before = find_condition(current.get("conditions"), ConditionType.READY)
        after = find_condition(status["conditions"], ConditionType.READY)
        flipped = after is not None and (before or {}).get("status") != after["status"]
        if after is not None and flipped and (before or after["status"] == "False"):
            if after["status"] == "True":
                self.kube.post_event(dict(body), "Normal", after["reason"], after["message"])
            else:
                self.kube.post_event(dict(body), "Warning", after["reason"], after["message"])
        return True
