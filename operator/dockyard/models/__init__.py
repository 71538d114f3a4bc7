"""Pydantic models of every kind: the one source of the CRD schemas and of parsing."""

from .base import API_VERSION, GROUP, VERSION, KindInfo
from .builds import BUILD_RUN, BUILD_TASK, BuildRunSpec, BuildTaskSpec
from .registry import REGISTRY, RegistrySpec
from .replication import REPLICATION, ReplicationSpec
from .webhook import WEBHOOK, WebhookSpec

KINDS: tuple[KindInfo, ...] = (REGISTRY, WEBHOOK, REPLICATION, BUILD_TASK, BUILD_RUN)

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
    "WebhookSpec",
]
