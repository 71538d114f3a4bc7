"""Registry handlers: one reconcile on create, update, resume and a drift timer, and a
watch on the registry Deployments that folds their readiness into the parent's status."""

from __future__ import annotations

import contextlib
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import conditions
from ..kube import Kube, contains, kube_from
from ..metrics import metrics_from
from ..models import GROUP, VERSION
from ..models.registry import RegistrySpec
from ..registries import NotReady, RegistryReconciler, desired_status
from ..settings import load_settings, settings_from

# kopf declares timers at import, before startup puts the settings into memo.
DRIFT_INTERVAL = load_settings().drift_interval_seconds
KIND = "Registry"


def _reconcile(body: kopf.Body | dict[str, Any], memo: kopf.Memo, logger: kopf.Logger | Any) -> None:
    kube = kube_from(memo)
    settings = settings_from(memo)
    body = dict(body)
    meta, current = body["metadata"], dict(body.get("status") or {})
    generation = int(meta.get("generation", 1))
    with metrics_from(memo).observe_reconcile(KIND):
        try:
            spec = RegistrySpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            _write_status(
                kube, body, desired_status(current, generation, {}, False, conditions.Reason.INVALID_SPEC, str(error))
            )
            raise kopf.PermanentError(f"invalid spec: {error}") from error
        reconciler = RegistryReconciler(kube, settings.registry_image, settings.operator_image, settings.events_url)
        try:
            outcome = reconciler.reconcile(body, spec)
        except NotReady as problem:
            _write_status(kube, body, desired_status(current, generation, {}, False, problem.reason, problem.message))
            logger.warning(f"not ready: {problem.message}")
            raise kopf.TemporaryError(problem.message, delay=15) from problem
        except ApiException as error:
            message = f"Kubernetes API error {error.status} {error.reason}"
            _write_status(
                kube, body, desired_status(current, generation, {}, False, conditions.Reason.RECONCILE_FAILED, message)
            )
            raise kopf.TemporaryError(message, delay=10) from error
        if outcome.ready:
            reason, message = (
                conditions.Reason.RECONCILED,
                f"{outcome.status['readyReplicas']} of {outcome.status['replicas']} replicas ready",
            )
        else:
            reason, message = (
                conditions.Reason.PROGRESSING,
                (f"rolling out: {outcome.status['readyReplicas']} of {outcome.status['replicas']} replicas ready"),
            )
        was_ready = (conditions.find_condition(current.get("conditions"), "Ready") or {}).get("status") == "True"
        _write_status(kube, body, desired_status(current, generation, outcome.status, outcome.ready, reason, message))
        if outcome.changed:
            logger.info(f"updated: {', '.join(outcome.changed)}")
        if outcome.ready and not was_ready:
            kube.post_event(body, "Normal", "Ready", f"registry is ready at {outcome.status['loginServer']}")


def _write_status(kube: Kube, body: dict[str, Any], status: dict[str, Any]) -> None:
    current = body.get("status") or {}
    if contains(current, status):
        return
    meta = body["metadata"]
    kube.patch_status(f"{GROUP}/{VERSION}", KIND, meta["namespace"], meta["name"], status)


@kopf.on.resume(GROUP, VERSION, "registries")
@kopf.on.create(GROUP, VERSION, "registries")
@kopf.on.update(GROUP, VERSION, "registries")
def reconcile_registry(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, memo, logger)


@kopf.timer(GROUP, VERSION, "registries", interval=DRIFT_INTERVAL, initial_delay=DRIFT_INTERVAL)
def repair_registry_drift(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, memo, logger)


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    labels={"app.kubernetes.io/managed-by": "dockyard", "app.kubernetes.io/name": "registry"},
)
def registry_deployment_changed(
    body: kopf.Body, type: str | None, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    owners = [ref for ref in body.get("metadata", {}).get("ownerReferences", []) if ref.get("kind") == KIND]
    if not owners:
        return
    kube = kube_from(memo)
    parent = kube.get(f"{GROUP}/{VERSION}", KIND, body["metadata"]["namespace"], owners[0]["name"])
    if parent is None or parent["metadata"].get("deletionTimestamp"):
        return
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _reconcile(parent, memo, logger)
