"""Registry handlers: one reconcile on create, update and resume; the same reconcile for the
drift-repair loop; and the children's watch events (`core/children.py`, queued by registry in a
`KeyedQueue`; both started by `main`): a Deployment's rollout is folded into the parent's status
without a reconcile, and a child deleted by hand is recreated at once. A Token created or deleted
(`handlers/access.py`) goes through the same queue, so `status.usage.tokens` follows at once."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import kopf

from dockyard.core import conditions
from dockyard.core.cache import known
from dockyard.core.children import Listener
from dockyard.core.conditions import ConditionType, EventReason, Reason
from dockyard.core.errors import ReconcileError
from dockyard.core.kube import Kube, contains, kube_from
from dockyard.core.names import CHILD_LABELS, COMPONENT_LABEL, INSTANCE_LABEL, NAME_LABEL
from dockyard.core.workqueue import KeyedQueue
from dockyard.handlers.edge import parse_spec, reconcile_edge
from dockyard.metrics import metrics_from
from dockyard.models import API_VERSION, GROUP, VERSION
from dockyard.models.registry import RegistrySpec
from dockyard.registries.manifests.endpoints import HOME_NAMESPACE_LABEL, HOME_REGISTRY_LABEL
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.registries.status import desired_status, ready_condition
from dockyard.settings import OperatorSettings, settings_from

KIND: Final = "Registry"
REGISTRY_CHILDREN: Final = {**CHILD_LABELS, NAME_LABEL: "registry"}
REPAIRED_ON_DELETION: Final = frozenset({"Secret", "ConfigMap", "Service", "EndpointSlice"})
"""Children recreated as soon as they are deleted by hand (the others at the next drift pass)."""
RegistryKey = tuple[str, str]
CHILD_CHANGES_KEY: Final = "child_changes"
"""Where `main` keeps the queue of the children's changes in kopf's memo."""
OBSERVED_REASONS: Final = frozenset({Reason.RECONCILED, Reason.PROGRESSING})
"""`Ready` reasons a child's rollout may replace; any other (a refused tier, a missing Secret) stays
until the next reconcile clears it."""


def _reconciler(kube: Kube, settings: OperatorSettings) -> RegistryReconciler:
    return RegistryReconciler(
        kube,
        settings.registry_image,
        settings.token_service_image or settings.operator_image,
        settings.events_url,
        settings.node_registry_config_dir,
    )


class Reconciling:
    """Registries being reconciled in this process, and what their children did meanwhile: a
    child's event during a reconcile waits for its end (the reconcile may have looked at that
    child already), then is handled once; it does not start a second reconcile beside the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[RegistryKey, int] = {}
        self._moved: dict[RegistryKey, ChildChange] = {}

    @contextlib.contextmanager
    def reconciling(self, key: RegistryKey, memo: kopf.Memo) -> Iterator[None]:
        with self._lock:
            self._running[key] = self._running.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[key] -= 1
                moved = None
                if not self._running[key]:
                    del self._running[key]
                    moved = self._moved.pop(key, None)
            queue = memo.get(CHILD_CHANGES_KEY)
            if moved is not None and isinstance(queue, KeyedQueue):
                queue.add_threadsafe(key, moved)

    def defer(self, key: RegistryKey, change: ChildChange) -> bool:
        """Keep `change` for the end of the reconcile running now, if one is."""
        with self._lock:
            if key not in self._running:
                return False
            earlier = self._moved.get(key)
            self._moved[key] = change if earlier is None else earlier.merge(change)
            return True


RECONCILING: Final = Reconciling()


def _reconcile(
    body: Mapping[str, Any], memo: kopf.Memo, logger: kopf.Logger | Any, *, left_cert_manager: bool = False
) -> None:
    meta = body["metadata"]
    with RECONCILING.reconciling((meta["namespace"], meta["name"]), memo):
        _reconcile_now(body, memo, logger, left_cert_manager=left_cert_manager)


def _reconcile_now(
    body: Mapping[str, Any], memo: kopf.Memo, logger: kopf.Logger | Any, *, left_cert_manager: bool = False
) -> None:
    kube = kube_from(memo)
    meta = body["metadata"]
    body = WRITTEN.freshest((meta["namespace"], meta["name"]), body)
    current = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation", 1))

    def report(error: ReconcileError) -> None:
        _write_status(kube, body, desired_status(current, generation, {}, False, error.reason, error.message))
        logger.warning(f"not ready ({error.reason}): {error.message}")

    with metrics_from(memo).observe_reconcile(KIND), reconcile_edge(report):
        spec = parse_spec(RegistrySpec, body)
        outcome = _reconciler(kube, settings_from(memo)).reconcile(body, spec, left_cert_manager=left_cert_manager)
        reason, message = ready_condition(outcome.status, outcome.ready)
        _publish(
            kube,
            body,
            desired_status(
                current, generation, outcome.status, outcome.ready, reason, message, network=outcome.network
            ),
        )
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
    WRITTEN.remember((meta["namespace"], meta["name"]), str(meta.get("uid")), status)


