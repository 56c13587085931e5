"""What ``watcher events`` and ``watcher status`` show, built from the state database only.

Both read the store and the config (for watches, schedules and the timezone), never the
API, so they work without an API key and while the daemon runs. Deliveries are shown by
notifier name and URL position, never by URL; free text (errors, figures) is redacted.
The builders take ``now`` and return plain values; the formatters return strings.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from watcher.channels import clean
from watcher.config import Settings
from watcher.errors import StoreError
from watcher.logs import redact
from watcher.plan import UPDATED_AFTER_KEY, strategy
from watcher.schedule import Schedule
from watcher.store import DeliveryView, EventView, Store
from watcher.store.leases import OUTBOX, REPLICA, WATCH, leases
from watcher.triggers import trigger

SOON = "soon"

# --- events ---------------------------------------------------------------------------


def _clean(value: object) -> object:
    """JSON-safe and secret-free: strings redacted, datetimes as ISO 8601."""
    if isinstance(value, str):
        return clean(redact(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean(redact(str(value)))


def event_json(view: EventView) -> dict[str, object]:
    """One event as ``watcher events --json`` prints it (the product spec's keys)."""
    ev = view.event
    return {
        "id": view.id,
        "watch": clean(ev.watch),
        "kind": ev.kind.value,
        "item_id": _clean(ev.item.id) if ev.item else None,
        "tiktok_id": _clean(ev.item.tiktok_id) if ev.item else None,
        "detected_at": ev.detected_at.astimezone(UTC).isoformat(),
        "figures": _clean(ev.figures),
        "deliveries": [
            {
                "notifier": d.notifier,
                "url_index": d.url_index,
                "state": d.state,
                "attempts": d.attempts,
            }
            for d in view.deliveries
        ],
    }


def events_json_lines(views: Sequence[EventView]) -> str:
    """JSON lines, one event each, newest first."""
    return "\n".join(json.dumps(event_json(v), ensure_ascii=False) for v in views)


def delivery_summary(deliveries: Sequence[DeliveryView]) -> str:
    """``marketing[0] sent, marketing[1] pending(2)``; the count is attempts so far."""
    if not deliveries:
        return "-"
    parts = []
    for d in deliveries:
        state = d.state if d.state == "sent" or not d.attempts else f"{d.state}({d.attempts})"
        parts.append(f"{d.notifier}[{d.url_index}] {state}")
    return ", ".join(parts)


def _number(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(_clean(value))


def format_figures(figures: Mapping[str, object]) -> str:
    """``rank 48→7, views 1,200,000``; other figures as ``name=value``."""
    shown = dict(figures)
    parts: list[str] = []
    before, after = shown.pop("rank_before", None), shown.pop("rank_after", None)
    if before is not None or after is not None:
        parts.append(f"rank {_number(before)}→{_number(after)}")
    for key, value in shown.items():
        if value is None:
            continue
        label = key.replace("_", " ")
        parts.append(f"{label} {_number(value)}")
    return ", ".join(parts) or "-"


def _local(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns; every cell cleaned of control characters (TikTok text is hostile:
    an ANSI or OSC escape in an id must not reach the terminal)."""
    rows = [[clean(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def format_events(views: Sequence[EventView], tz: ZoneInfo) -> str:
    """A compact table, newest first: time, watch, kind, TikTok id, figures, deliveries."""
    rows = [
        [
            _local(v.event.detected_at, tz),
            v.event.watch,
            v.event.kind.value,
            (v.event.item.tiktok_id if v.event.item else None) or "-",
            format_figures(v.event.figures),
            delivery_summary(v.deliveries),
        ]
        for v in views
    ]
    header = ["TIME", "WATCH", "KIND", "TIKTOK ID", "FIGURES", "DELIVERIES"]
    return _table(header, rows)


def read_events(
    store: Store, now: datetime, since: timedelta, watch: str | None = None
) -> list[EventView]:
    """Events detected within ``since`` of ``now``, newest first (by detection time)."""
    views = store.outbox.events(since=now - since, watch=watch)
    return sorted(views, key=lambda v: (v.event.detected_at, v.id), reverse=True)


# --- status ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """One watch's line of ``watcher status``.

    ``next_poll`` is a time, or None with ``next_note`` saying why: ``soon`` (never
    polled or overdue), ``disabled``, ``removed`` (no longer in the config).
    """

    name: str
    schedule: str | None
    enabled: bool
    removed: bool
    last_poll: datetime | None
    outcome: str | None
    last_error: str | None
    next_poll: datetime | None
    next_note: str | None
    consecutive_failures: int
    credits_today: int
    credits_month: int
    strategy: str = ""
    """How the watch reads its changes (``plan.strategy``), from what was learned."""
    replica: str | None = None
    """The replica holding the watch's lease now (it alone polls it), if any."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    watches: tuple[WatchStatus, ...]
    balance: int | None
    credits_today: int
    credits_month: int
    outbox_pending: int
    timezone: ZoneInfo
    replicas: tuple[ReplicaStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """A running replica, as its live leases in the database say."""

    id: str
    watches: int
    delivers: bool


def replica_leases(store: Store) -> tuple[dict[str, str], tuple[ReplicaStatus, ...]]:
    """Who holds each watch (live leases only), and each live replica's share. Nothing
    for a database that has no leases yet (written by an older watcher, read-only)."""
    try:
        views = [v for v in leases(store) if v.live]
    except StoreError:
        return {}, ()
    holder = {v.name.removeprefix(WATCH): v.holder for v in views if v.name.startswith(WATCH)}
    deliverer = next((v.holder for v in views if v.name == OUTBOX), None)
    ids = sorted({v.name.removeprefix(REPLICA) for v in views if v.name.startswith(REPLICA)})
    counts = Counter(holder.values())
    return holder, tuple(ReplicaStatus(i, counts[i], i == deliverer) for i in ids)


def next_poll(
    schedule: Schedule, tz: ZoneInfo, last_poll: datetime | None, now: datetime
) -> datetime | None:
    """When the watch polls next; None means as soon as the daemon runs it (``soon``).

    ``every``: the last poll plus the interval (None if never polled or overdue).
    ``cron``: the schedule's next fire time after ``now``, in ``tz``.
    """
    if schedule.every is not None:
        if last_poll is None:
            return None
        due = last_poll + schedule.every
        return due if due > now else None
    fire: datetime | None = trigger(schedule, tz).get_next_fire_time(None, now)
    return fire.astimezone(UTC) if fire is not None else None


def period_starts(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start of today and of this month in ``tz``, as UTC instants."""
    local = now.astimezone(tz)
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    month = datetime(local.year, local.month, 1, tzinfo=tz)
    return day.astimezone(UTC), month.astimezone(UTC)


def build_status(settings: Settings, store: Store, now: datetime) -> StatusReport:
    """Every configured watch, then watches the database knows but the config dropped."""
    tz = settings.timezone
    today, month = period_starts(now, tz)
    known = {info.name: info for info in store.memory.watches()}
    holders, replicas = replica_leases(store)
    learned = store.meta.get(UPDATED_AFTER_KEY)
    updated_after = None if learned is None else learned == "1"
    lines: list[WatchStatus] = []
    for watch in settings.watches:
        info = known.get(watch.name)
        last = info.last_poll_at if info else None
        upcoming = next_poll(watch.schedule, tz, last, now) if watch.enabled else None
        note = None if upcoming else (SOON if watch.enabled else "disabled")
        lines.append(
            WatchStatus(
                name=watch.name,
                schedule=watch.schedule.describe(),
                enabled=watch.enabled,
                removed=False,
                last_poll=last,
                outcome=info.last_outcome if info else None,
                last_error=info.last_error if info else None,
                next_poll=upcoming,
                next_note=note,
                consecutive_failures=info.consecutive_failures if info else 0,
                credits_today=store.ledger.spent(since=today, watch=watch.name),
                credits_month=store.ledger.spent(since=month, watch=watch.name),
                strategy=strategy(
                    watch,
                    updated_after,
                    info.exact if info else True,
                    info.moves if info else None,
                ),
                replica=holders.get(watch.name),
            )
        )
    configured = {w.name for w in settings.watches}
    for name, info in known.items():
        if name in configured:
            continue
        lines.append(
            WatchStatus(
                name=name,
                schedule=None,
                enabled=False,
                removed=True,
                last_poll=info.last_poll_at,
                outcome=info.last_outcome,
                last_error=info.last_error,
                next_poll=None,
                next_note="removed",
                consecutive_failures=info.consecutive_failures,
                credits_today=store.ledger.spent(since=today, watch=name),
                credits_month=store.ledger.spent(since=month, watch=name),
            )
        )
    return StatusReport(
        watches=tuple(lines),
        balance=store.ledger.last_balance(),
        credits_today=store.ledger.spent(since=today),
        credits_month=store.ledger.spent(since=month),
        outbox_pending=store.outbox.depth(),
        timezone=tz,
        replicas=replicas,
    )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def status_json(report: StatusReport) -> dict[str, object]:
    """``watcher status --json``: one object, times in UTC ISO 8601."""
    return {
        "watches": [
            {
                "name": w.name,
                "schedule": w.schedule,
                "enabled": w.enabled,
                "removed": w.removed,
                "last_poll": _iso(w.last_poll),
                "outcome": w.outcome,
                "last_error": _clean(w.last_error) if w.last_error else None,
                "next_poll": _iso(w.next_poll) or w.next_note,
                "consecutive_failures": w.consecutive_failures,
                "credits_today": w.credits_today,
                "credits_month": w.credits_month,
                "strategy": w.strategy,
                "replica": w.replica,
            }
            for w in report.watches
        ],
        "replicas": [
            {"id": r.id, "watches": r.watches, "delivers": r.delivers} for r in report.replicas
        ],
        "balance": report.balance,
        "credits_today": report.credits_today,
        "credits_month": report.credits_month,
        "outbox_pending": report.outbox_pending,
    }


def format_status(report: StatusReport) -> str:
    """A table of watches, each failing one's last error under it, then the totals."""
    tz = report.timezone
    header = ["WATCH", "SCHEDULE", "LAST POLL", "OUTCOME", "NEXT POLL", "FAILS", "TODAY", "MONTH"]
    rows = [
        [
            w.name + (" (removed)" if w.removed else ""),
            w.schedule or "-",
            _local(w.last_poll, tz),
            w.outcome or "never polled",
            _local(w.next_poll, tz) if w.next_poll else (w.next_note or "-"),
            str(w.consecutive_failures),
            f"{w.credits_today:,}",
            f"{w.credits_month:,}",
        ]
        for w in report.watches
    ]
    lines = _table(header, rows).splitlines()
    out = [lines[0]]
    for w, line in zip(report.watches, lines[1:], strict=True):
        out.append(line)
        if w.strategy:
            out.append(f"    reading: {w.strategy}")
        if w.replica and len(report.replicas) > 1:
            out.append(f"    polled by: {clean(w.replica)}")
        if w.last_error and w.consecutive_failures:
            out.append(f"    last error: {clean(redact(w.last_error))}")
    balance = f"{report.balance:,}" if report.balance is not None else "not seen yet"
    out.append("")
    out.append(
        f"credits: today {report.credits_today:,}, this month {report.credits_month:,} "
        f"({tz.key}); balance last seen: {balance}; outbox pending: {report.outbox_pending:,}"
    )
    if report.replicas:
        running = ", ".join(
            f"{clean(r.id)} ({r.watches} watches{', delivers' if r.delivers else ''})"
            for r in report.replicas
        )
        out.append(f"replicas: {running}")
    return "\n".join(out)
