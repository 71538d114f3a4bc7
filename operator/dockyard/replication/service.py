"""The replication feature as the operator runs it: the ledger store (a SQLite file beside the
webhook deliveries), the event subscriber the intake hands every envelope to, the copy engine and
its periodic full comparison; kept in kopf's memo under `MEMO_KEY`. Conflicts are posted as
Warning Events on the losing replica's Replication (or the Registry, when the home lost)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry

from dockyard.core.kube import Kube
from dockyard.models import API_VERSION
from dockyard.registries.reconcile import RegistryReconciler
from dockyard.replication.access import ReplicatorClients
from dockyard.replication.cluster import ClusterTopology
from dockyard.replication.engine import ReplicationEngine
from dockyard.replication.ledger import HOME, Key, Version
from dockyard.replication.metrics import register_replication_metrics
from dockyard.replication.reasons import ReplicationEventReason
from dockyard.replication.status import SyncFigures
from dockyard.replication.store import LedgerStore
from dockyard.replication.subscriber import ReplicationSubscriber

MEMO_KEY: Final = "replication"
STORE_FILE: Final = "replication.sqlite"


def _time(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReplicationService:
    def __init__(
        self, kube: Kube, registries: RegistryReconciler, state_dir: Path, registry: CollectorRegistry | None
    ) -> None:
        self.kube = kube
        self.store = LedgerStore(state_dir / STORE_FILE)
        self.metrics = register_replication_metrics(registry)
        self.clients = ReplicatorClients()
        self.topology = ClusterTopology(kube, registries, self.clients)
        self.engine = ReplicationEngine(self.store, self.topology, self.metrics)
        self._events = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-replication-events")
        self.subscriber = ReplicationSubscriber(
            self.store, self.topology, self.metrics, on_enqueued=self.engine.wake, on_conflict=self._conflict
        )

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()
        self._events.shutdown(wait=True)
        self.clients.close()
        self.store.close()

    def figures(self, namespace: str, registry: str, location: str) -> SyncFigures:
        f = self.store.figures(namespace, registry, location)
        lag = 0 if f.oldest_pending is None else max(0, int(datetime.now(UTC).timestamp() - f.oldest_pending))
        initial = None
        if f.fill_total is not None:
            initial = {
                "totalTags": f.fill_total,
                "copiedTags": min(f.fill_copied, f.fill_total),
                "copiedBytes": f.fill_bytes,
                "startedAt": _time(f.fill_started),
                "completedAt": _time(f.fill_completed),
            }
        return SyncFigures(
            pending=f.pending,
            lag_seconds=lag,
            last_sync_time=_time(f.last_sync),
            last_full_sync_time=_time(f.last_full_sync),
            conflicts=f.conflicts,
            tags_in_sync=f.in_sync,
            tags_out_of_sync=f.out_of_sync,
            initial_sync=initial,
        )

    def _conflict(self, namespace: str, registry: str, key: Key, winner: Version, loser: Version) -> None:
        self._events.submit(self._post_conflict, namespace, registry, key, winner, loser)

    def _post_conflict(self, namespace: str, registry: str, key: Key, winner: Version, loser: Version) -> None:
        involved: dict[str, Any] | None
        if loser.origin == HOME:
            involved = self.kube.get(API_VERSION, "Registry", namespace, registry)
        else:
            involved = self.topology.replication(namespace, registry, loser.origin)
        if involved is None:
            return
        repository, tag = key

        def where(version: Version) -> str:
            return version.origin or registry

        self.kube.post_event(
            involved,
            "Warning",
            ReplicationEventReason.TAG_CONFLICT,
            f"{repository}:{tag} was pushed on {where(loser)} ({loser.digest}) and on {where(winner)} "
            f"({winner.digest}) at once; the later push ({where(winner)}) wins everywhere",
        )


def figures_from(memo: Mapping[str, Any], namespace: str, registry: str, location: str) -> SyncFigures:
    """The copier's figures for one replica (empty while the copier does not run)."""
    service = memo.get(MEMO_KEY)
    return service.figures(namespace, registry, location) if isinstance(service, ReplicationService) else SyncFigures()
