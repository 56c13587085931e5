"""PURE delivery control: quiet hours, digest schedules and silences, as plain values.

Every function takes ``now`` (an aware datetime) and the config's time zone; nothing here
reads a clock, a database or a socket, so each rule is a table of plain-data cases.

- :class:`QuietHours`: a daily window in local wall time (``from``/``to``), optionally on
  some weekdays only (the day the window *starts*); ``from > to`` runs across midnight.
- Digest schedules reuse :class:`watcher.schedule.Schedule` (``cron`` parsed by
  :mod:`watcher.schedule` only). ``every`` is anchored at local midnight: ``every: 1d``
  fires at 00:00, ``every: 12h`` at 00:00 and 12:00, ``every: 7d`` at midnight every
  seventh day from Monday 2000-01-03; a step that does not divide a day runs from the epoch.
- :class:`Silence`: matchers ANDed (watch, handle, shop, item), kinds ORed. Ops events
  are muted only by a silence that names their kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from watcher.models import Event, EventKind
from watcher.schedule import Schedule, parse_cron

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = timedelta(days=1)
_EVERY_ANCHOR = date(2000, 1, 3)  # a Monday: `every: 7d` fires on Mondays
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_STEPS = 100_000  # bound on walking a cron forward over a long downtime


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly (or daily) window when a notifier gets nothing but ops events.

    ``days``: weekday numbers (0 = Monday) on which the window *starts*; all by default.
    """

    start: time
    end: time
    days: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need `from` and `to` to differ")

    @property
    def overnight(self) -> bool:
        return self.start > self.end

    def contains(self, at: datetime, tz: ZoneInfo) -> bool:
        """Whether ``at`` falls inside a window (local wall time in ``tz``)."""
        local = at.astimezone(tz)
        clock = local.time().replace(tzinfo=None)
        today = local.weekday()
        if not self.overnight:
            return today in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return today in self.days
        return clock < self.end and (today - 1) % 7 in self.days

    def window_end(self, at: datetime, tz: ZoneInfo) -> datetime | None:
        """When the window holding ``at`` ends (aware, UTC); None outside a window."""
        if not self.contains(at, tz):
            return None
        local = at.astimezone(tz)
        day = local.date()
        if self.overnight and local.time().replace(tzinfo=None) >= self.start:
            day += _DAY
        return _wall(day, self.end, tz)

    def describe(self) -> str:
        text = f"{self.start:%H:%M}-{self.end:%H:%M}"
        if self.days != frozenset(range(7)):
            text += " " + ",".join(WEEKDAYS[d] for d in sorted(self.days))
        return text


