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

from dockyard.core.cache import known, pod_status
from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube
from dockyard.core.names import RegistryNames, replica_name
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.registry import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.manifests.config import content_hash
from dockyard.registries.manifests.endpoints import ReplicaRoute, member_of
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.registries.status import rolled_out
from dockyard.registries.tls import retire_certificate
from dockyard.replication.manifests import (
    ReplicaContext,
    ReplicaNames,
    build_replica_config_map,
    build_replica_config_text,
    build_replica_deployment,
    build_replica_http_secret,
    build_replica_pvc,
    build_replica_service,
    build_replica_token_account,
    build_replica_token_binding,
    build_shared_copy,
    owned,
    replica_context,
    replication_owner,
)
from dockyard.replication.placement import Placement, Refusal, Sibling, plan_replica
from dockyard.replication.status import Routing
from dockyard.replication.tls import plan_replica_tls, require_tls_prerequisites

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
    routing: Routing | None = None


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

    def retire(self, body: Mapping[str, Any], spec: ReplicationSpec, *, volume: bool = False) -> list[str]:
        """Remove the replica's children by name: when its registry is gone (its shared Secrets
        went with it; the volume stays), and, in another namespace, when the Replication is
        deleted (no owner reference can do it there; the volume too with `volume`)."""
        namespace = spec.target_namespace or body["metadata"]["namespace"]
        copies = namespace != body["metadata"]["namespace"]
        home = spec.registry_ref.name
        names = ReplicaNames(replica_name(home, spec.location), home=home, copies=copies)
        children = [
            ("apps/v1", "Deployment", names.deployment),
            ("v1", "Service", names.service),
            ("v1", "ConfigMap", names.config),
            ("v1", "Secret", names.http_secret),
            ("v1", "Secret", names.tls),
        ]
        if copies:
            children += [
                ("v1", "Secret", name) for name in (names.auth, names.token_signer, names.events, names.ca_secret)
            ]
            children.append(("v1", "ConfigMap", names.ca_config_map))
            children.append(("v1", "ServiceAccount", names.token_reader))
        if volume:
            children.append(("v1", "PersistentVolumeClaim", names.data))
        removed = []
        for api_version, kind, name in children:
            if self.kube.read_child(api_version, kind, namespace, name) is not None:
                self.kube.delete(api_version, kind, namespace, name)
                removed.append(f"{kind} {name} removed")
        return removed

    def remove(self, body: Mapping[str, Any], spec: ReplicationSpec) -> list[str]:
        """A deleted Replication in another namespace: its children removed by name, the volume
        too when its reclaim policy (its own storage's, else its registry's) says Delete."""
        if spec.storage is not None:
            volume = spec.storage.reclaim_policy == "Delete"
        else:
            registry = self._registry(body["metadata"]["namespace"], spec.registry_ref.name)
            storage = ((registry or {}).get("spec") or {}).get("storage") or {}
            volume = registry is not None and storage.get("reclaimPolicy") == "Delete"
        removed = self.retire(body, spec, volume=volume)
        namespace = spec.target_namespace or body["metadata"]["namespace"]
        # In another namespace nothing is owned by the Replication: its Certificate goes by name.
        return removed + retire_certificate(self.kube, namespace, replica_name(spec.registry_ref.name, spec.location))

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
        target = spec.target_namespace or body["metadata"]["namespace"]
        ctx = replica_context(
            home,
            replication_owner(dict(body), target),
            spec.location,
            verdict,
            spec.resources,
            routed=spec.region_endpoint_enabled,
        )
        kube, names, ns = self.kube, ctx.names, ctx.owner.namespace
        outcome = ReplicaOutcome(ctx=ctx)
        home_names, home_ns = RegistryNames(ctx.home), ctx.home_namespace
        require_tls_prerequisites(kube, ctx)  # cert-manager served: replication/tls.py
        shared = [
            (home_names.auth, names.auth),
            (home_names.token_signer, names.token_signer),
            (home_names.events, names.events),
        ] + ([(home_names.ca_secret, names.ca_secret)] if ctx.spec.tls.mode == "SelfSigned" else [])
        for source_name, copy_name in shared:
            source = kube.read_child("v1", "Secret", home_ns, source_name)
            if source is None:
                raise WaitsForUser(
                    Reason.DEPENDENCY_NOT_READY, f"waiting for Registry {ctx.home} to create Secret {source_name}"
                )
            # Before the TLS plan: the CA must be the registry's copy, never a new one.
            if ctx.cross_namespace and kube.ensure(build_shared_copy(ctx, copy_name, source)) != "unchanged":
                outcome.changed.append(f"copy of {source_name}")
        kube.create_if_missing(
            "v1", "Secret", ns, names.http_secret, lambda: build_replica_http_secret(ctx, secrets.token_urlsafe(32))
        )
        replica_tls = plan_replica_tls(kube, ctx, spec)  # the serving Secret resolved: replication/tls.py
        ctx, tls = replica_tls.ctx, replica_tls.plan
        outcome.ctx = ctx
        config_text = build_replica_config_text(ctx)
        events = kube.read_child("v1", "Secret", ns, names.events) or {}
        config_hash = content_hash(config_text, tls.fingerprint, (events.get("data") or {}).get("token"))
        # In the registry's namespace the CA ConfigMap is the registry's: never written from here.
        children = [(what, owned(ctx, m)) for what, m in tls.children if what != "ca" or ctx.cross_namespace]
        children += [("service", build_replica_service(ctx)), ("config", build_replica_config_map(ctx, config_text))]
        if ctx.cross_namespace:  # in the registry's namespace the replica uses the registry's account
            children += [
                ("token service account", build_replica_token_account(ctx)),
                ("token service binding", build_replica_token_binding(ctx)),
            ]
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
        outcome.routing = Routing(spec.region_endpoint_enabled, self._ready_pods(ctx), home.login_server)
        return outcome

    def _ready_pods(self, ctx: ReplicaContext) -> int:
        """The replica's ready pods, as the global login server's EndpointSlice lists them (from
        the cache, else one LIST)."""
        selector = ReplicaRoute(ctx.owner.name, ctx.owner.namespace).pod_selector
        cached = self.kube.cache.pods(ctx.owner.namespace, selector)
        if known(cached):
            statuses = [pod.status for pod in cached]  # type: ignore[union-attr]
        else:
            label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
            statuses = [pod_status(pod) for pod in self.kube.list("v1", "Pod", ctx.owner.namespace, label_selector)]
        members = [member_of(ctx.owner.namespace, "", status) for status in statuses]
        return sum(1 for member in members if member is not None and member.ready)
