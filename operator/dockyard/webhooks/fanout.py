"""Webhooks as an event subscriber: each event matched against the registry's Webhooks (filter,
quota), the resulting deliveries committed to the store in one transaction.

A delivery is keyed by (webhook uid, event id), so an envelope posted again adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from dockyard.events.bus import EventBatch
from dockyard.webhooks.directory import WebhookDirectory
from dockyard.webhooks.payload import acr_payload, encode
from dockyard.webhooks.store import DeliveryStore, NewDelivery


def delivery_id(webhook_uid: str, event_id: str) -> str:
    """Stable for a (webhook, event) pair: the receiver's de-duplication key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:{webhook_uid}:{event_id}"))


class WebhookFanOut:
    name = "webhooks"

    def __init__(
        self,
        store: DeliveryStore,
        directory: WebhookDirectory,
        load_namespace: Callable[[str], Awaitable[None]],
        on_enqueued: Callable[[list[str]], None],
    ) -> None:
        self.store = store
        self.directory = directory
        self.load_namespace = load_namespace
        self.on_enqueued = on_enqueued

    async def prepare(self, namespace: str) -> None:
        if not self.directory.is_loaded(namespace):
            await self.load_namespace(namespace)

    def accept(self, batch: EventBatch) -> None:
        deliveries = self.deliveries(batch)
        self.store.enqueue(deliveries)
        if deliveries:
            self.on_enqueued(sorted({d.webhook_uid for d in deliveries}))

    def deliveries(self, batch: EventBatch) -> list[NewDelivery]:
        webhooks = [e for e in self.directory.for_registry(batch.namespace, batch.registry) if e.receives_events]
        deliveries = []
        for event in batch.events:
            body = None
            for webhook in webhooks:
                if not webhook.filter.selects(event, batch.location):
                    continue
                body = body or encode(acr_payload(event))
                deliveries.append(
                    NewDelivery(
                        id=delivery_id(webhook.uid, event.id),
                        webhook_uid=webhook.uid,
                        namespace=batch.namespace,
                        webhook=webhook.name,
                        event_id=event.id,
                        action=event.action,
                        target=event.target_name,
                        body=body,
                        max_attempts=webhook.max_attempts,
                    )
                )
        return deliveries
