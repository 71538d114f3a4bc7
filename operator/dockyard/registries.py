"""Reconciling one Registry: its children made to match the spec, its status made to match them.

Idempotent: generated values (http.secret, passwords, keys) are created once and read back
afterwards, builders are pure, and `Kube.ensure` skips unchanged objects, so a reconcile over
unchanged inputs issues no write. The data PVC is owned by the Registry only with
`storage.reclaimPolicy: Delete`; every other child is owned and garbage-collected with it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import conditions
from .auth.policy import generate_password
from .builders.meta import Owner, metadata
from .builders.registry_config import (
    RegistryContext,
    RegistryNames,
    build_registry_config,
    content_hash,
    render_config,
    tls_secret_name,
)
from .builders.registry_secrets import (
    build_admin_secret,
    build_auth_policy,
    build_auth_secret,
    build_ca_config_map,
    build_events_secret,
    build_http_secret,
    build_pull_secret,
    build_tls_secret,
)
from .builders.registry_workload import build_config_map, build_deployment, build_ingress, build_pvc, build_service
from .kube import Kube
from .models import API_VERSION
from .models.base import referenced_registry
from .models.registry import RegistrySpec
from .pki import KeyPair, certificate_covers, issue_ca, issue_serving_cert, issue_signing_key
from .tiers import TIERS

REGENERATE_ANNOTATION = "dockyard.dev/regenerate-password"
HANDLED_REGENERATION_ANNOTATION = "dockyard.dev/handled-regeneration"
CERT_MANAGER_API = "cert-manager.io/v1"


class NotReady(Exception):
    """The registry cannot be reconciled now; `reason` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Outcome:
    """What a reconcile found, for status and events."""

    status: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    changed: list[str] = field(default_factory=list)


def _decode(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret.get("data", {}).get(key, "")).decode()


