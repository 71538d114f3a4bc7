"""Who the replicas of a registry are and how the copier reaches them: the interface between the
replication engine and where that knowledge comes from (the cluster, or a test's processes)."""

from __future__ import annotations

from typing import Protocol

from dockyard.distribution.client import DistributionClient


class Topology(Protocol):
    """Replica ids are `ledger.HOME` for the registry itself and the location of each Replication."""

    def replicas(self, namespace: str, registry: str) -> list[str]:
        """Every replica of the registry, the home included; fewer than two: nothing to replicate."""
        ...

    def client(self, namespace: str, registry: str, replica: str) -> DistributionClient | None:
        """A client of one replica authenticated as the replicator; None when it is not reachable
        yet (not deployed, not ready). Clients are the topology's: callers never close them."""
        ...

    def registries(self) -> list[tuple[str, str, float]]:
        """(namespace, registry, full-sync interval in seconds) of every replicated registry."""
        ...
