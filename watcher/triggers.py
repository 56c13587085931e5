"""APScheduler 3 triggers for watch schedules: the cron OR rule, jitter, and when a
(re)started watch polls first.

APScheduler's triggers are date arithmetic (no threads, loop or I/O), kept apart from
``schedule.py`` so the pure core does not load APScheduler; the scheduler that runs them
lives in the daemon. ``watcher status`` uses them for a watch's next poll.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from watcher.schedule import CRON_DAYS, MAX_START_SPREAD, CronSpec, Schedule, parse_cron

if TYPE_CHECKING:
    from watcher.config import Settings, Watch


def _join(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _cron_triggers(spec: CronSpec, tz: ZoneInfo) -> list[CronTrigger]:
    every_weekday = "*"
    named_weekdays = ",".join(CRON_DAYS[d] for d in sorted(spec.weekdays))
    common = {"minute": _join(spec.minutes), "hour": _join(spec.hours), "timezone": tz}
    month = _join(spec.months)
    if spec.days_restricted and spec.weekdays_restricted:
        return [
            CronTrigger(day=_join(spec.days), month=month, day_of_week=every_weekday, **common),
            CronTrigger(day="*", month=month, day_of_week=named_weekdays, **common),
        ]
    return [CronTrigger(day=_join(spec.days), month=month, day_of_week=named_weekdays, **common)]


def cron_trigger(expr: str, tz: ZoneInfo) -> CronTrigger:
    """An APScheduler 3 ``CronTrigger`` firing when crontab ``expr`` would, in ``tz``.

    Expressions restricting both day-of-month and day-of-week need two triggers (cron
    ORs them); use :func:`trigger` for those. This function rejects them.
    """
    triggers = _cron_triggers(parse_cron(expr), tz)
    if len(triggers) != 1:
        raise ValueError(
            f"cron {expr!r} restricts both day-of-month and day-of-week; "
            "use triggers.trigger() for the cron OR rule"
        )
    return triggers[0]


def trigger(schedule: Schedule, tz: ZoneInfo) -> BaseTrigger:
    """The APScheduler 3 trigger for ``schedule`` (cron OR rule included)."""
    if schedule.every is not None:
        return IntervalTrigger(seconds=int(schedule.every.total_seconds()), timezone=tz)
    assert schedule.cron is not None  # noqa: S101 - Schedule guarantees exactly one
    triggers = _cron_triggers(parse_cron(schedule.cron), tz)
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def never_fires(expr: str) -> bool:
    """Whether crontab ``expr`` matches no time at all (``0 0 31 2 *``), by APScheduler."""
    cron = trigger(Schedule(cron=expr), ZoneInfo("UTC"))
    return cron.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None


def fires_between(schedule: Schedule, start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """How many times ``schedule`` fires in ``[start, end)`` (aware datetimes).

    For ``every``, counting from ``start``; for cron, the exact fire times in ``tz``.
    """
    if end <= start:
        return 0
    if schedule.every is not None:
        return -(-(end - start) // schedule.every)
    cron = trigger(schedule, tz)
    count = 0
    fire = cron.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        count += 1
        fire = cron.get_next_fire_time(fire, fire)
    return count


def build_trigger(watch: Watch, settings: Settings) -> BaseTrigger:
    """The watch's trigger, with jitter: 10 % of the interval, at most 2 minutes."""
    every = watch.schedule.every
    if every is not None:
        seconds = max(int(every.total_seconds()), 1)
        jitter = min(seconds * 0.1, 120.0)
        return IntervalTrigger(
            seconds=seconds, timezone=settings.timezone, jitter=int(jitter) or None
        )
    cron = trigger(watch.schedule, settings.timezone)
    cron.jitter = 60
    return cron


def first_run_time(
    watch: Watch,
    trigger: BaseTrigger,
    last_poll: datetime | None,
    now: datetime,
    rng: Callable[[], float] = random.random,
) -> datetime:
    """When a (re)started watch polls first: soon if overdue, else at its turn.

    PURE. Overdue means never polled, or the schedule fired since the last poll.
    """
    every = watch.schedule.every
    spread = min(MAX_START_SPREAD, every.total_seconds()) if every else MAX_START_SPREAD
    soon = now + timedelta(seconds=rng() * spread)
    if last_poll is None:
        return soon
    if every is not None:
        due = last_poll + every
        return soon if due <= now else max(due, soon)
    fire: datetime | None = trigger.get_next_fire_time(None, last_poll)
    if fire is None or fire <= now:
        return soon
    return max(fire, soon)
