"""The replica's serving certificate carried out (the choice itself is `certificates.py`, pure):
Secrets read, the cert-manager Certificate ensured, the registry's Secret copied where needed.

Like the registry's (`registries/tls.py`), the plan returns the serving certificate's fingerprint
(a content hash of `tls.crt`): it goes into the replica's config hash, so a renewed or replaced
certificate rolls the replica's pods; the copy of the registry's Secret is kept equal to it by
every reconcile (and the status timer reconciles every replica), so a renewal reaches it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.admin import decode
from dockyard.registries.manifests.certificate import CERT_MANAGER_API
from dockyard.registries.manifests.config import content_hash
from dockyard.registries.tls import (
    CERT_MANAGER_NEEDED,
    TlsPlan,
    ensure_certificate,
    plan_tls,
    read_tls_secret,
)
from dockyard.replication.certificates import (
    Presented,
    ServingSecret,
    build_replica_certificate,
    choose_serving_secret,
)
from dockyard.replication.hostnames import replica_hosts
from dockyard.replication.manifests import ReplicaContext, build_shared_copy

"""What cert-manager writes on the Secret it fills: which Certificate it belongs to."""


@dataclass
class ReplicaTls:
    """The replica's context with its serving Secret resolved, the TLS plan (fingerprint, children
    to ensure), and the registry's global names its certificate does not cover (global routing
    must not send clients there)."""

    ctx: ReplicaContext
    plan: TlsPlan
    uncovered_global: tuple[str, ...] = field(default_factory=tuple)


def require_tls_prerequisites(kube: Kube, ctx: ReplicaContext) -> None:
    """Before the replica waits for its registry: with `tls.mode: CertManager`, cert-manager's
    Certificate kind served (else `DependencyNotReady` saying so, as the registry does)."""
    if ctx.spec.tls.mode == "CertManager" and not kube.kind_served(CERT_MANAGER_API, "Certificate"):
        raise WaitsForUser(Reason.DEPENDENCY_NOT_READY, CERT_MANAGER_NEEDED)


def plan_replica_tls(kube: Kube, ctx: ReplicaContext, spec: ReplicationSpec) -> ReplicaTls:
    mode = ctx.spec.tls.mode
    if mode == "CertManager":
        certificate = build_replica_certificate(ctx)
        ensure_certificate(kube, certificate)
        assert ctx.tls_secret_name is not None
        try:
            stored = read_tls_secret(kube, ctx.owner.namespace, ctx.tls_secret_name)
        except WaitsForUser as waiting:
            issuer = certificate["spec"]["issuerRef"]
            where = "" if issuer["kind"] == "ClusterIssuer" else f" in {ctx.owner.namespace}"
            raise WaitsForUser(
                waiting.reason,
                f"waiting for cert-manager to fill Secret {ctx.tls_secret_name} (Certificate "
                f"{certificate['metadata']['name']}, {issuer['kind']} {issuer['name']}{where})",
            ) from None
        return ReplicaTls(ctx, TlsPlan(content_hash(stored["data"]["tls.crt"])))
    if mode != "Secret":
        return ReplicaTls(ctx, plan_tls(kube, ctx))
    hosts = replica_hosts(ctx.names.service, ctx.owner.namespace, ctx.home, ctx.home_namespace or ctx.owner.namespace)
    own = home = None
    stored_by_name = {}
    if spec.tls is not None and spec.tls.secret_name:
        stored = read_tls_secret(kube, ctx.owner.namespace, spec.tls.secret_name)
        own = Presented(spec.tls.secret_name, decode(stored, "tls.crt").encode())
        stored_by_name[own.secret] = stored
    else:
        assert ctx.spec.tls.secret_name is not None
        stored = read_tls_secret(kube, ctx.home_namespace or ctx.owner.namespace, ctx.spec.tls.secret_name)
        home = Presented(ctx.spec.tls.secret_name, decode(stored, "tls.crt").encode())
        stored_by_name[home.secret] = stored
    choice = choose_serving_secret(
        hosts,
        ctx.home,
        ctx.owner.namespace,
        own=own,
        home=home,
        copy_name=ctx.names.tls if ctx.cross_namespace else None,
    )
    if not isinstance(choice, ServingSecret):
        raise WaitsForUser(choice.reason, choice.message)
    ctx = dataclasses.replace(ctx, tls_secret_name=choice.secret)
    source = stored_by_name[choice.copy_of or choice.secret]
    children = [("tls", build_shared_copy(ctx, choice.secret, source))] if choice.copy_of else []
    return ReplicaTls(ctx, TlsPlan(content_hash(source["data"]["tls.crt"]), children), choice.uncovered_global)


PROVIDED_CA_SECONDS: Final = 30.0
"""How long a provided serving Secret's `ca.crt` is reused by the copier: it asks for a client per
copy job, and a CA changes rarely."""


def serving_secret_of(
    registry_tls_secret: str, namespace: str, replication: Mapping[str, Any] | None
) -> tuple[str, str]:
    """(namespace, name) of the Secret whose `ca.crt` verifies a replica of a registry with
    `tls.mode` Secret or CertManager: the Replication's `spec.tls.secretName` in the replica's
    namespace when set, else the registry's serving Secret (in its namespace; cert-manager's
    Secrets of one issuer carry the same CA)."""
    spec = (replication or {}).get("spec") or {}
    own = (spec.get("tls") or {}).get("secretName")
    if own:
        return str(spec.get("targetNamespace") or namespace), str(own)
    return namespace, registry_tls_secret


class ProvidedTrust:
    """The CA (`ca.crt`) of serving Secrets the operator did not issue (the user's, cert-manager's),
    for the copier: None when the Secret has none (the system's trust applies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[tuple[str, str], tuple[float, str | None]] = {}

    def ca(self, kube: Kube, namespace: str, name: str) -> str | None:
        key, now = (namespace, name), time.monotonic()
        with self._lock:
            held = self._read.get(key)
        if held is not None and now - held[0] < PROVIDED_CA_SECONDS:
            return held[1]
        stored = kube.get("v1", "Secret", namespace, name)
        ca = decode(stored, "ca.crt") if stored and "ca.crt" in (stored.get("data") or {}) else None
        with self._lock:
            self._read[key] = (now, ca or None)
        return ca or None
