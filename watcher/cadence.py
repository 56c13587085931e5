"""PURE timing of the daemon's jobs: triggers with jitter, when a restarted watch polls
first, how long a poll may take, and how retries and the freshness cache fit the
shortest polling interval."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from watcher import schedule
from watcher.config import Settings, Watch
from watcher.runner import FRESHNESS_TTL

MAX_START_SPREAD = 30.0
"""Seconds over which (re)started watches spread their first polls."""
MAX_RETRIES = 5


def poll_timeout(watch: Watch) -> float:
    """A poll may take at most this long: the interval, within 1 to 10 minutes."""
    every = watch.schedule.every
    seconds = every.total_seconds() if every is not None else 600.0
    return min(max(seconds, 60.0), 600.0)


def build_trigger(watch: Watch, settings: Settings) -> BaseTrigger:
    """The watch's trigger, with jitter: 10 % of the interval, at most 2 minutes."""
    every = watch.schedule.every
    if every is not None:
        seconds = max(int(every.total_seconds()), 1)
        jitter = min(seconds * 0.1, 120.0)
        return IntervalTrigger(
            seconds=seconds, timezone=settings.timezone, jitter=int(jitter) or None
        )
    trigger = schedule.trigger(watch.schedule, settings.timezone)
    trigger.jitter = 60
    return trigger


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
