"""The run's registry as the builds room sees it, read from the Registry's status and its children:
where it is, what its token service is called, the key its tokens are signed with and its CA; and
the delegated credentials minted from that key (see `auth/delegation.py`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from dockyard.auth.delegation import DELEGATED_USER, issue_delegation
from dockyard.auth.grants import Grant, RegistryAction
from dockyard.auth.tokens import SigningKey
from dockyard.core.cache import known
from dockyard.core.conditions import Reason
from dockyard.core.errors import WaitsForUser
from dockyard.core.kube import Kube
from dockyard.core.meta import Owner
from dockyard.core.names import RegistryNames
from dockyard.models import API_VERSION


@dataclass(frozen=True)
class RegistryAccess:
    owner: Owner
    host: str
    """The login server, e.g. `hub.team.svc:5000`: what build pods push to."""
    service: str
    signer: SigningKey
    ca_pem: str | None
    ca_config_map: str | None
    cluster_ip: str | None
    """The Service's address, dialled by the operator (which may run where `*.svc` does not resolve)."""
    plain_http: bool = False
    """tls.mode Disabled: the registry speaks plain HTTP."""
    node_host: str | None = None
    """Where kubelets pull from (`status.nodeLoginServer`, with exposure.nodePull), else None."""

    def delegation(self, subject: str, grants: tuple[Grant, ...], ttl_seconds: int) -> tuple[str, str]:
        """(username, password) for Basic auth at this registry's token service."""
        password = issue_delegation(
            self.signer, service=self.service, subject=subject, grants=grants, ttl_seconds=ttl_seconds
        )
        return DELEGATED_USER, password


def _secret_value(secret: dict[str, Any] | None, key: str) -> str | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value).decode() if value else None


def registry_access(kube: Kube, namespace: str, name: str) -> RegistryAccess:
    """Raises WaitsForUser while the Registry is missing or has not served yet."""
    cached = kube.cache.registry(namespace, name)
    registry = cached if known(cached) else kube.get(API_VERSION, "Registry", namespace, name)
    if not isinstance(registry, dict) or registry["metadata"].get("deletionTimestamp"):
        raise WaitsForUser(Reason.WAITING, f"Registry {name} does not exist")
    status = registry.get("status") or {}
    host = status.get("loginServer")
    names = RegistryNames(name)
    policy = _secret_value(kube.read_child("v1", "Secret", namespace, names.auth), "policy.json")
    key = _secret_value(kube.read_child("v1", "Secret", namespace, names.token_signer), "tls.key")
    cert = _secret_value(kube.read_child("v1", "Secret", namespace, names.token_signer), "tls.crt")
    if not host or not policy or not key or not cert:
        raise WaitsForUser(Reason.WAITING, f"Registry {name} is not ready yet")
    ca_name = (status.get("credentials") or {}).get("caConfigMapName")
    ca = kube.read_child("v1", "ConfigMap", namespace, ca_name) if ca_name else None
    service = kube.read_child("v1", "Service", namespace, names.service) or {}
    meta = registry["metadata"]
    return RegistryAccess(
        owner=Owner(API_VERSION, "Registry", name, namespace, meta["uid"]),
        host=str(host),
        service=str(json.loads(policy)["service"]),
        signer=SigningKey(key.encode(), cert.encode()),
        ca_pem=((ca or {}).get("data") or {}).get("ca.crt"),
        ca_config_map=ca_name if ca is not None else None,
        cluster_ip=(service.get("spec") or {}).get("clusterIP"),
        plain_http=((registry.get("spec") or {}).get("tls") or {}).get("mode") == "Disabled",
        node_host=status.get("nodeLoginServer") or None,
    )


def run_grants(push_repositories: tuple[str, ...]) -> tuple[Grant, ...]:
    """Push on the run's own repositories; pull on every repository of the registry, because the
    base images a Dockerfile names are known only once Kaniko reads it."""
    actions: tuple[RegistryAction, ...] = ("pull", "push")
    return (
        *(Grant(repositories=r, actions=actions) for r in push_repositories),
        Grant(repositories="*", actions=("pull",)),
    )
