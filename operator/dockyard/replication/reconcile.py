"""Reconciling one Replication: the replica's children made to match, or the refusal reported.

Idempotent like the Registry's reconcile: the replica's http.secret is generated once, its serving
certificate is reused while it covers the replica's names and comes from the home's CA, builders are
pure and `Kube.ensure` skips unchanged objects. The home registry's shared Secrets (auth policy,
token signer, events token, CA) are read, never written: a replica waits until its home made them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.core.cache import known
from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.registry import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.manifests.config import content_hash
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.registries.status import rolled_out
from dockyard.registries.tls import plan_tls
from dockyard.replication.manifests import (
    ReplicaContext,
    ReplicaNames,
    build_replica_config_map,
    build_replica_config_text,
    build_replica_deployment,
    build_replica_http_secret,
    build_replica_pvc,
    build_replica_service,
    replica_context,
    replica_name,
    replication_owner,
)
from dockyard.replication.placement import Placement, Refusal, Sibling, plan_replica

NODE_LABELS_SECONDS: Final = 30.0
"""How long the nodes' labels are reused: every Replication without a nodeSelector reads them on
every reconcile (and the status timer reconciles), and locations change rarely."""


class NodeLabels:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read_at = -NODE_LABELS_SECONDS
        self._labels: list[dict[str, str]] = []

    def read(self, kube: Kube) -> list[dict[str, str]]:
        with self._lock:
            if time.monotonic() - self._read_at < NODE_LABELS_SECONDS:
                return list(self._labels)
        labels = [dict((node.get("metadata") or {}).get("labels") or {}) for node in kube.list("v1", "Node", None)]
        with self._lock:
            self._labels, self._read_at = labels, time.monotonic()
        return list(labels)


NODE_LABELS: Final = NodeLabels()


@dataclass
class ReplicaOutcome:
    refusal: Refusal | None = None
    ctx: ReplicaContext | None = None
    serving: bool = False
    changed: list[str] = field(default_factory=list)


class ReplicaReconciler:
    def __init__(self, registries: RegistryReconciler) -> None:
        self.registries = registries
        self.kube: Kube = registries.kube

    def _registry(self, namespace: str, name: str) -> dict[str, Any] | None:
        cached = self.kube.cache.registry(namespace, name)
        return cached if known(cached) else self.kube.get(API_VERSION, "Registry", namespace, name)  # type: ignore[return-value]

    def _siblings(self, namespace: str, registry: str) -> list[Sibling]:
        cached = self.kube.cache.replications_of(namespace, registry)
        items = (
            cached
            if known(cached)
            else [
                r for r in self.kube.list(API_VERSION, "Replication", namespace) if referenced_registry(r) == registry
            ]
        )
        siblings = []
        for item in items:  # type: ignore[union-attr]
            try:
                spec = ReplicationSpec.model_validate(item.get("spec") or {})
            except ValueError:
                continue
            meta = item["metadata"]
            siblings.append(Sibling(meta["name"], str(meta.get("creationTimestamp") or ""), spec))
        return siblings

    def _node_labels(self, spec: ReplicationSpec) -> list[dict[str, str]]:
        if spec.node_selector:
            return []
        return NODE_LABELS.read(self.kube)

    def retire(self, body: Mapping[str, Any], spec: ReplicationSpec) -> list[str]:
        """Stop a replica whose registry is gone (its shared Secrets went with it): its workload,
        Service, config and Secrets are deleted; its volume stays with the Replication."""
        namespace = body["metadata"]["namespace"]
        names = ReplicaNames(replica_name(spec.registry_ref.name, spec.location), home=spec.registry_ref.name)
        removed = []
        for api_version, kind, name in (
            ("apps/v1", "Deployment", names.deployment),
            ("v1", "Service", names.service),
            ("v1", "ConfigMap", names.config),
            ("v1", "Secret", names.http_secret),
            ("v1", "Secret", names.tls),
        ):
            if self.kube.read_child(api_version, kind, namespace, name) is not None:
                self.kube.delete(api_version, kind, namespace, name)
                removed.append(f"{kind} {name} removed")
        return removed

    def plan(self, body: Mapping[str, Any], spec: ReplicationSpec) -> tuple[dict[str, Any] | None, Placement | Refusal]:
        meta = body["metadata"]
        namespace, registry_name = meta["namespace"], spec.registry_ref.name
        registry_body = self._registry(namespace, registry_name)
        registry_spec = None
        if registry_body is not None:
            try:
                registry_spec = RegistrySpec.model_validate(registry_body.get("spec") or {})
            except ValueError:
                registry_spec = None
        verdict = plan_replica(
            namespace,
            registry_name,
            registry_spec,
            meta["name"],
            str(meta.get("creationTimestamp") or ""),
            spec,
            self._siblings(namespace, registry_name),
            self._node_labels(spec),
        )
        return registry_body, verdict

    def reconcile(self, body: Mapping[str, Any], spec: ReplicationSpec) -> ReplicaOutcome:
        registry_body, verdict = self.plan(body, spec)
        if isinstance(verdict, Refusal):
            outcome = ReplicaOutcome(refusal=verdict)
            if registry_body is None:
                outcome.changed = self.retire(body, spec)
            return outcome
        assert registry_body is not None
        registry_spec = RegistrySpec.model_validate(registry_body.get("spec") or {})
        home = self.registries.context(registry_body, registry_spec)
        ctx = replica_context(home, replication_owner(dict(body)), spec.location, verdict, spec.resources)
        kube, names, ns = self.kube, ctx.names, ctx.owner.namespace
        for shared in (names.auth, names.token_signer, names.events) + ((names.ca_secret,) if ctx.tls_enabled else ()):
            if kube.read_child("v1", "Secret", ns, shared) is None:
                raise WaitsForUser(
                    Reason.DEPENDENCY_NOT_READY, f"waiting for Registry {ctx.home} to create Secret {shared}"
                )
        outcome = ReplicaOutcome(ctx=ctx)
        kube.create_if_missing(
            "v1", "Secret", ns, names.http_secret, lambda: build_replica_http_secret(ctx, secrets.token_urlsafe(32))
        )
        tls = plan_tls(kube, ctx)
        config_text = build_replica_config_text(ctx)
        events = kube.read_child("v1", "Secret", ns, names.events) or {}
        config_hash = content_hash(config_text, tls.fingerprint, (events.get("data") or {}).get("token"))
        # The CA ConfigMap is the home's: never written from here.
        children = [(what, manifest) for what, manifest in tls.children if what != "ca"]
        children += [("service", build_replica_service(ctx)), ("config", build_replica_config_map(ctx, config_text))]
        claim = kube.read_child("v1", "PersistentVolumeClaim", ns, names.data)
        current_size = (((claim or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        pvc = build_replica_pvc(ctx, current_size)
        if pvc is not None:
            children.append(("data", pvc))
        children.append(("deployment", build_replica_deployment(ctx, config_hash)))
        for what, manifest in children:
            if kube.ensure(manifest) != "unchanged":
                outcome.changed.append(what)
        deployment = kube.read_child("apps/v1", "Deployment", ns, names.deployment)
        outcome.serving = deployment is not None and rolled_out(deployment, ctx.replicas)
        return outcome
