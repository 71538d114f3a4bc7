"""Pydantic models of every kind: the one source of the CRD schemas and of parsing."""

from dockyard.models.access import SCOPE_MAP, TOKEN, ScopeMapSpec, TokenSpec
from dockyard.models.base import API_VERSION, GROUP, VERSION, KindInfo
from dockyard.models.builds import BUILD_RUN, BUILD_TASK, BuildRunSpec, BuildTaskSpec
from dockyard.models.registry import REGISTRY, RegistrySpec
from dockyard.models.replication import REPLICATION, ReplicationSpec
from dockyard.models.webhook import WEBHOOK, WebhookSpec

KINDS: tuple[KindInfo, ...] = (REGISTRY, WEBHOOK, REPLICATION, BUILD_TASK, BUILD_RUN, SCOPE_MAP, TOKEN)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "BuildRunSpec",
    "BuildTaskSpec",
    "KindInfo",
    "RegistrySpec",
    "ReplicationSpec",
    "ScopeMapSpec",
    "TokenSpec",
    "WebhookSpec",
]
