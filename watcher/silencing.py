"""``watcher silence``: reading its arguments and showing silences (no I/O here).

The CLI parses, this module turns ``--for``/``--until`` into an end time and silences into
lines or JSON; the silences themselves live in the state database (``store.control``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from watcher.config import Settings
from watcher.delivery_rules import Silence
from watcher.schedule import parse_duration
from watcher.store.control import SilenceView


def silence_end(now: datetime, duration: str | None, until: str | None, tz: ZoneInfo) -> datetime:
    """When a new silence ends: ``--for 7d`` from now, or ``--until`` an ISO time (in the
    config's time zone when it has no offset). ValueError names what is wrong."""
    if (duration is None) == (until is None):
        raise ValueError("give exactly one of --for or --until")
    if duration is not None:
        return now + parse_duration(duration)
    assert until is not None  # noqa: S101 - checked above
    try:
        end = datetime.fromisoformat(until.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--until {until!r} is not an ISO 8601 date or time") from None
    if end.tzinfo is None:
        end = end.replace(tzinfo=tz)
    end = end.astimezone(UTC)
    if end <= now:
        raise ValueError(f"--until {until!r} is in the past")
    return end


def unmatched(silence: Silence, settings: Settings) -> str | None:
    """Why a silence can match no configured watch (for ``watcher check``), or None."""
    names = {w.name for w in settings.watches}
    if silence.watch is not None and silence.watch not in names:
        return f"silence {silence.id} names watch {silence.watch!r}, which is not configured"
    if silence.handle is not None:
        handles = {w.target.value for w in settings.watches if w.target.kind == "handle"}
        if handles and silence.watch is not None and silence.watch in names:
            watch = settings.watch(silence.watch)
            target = watch.target
            if target.kind == "handle" and target.value != silence.handle.lstrip("@").lower():
                return f"silence {silence.id}: watch {silence.watch!r} follows another handle"
    if silence.kinds and silence.watch is not None and silence.watch in names:
        wanted = {k.value for k in settings.watch(silence.watch).events}
        if not silence.kinds & wanted:
            return f"silence {silence.id}: watch {silence.watch!r} has none of its kinds"
    return None


def _local(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else "-"


def format_silences(views: Sequence[SilenceView], now: datetime, tz: ZoneInfo) -> str:
    """One line per silence: id, state, matchers, start, end, alerts held, reason."""
    lines = []
    for view in views:
        s = view.silence
        state = "active" if s.active(now) else "ended"
        line = (
            f"{s.id:>4}  {state:<6}  {s.describe()}  {_local(view.created_at, tz)} -> "
            f"{_local(s.end, tz)}  held {view.held}"
        )
        if s.reason:
            line += f"  ({s.reason})"
        lines.append(line)
    return "\n".join(lines)


def silence_json(view: SilenceView, now: datetime) -> dict[str, object]:
    s = view.silence
    return {
        "id": s.id,
        "active": s.active(now),
        "watch": s.watch,
        "handle": s.handle,
        "shop": s.shop,
        "item": s.item,
        "kinds": sorted(s.kinds),
        "start": view.created_at.isoformat(),
        "end": s.end.isoformat(),
        "reason": s.reason,
        "held": view.held,
    }
