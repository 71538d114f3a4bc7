"""Webhook handlers: one reconcile on create, update (spec or the ping annotation), resume and a
drift timer. A deleted Webhook is forgotten and its pending deliveries canceled; a Registry that
appears, disappears or changes tier, or a sibling's deletion, re-reconciles the registry's Webhooks
at once (quota positions move), instead of at the next drift tick."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import conditions
from ..kube import kube_from
from ..metrics import metrics_from
from ..models import API_VERSION, GROUP, VERSION
from ..models.base import referenced_registry
from ..models.webhook import WebhookSpec
from ..settings import load_settings
from ..webhooks.reconcile import RegistryMissing, reconcile_registry_webhooks, reconcile_webhook
from ..webhooks.resolve import effective_webhook_limit
from ..webhooks.service import webhooks_from

DRIFT_INTERVAL = load_settings().drift_interval_seconds
KIND = "Webhook"


def _reconcile(body: kopf.Body, memo: kopf.Memo) -> None:
    kube, service = kube_from(memo), webhooks_from(memo)
    data = dict(body)
    meta = data["metadata"]
    with metrics_from(memo).observe_reconcile(KIND):
        try:
            spec = WebhookSpec.model_validate(data.get("spec") or {})
        except ValidationError as error:
            status = {
                "observedGeneration": meta.get("generation", 1),
                "conditions": conditions.set_condition(
                    (data.get("status") or {}).get("conditions"),
                    type="Ready",
                    status="False",
                    reason=conditions.Reason.INVALID_SPEC,
                    message=str(error)[:1024],
                    observed_generation=int(meta.get("generation", 1)),
                    now=datetime.now(UTC),
                ),
            }
            kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], status)
            raise kopf.PermanentError(f"invalid spec: {error}") from error
        try:
            reconcile_webhook(kube, service, data, spec)
        except RegistryMissing as missing:
            raise kopf.TemporaryError(str(missing), delay=15) from missing
        except ApiException as error:
            raise kopf.TemporaryError(f"Kubernetes API error {error.status} {error.reason}", delay=10) from error


@kopf.on.resume(GROUP, VERSION, "webhooks")
@kopf.on.create(GROUP, VERSION, "webhooks")
@kopf.on.update(GROUP, VERSION, "webhooks")
def reconcile_webhook_handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(body, memo)


@kopf.timer(GROUP, VERSION, "webhooks", interval=DRIFT_INTERVAL, initial_delay=DRIFT_INTERVAL)
def repair_webhook_drift(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(body, memo)


def _is_deletion(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event(GROUP, VERSION, "webhooks", when=_is_deletion)
def webhook_deleted(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    service = webhooks_from(memo)
    meta = body["metadata"]
    canceled = service.forget(meta["uid"])
    if canceled:
        logger.info(f"webhook deleted: {canceled} pending deliveries canceled")
    registry = referenced_registry(body)
    waiting = [
        e
        for e in service.directory.for_registry(meta["namespace"], registry or "")
        if e.problem is not None and e.problem.reason == conditions.Reason.QUOTA_EXCEEDED
    ]
    if registry and waiting:
        reconcile_registry_webhooks(kube_from(memo), service, meta["namespace"], registry)


@kopf.on.event(GROUP, VERSION, "registries")
def registry_changed_for_webhooks(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Only a new or deleted Registry, or a change of its effective webhook limit, matters to its
    Webhooks; other updates do not."""
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
    reconcile_registry_webhooks(kube_from(memo), service, *key)
