"""Webhook handlers: one reconcile on create, update (spec or the ping annotation), resume and the
drift-repair loop (started by `main`). A deleted Webhook is forgotten and its pending deliveries
canceled; a Webhook created or deleted refreshes its Registry's `usage.webhooks` at once; a Registry
that appears, disappears or changes tier, or a sibling's deletion, re-reconciles the registry's
Webhooks at once (quota positions move), instead of at the next drift tick."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from dockyard.core import conditions
from dockyard.core.cache import WEBHOOKS_BY_REGISTRY_INDEX
from dockyard.core.conditions import ConditionType
from dockyard.core.errors import Permanent, ReconcileError
from dockyard.core.kube import kube_from
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.handlers.registry import referrers_changed
from dockyard.metrics import metrics_from
from dockyard.models import API_VERSION, GROUP, VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.webhook import WebhookSpec
from dockyard.webhooks.reconcile import reconcile_registry_webhooks, reconcile_webhook
from dockyard.webhooks.resolve import effective_webhook_limit
from dockyard.webhooks.service import webhooks_from

KIND: Final = "Webhook"


def _reconcile(body: Mapping[str, Any], memo: kopf.Memo) -> None:
    kube, service = kube_from(memo), webhooks_from(memo)
    data = dict(body)
    meta = data["metadata"]
    generation = int(meta.get("generation", 1))

    def report(error: ReconcileError) -> None:
        if not isinstance(error, Permanent):
            return  # the directory entry's problem is in status already (publish.py)
        current = (data.get("status") or {}).get("conditions")
        status = {
            "observedGeneration": generation,
            "conditions": conditions.set_condition(
                current,
                type=ConditionType.READY,
                status="False",
                reason=error.reason,
                message=error.message,
                observed_generation=generation,
                now=datetime.now(UTC),
            ),
        }
        kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], status)

    with metrics_from(memo).observe_reconcile(KIND), reconcile_edge(report):
        reconcile_webhook(kube, service, data, parse_spec(WebhookSpec, data))


@kopf.on.resume(GROUP, VERSION, "webhooks")
@kopf.on.create(GROUP, VERSION, "webhooks")
@kopf.on.update(GROUP, VERSION, "webhooks")
def reconcile_webhook_handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(body, memo)


def repair_drift(body: Mapping[str, Any], memo: kopf.Memo) -> None:
    """The same reconcile, from the drift-repair loop (`core/drift.py`)."""
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _reconcile(body, memo)


def _is_deletion(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


def _is_addition(type: str | None, **_: Any) -> bool:
    return type == "ADDED"


@kopf.on.event(GROUP, VERSION, "webhooks", when=_is_addition)
async def webhook_added(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The Registry's `usage.webhooks` counts it at once, not at the Registry's next reconcile.
    On the event loop: queueing takes microseconds, and a sync handler would hold this Webhook's
    kopf worker (its parsed body and all) until one of the handler threads is free, which under
    a burst of a thousand Webhooks is a queue of a thousand."""
    registry = referenced_registry(body)
    if registry:
        referrers_changed(memo, body["metadata"]["namespace"], registry)


@kopf.on.event(GROUP, VERSION, "webhooks", when=_is_deletion)
def webhook_deleted(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    service = webhooks_from(memo)
    meta = body["metadata"]
    canceled = service.forget(meta["uid"])
    if canceled:
        logger.info(f"webhook deleted: {canceled} pending deliveries canceled")
    registry = referenced_registry(body)
    if registry:
        referrers_changed(memo, meta["namespace"], registry)
    waiting = [
        e
        for e in service.directory.for_registry(meta["namespace"], registry or "")
        if e.problem is not None and e.problem.reason == conditions.Reason.QUOTA_EXCEEDED
    ]
    if registry and waiting:
        reconcile_registry_webhooks(kube_from(memo), service, meta["namespace"], registry)


@kopf.on.event(GROUP, VERSION, "registries")
async def registry_changed_for_webhooks(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Only a new or deleted Registry, or a change of its effective webhook limit, matters to its
    Webhooks; other updates do not. Decided on the event loop (most events of a Registry are its
    status writes, which matter to no Webhook), so they take no worker thread."""
    service = webhooks_from(memo)
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    seen = service.registries_seen
    now = (meta["uid"], str(effective_webhook_limit(body)))
    if type == "DELETED":
        seen.pop(key, None)
    elif seen.get(key) == now:
        return
    else:
        known = key in seen
        seen[key] = now
        if type is None or (type == "MODIFIED" and not known):
            return  # the initial listing: every Webhook is resumed anyway
    if kube_from(memo).cache.count(WEBHOOKS_BY_REGISTRY_INDEX, key) == 0:
        return  # none to reconcile (a new Registry, usually): no thread, no wait for one
    await asyncio.to_thread(reconcile_registry_webhooks, kube_from(memo), service, *key)
