"""Webhook handlers: one reconcile on create, update (spec or the ping annotation), resume and a
drift timer; a deleted Webhook is forgotten and its pending deliveries canceled."""

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
from ..models.webhook import WebhookSpec
from ..settings import load_settings
from ..webhooks.reconcile import reconcile_webhook
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
                    (data.get("status") or {}).get("conditions"), type="Ready", status="False",
                    reason=conditions.Reason.INVALID_SPEC, message=str(error)[:1024],
                    observed_generation=int(meta.get("generation", 1)), now=datetime.now(UTC),
                ),
            }
            kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], status)
            raise kopf.PermanentError(f"invalid spec: {error}") from error
        try:
            reconcile_webhook(kube, service, data, spec)
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
    uid = body["metadata"]["uid"]
    service.directory.remove(uid)
    canceled = service.store.cancel_webhook(uid)
    service.metrics.deliveries.labels(outcome="canceled").inc(canceled)
    if canceled:
        logger.info(f"webhook deleted: {canceled} pending deliveries canceled")
