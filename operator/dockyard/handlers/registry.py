"""Registry handlers: one reconcile on create, update and resume, a drift-repair daemon, and
watches on the children: a Deployment's rollout is folded into the parent's status without a
reconcile, and a child deleted by hand is recreated at once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from typing import Any, Final

import kopf

from dockyard.core import conditions
from dockyard.core.cache import known
from dockyard.core.conditions import ConditionType, EventReason, Reason
from dockyard.core.errors import ReconcileError
from dockyard.core.kube import Kube, contains, kube_from
from dockyard.core.names import CHILD_LABELS, NAME_LABEL
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.metrics import metrics_from
from dockyard.models import API_VERSION, GROUP, VERSION
from dockyard.models.registry import RegistrySpec
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.registries.status import desired_status, ready_condition
from dockyard.settings import OperatorSettings, settings_from

KIND: Final = "Registry"
REGISTRY_CHILDREN: Final = {**CHILD_LABELS, NAME_LABEL: "registry"}
OBSERVED_REASONS: Final = frozenset({Reason.RECONCILED, Reason.PROGRESSING})
"""`Ready` reasons a child's rollout may replace; any other (a refused tier, a missing Secret) stays
until the next reconcile clears it."""


def _reconciler(kube: Kube, settings: OperatorSettings) -> RegistryReconciler:
    return RegistryReconciler(
        kube,
        settings.registry_image,
        settings.operator_image,
        settings.events_url,
        settings.node_registry_config_dir,
    )


def _reconcile(body: Mapping[str, Any], memo: kopf.Memo, logger: kopf.Logger | Any) -> None:
    kube = kube_from(memo)
    body = dict(body)
    current = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation", 1))

    def report(error: ReconcileError) -> None:
        _write_status(kube, body, desired_status(current, generation, {}, False, error.reason, error.message))
        logger.warning(f"not ready ({error.reason}): {error.message}")

    with metrics_from(memo).observe_reconcile(KIND), reconcile_edge(report):
        spec = parse_spec(RegistrySpec, body)
        outcome = _reconciler(kube, settings_from(memo)).reconcile(body, spec)
        reason, message = ready_condition(outcome.status, outcome.ready)
        _publish(kube, body, desired_status(current, generation, outcome.status, outcome.ready, reason, message))
        if outcome.changed:
            logger.info(f"updated: {', '.join(outcome.changed)}")


def _publish(kube: Kube, body: Mapping[str, Any], status: dict[str, Any]) -> None:
    """Write the status; post an Event when the registry turns Ready."""
    before = conditions.find_condition((body.get("status") or {}).get("conditions"), ConditionType.READY) or {}
    _write_status(kube, body, status)
    after = conditions.find_condition(status.get("conditions"), ConditionType.READY) or {}
    if after.get("status") == "True" and before.get("status") != "True":
        kube.post_event(dict(body), "Normal", EventReason.READY, f"registry is ready at {status.get('loginServer')}")


def _write_status(kube: Kube, body: Mapping[str, Any], status: dict[str, Any]) -> None:
    if contains(body.get("status") or {}, status):
        return
    meta = body["metadata"]
    kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], status)


@kopf.on.resume(GROUP, VERSION, "registries")
@kopf.on.create(GROUP, VERSION, "registries")
@kopf.on.update(GROUP, VERSION, "registries")
def reconcile_registry(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, memo, logger)


@kopf.daemon(GROUP, VERSION, "registries", cancellation_timeout=5)
async def repair_registry_drift(
    stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Every `drift_interval_seconds` (read at startup), the same reconcile: children edited or
    deleted by hand are repaired. The first pass is spread over one interval so that a thousand
    registries do not reconcile in the same second."""
    interval = settings_from(memo).drift_interval_seconds
    await stopped.wait(interval * (1 + random.random()))
    while not stopped:
        with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
            await asyncio.to_thread(_reconcile, body, memo, logger)
        await stopped.wait(interval)


def _parent(kube: Kube, child: Mapping[str, Any]) -> dict[str, Any] | None:
    owners = [ref for ref in child.get("metadata", {}).get("ownerReferences") or [] if ref.get("kind") == KIND]
    if not owners:
        return None
    namespace = child["metadata"]["namespace"]
    cached = kube.cache.registry(namespace, owners[0]["name"])
    parent = cached if known(cached) else kube.get(API_VERSION, KIND, namespace, owners[0]["name"])
    if not isinstance(parent, dict) or parent["metadata"].get("deletionTimestamp"):
        return None
    if parent["metadata"].get("uid") != owners[0].get("uid"):
        return None
    return parent


@kopf.on.event("apps", "v1", "deployments", labels=REGISTRY_CHILDREN)
def registry_deployment_changed(
    body: kopf.Body, type: str | None, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """A rollout moved: fold the Deployment's state into the parent's status (no reconcile)."""
    kube = kube_from(memo)
    parent = _parent(kube, body)
    if parent is None:
        return
    if type == "DELETED":
        with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
            _reconcile(parent, memo, logger)
        return
    current = parent.get("status") or {}
    ready = conditions.find_condition(current.get("conditions"), ConditionType.READY)
    generation = int(parent["metadata"].get("generation", 1))
    if ready is None or ready.get("reason") not in OBSERVED_REASONS or current.get("observedGeneration") != generation:
        # Not reconciled at this generation as far as the cache shows (its copy of our last status
        # write may lag), or waiting for the user: only the reconcile can decide. With the caches it
        # costs no request when nothing changed; returning instead would leave a rollout that just
        # finished unreported until the next drift pass.
        with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
            _reconcile(parent, memo, logger)
        return
    try:
        spec = RegistrySpec.model_validate(parent.get("spec") or {})
    except ValueError:
        return
    reconciler = _reconciler(kube, settings_from(memo))
    ctx = reconciler.context(parent, spec)
    fields, is_ready = reconciler.observe(ctx, spec.admin_user.enabled, deployment=dict(body))
    reason, message = ready_condition(fields, is_ready)
    _publish(kube, parent, desired_status(current, generation, fields, is_ready, reason, message))


@kopf.on.event("v1", "secrets", labels=CHILD_LABELS, when=lambda type, **_: type == "DELETED")
@kopf.on.event("v1", "configmaps", labels=CHILD_LABELS, when=lambda type, **_: type == "DELETED")
@kopf.on.event("v1", "services", labels=CHILD_LABELS, when=lambda type, **_: type == "DELETED")
def registry_child_deleted(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """A child deleted by hand (not by garbage collection of a deleted Registry) is recreated now."""
    parent = _parent(kube_from(memo), body)
    if parent is not None:
        with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
            _reconcile(parent, memo, logger)
