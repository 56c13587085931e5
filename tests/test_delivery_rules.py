"""The pure delivery-control rules: quiet hours, digest times, silences, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from watcher.delivery_rules import (
    QuietHours,
    Silence,
    decide,
    digest_due,
    muting,
    next_fire,
    roundup_order,
)
from watcher.models import EventKind
from watcher.samples import sample_event
from watcher.schedule import Schedule

PARIS = ZoneInfo("Europe/Paris")
NY = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")
NIGHT = QuietHours(time(22), time(8))
WEEKNIGHTS = QuietHours(time(22), time(8), frozenset({0, 1, 2, 3, 4}))  # starting mon-fri
LUNCH = QuietHours(time(12), time(13, 30))


def at(text: str, tz: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("window", "local", "tz", "inside"),
    [
        (NIGHT, "2026-12-01 21:59", PARIS, False),
        (NIGHT, "2026-12-01 22:00", PARIS, True),
        (NIGHT, "2026-12-02 00:30", PARIS, True),  # across midnight
        (NIGHT, "2026-12-02 07:59", PARIS, True),
        (NIGHT, "2026-12-02 08:00", PARIS, False),
        (NIGHT, "2026-12-01 23:00", NY, True),
        (LUNCH, "2026-12-01 12:00", UTC_ZONE, True),
        (LUNCH, "2026-12-01 13:30", UTC_ZONE, False),
        (LUNCH, "2026-12-01 11:59", UTC_ZONE, False),
        (WEEKNIGHTS, "2026-12-04 23:00", PARIS, True),  # Friday night starts a window
        (WEEKNIGHTS, "2026-12-05 07:00", PARIS, True),  # ... which runs into Saturday
        (WEEKNIGHTS, "2026-12-05 23:00", PARIS, False),  # Saturday night does not start one
        (WEEKNIGHTS, "2026-12-06 07:00", PARIS, False),
        (WEEKNIGHTS, "2026-12-07 07:00", PARIS, False),  # Sunday night did not start one
        (WEEKNIGHTS, "2026-12-07 22:30", PARIS, True),  # Monday night
        (NIGHT, "2026-03-29 02:30", PARIS, True),  # the night DST starts (02:00 -> 03:00)
        (NIGHT, "2026-10-25 02:30", PARIS, True),  # the night DST ends (repeated hour)
    ],
)
def test_quiet_hours_contain(window: QuietHours, local: str, tz: ZoneInfo, inside: bool) -> None:
    """An instant is inside a window by the local wall clock, across midnight and DST."""
    assert window.contains(at(local, tz).astimezone(UTC), tz) is inside


@pytest.mark.parametrize(
    ("local", "tz", "ends"),
    [
        ("2026-12-01 23:00", PARIS, "2026-12-02 07:00+00:00"),
        ("2026-12-02 03:00", PARIS, "2026-12-02 07:00+00:00"),
        ("2026-03-28 23:00", PARIS, "2026-03-29 06:00+00:00"),  # summer time by morning
        ("2026-10-24 23:00", PARIS, "2026-10-25 07:00+00:00"),  # winter time by morning
        ("2026-12-01 23:00", NY, "2026-12-02 13:00+00:00"),
    ],
)
def test_window_end(local: str, tz: ZoneInfo, ends: str) -> None:
    """The window's end is its `to` on the right local day, in UTC after any DST change."""
    assert NIGHT.window_end(at(local, tz), tz) == datetime.fromisoformat(ends)


def test_window_end_outside_is_none() -> None:
    """Outside a window there is no end to wait for."""
    assert NIGHT.window_end(at("2026-12-01 12:00", PARIS), PARIS) is None


def test_quiet_hours_reject_an_empty_window() -> None:
    """`from` equal to `to` is refused (it would mean never, or always)."""
    with pytest.raises(ValueError, match="differ"):
        QuietHours(time(8), time(8))


DAILY_9 = Schedule(cron="0 9 * * *")
WEEKDAYS_9 = Schedule(cron="0 9 * * mon-fri")
WEEKLY_MON = Schedule(cron="0 8 * * 1")
EVERY_DAY = Schedule(every=timedelta(days=1))
EVERY_12H = Schedule(every=timedelta(hours=12))
EVERY_WEEK = Schedule(every=timedelta(days=7))
DST_GAP = Schedule(cron="30 2 * * *")


@pytest.mark.parametrize(
    ("schedule", "after", "tz", "fire"),
    [
        (DAILY_9, "2026-12-01 08:00", PARIS, "2026-12-01 09:00"),
        (DAILY_9, "2026-12-01 09:00", PARIS, "2026-12-02 09:00"),  # strictly after
        (WEEKDAYS_9, "2026-12-04 10:00", PARIS, "2026-12-07 09:00"),  # Friday -> Monday
        (WEEKLY_MON, "2026-12-01 00:00", NY, "2026-12-07 08:00"),
        (DAILY_9, "2026-03-28 10:00", PARIS, "2026-03-29 09:00"),  # over the DST start
        (DAILY_9, "2026-10-24 10:00", PARIS, "2026-10-25 09:00"),  # over the DST end
        (DST_GAP, "2026-03-28 12:00", PARIS, "2026-03-29 03:30"),  # 02:30 does not exist
        (EVERY_DAY, "2026-12-01 15:00", PARIS, "2026-12-02 00:00"),
        (EVERY_12H, "2026-12-01 03:00", PARIS, "2026-12-01 12:00"),
        (EVERY_12H, "2026-12-01 12:00", PARIS, "2026-12-02 00:00"),
        (EVERY_WEEK, "2026-12-01 15:00", PARIS, "2026-12-07 00:00"),  # Mondays
        (EVERY_DAY, "2026-03-28 15:00", PARIS, "2026-03-29 00:00"),
    ],
)
def test_next_fire(schedule: Schedule, after: str, tz: ZoneInfo, fire: str) -> None:
    """The next digest time is the next local wall time the schedule names."""
    expected = at(fire, tz)
    if fire == "2026-03-29 03:30":  # the wall time 03:30 right after the gap, in summer time
        expected = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert next_fire(schedule, at(after, tz), tz) == expected


