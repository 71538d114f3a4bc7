"""Watch-fed lookups: what the operator knows about objects without asking the API server.

kopf keeps one index per watched kind (declared in `handlers/indexes.py`), filled from its watches
before any resource handler runs (kopf postpones handlers until every index is pre-populated). This
module reads them:

- children (labelled `app.kubernetes.io/managed-by: dockyard`) by (namespace, name), as a
  `Summary`: the resourceVersion, the few fields the operator reads back (a Secret's or
  ConfigMap's data, a Deployment's generation and status, a claim's requested size), never the
  whole object: 1,000 registries hold ~10,000 children, and a full Deployment body costs tens of kB
  of Python objects. Registry pods too (their template carries the label): a pod's summary keeps
  its labels, addresses and readiness, what the global login server's EndpointSlices list;
- Dockyard's own kinds: Registries by name, Webhooks by name and by the registry they reference,
  Replications, Tokens and ScopeMaps by registry. Registries, Webhooks and Replications are kept
  `Packed` (compact JSON; parsed objects cost ten times as much memory) and parsed afresh on
  every read, so a caller may modify what it gets.

kopf updates the indices on its event loop while handlers read them from worker threads, so every
read copies under a retry (a dict that changes size during iteration raises `RuntimeError`).
Before `bind` (unit tests, or a process that has not started) every lookup answers "unknown"
(`None` / `Unknown`), and callers fall back to the API.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from dockyard.core.conditions import ConditionType

T = TypeVar("T")

# kopf index names (the decorated functions' names in handlers/indexes.py)
CHILD_INDEX: Final = {
    ("v1", "Secret"): "dockyard_secrets",
    ("v1", "ConfigMap"): "dockyard_configmaps",
    ("v1", "Service"): "dockyard_services",
    ("v1", "PersistentVolumeClaim"): "dockyard_claims",
    ("apps/v1", "Deployment"): "dockyard_deployments",
    ("apps/v1", "DaemonSet"): "dockyard_daemonsets",
    ("networking.k8s.io/v1", "Ingress"): "dockyard_ingresses",
    ("v1", "ServiceAccount"): "dockyard_serviceaccounts",
    ("rbac.authorization.k8s.io/v1", "Role"): "dockyard_roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "dockyard_rolebindings",
    ("networking.k8s.io/v1", "NetworkPolicy"): "dockyard_networkpolicies",
    ("v1", "Pod"): "dockyard_pods",
    ("discovery.k8s.io/v1", "EndpointSlice"): "dockyard_endpointslices",
}
REGISTRIES_INDEX: Final = "dockyard_registries"
WEBHOOKS_INDEX: Final = "dockyard_webhooks"
WEBHOOKS_BY_REGISTRY_INDEX: Final = "dockyard_webhooks_by_registry"
REPLICATIONS_BY_REGISTRY_INDEX: Final = "dockyard_replications_by_registry"
TOKENS_BY_REGISTRY_INDEX: Final = "dockyard_tokens_by_registry"
SCOPE_MAPS_BY_REGISTRY_INDEX: Final = "dockyard_scope_maps_by_registry"
"""Both declared in handlers/access.py."""
ALL_INDICES: Final = (
    *CHILD_INDEX.values(),
    REGISTRIES_INDEX,
    WEBHOOKS_INDEX,
    WEBHOOKS_BY_REGISTRY_INDEX,
    REPLICATIONS_BY_REGISTRY_INDEX,
    TOKENS_BY_REGISTRY_INDEX,
    SCOPE_MAPS_BY_REGISTRY_INDEX,
)


class _Unknown:
    """The cache cannot answer (not bound, or the kind is not watched): ask the API."""

    def __repr__(self) -> str:
        return "Unknown"


Unknown: Final = _Unknown()


@dataclass(frozen=True, slots=True)
class Summary:
    """What the operator keeps of a child object (slotted: ~12 per registry, a `__dict__` each
    would cost more than their fields)."""

    resource_version: str
    generation: int = 0
    annotations: Mapping[str, str] | None = None
    data: Mapping[str, str] | None = None
    status: Mapping[str, Any] | None = None
    requested_storage: str | None = None
    cluster_ip: str | None = None
    metadata_key: int = 0
    """`metadata_key` of the object: with `generation`, tells a status-only change from one an
    ensure must look at (see `Kube.ensure`)."""
    labels: Mapping[str, str] | None = None
    """A Pod's labels (kept for pods only: they are selected by label, not by name)."""

    def as_object(self) -> dict[str, Any]:
        """The parts of the object a reader uses, in the API's shape."""
        return {
            "metadata": {
                "resourceVersion": self.resource_version,
                "generation": self.generation,
                "annotations": dict(self.annotations or {}),
            },
            "data": dict(self.data or {}),
            "status": dict(self.status or {}),
            "spec": {
                **({"resources": {"requests": {"storage": self.requested_storage}}} if self.requested_storage else {}),
                **({"clusterIP": self.cluster_ip} if self.cluster_ip else {}),
            },
        }


