"""The replication feature as the operator runs it: the ledger store, the event subscriber, the
copy engine and its periodic full comparison, kept in kopf's memo under `MEMO_KEY`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from dockyard.replication.status import SyncFigures

MEMO_KEY: Final = "replication"


def figures_from(memo: Mapping[str, Any], namespace: str, name: str) -> SyncFigures:
    """The copier's figures for one Replication (empty while the copier does not run)."""
    service = memo.get(MEMO_KEY)
    figures = getattr(service, "figures", None)
    return figures(namespace, name) if callable(figures) else SyncFigures()
