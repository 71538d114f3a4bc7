"""From a Webhook resource to a `WebhookEntry`: its filter, its quota position and its target with
the Secret values it references (service URI, header values, signing key).

The tier's webhook limit counts the Webhooks of one Registry in creation order (then by name): the
first `limit` receive events, the rest get `Ready=False` with reason `QuotaExceeded` and receive
nothing until one of the earlier ones is deleted or the tier is raised.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from dockyard.core import conditions
from dockyard.core.cache import known
from dockyard.core.kube import Kube
from dockyard.core.meta import Owner, metadata
from dockyard.core.names import WebhookNames
from dockyard.core.tiers import TIERS, quota_exceeded_message
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.webhook import WebhookSpec
from dockyard.webhooks.directory import Problem, Target, WebhookEntry
from dockyard.webhooks.scope import EventFilter

SIGNING_KEY = "secret"
_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]*$")


def signing_secret_name(webhook: str) -> str:
    return WebhookNames(webhook).signing


def build_signing_secret(owner: Owner, key: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(owner, signing_secret_name(owner.name), "webhook-signing"),
        "type": "Opaque",
        "data": {SIGNING_KEY: base64.b64encode(key.encode()).decode()},
    }


def effective_webhook_limit(registry: Mapping[str, Any]) -> int:
    """The webhook limit of the tier the registry runs at: the one its status reports (a refused
    tier change, `TierChangeBlocked`, leaves it at the old tier), else the one its spec asks for."""
    reported = (((registry.get("status") or {}).get("usage") or {}).get("webhooks") or {}).get("limit")
    if isinstance(reported, int):
        return reported
    sku = (registry.get("spec") or {}).get("sku", "Basic")
    return TIERS[sku].webhooks if sku in TIERS else TIERS["Basic"].webhooks


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, "Webhook", meta["name"], meta["namespace"], meta["uid"])


def quota_position(body: Mapping[str, Any], siblings: Sequence[Mapping[str, Any]]) -> int:
    """0-based rank of the webhook among its registry's webhooks, oldest first."""

    def key(item: Mapping[str, Any]) -> tuple[str, str]:
        meta = item["metadata"]
        return (str(meta.get("creationTimestamp") or ""), str(meta["name"]))

    mine = key(body)
    return sum(1 for other in siblings if key(other) < mine and other["metadata"]["uid"] != body["metadata"]["uid"])


class SecretUnusable(Exception):
    """A referenced Secret or key is missing, or its value cannot be used; the message names the
    Secret and key, never the value."""


