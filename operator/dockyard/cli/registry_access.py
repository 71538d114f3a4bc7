"""How the CLI reaches a Registry and with which credentials.

Address: the login server (`status.loginServer`, e.g. `hub.team.svc:5000`) is the name used for
TLS and tokens. When that name does not resolve here (a laptop or a node host: `*.svc` is
cluster DNS), the CLI dials the Registry Service's ClusterIP and still verifies TLS against the
login server's name, with the CA from `status.credentials.caConfigMapName`. `--registry-address`
overrides the address dialled.

Credentials for the upload: `--username` + `--password-stdin`, else `DOCKYARD_REGISTRY_USERNAME` +
`DOCKYARD_REGISTRY_PASSWORD`, else the admin user's Secret (`status.credentials.adminSecretName`)
when the admin user is enabled; otherwise a clear error saying what to do.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from dockyard.core.kube import Kube
from dockyard.core.names import RegistryNames
from dockyard.distribution.client import Basic, DistributionClient
from dockyard.models.base import API_VERSION

USERNAME_ENV: Final = "DOCKYARD_REGISTRY_USERNAME"
PASSWORD_ENV: Final = "DOCKYARD_REGISTRY_PASSWORD"


class AccessError(Exception):
    """The Registry cannot be reached or used from here; the message says what to do."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to talk to a Registry from here."""

    login_server: str
    connect_to: str | None
    ca_pem: str | None
    plain_http: bool


def hostname_of(login_server: str) -> str:
    """`hub.team.svc` of `hub.team.svc:5000` (and `::1` of `[::1]:5000`)."""
    if login_server.startswith("["):
        return login_server[1:].partition("]")[0]
    host, _, port = login_server.rpartition(":")
    return host if host and port.isdigit() else login_server


def resolves(hostname: str) -> bool:
    try:
        socket.getaddrinfo(hostname, None)
    except (OSError, UnicodeError):
        return False
    return True


def choose_connect_to(
    login_server: str, *, override: str | None, cluster_ip: str | None, resolves: Callable[[str], bool] = resolves
) -> str | None:
    """The address to dial instead of resolving the login server, or None to resolve it."""
    if override:
        return override
    hostname = hostname_of(login_server)
    if resolves(hostname):
        return None
    if cluster_ip and cluster_ip != "None":
        return cluster_ip
    raise AccessError(
        f"{hostname} does not resolve from here and the Registry's Service has no ClusterIP: "
        "pass --registry-address with an address that reaches the registry"
    )


def choose_credentials(
    *,
    username: str | None,
    password: str | None,
    environment: Mapping[str, str],
    admin_secret: Mapping[str, str] | None,
    registry: str,
) -> Basic:
    """The upload credential, in the order the module doc gives."""
    if username:
        if password is None:
            raise AccessError("--username needs --password-stdin (the password on standard input)")
        return Basic(username, password)
    env_user, env_password = environment.get(USERNAME_ENV), environment.get(PASSWORD_ENV)
    if env_user:
        if env_password is None:
            raise AccessError(f"{USERNAME_ENV} is set but {PASSWORD_ENV} is not")
        return Basic(env_user, env_password)
    if admin_secret and admin_secret.get("username") and admin_secret.get("password") is not None:
        return Basic(admin_secret["username"], admin_secret["password"])
    raise AccessError(
        f"no credentials to upload to Registry {registry}: pass --username USER --password-stdin, or set "
        f"{USERNAME_ENV} and {PASSWORD_ENV}, or enable the Registry's admin user (spec.adminUser.enabled: true)"
    )


def secret_data(secret: Mapping[str, Any] | None) -> dict[str, str] | None:
    if secret is None:
        return None
    data = secret.get("data") or {}
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def read_registry(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    registry = kube.get(API_VERSION, "Registry", namespace, name)
    if registry is None:
        raise AccessError(f"no Registry {name} in namespace {namespace}")
    if not (registry.get("status") or {}).get("loginServer"):
        raise AccessError(f"Registry {name} has no status.loginServer yet: is it Ready? (kubectl get registry {name})")
    return registry


def registry_endpoint(kube: Kube, registry: Mapping[str, Any], *, override: str | None) -> Endpoint:
    meta, spec, status = registry["metadata"], registry.get("spec") or {}, registry["status"]
    namespace, name = meta["namespace"], meta["name"]
    login_server = str(status["loginServer"])
    plain_http = (spec.get("tls") or {}).get("mode") == "Disabled"
    ca_pem: str | None = None
    if not plain_http:
        ca_name = (status.get("credentials") or {}).get("caConfigMapName")
        config_map = kube.get("v1", "ConfigMap", namespace, ca_name) if ca_name else None
        ca_pem = ((config_map or {}).get("data") or {}).get("ca.crt")
    cluster_ip: str | None = None
    if not override and not resolves(hostname_of(login_server)):
        service = kube.get("v1", "Service", namespace, RegistryNames(name).service)
        cluster_ip = ((service or {}).get("spec") or {}).get("clusterIP")
    connect_to = choose_connect_to(login_server, override=override, cluster_ip=cluster_ip, resolves=resolves)
    return Endpoint(login_server, connect_to, ca_pem, plain_http)


def upload_credentials(
    kube: Kube,
    registry: Mapping[str, Any],
    *,
    username: str | None,
    password: str | None,
    environment: Mapping[str, str],
) -> Basic:
    meta = registry["metadata"]
    admin_secret = None
    if not username and not environment.get(USERNAME_ENV):
        secret_name = ((registry.get("status") or {}).get("credentials") or {}).get("adminSecretName")
        if secret_name:
            admin_secret = secret_data(kube.get("v1", "Secret", meta["namespace"], secret_name))
    return choose_credentials(
        username=username,
        password=password,
        environment=environment,
        admin_secret=admin_secret,
        registry=meta["name"],
    )


def open_client(endpoint: Endpoint, credentials: Basic | None) -> DistributionClient:
    return DistributionClient(
        endpoint.login_server,
        connect_to=endpoint.connect_to,
        ca_pem=endpoint.ca_pem,
        credentials=credentials,
        plain_http=endpoint.plain_http,
        timeout=120,
    )
