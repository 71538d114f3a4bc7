import random
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.webhooks.retry import (
    backoff_seconds,
    next_delay,
    retry_after_seconds,
    verdict,
    worst_case_window,
)

NOW = datetime(2026, 11, 29, 9, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
@pytest.mark.parametrize("attempt", [1, 15])
def test_2xx_is_delivered(status: int, attempt: int) -> None:
    assert verdict(status, attempt, 15) == "delivered"


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 599])
def test_retriable_outcomes_retry_until_the_last_attempt(status: int | None) -> None:
    assert verdict(status, 1, 15) == "retry"
    assert verdict(status, 14, 15) == "retry"
    assert verdict(status, 15, 15) == "failed"


@pytest.mark.parametrize("status", [None, 500, 429])
def test_one_attempt_allowed_fails_at_once(status: int | None) -> None:
    assert verdict(status, 1, 1) == "failed"


@pytest.mark.parametrize("status", [300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 422])
def test_redirects_and_client_errors_fail_at_once(status: int) -> None:
    assert verdict(status, 1, 15) == "failed"


@pytest.mark.parametrize("attempt", range(1, 16))
def test_backoff_is_half_to_full_of_the_capped_doubling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(300.0, 2.0 ** (attempt - 1))
    for _ in range(50):
        assert 0.5 * ceiling <= backoff_seconds(attempt, rng) <= ceiling


def test_backoff_never_exceeds_five_minutes() -> None:
    rng = random.Random(7)
    assert max(backoff_seconds(30, rng) for _ in range(200)) <= 300.0
    assert min(backoff_seconds(30, rng) for _ in range(200)) >= 150.0


def test_backoff_is_reproducible_with_a_seed() -> None:
    first = [backoff_seconds(n, random.Random(42)) for n in range(1, 10)]
    again = [backoff_seconds(n, random.Random(42)) for n in range(1, 10)]
    assert first == again


def test_backoff_is_jittered() -> None:
    rng = random.Random(3)
    assert len({backoff_seconds(5, rng) for _ in range(20)}) > 1


@pytest.mark.parametrize(("header", "seconds"), [("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("-10", 0.0)])
def test_retry_after_in_seconds(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_retry_after_as_http_date() -> None:
    assert retry_after_seconds("Sun, 29 Nov 2026 09:08:00 GMT", now=NOW) == 120.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_seconds("Sun, 29 Nov 2026 09:00:00 GMT", now=NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "Sun, 99 Foo 2026", "12s"])
def test_retry_after_garbage_is_ignored(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None


def test_retry_after_is_capped_at_one_hour() -> None:
    assert retry_after_seconds("86400", now=NOW) == 3600.0
    later = (NOW + timedelta(days=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds(later, now=NOW) == 3600.0


def test_next_delay_is_the_backoff_without_retry_after() -> None:
    assert next_delay(3, None, random.Random(1)) == backoff_seconds(3, random.Random(1))
    assert next_delay(3, "garbage", random.Random(1)) == backoff_seconds(3, random.Random(1))


def test_next_delay_takes_the_longer_of_backoff_and_retry_after() -> None:
    assert next_delay(1, "120", random.Random(1)) == 120.0
    assert next_delay(10, "1", random.Random(1)) == backoff_seconds(10, random.Random(1))
    assert next_delay(1, "999999", random.Random(1)) == 3600.0


def test_worst_case_window_of_the_default_15_attempts() -> None:
    # 1+2+4+...+256 (attempts 1-9) then 5 waits of 300 s: 511 + 1500
    assert worst_case_window(15) == 2011.0


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 0.0), (2, 1.0), (3, 3.0), (10, 511.0)])
def test_worst_case_window_small(attempts: int, seconds: float) -> None:
    assert worst_case_window(attempts) == seconds