class WebhookResolver:
    """Reads what a Webhook references. Kubernetes errors propagate (`ApiError`)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._secrets: dict[str, dict[str, Any] | None] = {}

    def _secret_bytes(self, namespace: str, name: str, key: str) -> bytes:
        cache_key = f"{namespace}/{name}"
        if cache_key not in self._secrets:
            # Generated signing Secrets are children (cached); the user's Secrets are read.
            cached = self.kube.cache.child("v1", "Secret", namespace, name)
            self._secrets[cache_key] = (
                self.kube.read_child("v1", "Secret", namespace, name)
                if known(cached) and cached is not None
                else self.kube.get("v1", "Secret", namespace, name)
            )
        secret = self._secrets[cache_key]
        data = (secret or {}).get("data") or {}
        if key not in data:
            what = f"Secret {name}" if secret is None else f"key {key} of Secret {name}"
            raise SecretUnusable(f"{what} not found")
        return base64.b64decode(data[key])

    def _secret_value(self, namespace: str, name: str, key: str) -> str:
        try:
            return self._secret_bytes(namespace, name, key).decode()
        except UnicodeDecodeError as error:
            raise SecretUnusable(f"key {key} of Secret {name} is not UTF-8 text") from error

    def target(self, namespace: str, name: str, spec: WebhookSpec) -> Target:
        if spec.service_uri_secret_ref is not None:
            ref = spec.service_uri_secret_ref
            url = self._secret_value(namespace, ref.name, ref.key).strip()
            if not _URL.match(url):
                raise SecretUnusable(f"key {ref.key} of Secret {ref.name} is not an http:// or https:// URL")
        else:
            assert spec.service_uri is not None
            url = spec.service_uri
        headers = []
        for header in spec.custom_headers:
            if header.value_from is not None:
                ref = header.value_from.secret_key_ref
                # `kubectl create secret --from-file` keeps the file's final newline: not part of the value.
                value = self._secret_value(namespace, ref.name, ref.key).strip()
                if not _HEADER_VALUE.match(value):
                    raise SecretUnusable(
                        f"key {ref.key} of Secret {ref.name} holds characters an HTTP header cannot carry"
                    )
                headers.append((header.name, value))
            else:
                headers.append((header.name, header.value or ""))
        signing = spec.signing_secret_ref
        key = (
            self._secret_bytes(namespace, signing.name, signing.key)
            if signing is not None
            else self._secret_bytes(namespace, signing_secret_name(name), SIGNING_KEY)
        )
        return Target(url=url, headers=tuple(headers), signing_key=key)

    def entry(
        self,
        body: Mapping[str, Any],
        spec: WebhookSpec,
        registry: Mapping[str, Any] | None,
        siblings: Sequence[Mapping[str, Any]],
        replica_locations: frozenset[str] = frozenset(),
    ) -> WebhookEntry:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        problem: Problem | None = None
        receives = True
        if registry is None:
            problem = Problem(conditions.Reason.DEPENDENCY_NOT_READY, f"Registry {spec.registry_ref.name} not found")
            receives = False
        else:
            sku = (registry.get("spec") or {}).get("sku", "Basic")
            limit = effective_webhook_limit(registry)
            position = quota_position(body, siblings)
            if position >= limit:
                problem = Problem(
                    conditions.Reason.QUOTA_EXCEEDED,
                    f"{quota_exceeded_message('webhooks', sku)}: registry {spec.registry_ref.name} allows {limit} "
                    f"webhooks and this one is number {position + 1}; it receives no events",
                )
                receives = False
            elif spec.location and spec.location not in replica_locations:
                problem = Problem(
                    conditions.Reason.DEPENDENCY_NOT_READY,
                    f"Registry {spec.registry_ref.name} has no ready Replication in location {spec.location}; "
                    "this webhook receives only that replica's events",
                )
                receives = False
        target: Target | None = None
        try:
            target = self.target(namespace, name, spec)
        except SecretUnusable as missing:
            problem = problem or Problem(conditions.Reason.DEPENDENCY_NOT_READY, str(missing))
        return WebhookEntry(
            uid=meta["uid"],
            namespace=namespace,
            name=name,
            registry=spec.registry_ref.name,
            filter=EventFilter(frozenset(spec.actions), spec.scope, spec.enabled, spec.location),
            max_attempts=spec.delivery.max_attempts,
            timeout_seconds=float(spec.delivery.timeout_seconds),
            target=target,
            problem=problem,
            receives_events=receives,
            generation=int(meta.get("generation", 1)),
            spec=spec,
        )

    def replica_locations(self, namespace: str, registry: str) -> frozenset[str]:
        """Locations where the registry has a Ready replica."""
        cached = self.kube.cache.replications_of(namespace, registry)
        replications = (
            cached
            if known(cached)
            else [
                r for r in self.kube.list(API_VERSION, "Replication", namespace) if referenced_registry(r) == registry
            ]
        )
        return frozenset(
            str((r.get("spec") or {}).get("location"))
            for r in replications  # type: ignore[union-attr]
            if (
                conditions.find_condition((r.get("status") or {}).get("conditions"), conditions.ConditionType.READY)
                or {}
            ).get("status")
            == "True"
        )

    def load(self, namespace: str) -> list[WebhookEntry]:
        """Entries for every valid Webhook in a namespace (one LIST of Webhooks, one of Registries:
        not the watch-fed cache, which may still be filling when the first event of a namespace
        arrives, and an event must reach every webhook there is)."""
        webhooks = self.kube.list(API_VERSION, "Webhook", namespace)
        registries = {r["metadata"]["name"]: r for r in self.kube.list(API_VERSION, "Registry", namespace)}
        needs_replicas = any((w.get("spec") or {}).get("location") for w in webhooks)
        by_registry: dict[str | None, list[dict[str, Any]]] = {}
        for body in webhooks:
            by_registry.setdefault(referenced_registry(body), []).append(body)
        entries = []
        for body in webhooks:
            try:
                spec = WebhookSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                continue
            siblings = by_registry.get(spec.registry_ref.name, [])
            locations = self.replica_locations(namespace, spec.registry_ref.name) if needs_replicas else frozenset()
            entries.append(self.entry(body, spec, registries.get(spec.registry_ref.name), siblings, locations))
        return entries