def owner_of(body: dict[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, "Registry", meta["name"], meta["namespace"], meta["uid"])


class RegistryReconciler:
    def __init__(self, kube: Kube, registry_image: str, token_image: str, events_url: str) -> None:
        self.kube = kube
        self.registry_image = registry_image
        self.token_image = token_image
        self.events_url = events_url

    def reconcile(self, body: dict[str, Any], spec: RegistrySpec) -> Outcome:
        owner = owner_of(body)
        outcome = Outcome()
        self._check_tier_change(body, spec)
        ctx = RegistryContext(
            owner=owner,
            spec=spec,
            registry_image=spec.image or self.registry_image,
            token_image=self.token_image,
            tls_secret_name=tls_secret_name(spec, RegistryNames(owner.name)),
            events_url=self.events_url,
        )
        tls_fingerprint = self._ensure_tls(ctx, outcome)
        self._secret_once(
            ctx,
            ctx.names.token_signer,
            lambda: build_tls_secret(ctx, ctx.names.token_signer, issue_signing_key(f"{owner.name} token signer")),
        )
        self._secret_once(ctx, ctx.names.http_secret, lambda: build_http_secret(ctx, secrets.token_urlsafe(32)))
        events = self._secret_once(ctx, ctx.names.events, lambda: build_events_secret(ctx, secrets.token_urlsafe(32)))
        admin_passwords = self._ensure_admin(ctx, body, outcome)
        self._note(outcome, "auth", self.kube.ensure(build_auth_secret(ctx, build_auth_policy(ctx, admin_passwords))))
        config_text = render_config(build_registry_config(ctx))
        self._note(outcome, "config", self.kube.ensure(build_config_map(ctx, config_text)))
        if not ctx.uses_object_storage:
            claim = self.kube.get("v1", "PersistentVolumeClaim", owner.namespace, ctx.names.data)
            current_size = (((claim or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
            self._note(outcome, "data", self.kube.ensure(build_pvc(ctx, current_size), claim))
        # The events token reaches the pod as an env var: a new one (Secret deleted) must roll the pods.
        config_hash = content_hash(config_text, tls_fingerprint, (events.get("data") or {}).get("token"))
        self._note(outcome, "deployment", self.kube.ensure(build_deployment(ctx, config_hash)))
        self._note(outcome, "service", self.kube.ensure(build_service(ctx)))
        ingress = build_ingress(ctx)
        if ingress is not None:
            self._note(outcome, "ingress", self.kube.ensure(ingress))
        elif self.kube.get("networking.k8s.io/v1", "Ingress", owner.namespace, ctx.names.ingress) is not None:
            self.kube.delete("networking.k8s.io/v1", "Ingress", owner.namespace, ctx.names.ingress)
            outcome.changed.append("ingress")
        outcome.status, outcome.ready = self._observe(ctx, admin_passwords is not None)
        return outcome

    def _secret_once(self, ctx: RegistryContext, name: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A Secret of generated values: generated and created once, read back afterwards."""
        return self.kube.create_if_missing("v1", "Secret", ctx.owner.namespace, name, build)

    @staticmethod
    def _note(outcome: Outcome, what: str, result: str) -> None:
        if result != "unchanged":
            outcome.changed.append(what)

    def _check_tier_change(self, body: dict[str, Any], spec: RegistrySpec) -> None:
        if spec.sku == "Premium":
            return
        replications = self._count_referrers("Replication", body["metadata"]["namespace"], body["metadata"]["name"])
        if replications:
            raise NotReady(
                "TierChangeBlocked",
                f"spec.sku {spec.sku} is refused while {replications} Replication(s) exist: geo-replication "
                "needs Premium; delete the Replications first. The registry keeps running as before.",
            )

    def _count_referrers(self, kind: str, namespace: str, registry: str) -> int:
        items = self.kube.list(API_VERSION, kind, namespace)
        return sum(1 for item in items if referenced_registry(item) == registry)

    def _ensure_tls(self, ctx: RegistryContext, outcome: Outcome) -> str:
        """Make the serving certificate exist; return a fingerprint of it (a new one rolls pods)."""
        ns, names, mode = ctx.owner.namespace, ctx.names, ctx.spec.tls.mode
        if ctx.tls_secret_name is None:
            return ""
        if mode == "CertManager":
            self._ensure_certificate(ctx)
        if mode in ("Secret", "CertManager"):
            stored = self.kube.get("v1", "Secret", ns, ctx.tls_secret_name)
            if stored is None or "tls.crt" not in stored.get("data", {}):
                raise NotReady("DependencyNotReady", f"waiting for TLS Secret {ctx.tls_secret_name} (tls.crt, tls.key)")
            return content_hash(stored["data"].get("tls.crt"))
        ca_secret = self._secret_once(
            ctx,
            names.ca_secret,
            lambda: build_tls_secret(ctx, names.ca_secret, issue_ca(f"{ctx.owner.name} registry CA")),
        )
        ca = KeyPair(_decode(ca_secret, "tls.key").encode(), _decode(ca_secret, "tls.crt").encode())
        stored = self.kube.get("v1", "Secret", ns, names.tls)
        reusable = (
            stored is not None
            and _decode(stored, "ca.crt") == ca.cert_pem.decode()
            and certificate_covers(_decode(stored, "tls.crt").encode(), ctx.tls_hosts)
        )
        if stored is not None and reusable:
            serving = KeyPair(_decode(stored, "tls.key").encode(), _decode(stored, "tls.crt").encode())
        else:
            serving = issue_serving_cert(ca, ctx.tls_hosts)
        self._note(outcome, "tls", self.kube.ensure(build_tls_secret(ctx, names.tls, serving, ca.cert_pem)))
        self._note(outcome, "ca", self.kube.ensure(build_ca_config_map(ctx, ca.cert_pem)))
        return content_hash(serving.cert_pem.decode())

    def _ensure_certificate(self, ctx: RegistryContext) -> None:
        if not self.kube.kind_served(CERT_MANAGER_API, "Certificate"):
            raise NotReady(
                "DependencyNotReady", "tls.mode CertManager needs cert-manager, whose Certificate kind is not served"
            )
        issuer = ctx.spec.tls.issuer_ref
        assert issuer is not None and ctx.tls_secret_name is not None
        self.kube.ensure(
            {
                "apiVersion": CERT_MANAGER_API,
                "kind": "Certificate",
                "metadata": metadata(ctx.owner, ctx.owner.name, "registry"),
                "spec": {
                    "secretName": ctx.tls_secret_name,
                    "dnsNames": ctx.tls_hosts,
                    "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                },
            }
        )

    def _ensure_admin(self, ctx: RegistryContext, body: dict[str, Any], outcome: Outcome) -> tuple[str, str] | None:
        ns = ctx.owner.namespace
        if not ctx.spec.admin_user.enabled:
            for name in (ctx.names.admin, ctx.names.pull):
                if self.kube.get("v1", "Secret", ns, name) is not None:
                    self.kube.delete("v1", "Secret", ns, name)
                    outcome.changed.append(name)
            return None
        stored = self._secret_once(
            ctx, ctx.names.admin, lambda: build_admin_secret(ctx, generate_password(), generate_password())
        )
        passwords = {key: _decode(stored, key) for key in ("password", "password2")}
        request = body["metadata"].get("annotations", {}).get(REGENERATE_ANNOTATION, "")
        handled = stored["metadata"].get("annotations", {}).get(HANDLED_REGENERATION_ANNOTATION, "")
        which = request.split("@", 1)[0].strip()
        desired = build_admin_secret(ctx, passwords["password"], passwords["password2"])
        if request and request != handled and which in passwords:
            passwords[which] = generate_password()
            desired = build_admin_secret(ctx, passwords["password"], passwords["password2"])
            outcome.changed.append(f"admin {which} regenerated")
        if request:
            desired["metadata"]["annotations"] = {HANDLED_REGENERATION_ANNOTATION: request}
        self.kube.ensure(desired)
        self.kube.ensure(build_pull_secret(ctx, passwords["password"]))
        return passwords["password"], passwords["password2"]

    def _observe(self, ctx: RegistryContext, admin: bool) -> tuple[dict[str, Any], bool]:
        deployment = self.kube.get("apps/v1", "Deployment", ctx.owner.namespace, ctx.names.deployment) or {}
        dep_status = deployment.get("status", {})
        tier = TIERS[ctx.spec.sku]
        webhooks = self._count_referrers("Webhook", ctx.owner.namespace, ctx.owner.name)
        replications = self._count_referrers("Replication", ctx.owner.namespace, ctx.owner.name)
        credentials: dict[str, Any] = {}
        if admin:
            credentials["adminSecretName"] = ctx.names.admin
            credentials["pullSecretName"] = ctx.names.pull
        if ctx.spec.tls.mode == "SelfSigned":
            credentials["caConfigMapName"] = ctx.names.ca_config_map
        status: dict[str, Any] = {
            "loginServer": ctx.login_server,
            "image": ctx.registry_image,
            "replicas": ctx.replicas,
            "readyReplicas": dep_status.get("readyReplicas") or 0,
            "credentials": credentials,
            "usage": {
                "includedStorageBytes": tier.included_storage_bytes,
                "webhooks": {"used": webhooks, "limit": tier.webhooks},
                "replications": {"used": replications},
            },
        }
        if ctx.external_host:
            status["externalLoginServer"] = ctx.external_host
        rolled_out = (
            deployment.get("metadata", {}).get("generation") == dep_status.get("observedGeneration")
            and (dep_status.get("updatedReplicas") or 0) >= ctx.replicas
            and (dep_status.get("readyReplicas") or 0) >= ctx.replicas
            and (dep_status.get("replicas") or 0) == ctx.replicas
        )
        return status, rolled_out


def desired_status(
    current: dict[str, Any],
    generation: int,
    fields: dict[str, Any],
    ready: bool,
    reason: str,
    message: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The full status to hold, with `Ready` set through the conditions helper."""
    now = now or datetime.now(UTC)
    phase = "Ready" if ready else ("Failed" if reason in ("InvalidSpec", "TierChangeBlocked") else "Provisioning")
    status = {**fields, "phase": phase, "observedGeneration": generation}
    status["conditions"] = conditions.set_condition(
        current.get("conditions"),
        type=conditions.ConditionType.READY,
        status="True" if ready else "False",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    rolling = reason == conditions.Reason.PROGRESSING
    status["conditions"] = conditions.set_condition(
        status["conditions"],
        type="Progressing",
        status="True" if rolling else "False",
        reason=conditions.Reason.PROGRESSING if rolling else reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    return status
