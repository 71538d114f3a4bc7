"""When to try a delivery again.

An attempt is `delivered` on 2xx. It is retried on connection errors, timeouts, 408, 429 and 5xx,
after `backoff_seconds(attempt)`: 1 s doubling per attempt up to 5 minutes, times a random factor in
[0.5, 1) so receivers coming back are not hit by every queued event at once; a `Retry-After` header
(seconds or an HTTP date) on 429/503 lengthens the wait, capped at one hour. Any other status
(3xx: redirects are not followed, 4xx) fails the delivery at once: repeating the same request would
get the same answer. A delivery that reaches the webhook's `maxAttempts` fails.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Verdict = Literal["delivered", "retry", "failed"]

BASE_DELAY = 1.0
MAX_DELAY = 300.0
MAX_RETRY_AFTER = 3600.0
RETRIED_STATUSES = frozenset({408, 429})


def verdict(status: int | None, attempt: int, max_attempts: int) -> Verdict:
    """`status` None means no HTTP answer (connection error, timeout)."""
    if status is not None and 200 <= status < 300:
        return "delivered"
    retriable = status is None or status in RETRIED_STATUSES or status >= 500
    return "retry" if retriable and attempt < max_attempts else "failed"


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Wait after the `attempt`-th failed attempt (1-based)."""
    delay = min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempt - 1))
    return float(delay * (rng or random).uniform(0.5, 1.0))


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    if not header:
        return None
    header = header.strip()
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return float(min(MAX_RETRY_AFTER, max(0.0, seconds)))


def next_delay(attempt: int, retry_after: str | None, rng: random.Random | None = None) -> float:
    backoff = backoff_seconds(attempt, rng)
    asked = retry_after_seconds(retry_after)
    return max(backoff, asked) if asked is not None else backoff


def worst_case_window(max_attempts: int) -> float:
    """The longest time between the first and the last attempt, ignoring Retry-After and timeouts."""
    return float(sum(min(MAX_DELAY, BASE_DELAY * 2.0 ** (n - 1)) for n in range(1, max_attempts)))
