"""Scheduling maths: durations, cron as crontab means it, and fire counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from watcher.schedule import Schedule, fires_per_day, format_duration, parse_cron, parse_duration
from watcher.triggers import cron_trigger, fires_between, trigger

UTC_ZONE = ZoneInfo("UTC")
MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # 2024-01-01 is a Monday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        ("90m", timedelta(minutes=90)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_parse_duration_accepts_whole_units(text: str, expected: timedelta) -> None:
    """A whole number and one of s, m, h, d is a duration."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1.5h", "whole number"),
        ("1w", "whole number"),
        ("h", "whole number"),
        ("10", "whole number"),
        ("1h30m", "whole number"),
        ("-1h", "whole number"),
        ("0m", "greater than zero"),
        ("", "whole number"),
    ],
)
def test_parse_duration_rejects_others_clearly(text: str, fragment: str) -> None:
    """Anything else is a ValueError that says what a duration looks like."""
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=6), "6h"),
        (timedelta(days=2), "2d"),
    ],
)
def test_format_duration_is_the_shortest_exact_spelling(value: timedelta, text: str) -> None:
    """format_duration spells a duration back so parse_duration reads the same value."""
    assert format_duration(value) == text
    assert parse_duration(text) == value


def _next_fires(expr: str, count: int, start: datetime = MONDAY) -> list[str]:
    schedule_trigger = trigger(Schedule(cron=expr), UTC_ZONE)
    fires: list[str] = []
    fire = schedule_trigger.get_next_fire_time(None, start)
    while len(fires) < count:
        fires.append(fire.strftime("%a %d %H:%M"))
        fire = schedule_trigger.get_next_fire_time(fire, fire)
    return fires


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 9 * * 1", ["Mon 01 09:00", "Mon 08 09:00"]),
        ("0 9 * * 0", ["Sun 07 09:00", "Sun 14 09:00"]),
        ("0 9 * * 7", ["Sun 07 09:00", "Sun 14 09:00"]),
        ("0 9 * * sun", ["Sun 07 09:00", "Sun 14 09:00"]),
        ("0 9 * * 6", ["Sat 06 09:00", "Sat 13 09:00"]),
        ("0 9 * * 1-5", ["Mon 01 09:00", "Tue 02 09:00", "Wed 03 09:00", "Thu 04 09:00"]),
        ("0 9 * * 5-7", ["Fri 05 09:00", "Sat 06 09:00", "Sun 07 09:00", "Fri 12 09:00"]),
        ("0 9 * * fri-sun", ["Fri 05 09:00", "Sat 06 09:00", "Sun 07 09:00", "Fri 12 09:00"]),
        ("0 9 * * 0,3", ["Wed 03 09:00", "Sun 07 09:00", "Wed 10 09:00"]),
        ("0 9 * * 1-5/2", ["Mon 01 09:00", "Wed 03 09:00", "Fri 05 09:00", "Mon 08 09:00"]),
        ("0 9 * * */3", ["Wed 03 09:00", "Sat 06 09:00", "Sun 07 09:00", "Wed 10 09:00"]),
        ("0 9 * * MON,wed", ["Mon 01 09:00", "Wed 03 09:00", "Mon 08 09:00"]),
    ],
)
def test_cron_weekdays_mean_what_crontab_means(expr: str, expected: list[str]) -> None:
    """Day-of-week 0 and 7 are Sunday, 1 is Monday, in numbers, names, ranges and steps."""
    assert _next_fires(expr, len(expected)) == expected


def test_cron_ors_day_of_month_and_day_of_week() -> None:
    """With both restricted, cron fires on the 13th and on every Friday, not Fridays 13th."""
    assert _next_fires("0 9 13 * 5", 4) == [
        "Fri 05 09:00",
        "Fri 12 09:00",
        "Sat 13 09:00",
        "Fri 19 09:00",
    ]


