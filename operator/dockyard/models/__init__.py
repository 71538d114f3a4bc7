"""Pydantic models of every kind: the one source of the CRD schemas and of parsing.

The kinds' modules are loaded on first use of a name from this package (`KINDS`, `RegistrySpec`,
…), not when the package is imported: the token service imports `dockyard.models.access` (Tokens
and ScopeMaps) in a slim image without the other kinds' dependencies (croniter for BuildTask
schedules), and importing a submodule runs this file first. The names are the same either way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from dockyard.models.base import API_VERSION, GROUP, VERSION, KindInfo

if TYPE_CHECKING:
    from dockyard.models.access import ScopeMapSpec, TokenSpec
    from dockyard.models.builds import BuildRunSpec, BuildTaskSpec
    from dockyard.models.registry import RegistrySpec
    from dockyard.models.replication import ReplicationSpec
    from dockyard.models.webhook import WebhookSpec

    KINDS: tuple[KindInfo, ...]

_MODULES: Final = {
    "ScopeMapSpec": "access",
    "TokenSpec": "access",
    "BuildRunSpec": "builds",
    "BuildTaskSpec": "builds",
    "RegistrySpec": "registry",
    "ReplicationSpec": "replication",
    "WebhookSpec": "webhook",
}


def _kinds() -> tuple[KindInfo, ...]:
    from dockyard.models.access import SCOPE_MAP, TOKEN  # noqa: PLC0415  (loaded on first use, see above)
    from dockyard.models.builds import BUILD_RUN, BUILD_TASK  # noqa: PLC0415
    from dockyard.models.registry import REGISTRY  # noqa: PLC0415
    from dockyard.models.replication import REPLICATION  # noqa: PLC0415
    from dockyard.models.webhook import WEBHOOK  # noqa: PLC0415

    return (REGISTRY, WEBHOOK, REPLICATION, BUILD_TASK, BUILD_RUN, SCOPE_MAP, TOKEN)


def __getattr__(name: str) -> Any:
    if name == "KINDS":
        value: Any = _kinds()
    elif name in _MODULES:
        value = getattr(importlib.import_module(f"dockyard.models.{_MODULES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


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
