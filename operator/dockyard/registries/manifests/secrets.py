"""Secrets of a Registry: the shared http.secret, admin and pull credentials, the auth policy the
token service reads, and the TLS material. Generated values (passwords, keys) come in as
arguments; these builders only shape them."""

from __future__ import annotations

import base64
import json
from typing import Any

from dockyard.auth.grants import ALL_ACTIONS, Grant
from dockyard.auth.policy import AuthPolicy, Credential, password_digest
from dockyard.core.meta import metadata
from dockyard.core.pki import KeyPair
from dockyard.registries.manifests.config import ISSUER, RegistryContext

COMPONENT = "registry"
ADMIN_GRANTS = (Grant(repositories="*", actions=ALL_ACTIONS, catalog=True),)
ANONYMOUS_PULL = (Grant(repositories="*", actions=("pull",)),)


def _secret(ctx: RegistryContext, name: str, string_data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    """Secrets are built with base64 `data` (what the API server returns), so a built Secret
    compares equal to the stored one and unchanged inputs cause no write."""
    data = {key: base64.b64encode(value.encode()).decode() for key, value in string_data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ctx.owner, name, COMPONENT),
        "type": type_,
        "data": data,
    }


def build_http_secret(ctx: RegistryContext, secret: str) -> dict[str, Any]:
    return _secret(ctx, ctx.names.http_secret, {"secret": secret})


def build_events_secret(ctx: RegistryContext, token: str) -> dict[str, Any]:
    return _secret(ctx, ctx.names.events, {"token": token})


def build_admin_secret(ctx: RegistryContext, password: str, password2: str) -> dict[str, Any]:
    return _secret(ctx, ctx.names.admin, {"username": ctx.owner.name, "password": password, "password2": password2})


def build_pull_secret(ctx: RegistryContext, password: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{ctx.owner.name}:{password}".encode()).decode()
    entry = {"username": ctx.owner.name, "password": password, "auth": auth}
    servers = [ctx.login_server] + [s for s in (ctx.node_login_server, ctx.external_host) if s]
    config = {"auths": dict.fromkeys(servers, entry)}
    return _secret(
        ctx, ctx.names.pull, {".dockerconfigjson": json.dumps(config, sort_keys=True)}, "kubernetes.io/dockerconfigjson"
    )


def build_auth_policy(ctx: RegistryContext, admin_passwords: tuple[str, ...] | None) -> AuthPolicy:
    """Who may do what. `admin_passwords` is None when the admin user is disabled."""
    users: tuple[Credential, ...] = ()
    if admin_passwords is not None:
        digests = tuple(password_digest(p) for p in admin_passwords)
        users = (Credential(username=ctx.owner.name, password_digests=digests, grants=ADMIN_GRANTS),)
    anonymous = ANONYMOUS_PULL if ctx.spec.anonymous_pull and ctx.tier.anonymous_pull else ()
    return AuthPolicy(service=ctx.token_service, issuer=ISSUER, anonymous=anonymous, users=users)


def build_auth_secret(ctx: RegistryContext, policy: AuthPolicy) -> dict[str, Any]:
    return _secret(ctx, ctx.names.auth, {"policy.json": policy.model_dump_json()})


def build_tls_secret(
    ctx: RegistryContext, name: str, pair: KeyPair, ca_cert_pem: bytes | None = None
) -> dict[str, Any]:
    data = {"tls.crt": pair.cert_pem.decode(), "tls.key": pair.key_pem.decode()}
    if ca_cert_pem is not None:
        data["ca.crt"] = ca_cert_pem.decode()
    return _secret(ctx, name, data, "kubernetes.io/tls")


def build_ca_config_map(ctx: RegistryContext, ca_cert_pem: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(ctx.owner, ctx.names.ca_config_map, COMPONENT),
        "data": {"ca.crt": ca_cert_pem.decode()},
    }
