"""The token service's identity: a ServiceAccount per Registry, and a Role in the Registry's
namespace that lets it read Tokens and ScopeMaps (get, list, watch) and nothing else: no Secret,
no write. Only the token container mounts the account's token (a projected volume); the registry
container has none.

A replica of the registry (in another namespace) reads the same objects: its ServiceAccount is
added to `subjects` of the home registry's RoleBinding, so every replica serves the same tokens.
"""

from __future__ import annotations

from typing import Any, Final

from dockyard.core.meta import metadata
from dockyard.models import GROUP
from dockyard.registries.manifests.config import RegistryContext

COMPONENT: Final = "token-service"
SERVICE_ACCOUNT_TOKEN_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS: Final = 3600
"""The projected token's lifetime; the kubelet renews it at 80%, the service re-reads the file."""


def token_reader_name(ctx: RegistryContext) -> str:
    return ctx.names.token_reader


def build_token_service_account(ctx: RegistryContext) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(ctx.owner, token_reader_name(ctx), COMPONENT),
        "automountServiceAccountToken": False,
    }


def build_token_reader_role(ctx: RegistryContext) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(ctx.owner, token_reader_name(ctx), COMPONENT),
        "rules": [{"apiGroups": [GROUP], "resources": ["tokens", "scopemaps"], "verbs": ["get", "list", "watch"]}],
    }


def build_token_reader_binding(
    ctx: RegistryContext, extra_subjects: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """`extra_subjects`: (namespace, ServiceAccount) of replicas' token services."""
    subjects = [{"kind": "ServiceAccount", "name": token_reader_name(ctx), "namespace": ctx.owner.namespace}]
    subjects += [{"kind": "ServiceAccount", "name": name, "namespace": ns} for ns, name in extra_subjects]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(ctx.owner, token_reader_name(ctx), COMPONENT),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": token_reader_name(ctx)},
        "subjects": subjects,
    }


def service_account_token_volume() -> dict[str, Any]:
    """What `automountServiceAccountToken` would mount, for the token container only."""
    return {
        "name": "token-service-account",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ]
        },
    }
