"""Prometheus metrics of access, on the operator's injected registry (one set per registry object).

- `dockyard_token_passwords_generated_total{cause}` — passwords generated: `created` (a new token or
  password) or `regenerated` (on request);
- `dockyard_access_over_quota{kind}` — Tokens / ScopeMaps last found beyond their registry's tier.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class AccessMetrics:
    passwords_generated: Counter
    over_quota: Gauge


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, AccessMetrics] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def access_metrics(registry: CollectorRegistry) -> AccessMetrics:
    """The access metrics registered on `registry` (registered on first use)."""
    with _LOCK:
        metrics = _BY_REGISTRY.get(registry)
        if metrics is None:
            metrics = AccessMetrics(
                Counter(
                    "dockyard_token_passwords_generated",
                    "Token passwords generated, by cause (created, regenerated).",
                    ["cause"],
                    registry=registry,
                ),
                Gauge(
                    "dockyard_access_over_quota",
                    "Tokens and ScopeMaps beyond their registry's tier limit.",
                    ["kind"],
                    registry=registry,
                ),
            )
            _BY_REGISTRY[registry] = metrics
        return metrics