def test_cron_trigger_is_an_apscheduler_cron_trigger_in_the_zone() -> None:
    """cron_trigger gives a CronTrigger firing at local time in the configured zone."""
    paris = ZoneInfo("Europe/Paris")
    result = cron_trigger("0 9 * * 1", paris)
    assert isinstance(result, CronTrigger)
    fire = result.get_next_fire_time(None, MONDAY)
    assert fire.astimezone(UTC) == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def test_cron_trigger_refuses_the_or_case_that_needs_two_triggers() -> None:
    """A single CronTrigger cannot express the OR rule, so cron_trigger says to use trigger()."""
    with pytest.raises(ValueError, match=r"trigger\(\)"):
        cron_trigger("0 9 13 * 5", UTC_ZONE)


@pytest.mark.parametrize(
    ("expr", "same_as"),
    [
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("0   9 * *  1", "0 9 * * 1"),
        ("0 9 * jan-mar mon", "0 9 * 1-3 1"),
    ],
)
def test_cron_spellings_parse_alike(expr: str, same_as: str) -> None:
    """Macros, extra spaces and month/day names mean the same as the numeric form."""
    left, right = parse_cron(expr), parse_cron(same_as)
    assert (left.minutes, left.hours, left.days, left.months, left.weekdays) == (
        right.minutes,
        right.hours,
        right.days,
        right.months,
        right.weekdays,
    )


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 9 * *", "expected 5 fields"),
        ("0 9 * * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("0 0 * * funday", "not a number or a name"),
        ("*/0 * * * *", "bad step"),
        ("0 0 5-1 * *", "runs backwards"),
        ("x * * * *", "minute: 'x' is not a number"),
    ],
)
def test_bad_cron_says_which_field_is_wrong(expr: str, fragment: str) -> None:
    """A bad cron names the field and the problem."""
    with pytest.raises(ValueError, match="bad cron") as info:
        parse_cron(expr)
    assert fragment in str(info.value)


def test_schedule_is_every_or_cron_exactly() -> None:
    """A Schedule needs exactly one of every and cron, and a valid cron."""
    with pytest.raises(ValueError, match="exactly one"):
        Schedule()
    with pytest.raises(ValueError, match="exactly one"):
        Schedule(every=timedelta(hours=1), cron="0 * * * *")
    with pytest.raises(ValueError, match="bad cron"):
        Schedule(cron="nope")


def test_schedule_describes_itself() -> None:
    """describe() is the short form users wrote."""
    assert Schedule(every=timedelta(minutes=90)).describe() == "every 90m"
    assert Schedule(cron="0 9 * * 1").describe() == "cron 0 9 * * 1"


@pytest.mark.parametrize(
    ("schedule", "days", "expected"),
    [
        (Schedule(every=timedelta(hours=1)), 1, 24),
        (Schedule(every=timedelta(hours=7)), 1, 4),
        (Schedule(cron="*/15 * * * *"), 1, 96),
        (Schedule(cron="0 9 * * 1-5"), 7, 5),
        (Schedule(cron="0 9 * * 0"), 7, 1),
        (Schedule(cron="0 9 13 * 5"), 31, 5),  # Jan 2024: 13th (Sat) + 4 Fridays
    ],
)
def test_fires_between_counts_fire_times(schedule: Schedule, days: int, expected: int) -> None:
    """fires_between counts the fires in [start, end)."""
    assert fires_between(schedule, MONDAY, MONDAY + timedelta(days=days), UTC_ZONE) == expected


def test_fires_between_an_empty_window_is_zero() -> None:
    """An end at or before the start counts nothing."""
    assert fires_between(Schedule(every=timedelta(hours=1)), MONDAY, MONDAY, UTC_ZONE) == 0


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Schedule(every=timedelta(hours=1)), 24.0),
        (Schedule(every=timedelta(hours=6)), 4.0),
        (Schedule(every=timedelta(days=2)), 0.5),
        (Schedule(cron="0 */2 * * *"), 12.0),
        (Schedule(cron="0 9 * * 1-5"), 261 / 365),
        (Schedule(cron="0 0 1 * *"), 12 / 365),
    ],
)
def test_fires_per_day_averages_over_a_year(schedule: Schedule, expected: float) -> None:
    """fires_per_day is exact for intervals and a whole-year average for cron."""
    assert fires_per_day(schedule, UTC_ZONE) == pytest.approx(expected)
