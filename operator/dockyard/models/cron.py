"""The cron format of a BuildTask's timer schedules: admission's regular expression (a CEL rule, see
`formats.py`) and, on parse, the same expression plus croniter's own check.

Apart from `formats.py` because of croniter: the token service reads the Token and ScopeMap models
(through `models.base`, which uses `formats`) in a slim image without croniter, and never parses a
schedule (tests/unit/test_container_images.py checks what it imports).
"""

from __future__ import annotations

import re
from typing import Annotated

from croniter import croniter
from pydantic import Field

from dockyard.models.formats import checked, matches


def _cron_field(value: str, *, any_value: bool = False) -> str:
    step = r"/0*[1-9][0-9]{0,2}"
    item = rf"(?:\*|{value}(?:-{value})?)(?:{step})?"
    field = rf"{item}(?:,{item})*"
    return rf"(?:{field}|\?)" if any_value else field


_MONTHS = r"(?:(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))"
_DAYS = r"(?:(?i:sun|mon|tue|wed|thu|fri|sat))"
CRON = (
    r"^[ \t]*"
    + _cron_field(r"[0-5]?[0-9]")
    + r"[ \t]+"
    + _cron_field(r"(?:[01]?[0-9]|2[0-3])")
    + r"[ \t]+"
    + _cron_field(r"(?:0?[1-9]|[12][0-9]|3[01])", any_value=True)
    + r"[ \t]+"
    + _cron_field(rf"(?:0?[1-9]|1[0-2]|{_MONTHS})")
    + r"[ \t]+"
    + _cron_field(rf"(?:[0-7]|{_DAYS})", any_value=True)
    + r"[ \t]*$"
)
"""Five fields: minute 0-59, hour 0-23, day of month 1-31 (or ?), month 1-12 or jan-dec, day of week
0-7 or sun-sat (or ?); each a list of *, values and ranges, optionally with a step of 1-999."""
CRON_MESSAGE = (
    "schedule must be a 5-field cron expression in UTC: minute (0-59) hour (0-23) day-of-month (1-31) "
    "month (1-12 or Jan-Dec) day-of-week (0-7 or Sun-Sat), each *, a value, a range (Mon-Fri), a list "
    "(1,15) or a step greater than 0 (*/15), e.g. '0 */6 * * *'"
)


_CRON = re.compile(CRON, re.ASCII)  # as formats.py compiles its patterns: ASCII, with fullmatch


def cron_problem(value: str) -> str | None:
    # The operator evaluates schedules with croniter: a schedule it cannot evaluate is refused too.
    if not _CRON.fullmatch(value) or not croniter.is_valid(value):
        return CRON_MESSAGE
    return None


CronSchedule = Annotated[
    str,
    Field(min_length=1, max_length=128),
    matches(CRON, CRON_MESSAGE),
    checked(cron_problem),
]
