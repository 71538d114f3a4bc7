"""The replicas of each registry as the cluster shows them (the watch-fed caches), and how the
copier reaches them in-cluster: the `Topology` the operator's replication engine runs on.

A Replication takes part once it is accepted (not refused: `displayStatus` other than `Failed`),
so changes made meanwhile wait for it as jobs; the copier reaches it once it serves (`Ready`). The
home registry is reached at its login server, every replica at its own (`status.loginServer`),
TLS verified against the registry's CA (with `tls.mode` Secret or CertManager: the `ca.crt` of the
serving Secret, else the system's trust), as the replicator (`access.py`). A login server that
names a Service (`<name>.<namespace>.svc`) is dialled at that Service's ClusterIP, as the build
room does: the node's kube-proxy routes it wherever the operator runs, in a pod or on a host that
cannot resolve `*.svc`. The home registry, once its Service is the global login server over the
replicas (`registries/global_endpoint.py`), is dialled at a ready pod of its own instead.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from dockyard.auth.tokens import SigningKey
from dockyard.core.cache import REPLICATIONS_BY_REGISTRY_INDEX, known
from dockyard.core.conditions import ConditionType, Phase, find_condition
from dockyard.core.kube import Kube
from dockyard.core.names import RegistryNames
from dockyard.distribution.client import DistributionClient
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.registry import RegistrySpec
from dockyard.registries.global_endpoint import find_replica_routes, home_pod_address
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.replication.access import Endpoint, ReplicatorClients
from dockyard.replication.ledger import HOME
from dockyard.replication.tls import ProvidedTrust, serving_secret_of

_SERVICE_HOST = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$"
)


def service_of(login_server: str) -> tuple[str, str] | None:
    """(namespace, name) of the Service a login server names, None for any other host."""
    match = _SERVICE_HOST.match(login_server.rsplit(":", 1)[0].lower())
    return (match.group(3), match.group(1)) if match else None


def _ready(body: Mapping[str, Any]) -> bool:
    ready = find_condition((body.get("status") or {}).get("conditions"), ConditionType.READY) or {}
    return ready.get("status") == "True"


def _accepted(body: Mapping[str, Any]) -> bool:
    shown = (body.get("status") or {}).get("displayStatus")
    return shown is not None and shown != "Failed"


class ClusterTopology:
    def __init__(self, kube: Kube, registries: RegistryReconciler, clients: ReplicatorClients) -> None:
        self.kube, self.registry_contexts, self.clients = kube, registries, clients
        self.trust = ProvidedTrust()

    def _replications(self, namespace: str, registry: str) -> list[dict[str, Any]]:
        cached = self.kube.cache.replications_of(namespace, registry)
        if known(cached):
            return list(cached)  # type: ignore[arg-type]
        return [
            item
            for item in self.kube.list(API_VERSION, "Replication", namespace)
            if referenced_registry(item) == registry
        ]

    def replication(self, namespace: str, registry: str, location: str) -> dict[str, Any] | None:
        for body in self._replications(namespace, registry):
            if (body.get("spec") or {}).get("location") == location and _accepted(body):
                return body
        return None

    def replicas(self, namespace: str, registry: str) -> list[str]:
        locations = sorted(
            {
                str((body.get("spec") or {}).get("location"))
                for body in self._replications(namespace, registry)
                if _accepted(body)
            }
        )
        return [HOME, *locations] if locations else [HOME]

    def registries(self) -> list[tuple[str, str, float]]:
        intervals: dict[tuple[str, str], float] = {}
        for body in self.kube.cache.all_of(REPLICATIONS_BY_REGISTRY_INDEX):
            registry = referenced_registry(body)
            if registry is None or not _accepted(body):
                continue
            key = (body["metadata"]["namespace"], registry)
            interval = float((body.get("spec") or {}).get("fullSyncIntervalSeconds") or 600)
            intervals[key] = min(interval, intervals.get(key, interval))
        return [(ns, registry, interval) for (ns, registry), interval in sorted(intervals.items())]

    def client(self, namespace: str, registry: str, replica: str) -> DistributionClient | None:
        body = self.kube.cache.registry(namespace, registry)
        if not known(body):
            body = self.kube.get(API_VERSION, "Registry", namespace, registry)
        if not isinstance(body, dict):
            return None
        try:
            spec = RegistrySpec.model_validate(body.get("spec") or {})
        except ValueError:
            return None
        home = self.registry_contexts.context(body, spec)
        if replica == HOME:
            if (body.get("status") or {}).get("phase") != Phase.READY:
                return None
            login_server = home.login_server
        else:
            replication = self.replication(namespace, registry, replica)
            if replication is None or not _ready(replication):
                return None
            login_server = str((replication.get("status") or {}).get("loginServer") or "")
            if not login_server:
                return None
        connect_to = self._cluster_ip(login_server)
        if replica == HOME and find_replica_routes(self.kube, home):
            # The registry's Service is the global login server over the replicas: the home is
            # reached at a pod of its own, never at whichever replica the Service would pick.
            connect_to = home_pod_address(self.kube, home)
            if connect_to is None:
                return None
        names = RegistryNames(registry)
        signer = self.kube.read_child("v1", "Secret", namespace, names.token_signer)
        data = (signer or {}).get("data") or {}
        if "tls.key" not in data:
            return None
        ca_pem = None
        if home.tls_enabled and spec.tls.mode != "SelfSigned" and home.tls_secret_name:
            # The user's or cert-manager's certificate: its Secret's ca.crt, else the system's trust.
            replication = None if replica == HOME else self.replication(namespace, registry, replica)
            ca_pem = self.trust.ca(self.kube, *serving_secret_of(home.tls_secret_name, namespace, replication))
        elif home.tls_enabled:
            ca = self.kube.read_child("v1", "ConfigMap", namespace, names.ca_config_map) or {}
            ca_pem = (ca.get("data") or {}).get("ca.crt")
            if not ca_pem:
                return None
        endpoint = Endpoint(
            login_server,
            home.token_service,
            SigningKey(base64.b64decode(data["tls.key"]), base64.b64decode(data["tls.crt"])),
            ca_pem=ca_pem,
            plain_http=not home.tls_enabled,
            connect_to=connect_to,
        )
        return self.clients.get((namespace, registry, replica), endpoint)

    def _cluster_ip(self, login_server: str) -> str | None:
        service = service_of(login_server)
        if service is None:
            return None
        body = self.kube.read_child("v1", "Service", *service) or {}
        address = str((body.get("spec") or {}).get("clusterIP") or "")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return None  # no Service yet, or a headless one: resolve the name
        return address
