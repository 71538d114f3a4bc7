"""Prometheus metrics of replication, registered on the operator's injected registry.

- `dockyard_replication_copies_total{kind,result}` — manifests and blobs: `copied`, `mounted`
  (blobs linked from another repository), `skipped` (already there), `failed`;
- `dockyard_replication_deletes_total` — tags or manifests removed from a replica by a tombstone;
- `dockyard_replication_bytes_total` — blob bytes copied;
- `dockyard_replication_conflicts_total` — tags pushed concurrently on two replicas (a loser);
- `dockyard_replication_push_to_available_seconds` — from a push's event time to the tag in a replica;
- `dockyard_replication_pending_jobs{namespace,registry,replica}` and
  `dockyard_replication_lag_seconds{…}` — jobs waiting, and the age of the oldest;
- `dockyard_replication_last_full_sync_timestamp_seconds{namespace,registry}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_AVAILABLE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
REPLICA_LABELS = ("namespace", "registry", "replica")


@dataclass(frozen=True)
class ReplicationMetrics:
    copies: Counter
    deletes: Counter
    bytes: Counter
    conflicts: Counter
    push_to_available: Histogram
    pending: Gauge
    lag: Gauge
    last_full_sync: Gauge


def register_replication_metrics(registry: CollectorRegistry | None) -> ReplicationMetrics:
    return ReplicationMetrics(
        copies=Counter(
            "dockyard_replication_copies",
            "Manifests and blobs copied between replicas, by kind and result.",
            ["kind", "result"],
            registry=registry,
        ),
        deletes=Counter("dockyard_replication_deletes", "Tags or manifests removed from a replica.", registry=registry),
        bytes=Counter("dockyard_replication_bytes", "Blob bytes copied between replicas.", registry=registry),
        conflicts=Counter(
            "dockyard_replication_conflicts",
            "Tags pushed concurrently on two replicas; the loser was overwritten.",
            registry=registry,
        ),
        push_to_available=Histogram(
            "dockyard_replication_push_to_available_seconds",
            "From a push's event time to the tag being available in another replica.",
            buckets=_AVAILABLE_BUCKETS,
            registry=registry,
        ),
        pending=Gauge(
            "dockyard_replication_pending_jobs", "Changes waiting to be copied.", REPLICA_LABELS, registry=registry
        ),
        lag=Gauge(
            "dockyard_replication_lag_seconds",
            "Age of the oldest change waiting to be copied (0 when none).",
            REPLICA_LABELS,
            registry=registry,
        ),
        last_full_sync=Gauge(
            "dockyard_replication_last_full_sync_timestamp_seconds",
            "When the last full comparison of a registry's replicas finished.",
            ["namespace", "registry"],
            registry=registry,
        ),
    )
