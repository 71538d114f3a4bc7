"""A Webhook's `status`, built from its directory entry and the delivery store. Pure.

`Ready` means: events are selected and the receiver answers. Reasons: `Reconciled`; `Disabled`
(True, nothing is sent); `DependencyNotReady` (the Registry or a referenced Secret is missing);
`QuotaExceeded` (beyond the tier's webhook limit); `ReceiverFailing` (the last
`FAILING_ATTEMPTS` attempts failed; events keep queueing and are retried). Status never holds the
service URI or header values: targets are shown as repository:tag, errors are redacted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dockyard.core import conditions
from dockyard.webhooks.directory import WebhookEntry
from dockyard.webhooks.store import Delivery, Totals

RECENT_DELIVERIES = 10
OPTIONAL_RECORD_KEYS = ("target", "request", "httpStatus", "latencyMs", "error")
FAILING_ATTEMPTS = 3
MAX_ERROR = 256


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery_record(delivery: Delivery) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": delivery.id,
        "eventId": delivery.event_id,
        "action": delivery.action,
        "state": delivery.state,
        "time": _time(delivery.last_attempt_at or delivery.accepted_at),
        "attempts": delivery.attempts,
    }
    if delivery.target:
        record["request" if delivery.ping else "target"] = delivery.target
    if delivery.http_status is not None:
        record["httpStatus"] = delivery.http_status
    if delivery.latency_ms is not None:
        record["latencyMs"] = delivery.latency_ms
    if delivery.error:
        record["error"] = delivery.error[:MAX_ERROR]
    return record


def _ready(entry: WebhookEntry | None, totals: Totals, recent: list[Delivery]) -> tuple[bool, str, str]:
    if entry is None:
        return False, conditions.Reason.PROGRESSING, "not resolved yet"
    if entry.problem is not None:
        return False, entry.problem.reason, entry.problem.message
    if not entry.filter.enabled:
        return True, conditions.Reason.DISABLED, "enabled is false: no events are sent"
    if totals.failing_attempts >= FAILING_ATTEMPTS:
        last = next((d for d in recent if d.attempts and d.state != "delivered"), None)
        detail = ""
        if last is not None:
            detail = f"; last: HTTP {last.http_status}" if last.http_status else f"; last: {last.error}"
        return (
            False,
            conditions.Reason.RECEIVER_FAILING,
            (
                f"the last {totals.failing_attempts} delivery attempts failed{detail}; "
                f"{totals.pending} event(s) pending, retried with backoff"
            ),
        )
    return True, conditions.Reason.RECONCILED, "receiving events"


def build_webhook_status(
    current: dict[str, Any],
    generation: int,
    entry: WebhookEntry | None,
    totals: Totals,
    recent: list[Delivery],
    last_ping: Delivery | None,
    signing_secret_name: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    ready, reason, message = _ready(entry, totals, recent)
    status: dict[str, Any] = {
        "deliveries": {"delivered": totals.delivered, "failed": totals.failed, "pending": totals.pending},
        "recentDeliveries": [delivery_record(d) for d in recent[:RECENT_DELIVERIES]],
        "observedGeneration": generation,
    }
    # None removes a key in the merge patch: no field of an older value may outlive it.
    status["signingSecretName"] = signing_secret_name or None
    if last_ping is not None:
        status["lastPing"] = dict.fromkeys(OPTIONAL_RECORD_KEYS) | delivery_record(last_ping)
    status["conditions"] = conditions.set_condition(
        current.get("conditions"),
        type=conditions.ConditionType.READY,
        status="True" if ready else "False",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now or datetime.now(UTC),
    )
    return status
