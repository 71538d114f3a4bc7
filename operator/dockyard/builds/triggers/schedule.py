"""Timers: whether a timer is due, and which scheduled minute a run is for. Pure.

The state of a timer is one time kept in the task's status, `nextScheduleTime`: the occurrence the
timer waits for. A tick at `now`:

- no stored next (a new timer, one just enabled, or a lost status) → arm it: store the first
  occurrence after `now`; nothing runs for times before the timer was armed (as a new CronJob);
- stored next in the future → nothing to do (unless the schedule changed so that it fires sooner:
  re-armed to the new schedule's next occurrence);
- stored next reached → one run, for the **latest** occurrence at or before `now`, and the next
  occurrence after `now` is stored. After downtime that covered several occurrences this is one
  catch-up run, never a burst (a CronJob's behaviour with a starting deadline).

A run is for a minute (cron's resolution), so a timer runs at most once a minute. No jitter: the
operator's tick interval already spreads runs over a few seconds, and a run's name is its minute, so
jitter could only make it later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter


@dataclass(frozen=True)
class TimerDecision:
    occurrence: datetime | None
    """The scheduled minute to run for now, or None."""
    next: datetime
    """The occurrence to store as next."""


def next_after(schedule: str, moment: datetime) -> datetime:
    """The first occurrence strictly after `moment` (UTC)."""
    found: datetime = croniter(schedule, moment).get_next(datetime)
    return found


def latest_at_or_before(schedule: str, moment: datetime) -> datetime:
    """The newest occurrence at or before `moment`'s minute."""
    start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found: datetime = croniter(schedule, start).get_prev(datetime)
    return found


def decide(schedule: str, stored_next: datetime | None, now: datetime) -> TimerDecision:
    upcoming = next_after(schedule, now)
    if stored_next is None or stored_next > upcoming:
        return TimerDecision(None, upcoming)
    if stored_next > now:
        return TimerDecision(None, stored_next)
    occurrence = latest_at_or_before(schedule, now)
    if occurrence < stored_next:  # the schedule changed and has nothing between then and now
        return TimerDecision(None, upcoming)
    return TimerDecision(occurrence, upcoming)