def _wall(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """``clock`` on ``day`` in ``tz`` as UTC. A wall time skipped by DST maps forward
    (zoneinfo's fold=0 takes the offset from before the gap); a repeated one is the first."""
    return datetime.combine(day, clock).replace(tzinfo=tz).astimezone(UTC)


def next_fire(schedule: Schedule, after: datetime, tz: ZoneInfo) -> datetime:
    """The first time ``schedule`` fires strictly after ``after`` (aware, UTC)."""
    if schedule.cron is not None:
        return _next_cron(schedule.cron, after, tz)
    assert schedule.every is not None  # noqa: S101 - Schedule guarantees exactly one
    return _next_every(schedule.every, after, tz)


def _next_cron(expr: str, after: datetime, tz: ZoneInfo) -> datetime:
    """The first local wall time matching crontab ``expr`` after ``after``. A time that
    DST skips fires at the first instant after the gap; a repeated hour fires once."""
    spec = parse_cron(expr)
    times = sorted(time(h, m) for h in spec.hours for m in spec.minutes)
    day = after.astimezone(tz).date() - _DAY
    for _ in range(366 * 8):  # leap-day crons included
        if spec.matches_day(day):
            for clock in times:
                fire = _wall(day, clock, tz)
                if fire > after:
                    return fire
        day += _DAY
    return datetime.max.replace(tzinfo=UTC)  # a cron that never fires (e.g. 31 Feb)


def _next_every(every: timedelta, after: datetime, tz: ZoneInfo) -> datetime:
    seconds = int(every.total_seconds())
    if seconds <= 86400 and 86400 % seconds == 0:
        local = after.astimezone(tz)
        for day in (local.date() - _DAY, local.date(), local.date() + _DAY):
            for k in range(86400 // seconds):
                fire = _wall(day, time(), tz) + timedelta(seconds=k * seconds)
                if fire > after:
                    return fire
        return _wall(local.date() + 2 * _DAY, time(), tz)  # pragma: no cover - unreachable
    if seconds % 86400 == 0:
        days = seconds // 86400
        local_day = after.astimezone(tz).date()
        offset = (local_day - _EVERY_ANCHOR).days % days
        day = local_day - timedelta(days=offset)
        while _wall(day, time(), tz) <= after:
            day += timedelta(days=days)
        return _wall(day, time(), tz)
    steps = (after - _EPOCH) // every + 1
    return _EPOCH + steps * every


def digest_due(schedule: Schedule, last: datetime, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The latest fire time in ``(last, now]``: a digest is due then; else None.

    Several fire times missed (the daemon was down) make ONE digest.
    """
    fire = next_fire(schedule, last, tz)
    if fire > now:
        return None
    for _ in range(_MAX_STEPS):
        following = next_fire(schedule, fire, tz)
        if following > now:
            return fire
        fire = following
    return now  # a minute cron after a very long downtime: now stands for the last fire


@dataclass(frozen=True, slots=True)
class Silence:
    """A mute on matching alerts between ``starts_at`` and its end (expiry or ``expire``)."""

    id: int
    starts_at: datetime
    ends_at: datetime
    watch: str | None = None
    handle: str | None = None
    shop: str | None = None
    item: str | None = None
    kinds: frozenset[str] = frozenset()
    reason: str | None = None
    expired_at: datetime | None = None

    def __post_init__(self) -> None:
        if not (self.watch or self.handle or self.shop or self.item or self.kinds):
            raise ValueError("a silence needs at least one matcher")

    @property
    def end(self) -> datetime:
        """When the silence stops muting: its expiry, or when it was expired by hand."""
        if self.expired_at is not None and self.expired_at < self.ends_at:
            return self.expired_at
        return self.ends_at

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.end

    def matches(self, event: Event) -> bool:
        """Whether this silence mutes ``event`` (ignoring time: see :meth:`active`)."""
        if event.kind == EventKind.SILENCE_ENDED:
            return False
        if self.kinds and event.kind.value not in self.kinds:
            return False
        if event.kind.is_ops and event.kind.value not in self.kinds:
            return False  # ops events are muted only by name
        if self.watch is not None and event.watch != self.watch:
            return False
        item = event.item
        if self.handle is not None:
            handle = (item.handle if item else None) or ""
            if normal_handle(handle) != normal_handle(self.handle):
                return False
        if self.shop is not None:
            shops = {item.shop_id, item.shop_domain} if item else set()
            if self.shop.casefold() not in {s.casefold() for s in shops if s}:
                return False
        if self.item is not None:
            ids = {item.id, item.tiktok_id} if item else set()
            if self.item not in ids:
                return False
        return True

    def describe(self) -> str:
        """``watch=acme-shop kind=new_ad,pinned`` for lists and summaries."""
        parts = [
            f"{name}={value}"
            for name, value in (
                ("watch", self.watch),
                ("handle", self.handle and "@" + normal_handle(self.handle)),
                ("shop", self.shop),
                ("item", self.item),
                ("kind", ",".join(sorted(self.kinds)) or None),
            )
            if value
        ]
        return " ".join(parts)


def normal_handle(handle: str) -> str:
    return handle.strip().lstrip("@").casefold()


def muting(silences: list[Silence], event: Event, now: datetime) -> Silence | None:
    """The first active silence muting ``event`` (lowest id), or None."""
    for silence in sorted(silences, key=lambda s: s.id):
        if silence.active(now) and silence.matches(event):
            return silence
    return None


@dataclass(frozen=True, slots=True)
class Hold:
    """What a notifier's delivery control says at one instant.

    ``hold``: alerts queued for it wait (quiet hours, or a digest notifier between digests).
    ``release``: the held alerts go out now as one roundup, named by this key (None: keep).
    ``digest_at``: the digest fire time this release stands for (to remember as done).
    ``quiet``: inside quiet hours (then even a released roundup waits).
    """

    hold: bool
    release: str | None = None
    digest_at: datetime | None = None
    quiet: bool = False


def decide(
    quiet: QuietHours | None,
    digest: Schedule | None,
    last_digest: datetime | None,
    now: datetime,
    tz: ZoneInfo,
) -> Hold:
    """A notifier's hold/release decision at ``now``.

    Quiet hours hold everything, a due digest included (it goes when the window ends). A
    digest notifier holds between digests and releases at the latest fire time due; with no
    digest remembered yet (``last_digest`` None), the schedule starts now and holds. Without
    a digest, whatever is held goes out as soon as the window is over.
    """
    if quiet is not None and quiet.contains(now, tz):
        return Hold(hold=True, quiet=True)
    if digest is None:
        return Hold(hold=False, release=f"quiet:{now.isoformat()}")
    if last_digest is None:
        return Hold(hold=True)
    due = digest_due(digest, last_digest, now, tz)
    if due is None:
        return Hold(hold=True)
    return Hold(hold=True, release=f"digest:{due.isoformat()}", digest_at=due)


# Digest order: new ads and videos, rank jumps and milestones, pins, stops and resumes.
KIND_ORDER: dict[EventKind, int] = {
    EventKind.NEW_AD: 0,
    EventKind.NEW_VIDEO: 0,
    EventKind.BASELINE: 0,
    EventKind.RANK_JUMP: 1,
    EventKind.AD_MILESTONE: 1,
    EventKind.PINNED: 2,
    EventKind.UNPINNED: 2,
    EventKind.AD_STOPPED: 3,
    EventKind.AD_RESUMED: 3,
}


def roundup_order(events: list[Event]) -> list[tuple[str, list[Event]]]:
    """Events grouped by watch (first seen first), each group ordered by kind then time."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.watch, []).append(event)
    return [
        (watch, sorted(group, key=lambda e: (KIND_ORDER.get(e.kind, 4), e.detected_at)))
        for watch, group in groups.items()
    ]