class WrittenStatus:
    """The status this process last wrote for each Registry. Under a burst the watch-fed copy of
    a Registry lags its status write by seconds; a child's event in between would see "not
    reconciled at this generation" and run a whole reconcile again, for nothing. Kept as compact
    JSON (a thousand parsed statuses cost megabytes) and parsed afresh for each reader."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[RegistryKey, tuple[str, bytes]] = {}

    def remember(self, key: RegistryKey, uid: str, status: dict[str, Any]) -> None:
        packed = json.dumps(status, separators=(",", ":"), default=str).encode()
        with self._lock:
            self._written[key] = (uid, packed)

    def freshest(self, key: RegistryKey, parent: Mapping[str, Any]) -> dict[str, Any]:
        """`parent` with the status last written over the cached one. Only this module writes a
        Registry's status, so within this process its last write is the newest status whatever
        a (lagging) copy shows; with the copy's, a Ready registry read as not Ready yet posted
        its Ready Event and status a second time."""
        with self._lock:
            written = self._written.get(key)
        meta = parent["metadata"]
        if written is None or written[0] != meta.get("uid"):
            return dict(parent)
        return {**parent, "status": {**(parent.get("status") or {}), **json.loads(written[1])}}

    def forget(self, key: RegistryKey) -> None:
        with self._lock:
            self._written.pop(key, None)


WRITTEN: Final = WrittenStatus()


@kopf.on.resume(GROUP, VERSION, "registries")
@kopf.on.create(GROUP, VERSION, "registries")
@kopf.on.update(GROUP, VERSION, "registries")
def reconcile_registry(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, old: Any = None, **_: Any) -> None:
    # kopf's previous spec (its last handled one: also across a restart) tells a change of TLS
    # mode; the drift pass and children's events never see one, and never look.
    _reconcile(body, memo, logger, left_cert_manager=left_cert_manager(old, body))


def left_cert_manager(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether a change took the spec out of `tls.mode: CertManager`."""

    def mode(body: Mapping[str, Any] | None) -> str | None:
        return (((body or {}).get("spec") or {}).get("tls") or {}).get("mode")

    return mode(old) == "CertManager" and mode(new) != "CertManager"


def repair_drift(body: Mapping[str, Any], memo: kopf.Memo) -> None:
    """The same reconcile, from the drift-repair loop (`core/drift.py`): children edited or
    deleted by hand are repaired."""
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _reconcile(body, memo, _object_logger(body))


def _object_logger(body: Mapping[str, Any]) -> logging.LoggerAdapter[logging.Logger]:
    meta = body.get("metadata") or {}
    return ObjectLogger(logging.getLogger("kopf.objects"), {"prefix": f"[{meta.get('namespace')}/{meta.get('name')}]"})


