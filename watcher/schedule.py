"""PURE scheduling maths, "when" in one place: durations, cron expressions, how often a
schedule fires, and the daemon's job timing (how long a poll may take, how retries and the
freshness cache fit the shortest polling interval).

Pure functions over plain values; the only place cron is parsed. The APScheduler triggers
built from these schedules (jitter, a restarted watch's first poll) are in ``triggers.py``,
so that importing a ``Schedule`` does not load APScheduler. Cron means what
crontab(5) means: day-of-week 0 and 7 are Sunday (APScheduler 3 counts 0 as Monday, so
weekdays are handed to it by name), and when both day-of-month and day-of-week are
restricted a day matching *either* fires, as in Vixie cron. APScheduler ANDs them, so
such expressions become an ``OrTrigger`` of two cron triggers in ``triggers.trigger``.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # config builds Schedule values from this module; no import cycle at run time
    from watcher.config import Settings, Watch

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+)([smhd])")

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: 0 = Sunday
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
# (lowest, highest, names for lowest.. in order) per field; day-of-week also accepts 7.
_BOUNDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, _MONTHS),
    (0, 7, CRON_DAYS),
)


def parse_duration(text: str) -> timedelta:
    """``"30s"``, ``"15m"``, ``"1h"`` or ``"1d"``: a positive whole number and one unit."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"bad duration {text!r}: write a whole number followed by s, m, h or d "
            "(e.g. 30s, 15m, 1h, 7d)"
        )
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"bad duration {text!r}: must be greater than zero")
    return timedelta(seconds=amount * _UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """The shortest exact ``parse_duration`` spelling of ``value`` (``90m``, ``1d``)."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed crontab line: the set of values each field matches."""

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # cron numbering, 0 = Sunday .. 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        """Whether cron would fire on ``day`` at all (the day-of-month/week OR rule)."""
        if day.month not in self.months:
            return False
        weekday = (day.weekday() + 1) % 7
        if self.days_restricted and self.weekdays_restricted:
            return day.day in self.days or weekday in self.weekdays
        return day.day in self.days and weekday in self.weekdays


def _value(token: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    lowered = token.lower()
    if lowered in names:
        return low + names.index(lowered)
    if not token.isdigit():
        raise ValueError(f"{field}: {token!r} is not a number" + (" or a name" if names else ""))
    number = int(token)
    if not low <= number <= high:
        raise ValueError(f"{field}: {number} is out of range {low}-{high}")
    return number


def _parse_field(text: str, index: int) -> frozenset[int]:
    low, high, names = _BOUNDS[index]
    field = _FIELD_NAMES[index]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{field}: bad step {step_text!r} in {part!r}")
            step = int(step_text)
        if body == "*":
            first, last = low, high if index != 4 else 6
        elif "-" in body:
            start, _, end = body.partition("-")
            first = _value(start, low, high, names, field)
            last = _value(end, low, high, names, field)
            if index == 4 and last == 0 and first > 0:
                last = 7  # "fri-sun"
            if last < first:
                raise ValueError(f"{field}: range {body!r} runs backwards")
        else:
            first = _value(body, low, high, names, field)
            last = (high if index != 4 else 6) if step_text else first
        values.update(range(first, last + 1, step))
    if index == 4:
        values = {v % 7 for v in values}
    return frozenset(values)


def parse_cron(expr: str) -> CronSpec:
    """Parse and validate a 5-field crontab expression (or an ``@daily``-style macro)."""
    text = " ".join(expr.split())
    fields = _MACROS.get(text.lower(), text).split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"bad cron {expr!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}"
        )
    try:
        parsed = [_parse_field(f, i) for i, f in enumerate(fields)]
    except ValueError as exc:
        raise ValueError(f"bad cron {expr!r}: {exc}") from None
    return CronSpec(
        expr=text,
        minutes=parsed[0],
        hours=parsed[1],
        days=parsed[2],
        months=parsed[3],
        weekdays=parsed[4],
        days_restricted=not fields[2].startswith("*"),
        weekdays_restricted=not fields[4].startswith("*"),
    )


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a watch polls: every fixed interval, or on a crontab expression."""

    every: timedelta | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a schedule is either every or cron, exactly one")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError("every must be positive")
        if self.cron is not None:
            parse_cron(self.cron)

    def describe(self) -> str:
        """``every 1h`` or ``cron 0 9 * * 1``, for the check report and status."""
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return f"cron {self.cron}"


def fires_per_day(schedule: Schedule, tz: ZoneInfo) -> float:
    """Average fires a day: exact for ``every``; over a year of days for cron.

    A week would do for most crons, but ``0 9 1 * *`` fires monthly; a whole
    (non-leap) year of days counts every day-of-month and month restriction.
    ``tz`` only matters through DST days, which this average ignores.
    """
    del tz
    if schedule.every is not None:
        return timedelta(days=1) / schedule.every
    assert schedule.cron is not None  # noqa: S101 - Schedule guarantees exactly one
    spec = parse_cron(schedule.cron)
    per_matching_day = len(spec.minutes) * len(spec.hours)
    year = 2025
    days = sum(
        spec.matches_day(date(year, month, day))
        for month in range(1, 13)
        for day in range(1, calendar.monthrange(year, month)[1] + 1)
    )
    return days * per_matching_day / 365


# --- the daemon's job timing -------------------------------------------------------------

FRESHNESS_TTL = timedelta(seconds=30)
"""How long polls share one read of the API's freshness, at most."""
MAX_START_SPREAD = 30.0
"""Seconds over which (re)started watches spread their first polls."""
MAX_RETRIES = 5


def poll_timeout(watch: Watch) -> float:
    """A poll may take at most this long: the interval, within 1 to 10 minutes."""
    every = watch.schedule.every
    seconds = every.total_seconds() if every is not None else 600.0
    return min(max(seconds, 60.0), 600.0)


def shortest_interval(settings: Settings) -> float:
    """Seconds between polls of the most frequent enabled watch (cron counts as an hour)."""
    return min(
        (
            w.schedule.every.total_seconds() if w.schedule.every is not None else 3600.0
            for w in settings.watches
            if w.enabled
        ),
        default=3600.0,
    )


def in_poll_retries(settings: Settings) -> int:
    """How often one poll retries a failed API request: while the backoff (1 s, 2 s, 4 s,
    ...) fits in half the shortest interval, at most 5. The next poll is a retry too, so
    a watch polled every few seconds fails fast instead of stacking missed runs. PURE."""
    return min(MAX_RETRIES, int(math.log2(shortest_interval(settings) / 2 + 1)))


def freshness_ttl(settings: Settings) -> timedelta:
    """How long polls share one freshness read: never more than half an interval, so a
    refresh is seen by the first poll after it."""
    return min(FRESHNESS_TTL, timedelta(seconds=shortest_interval(settings) / 2))
