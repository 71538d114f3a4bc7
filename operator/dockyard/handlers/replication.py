"""Replication handlers: one reconcile on create, update and resume, and the same reconcile on a
timer (the replica's rollout and the copier's figures folded into status; drift repaired). Deleting
a Replication in its registry's namespace needs no handler: every child is owned by it (the volume
per its reclaim policy); one with `targetNamespace` elsewhere carries the finalizer, and its
children are removed by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import kopf

from dockyard.core.errors import Permanent, ReconcileError
from dockyard.core.kube import contains, kube_from
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.handlers.registry import endpoints_changed
from dockyard.metrics import metrics_from
from dockyard.models import API_VERSION, GROUP, VERSION
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.replication.reconcile import ReplicaReconciler
from dockyard.replication.service import figures_from
from dockyard.replication.status import replication_status
from dockyard.settings import settings_from

KIND: Final = "Replication"
STATUS_SECONDS: Final = 15.0
"""How often the replica's rollout and sync figures are folded into status."""


def _replicas(memo: kopf.Memo) -> ReplicaReconciler:
    kube, settings = kube_from(memo), settings_from(memo)
    return ReplicaReconciler(
        RegistryReconciler(
            kube,
            settings.registry_image,
            settings.operator_image,
            settings.events_url,
            settings.node_registry_config_dir,
        )
    )


def _reconcile(body: Mapping[str, Any], memo: kopf.Memo, logger: Any) -> None:
    kube = kube_from(memo)
    data = dict(body)
    meta = data["metadata"]
    current = dict(data.get("status") or {})
    generation = int(meta.get("generation", 1))
    spec_data = data.get("spec") or {}
    registry = str((spec_data.get("registryRef") or {}).get("name") or "")
    location = str(spec_data.get("location") or "")

    def write(status: dict[str, Any]) -> None:
        if not contains(current, status):
            kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], status)

    def report(error: ReconcileError) -> None:
        write(
            replication_status(
                current,
                generation,
                refusal=(error.reason, error.message),
                login_server=None,
                serving=False,
                figures=figures_from(memo, meta["namespace"], registry, location),
                final=isinstance(error, Permanent),
            )
        )
        logger.warning(f"not ready ({error.reason}): {error.message}")

    with metrics_from(memo).observe_reconcile(KIND), reconcile_edge(report):
        spec = parse_spec(ReplicationSpec, data)
        outcome = _replicas(memo).reconcile(data, spec)
        refusal = (outcome.refusal.reason, outcome.refusal.message) if outcome.refusal else None
        write(
            replication_status(
                current,
                generation,
                refusal=refusal,
                login_server=outcome.ctx.login_server if outcome.ctx else None,
                serving=outcome.serving,
                figures=figures_from(memo, meta["namespace"], registry, location),
                routing=outcome.routing,
            )
        )
        if refusal is not None:
            logger.warning(f"refused ({refusal[0]}): {refusal[1]}")
        elif outcome.changed:
            logger.info(f"replica updated: {', '.join(outcome.changed)}")


@kopf.on.resume(GROUP, VERSION, "replications")
@kopf.on.create(GROUP, VERSION, "replications")
@kopf.on.update(GROUP, VERSION, "replications")
def reconcile_replication(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, memo, logger)


@kopf.timer(GROUP, VERSION, "replications", interval=STATUS_SECONDS, idle=STATUS_SECONDS)
def refresh_replication(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    _reconcile(body, memo, logger)


@kopf.on.event(GROUP, VERSION, "replications")
async def route_replication(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Replication created, changed (`regionEndpointEnabled`) or deleted: its registry's global
    login server follows (Service shape, EndpointSlices), through the registry's queue; without a
    request when nothing changed. Only queues, so on the event loop: no handler thread."""
    meta = body.get("metadata") or {}
    registry = str(((body.get("spec") or {}).get("registryRef") or {}).get("name") or "")
    if registry:
        endpoints_changed(memo, str(meta.get("namespace") or ""), registry)


def _in_another_namespace(spec: kopf.Spec, namespace: str | None, **_: Any) -> bool:
    target = spec.get("targetNamespace")
    return bool(target) and target != namespace


@kopf.on.delete(GROUP, VERSION, "replications", when=_in_another_namespace)
def remove_replica(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    try:
        spec = ReplicationSpec.model_validate(body.get("spec") or {})
    except ValueError:
        return  # never valid: nothing was deployed
    removed = _replicas(memo).remove(dict(body), spec)
    if removed:
        logger.info(f"replica removed: {', '.join(removed)}")
