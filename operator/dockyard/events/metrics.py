"""Metrics of the event intake (names kept from when the intake served webhooks alone):

- `dockyard_webhook_envelopes_total{outcome}` — notification envelopes posted by registries:
  `accepted`, `unauthorized`, `invalid`, `unavailable` (the registry will post it again);
- `dockyard_webhook_events_total{action}` — user-facing events extracted from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class IntakeMetrics:
    envelopes: Counter
    events: Counter


def register_intake_metrics(registry: CollectorRegistry | None) -> IntakeMetrics:
    return IntakeMetrics(
        envelopes=Counter(
            "dockyard_webhook_envelopes",
            "Notification envelopes posted by registries, by outcome.",
            ["outcome"],
            registry=registry,
        ),
        events=Counter(
            "dockyard_webhook_events", "User-facing registry events received, by action.", ["action"], registry=registry
        ),
    )
