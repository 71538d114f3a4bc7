"""Token and ScopeMap handlers: one reconcile per kind on create, update (spec, or the
`dockyard.dev/regenerate-password` annotation), resume and the drift-repair loop (started by `main`:
a Token's Secret deleted or edited by hand is back within one drift interval). Quota positions and
references move when a sibling is deleted, a ScopeMap appears or disappears, or the Registry appears,
disappears, changes tier or gets its login servers: those events re-reconcile the objects concerned
at once. A Token created or deleted also refreshes its Registry's `status.usage.tokens` at once
(through the Registry's work queue, `handlers/registry.py`), not at the Registry's next reconcile.

The indices below (kopf's, fed by its watches) give each reconcile its registry's siblings without
a LIST.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from dockyard.access.metrics import access_metrics
from dockyard.access.scopemaps import reconcile_scope_map
from dockyard.access.tokens import reconcile_token
from dockyard.auth.policy import generate_password
from dockyard.core import conditions
from dockyard.core.cache import known, slim
from dockyard.core.conditions import ConditionType, Reason
from dockyard.core.errors import ReconcileError
from dockyard.core.kube import Kube, contains, kube_from
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.handlers.registry import referrers_changed
from dockyard.metrics import metrics_from
from dockyard.models import API_VERSION, GROUP, VERSION
from dockyard.models.access import ScopeMapSpec, TokenSpec
from dockyard.models.base import referenced_registry

TOKEN: Final = "Token"
SCOPE_MAP: Final = "ScopeMap"
Indices = Mapping[str, Any]


@kopf.index(GROUP, VERSION, "tokens")
async def dockyard_tokens_by_registry(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): slim(body)}


@kopf.index(GROUP, VERSION, "scopemaps")
async def dockyard_scope_maps_by_registry(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): slim(body)}


def _of(index: Any, key: tuple[str, str]) -> list[dict[str, Any]]:
    store = index.get(key) if index is not None else None
    return list(store) if store is not None else []


def _registry(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    cached = kube.cache.registry(namespace, name)
    return cached if known(cached) else kube.get(API_VERSION, "Registry", namespace, name)  # type: ignore[return-value]


class _OverQuota:
    """Which objects were last found beyond the quota, for the gauge."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uids: dict[str, set[str]] = {TOKEN: set(), SCOPE_MAP: set()}

    def note(self, memo: kopf.Memo, kind: str, uid: str, over: bool) -> None:
        with self._lock:
            (self._uids[kind].add if over else self._uids[kind].discard)(uid)
            count = len(self._uids[kind])
        access_metrics(metrics_from(memo).registry).over_quota.labels(kind=kind).set(count)


OVER_QUOTA: Final = _OverQuota()


def _write_status(
    kube: Kube,
    kind: str,
    body: Mapping[str, Any],
    fields: dict[str, Any],
    ready: bool,
    reason: str,
    message: str,
) -> None:
    meta = body["metadata"]
    current = dict(body.get("status") or {})
    generation = int(meta.get("generation", 1))
    status = {
        **fields,
        "observedGeneration": generation,
        "conditions": conditions.set_condition(
            current.get("conditions"),
            type=ConditionType.READY,
            status="True" if ready else "False",
            reason=reason,
            message=message,
            observed_generation=generation,
            now=datetime.now(UTC),
        ),
    }
    if not contains(current, status):
        kube.patch_status(API_VERSION, kind, meta["namespace"], meta["name"], status)


def _reporter(kube: Kube, kind: str, body: Mapping[str, Any]) -> Callable[[ReconcileError], None]:
    def report(error: ReconcileError) -> None:
        _write_status(kube, kind, body, {}, False, error.reason, error.message)

    return report


def _reconcile_token(body: Mapping[str, Any], memo: kopf.Memo, indices: Indices) -> None:
    kube = kube_from(memo)
    meta = body["metadata"]
    namespace = meta["namespace"]
    with metrics_from(memo).observe_reconcile(TOKEN), reconcile_edge(_reporter(kube, TOKEN, body)):
        spec = parse_spec(TokenSpec, body)
        key = (namespace, spec.registry_ref.name)
        registry = _registry(kube, *key)
        siblings = _of(indices.get("dockyard_tokens_by_registry"), key)
        maps = _of(indices.get("dockyard_scope_maps_by_registry"), key)
        exists = any(m["metadata"]["name"] == spec.scope_map_ref.name for m in maps)
        outcome = reconcile_token(kube, body, spec, registry, siblings, exists, generate_password, datetime.now(UTC))
        _write_status(kube, TOKEN, body, outcome.status, outcome.ready, outcome.reason, outcome.message)
        OVER_QUOTA.note(memo, TOKEN, meta["uid"], outcome.reason == Reason.QUOTA_EXCEEDED)
        generated = access_metrics(metrics_from(memo).registry).passwords_generated
        if outcome.regenerated:
            generated.labels(cause="regenerated").inc()
        generated.labels(cause="created").inc(outcome.generated)
        for reason, message in outcome.events:
            kube.post_event(_involved(body, TOKEN), "Normal", reason, message)


def _reconcile_scope_map(body: Mapping[str, Any], memo: kopf.Memo, indices: Indices) -> None:
    kube = kube_from(memo)
    meta = body["metadata"]
    with metrics_from(memo).observe_reconcile(SCOPE_MAP), reconcile_edge(_reporter(kube, SCOPE_MAP, body)):
        spec = parse_spec(ScopeMapSpec, body)
        key = (meta["namespace"], spec.registry_ref.name)
        siblings = _of(indices.get("dockyard_scope_maps_by_registry"), key)
        outcome = reconcile_scope_map(body, spec, _registry(kube, *key), siblings)
        _write_status(kube, SCOPE_MAP, body, outcome.status, outcome.ready, outcome.reason, outcome.message)
        OVER_QUOTA.note(memo, SCOPE_MAP, meta["uid"], outcome.reason == Reason.QUOTA_EXCEEDED)