class ObjectLogger(logging.LoggerAdapter[logging.Logger]):
    """Messages prefixed with the object, as kopf's own object loggers do."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{(self.extra or {}).get('prefix')} {msg}", kwargs


@dataclass(frozen=True)
class ChildChange:
    """What happened to a registry's children since it was last looked at: `reconcile` when a
    child was deleted (recreate it), else only the Deployment's rollout moved (fold it into the
    status); `endpoints` when a pod of it or of a replica, or a Replication, changed (the global
    login server's EndpointSlices follow). `uid` is the Registry's, "" when the event cannot
    know it (a replica's pod)."""

    uid: str
    reconcile: bool
    endpoints: bool = False

    def merge(self, newer: ChildChange) -> ChildChange:
        return ChildChange(newer.uid or self.uid, self.reconcile or newer.reconcile, self.endpoints or newer.endpoints)


def _pod_registry(labels: Mapping[str, str], namespace: str) -> RegistryKey | None:
    """The registry whose global login server may list a pod: its own for a registry pod, the
    home registry (labelled on the template) for a replica's."""
    if labels.get(COMPONENT_LABEL) != "registry":
        return None
    if labels.get(NAME_LABEL) == "registry" and labels.get(INSTANCE_LABEL):
        return namespace, labels[INSTANCE_LABEL]
    if labels.get(NAME_LABEL) == "replication" and labels.get(HOME_REGISTRY_LABEL):
        return labels.get(HOME_NAMESPACE_LABEL) or namespace, labels[HOME_REGISTRY_LABEL]
    return None


def child_change(kind: str, type: str, child: Mapping[str, Any]) -> tuple[RegistryKey, ChildChange] | None:
    """The change a child's watch event means to its Registry, if any (called in the watch's
    thread: quick, no request)."""
    meta = child.get("metadata") or {}
    if kind == "Pod":
        registry = _pod_registry(meta.get("labels") or {}, str(meta.get("namespace") or ""))
        return None if registry is None else (registry, ChildChange("", reconcile=False, endpoints=True))
    owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("kind") == KIND]
    if not owners:
        return None
    key = (str(meta.get("namespace") or ""), str(owners[0].get("name")))
    uid = str(owners[0].get("uid"))
    labels = meta.get("labels") or {}
    if kind == "Deployment" and all(labels.get(k) == v for k, v in REGISTRY_CHILDREN.items()):
        return key, ChildChange(uid, reconcile=type == "DELETED")
    if kind in REPAIRED_ON_DELETION and type == "DELETED":
        return key, ChildChange(uid, reconcile=True)
    return None


def referrers_changed(memo: kopf.Memo, namespace: str, registry: str) -> bool:
    """A Token (or another object counted in `status.usage`) that references the registry was
    created or deleted: fold the new count into the Registry's status soon, through the
    children's queue (a burst of a thousand creations merges into one handling and at most one
    status write). Returns whether it was queued (not when the Registry is unknown)."""
    return _queue(memo, namespace, registry, endpoints=False)


def endpoints_changed(memo: kopf.Memo, namespace: str, registry: str) -> bool:
    """A Replication of the registry was created, changed or deleted: its global login server's
    Service shape and EndpointSlices follow soon, through the children's queue. Returns whether
    it was queued (not when the Registry is unknown)."""
    return _queue(memo, namespace, registry, endpoints=True)


def _queue(memo: kopf.Memo, namespace: str, registry: str, *, endpoints: bool) -> bool:
    queue = memo.get(CHILD_CHANGES_KEY)
    if not isinstance(queue, KeyedQueue):
        return False
    parent = kube_from(memo).cache.registry(namespace, registry)
    if not isinstance(parent, dict):
        return False
    change = ChildChange(str(parent["metadata"].get("uid")), reconcile=False, endpoints=endpoints)
    queue.add_threadsafe((namespace, registry), change)
    return True


def child_listener(queue: KeyedQueue[RegistryKey, ChildChange]) -> Listener:
    def listen(kind: str, type: str, child: Mapping[str, Any]) -> None:
        change = child_change(kind, type, child)
        if change is not None:
            queue.add_threadsafe(*change)

    return listen


def _parent(kube: Kube, key: RegistryKey, uid: str) -> dict[str, Any] | None:
    namespace, name = key
    cached = kube.cache.registry(namespace, name)
    parent = cached if known(cached) else kube.get(API_VERSION, KIND, namespace, name)
    if not isinstance(parent, dict) or parent["metadata"].get("deletionTimestamp"):
        return None
    if uid and parent["metadata"].get("uid") != uid:
        return None
    return parent


def handle_child_change(key: RegistryKey, change: ChildChange, memo: kopf.Memo) -> None:
    """A child deleted by hand (not by garbage collection of a deleted Registry) is recreated now;
    a rollout that moved is folded into the parent's status (no reconcile)."""
    if RECONCILING.defer(key, change):
        return
    kube = kube_from(memo)
    parent = _parent(kube, key, change.uid)
    if parent is None:
        WRITTEN.forget(key)
        return
    parent = WRITTEN.freshest(key, parent)
    logger = _object_logger(parent)
    current = parent.get("status") or {}
    ready = conditions.find_condition(current.get("conditions"), ConditionType.READY)
    generation = int(parent["metadata"].get("generation", 1))
    if (
        change.reconcile
        or ready is None
        or ready.get("reason") not in OBSERVED_REASONS
        or current.get("observedGeneration") != generation
    ):
        # A child to recreate; or not reconciled at this generation as far as the cache shows (its
        # copy of our last status write may lag), or waiting for the user: only the reconcile can
        # decide. With the caches it costs no request when nothing changed; returning instead
        # would leave a rollout that just finished unreported until the next drift pass.
        with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
            _reconcile(parent, memo, logger)
        return
    try:
        spec = RegistrySpec.model_validate(parent.get("spec") or {})
    except ValueError:
        return
    reconciler = _reconciler(kube, settings_from(memo))
    if change.endpoints:
        changed = reconciler.refresh_global_endpoint(parent, spec)
        if changed:
            logger.info(f"global login server updated: {', '.join(changed)}")
    ctx = reconciler.context(parent, spec)
    # The Deployment as the cache shows it now: the newest of the events merged into this change.
    fields, is_ready = reconciler.observe(ctx, spec.admin_user.enabled)
    reason, message = ready_condition(fields, is_ready)
    _publish(kube, parent, desired_status(current, generation, fields, is_ready, reason, message))