CONTROLLER_ANNOTATIONS: Final = frozenset({"deployment.kubernetes.io/revision"})
"""Annotations a controller writes on every child of a kind, never part of a manifest: the
Deployment controller numbers each rollout. Left out of `metadata_key`, so its first write after
the operator's does not cost every Deployment a GET at the next drift pass."""


def metadata_key(meta: Mapping[str, Any]) -> int:
    """A hash of what a hand edit can change in an object's metadata without bumping its
    generation: labels, annotations (but `CONTROLLER_ANNOTATIONS`), owner references."""
    owners = tuple(
        (str(ref.get("uid")), bool(ref.get("controller")), bool(ref.get("blockOwnerDeletion")))
        for ref in meta.get("ownerReferences") or ()
    )
    annotations = (meta.get("annotations") or {}).items()
    return hash(
        (
            tuple(sorted((meta.get("labels") or {}).items())),
            tuple(sorted((k, v) for k, v in annotations if k not in CONTROLLER_ANNOTATIONS)),
            owners,
        )
    )


def summarize(kind: str, body: Mapping[str, Any]) -> Summary:
    """The `Summary` of a child as a watch delivers it."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return Summary(
        resource_version=str(meta.get("resourceVersion") or ""),
        generation=int(meta.get("generation") or 0),
        annotations=dict(meta.get("annotations") or {}) or None,
        data=dict(body.get("data") or {}) if kind in ("Secret", "ConfigMap") else None,
        status=dict(body.get("status") or {})
        if kind in ("Deployment", "DaemonSet")
        else (pod_status(body) if kind == "Pod" else None),
        requested_storage=((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if kind == "PersistentVolumeClaim"
        else None,
        cluster_ip=spec.get("clusterIP") if kind == "Service" else None,
        metadata_key=metadata_key(meta),
        labels=dict(meta.get("labels") or {}) if kind == "Pod" else None,
    )


def pod_status(body: Mapping[str, Any]) -> dict[str, Any]:
    """What an EndpointSlice says of a pod: its addresses, readiness, node, uid, and whether it
    is terminating."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    ready = any(
        c.get("type") == ConditionType.READY and c.get("status") == "True" for c in status.get("conditions") or []
    )
    addresses = [str(entry.get("ip")) for entry in status.get("podIPs") or [] if entry.get("ip")]
    if not addresses and status.get("podIP"):
        addresses = [str(status["podIP"])]
    return {
        "podIPs": addresses,
        "ready": ready,
        "terminating": bool(meta.get("deletionTimestamp")),
        "nodeName": (body.get("spec") or {}).get("nodeName") or "",
        "uid": str(meta.get("uid") or ""),
        "phase": status.get("phase") or "",
    }


@dataclass(frozen=True)
class PodSummary:
    """A pod as the cache keeps it, with its namespace and name."""

    namespace: str
    name: str
    summary: Summary

    @property
    def status(self) -> Mapping[str, Any]:
        return self.summary.status or {}


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Dockyard resource as kept in an index: without managedFields and kopf's own annotations."""
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("kopf.")}
    meta["annotations"] = annotations
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": meta,
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


@dataclass(frozen=True, slots=True)
class Packed:
    """A Dockyard resource as an index keeps it: its `slim` body as compact JSON. Parsed, a
    Registry or Webhook costs ten to twenty times its JSON (a dict per mapping): 1,000 of each,
    held parsed, were tens of MB of the operator's memory. Parsing one back costs microseconds."""

    data: bytes

    def unpack(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.data)
        return body


def pack(body: Mapping[str, Any]) -> Packed:
    """`slim(body)` as an index keeps it."""
    return Packed(json.dumps(slim(body), separators=(",", ":")).encode())


def _unpacked(value: Any) -> Any:
    return value.unpack() if isinstance(value, Packed) else value