def _involved(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": dict(body["metadata"])}


@kopf.on.resume(GROUP, VERSION, "tokens")
@kopf.on.create(GROUP, VERSION, "tokens")
@kopf.on.update(GROUP, VERSION, "tokens")
def reconcile_token_handler(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    _reconcile_token(body, memo, kwargs)


@kopf.on.resume(GROUP, VERSION, "scopemaps")
@kopf.on.create(GROUP, VERSION, "scopemaps")
@kopf.on.update(GROUP, VERSION, "scopemaps")
def reconcile_scope_map_handler(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    _reconcile_scope_map(body, memo, kwargs)


def repair_token_drift(body: Mapping[str, Any], memo: kopf.Memo, indices: Indices) -> None:
    """The same reconcile, from the drift-repair loop (`core/drift.py`): the Token's Secrets,
    deleted or edited by hand, are recreated. A deleted credentials Secret takes the passwords with
    it: new ones are generated (as at the next update or restart), the status's verifiers follow."""
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _reconcile_token(body, memo, indices)


def repair_scope_map_drift(body: Mapping[str, Any], memo: kopf.Memo, indices: Indices) -> None:
    """The same reconcile, from the drift-repair loop: a status edited by hand is written back."""
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _reconcile_scope_map(body, memo, indices)


def _rereconcile(
    bodies: Iterable[Mapping[str, Any]],
    reconcile: Callable[[Mapping[str, Any], kopf.Memo, Indices], None],
    memo: kopf.Memo,
    indices: Indices,
) -> None:
    for body in bodies:
        if not body["metadata"].get("deletionTimestamp"):
            # A failure is in the object's status already; its own handler retries.
            with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
                reconcile(body, memo, indices)


def _ready_reason(body: Mapping[str, Any]) -> str | None:
    found = conditions.find_condition((body.get("status") or {}).get("conditions"), ConditionType.READY)
    return None if found is None else str(found.get("reason"))


@kopf.on.event(GROUP, VERSION, "tokens")
async def token_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    """A Token created or deleted changes its Registry's `usage.tokens`; a deleted one also frees a
    quota place: the first Token waiting for one is reconciled."""
    registry = referenced_registry(body)
    if type in ("ADDED", "DELETED") and registry:
        referrers_changed(memo, body["metadata"]["namespace"], registry)
    if type != "DELETED":
        return
    key = (body["metadata"]["namespace"], registry or "")
    waiting = [
        t
        for t in _of(kwargs.get("dockyard_tokens_by_registry"), key)
        if _ready_reason(t) == Reason.QUOTA_EXCEEDED and t["metadata"]["uid"] != body["metadata"]["uid"]
    ]
    if waiting:
        await asyncio.to_thread(_rereconcile, waiting, _reconcile_token, memo, kwargs)


@kopf.on.event(GROUP, VERSION, "scopemaps")
async def scope_map_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    """A ScopeMap created or deleted changes its Tokens' conditions; a deletion also frees a quota
    place."""
    if type not in ("ADDED", "DELETED"):
        return
    name, uid = body["metadata"]["name"], body["metadata"]["uid"]
    key = (body["metadata"]["namespace"], referenced_registry(body) or "")
    tokens = [
        t
        for t in _of(kwargs.get("dockyard_tokens_by_registry"), key)
        if ((t.get("spec") or {}).get("scopeMapRef") or {}).get("name") == name
    ]
    maps = (
        [
            m
            for m in _of(kwargs.get("dockyard_scope_maps_by_registry"), key)
            if _ready_reason(m) == Reason.QUOTA_EXCEEDED and m["metadata"]["uid"] != uid
        ]
        if type == "DELETED"
        else []
    )
    if tokens or maps:
        await asyncio.to_thread(_rereconcile, tokens, _reconcile_token, memo, kwargs)
        await asyncio.to_thread(_rereconcile, maps, _reconcile_scope_map, memo, kwargs)


_REGISTRIES_SEEN: Final[dict[tuple[str, str], tuple[str, ...]]] = {}


@kopf.on.event(GROUP, VERSION, "registries")
async def registry_changed_for_access(body: kopf.Body, type: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    """A Registry created or deleted, moved to another tier, or given its login servers (the pull
    Secrets name them) re-reconciles its Tokens and ScopeMaps; other updates (most are its status
    writes) are decided on the event loop and cost nothing."""
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    status = body.get("status") or {}
    now = (
        meta["uid"],
        str((body.get("spec") or {}).get("sku")),
        *(str(status.get(field)) for field in ("loginServer", "nodeLoginServer", "externalLoginServer")),
    )
    if type == "DELETED":
        _REGISTRIES_SEEN.pop(key, None)
    elif _REGISTRIES_SEEN.get(key) == now:
        return
    else:
        known_before = key in _REGISTRIES_SEEN
        _REGISTRIES_SEEN[key] = now
        if type is None or (type == "MODIFIED" and not known_before):
            return  # the initial listing: every Token and ScopeMap is resumed anyway
    tokens = _of(kwargs.get("dockyard_tokens_by_registry"), key)
    maps = _of(kwargs.get("dockyard_scope_maps_by_registry"), key)
    if tokens or maps:
        await asyncio.to_thread(_rereconcile, maps, _reconcile_scope_map, memo, kwargs)
        await asyncio.to_thread(_rereconcile, tokens, _reconcile_token, memo, kwargs)
