"""Prometheus metrics of the webhook pipeline, registered on the operator's injected registry.

- `dockyard_webhook_deliveries_total{outcome}` — deliveries finished: `delivered`, `failed`, `canceled`;
- `dockyard_webhook_attempts_total{result}` — HTTP attempts: `success`, `http_error`, `timeout`,
  `connection_error`, `unresolved` (a referenced Secret is missing);
- `dockyard_webhook_attempt_duration_seconds` — one HTTP attempt;
- `dockyard_webhook_delivery_latency_seconds` — from the event's acceptance to its delivery;
- `dockyard_webhook_queue_depth` — deliveries pending (waiting or being attempted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class WebhookMetrics:
    deliveries: Counter
    attempts: Counter
    attempt_duration: Histogram
    delivery_latency: Histogram
    queue_depth: Gauge


def register_webhook_metrics(registry: CollectorRegistry | None, queue_depth: Callable[[], float]) -> WebhookMetrics:
    depth = Gauge("dockyard_webhook_queue_depth", "Webhook deliveries pending.", registry=registry)
    depth.set_function(queue_depth)
    return WebhookMetrics(
        deliveries=Counter(
            "dockyard_webhook_deliveries", "Webhook deliveries finished, by outcome.", ["outcome"], registry=registry
        ),
        attempts=Counter(
            "dockyard_webhook_attempts", "Webhook HTTP attempts, by result.", ["result"], registry=registry
        ),
        attempt_duration=Histogram(
            "dockyard_webhook_attempt_duration_seconds",
            "Duration of one webhook HTTP attempt.",
            buckets=_ATTEMPT_BUCKETS,
            registry=registry,
        ),
        delivery_latency=Histogram(
            "dockyard_webhook_delivery_latency_seconds",
            "Time from an event's acceptance to its delivery.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
        queue_depth=depth,
    )