def _copy(read: Callable[[], T]) -> T:
    for _ in range(100):
        try:
            return read()
        except RuntimeError:  # changed size during iteration: kopf updated it meanwhile
            continue
    return read()


class ClusterCache:
    def __init__(self) -> None:
        self._indices: Mapping[str, Any] | None = None

    def bind(self, indices: Mapping[str, Any]) -> None:
        """kopf's indices, as startup receives them (empty then, filled by kopf afterwards)."""
        self._indices = {name: indices[name] for name in ALL_INDICES if name in indices}

    @property
    def bound(self) -> bool:
        return self._indices is not None

    def _values(self, index: str, key: tuple[str, str]) -> list[Any] | _Unknown:
        if self._indices is None or index not in self._indices:
            return Unknown
        store = self._indices[index].get(key)
        return [] if store is None else [_unpacked(value) for value in _copy(lambda: list(store))]

    def count(self, index: str, key: tuple[str, str]) -> int | _Unknown:
        """How many values an index holds under a key (none parsed)."""
        if self._indices is None or index not in self._indices:
            return Unknown
        store = self._indices[index].get(key)
        return 0 if store is None else len(_copy(lambda: list(store)))

    def _one(self, index: str, key: tuple[str, str]) -> Any:
        values = self._values(index, key)
        if isinstance(values, _Unknown):
            return Unknown
        return values[0] if values else None

    def child(self, api_version: str, kind: str, namespace: str, name: str) -> Summary | _Unknown | None:
        """A labelled child's summary; None when it does not exist."""
        index = CHILD_INDEX.get((api_version, kind))
        return Unknown if index is None else self._one(index, (namespace, name))

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[PodSummary] | _Unknown:
        """The labelled pods of `namespace` whose labels include `selector` (a scan of the
        namespace's cached pods: a registry has a few)."""
        index = CHILD_INDEX[("v1", "Pod")]
        if self._indices is None or index not in self._indices:
            return Unknown
        store = self._indices[index]
        items: list[tuple[tuple[str, str], Any]] = _copy(lambda: list(store.items()))
        found = []
        for (ns, name), summaries in items:
            if ns != namespace or not summaries:
                continue
            summary = summaries[0]
            labels = summary.labels or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                found.append(PodSummary(ns, name, summary))
        return sorted(found, key=lambda pod: pod.name)

    def registry(self, namespace: str, name: str) -> dict[str, Any] | _Unknown | None:
        return self._one(REGISTRIES_INDEX, (namespace, name))  # type: ignore[no-any-return]

    def webhook(self, namespace: str, name: str) -> dict[str, Any] | _Unknown | None:
        return self._one(WEBHOOKS_INDEX, (namespace, name))  # type: ignore[no-any-return]

    def all_of(self, index: str) -> list[dict[str, Any]]:
        """Every object an index of Dockyard's kinds holds (none before `bind`)."""
        if self._indices is None or index not in self._indices:
            return []
        indexed = self._indices[index]
        stores: list[Any] = _copy(lambda: list(indexed.values()))
        values: list[dict[str, Any]] = []
        for store in stores:
            values += map(_unpacked, _copy(functools.partial(list, store)))
        return values

    def registries(self) -> list[dict[str, Any]]:
        return self.all_of(REGISTRIES_INDEX)

    def webhooks(self) -> list[dict[str, Any]]:
        return self.all_of(WEBHOOKS_INDEX)

    def tokens(self) -> list[dict[str, Any]]:
        return self.all_of(TOKENS_BY_REGISTRY_INDEX)

    def scope_maps(self) -> list[dict[str, Any]]:
        return self.all_of(SCOPE_MAPS_BY_REGISTRY_INDEX)

    def webhooks_of(self, namespace: str, registry: str) -> list[dict[str, Any]] | _Unknown:
        return self._values(WEBHOOKS_BY_REGISTRY_INDEX, (namespace, registry))

    def replications_of(self, namespace: str, registry: str) -> list[dict[str, Any]] | _Unknown:
        return self._values(REPLICATIONS_BY_REGISTRY_INDEX, (namespace, registry))

    def tokens_of(self, namespace: str, registry: str) -> list[dict[str, Any]] | _Unknown:
        return self._values(TOKENS_BY_REGISTRY_INDEX, (namespace, registry))


def known(value: T | _Unknown) -> bool:
    return not isinstance(value, _Unknown)


def first(values: Iterable[T]) -> T | None:
    return next(iter(values), None)
