"""Watch-fed indices (kopf keeps them; `core/cache.py` reads them). kopf fills every index from
its initial listing before any resource handler runs, so a handler never sees a half-filled cache.

Children are watched by the label every child carries; only a summary of each is kept.
"""

from __future__ import annotations

from typing import Any

import kopf

from dockyard.core.cache import Summary, slim, summarize
from dockyard.core.names import CHILD_LABELS
from dockyard.models import GROUP, VERSION
from dockyard.models.base import referenced_registry

Key = tuple[str, str]


@kopf.index("v1", "secrets", labels=CHILD_LABELS)
def dockyard_secrets(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("Secret", body)}


@kopf.index("v1", "configmaps", labels=CHILD_LABELS)
def dockyard_configmaps(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("ConfigMap", body)}


@kopf.index("v1", "services", labels=CHILD_LABELS)
def dockyard_services(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("Service", body)}


@kopf.index("v1", "persistentvolumeclaims", labels=CHILD_LABELS)
def dockyard_claims(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("PersistentVolumeClaim", body)}


@kopf.index("apps", "v1", "deployments", labels=CHILD_LABELS)
def dockyard_deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("Deployment", body)}


@kopf.index("apps", "v1", "daemonsets", labels=CHILD_LABELS)
def dockyard_daemonsets(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("DaemonSet", body)}


@kopf.index("networking.k8s.io", "v1", "ingresses", labels=CHILD_LABELS)
def dockyard_ingresses(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Summary]:
    return {(namespace or "", name): summarize("Ingress", body)}


@kopf.index(GROUP, VERSION, "registries")
def dockyard_registries(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace or "", name): slim(body)}


@kopf.index(GROUP, VERSION, "webhooks")
def dockyard_webhooks(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace or "", name): slim(body)}


@kopf.index(GROUP, VERSION, "webhooks")
def dockyard_webhooks_by_registry(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): slim(body)}


@kopf.index(GROUP, VERSION, "replications")
def dockyard_replications_by_registry(
    namespace: str | None, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, Any]] | None:
    registry = referenced_registry(body)
    return None if registry is None else {(namespace or "", registry): slim(body)}