def test_digest_due_once_for_many_missed_fires() -> None:
    """A daemon down over several fire times owes ONE digest, at the latest of them."""
    last = at("2026-12-01 09:00", PARIS)
    now = at("2026-12-04 10:00", PARIS)
    assert digest_due(DAILY_9, last, now, PARIS) == at("2026-12-04 09:00", PARIS)


def test_digest_not_due_before_its_time() -> None:
    """Between fire times nothing is due."""
    last = at("2026-12-01 09:00", PARIS)
    assert digest_due(DAILY_9, last, at("2026-12-02 08:59", PARIS), PARIS) is None


@pytest.mark.parametrize(
    ("quiet", "digest", "last", "now", "hold", "release"),
    [
        (NIGHT, None, None, "2026-12-01 23:00", True, None),
        (NIGHT, None, None, "2026-12-02 08:00", False, "quiet"),
        (None, DAILY_9, None, "2026-12-02 08:00", True, None),  # schedule starts: hold
        (None, DAILY_9, "2026-12-01 09:00", "2026-12-02 08:00", True, None),
        (None, DAILY_9, "2026-12-01 09:00", "2026-12-02 09:00", True, "digest"),
        # A digest due inside quiet hours waits for the window to end.
        (
            QuietHours(time(8), time(10)),
            DAILY_9,
            "2026-12-01 09:00",
            "2026-12-02 09:00",
            True,
            None,
        ),
        (
            QuietHours(time(8), time(10)),
            DAILY_9,
            "2026-12-01 09:00",
            "2026-12-02 10:00",
            True,
            "digest",
        ),
    ],
)
def test_decide(
    quiet: QuietHours | None,
    digest: Schedule | None,
    last: str | None,
    now: str,
    hold: bool,
    release: str | None,
) -> None:
    """A notifier holds in quiet hours and between digests; releases when either ends."""
    decision = decide(quiet, digest, at(last, PARIS) if last else None, at(now, PARIS), PARIS)
    assert decision.hold is hold
    assert (decision.release or "").split(":")[0] == (release or "")


START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(days=7)


@pytest.mark.parametrize(
    ("matchers", "kind", "muted"),
    [
        ({"watch": "acme-shop"}, "new_ad", True),
        ({"watch": "other"}, "new_ad", False),
        ({"handle": "@RivalBrand"}, "pinned", True),  # handles: case and @ do not matter
        ({"shop": "3f8aa146-6f96-46e8-9781-64db5166f9a8"}, "ad_stopped", True),
        ({"shop": "rivalbrand.com"}, "ad_stopped", True),
        ({"item": "7078586231734521093"}, "new_ad", True),
        ({"item": "itm_0000"}, "new_ad", True),
        ({"item": "itm_9999"}, "new_ad", False),
        ({"kinds": frozenset({"ad_stopped", "pinned"})}, "pinned", True),  # kinds: OR
        ({"kinds": frozenset({"ad_stopped", "pinned"})}, "new_ad", False),
        ({"watch": "acme-shop", "kinds": frozenset({"pinned"})}, "new_ad", False),  # AND
        ({"watch": "ops"}, "watch_failing", False),  # ops only when the kind is named
        ({"kinds": frozenset({"watch_failing"})}, "watch_failing", True),
        ({"watch": "watcher"}, "silence_ended", False),  # the end notice is never muted
    ],
)
def test_silence_matches(matchers: dict[str, object], kind: str, muted: bool) -> None:
    """Matchers combine with AND, kinds with OR; ops events only by kind."""
    silence = Silence(1, START, END, **matchers)  # type: ignore[arg-type]
    assert silence.matches(sample_event(kind)) is muted


@pytest.mark.parametrize(
    ("now", "expired", "active"),
    [
        (START - timedelta(seconds=1), None, False),
        (START, None, True),
        (END - timedelta(seconds=1), None, True),
        (END, None, False),
        (START + timedelta(days=1), START + timedelta(hours=1), False),  # expired by hand
    ],
)
def test_silence_active(now: datetime, expired: datetime | None, active: bool) -> None:
    """A silence mutes from its start until its end or its expiry, whichever first."""
    silence = Silence(1, START, END, watch="acme-shop", expired_at=expired)
    assert silence.active(now) is active
    assert (muting([silence], sample_event("new_ad"), now) is not None) is active


def test_silence_needs_a_matcher() -> None:
    """A silence that matches everything is refused."""
    with pytest.raises(ValueError, match="matcher"):
        Silence(1, START, END)


def test_roundup_order_groups_by_watch_and_kind() -> None:
    """A digest lists each watch's alerts: new, rank and milestones, pins, stops."""
    events = [
        sample_event(EventKind.AD_STOPPED, n=1),
        sample_event(EventKind.PINNED, n=2),
        sample_event(EventKind.AD_MILESTONE, n=3),
        sample_event(EventKind.NEW_AD, n=4),
    ]
    [(watch, ordered)] = roundup_order(events)
    assert watch == "acme-shop"
    assert [e.kind for e in ordered] == [
        EventKind.NEW_AD,
        EventKind.AD_MILESTONE,
        EventKind.PINNED,
        EventKind.AD_STOPPED,
    ]
