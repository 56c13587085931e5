"""What the dashboard shows, built from the config and the state database only.

The builders take ``now`` and return plain values the templates print and the JSON API
serialises; nothing here renders or serves. Everything that came from TikTok (captions,
handles, thumbnail URLs) is hostile: text is cleaned of control, invisible and
bidi-override characters here (the templates then HTML-escape it), links are rebuilt
from a numeric id and a percent-encoded handle, and only ``https`` thumbnails are kept.
No secret is read: deliveries are named by notifier and URL position, errors and
figures go through the log redactor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from watcher.channels import clean, item_stats, neutralise_mentions, truncate
from watcher.config import Settings
from watcher.dashboard.chart import Chart, build_chart, daily_share, day_bounds
from watcher.logs import redact
from watcher.models import EventKind
from watcher.schedule import parse_duration
from watcher.status import WatchStatus, build_status, event_json, format_figures
from watcher.store import EventPage, EventView, PollView, Reads, Store, WatchStrategy

CHART_DAYS = 30
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CAPTION_CHARS = 300
_DIGITS = re.compile(r"\d{1,25}")
_STATE_CLASS = re.compile(r"[a-z_]{1,20}")


class BadQuery(ValueError):
    """A dashboard or API query parameter that cannot be understood."""


# --- filters ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    """What the events list is narrowed to; ``before`` pages to older events."""

    watch: str | None = None
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    since_text: str = ""
    before: int | None = None
    limit: int = DEFAULT_LIMIT

    def query(self, **changes: object) -> list[tuple[str, str]]:
        """These filters as query parameters, with ``changes`` applied (None drops one)."""
        values: dict[str, object] = {
            "watch": self.watch,
            "kind": list(self.kinds),
            "since": self.since_text or None,
            "before": self.before,
            "limit": self.limit if self.limit != DEFAULT_LIMIT else None,
        }
        values.update(changes)
        pairs: list[tuple[str, str]] = []
        for key, value in values.items():
            if isinstance(value, list):
                pairs += [(key, str(v)) for v in value]
            elif value is not None and value != "":
                pairs.append((key, str(value)))
        return pairs


def parse_since(text: str, now: datetime) -> datetime:
    """``24h``/``7d`` back from ``now``, or an ISO 8601 instant (UTC if it has no zone)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"since: {text!r} is neither a duration (24h, 7d) nor a time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_filters(params: Mapping[str, Sequence[str]], now: datetime) -> Filters:
    """Filters from query parameters: ``watch``, ``kind`` (repeated or comma-separated),
    ``since``, ``before`` (an event id) and ``limit`` (1-500). Empty values are absent."""

    def one(name: str) -> str:
        values = [v for v in params.get(name, ()) if v.strip()]
        return values[-1].strip() if values else ""

    kinds: list[str] = []
    for value in params.get("kind", ()):
        kinds += [k.strip() for k in value.split(",") if k.strip()]
    known = {k.value for k in EventKind}
    unknown = sorted(set(kinds) - known)
    if unknown:
        raise BadQuery(f"kind: unknown event kind {unknown[0]!r}")
    since_text = one("since")
    before_text, limit_text = one("before"), one("limit")
    if before_text and not before_text.isdigit():
        raise BadQuery(f"before: should be an event id, not {before_text!r}")
    if limit_text and not (limit_text.isdigit() and 1 <= int(limit_text) <= MAX_LIMIT):
        raise BadQuery(f"limit: should be a number from 1 to {MAX_LIMIT}, not {limit_text!r}")
    return Filters(
        watch=one("watch") or None,
        kinds=tuple(dict.fromkeys(kinds)),
        since=parse_since(since_text, now) if since_text else None,
        since_text=since_text,
        before=int(before_text) if before_text else None,
        limit=int(limit_text) if limit_text else DEFAULT_LIMIT,
    )


# --- text from TikTok -------------------------------------------------------------------


def display_text(value: object) -> str:
    """One line of hostile text fit for a page: cleaned, mentions broken, redacted."""
    return neutralise_mentions(clean(redact(str(value))))


def tiktok_link(handle: str | None, tiktok_id: str | None) -> str | None:
    """``https://www.tiktok.com/@{handle}/video/{tiktokId}`` from a numeric id only."""
    if not tiktok_id or not _DIGITS.fullmatch(tiktok_id):
        return None
    name = quote(clean(handle or "").lstrip("@"), safe="._-")
    return f"https://www.tiktok.com/@{name}/video/{tiktok_id}"


def thumbnail(url: str | None) -> str | None:
    """An ``https`` image URL kept as given when it is plain; anything else, None."""
    if not url or len(url) > 2000 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return None
    return url


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    label: str
    state: str
    state_class: str
    attempts: int


@dataclass(frozen=True, slots=True)
class EventCard:
    """One event as the page shows it."""

    id: int
    watch: str
    kind: str
    ops: bool
    detected_at: datetime
    when: str
    ago: str
    tiktok_id: str | None
    link: str | None
    handle: str | None
    caption: str | None
    thumbnail: str | None
    figures: str
    stats: str
    deliveries: tuple[Delivery, ...]


def ago(now: datetime, when: datetime) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86_400)} d ago"


def local_time(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else "-"


def event_card(view: EventView, now: datetime, tz: ZoneInfo) -> EventCard:
    ev = view.event
    item = ev.item
    handle = display_text(item.handle).lstrip("@") if item and item.handle else None
    caption = None
    if item and item.caption:  # cut before breaking mentions: cutting cleans out the break
        caption = neutralise_mentions(truncate(redact(item.caption), CAPTION_CHARS))
    tiktok_id = item.tiktok_id if item and item.tiktok_id else None
    return EventCard(
        id=view.id,
        watch=ev.watch,
        kind=ev.kind.value,
        ops=ev.kind.is_ops,
        detected_at=ev.detected_at,
        when=local_time(ev.detected_at, tz),
        ago=ago(now, ev.detected_at),
        tiktok_id=tiktok_id if tiktok_id and _DIGITS.fullmatch(tiktok_id) else None,
        link=tiktok_link(item.handle, tiktok_id) if item else None,
        handle=handle,
        caption=caption,
        thumbnail=thumbnail(item.thumbnail_url) if item else None,
        figures=display_text(format_figures(ev.figures)),
        stats=display_text(item_stats(item)),
        deliveries=tuple(
            Delivery(
                label=f"{d.notifier}[{d.url_index}]",
                state=d.state,
                state_class=d.state if _STATE_CLASS.fullmatch(d.state) else "other",
                attempts=d.attempts,
            )
            for d in view.deliveries
        ),
    )


def event_api_json(view: EventView) -> dict[str, object]:
    """``watcher events --json``'s fields, plus what the dashboard shows of the item."""
    out = event_json(view)
    item = view.event.item
    out["handle"] = item.handle if item else None
    out["caption"] = item.caption if item else None
    out["link"] = tiktok_link(item.handle, item.tiktok_id) if item else None
    out["thumbnail_url"] = thumbnail(item.thumbnail_url) if item else None
    return out


# --- watches ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchCard:
    """One watch's line: ``status`` as ``watcher status`` has it, plus target and strategy."""

    status: WatchStatus
    target: str
    strategy: str
    last_poll: str
    last_ago: str
    next_poll: str
    error: str | None


def strategy_text(strategy: WatchStrategy | None) -> str:
    """How the watch reads the API, once it has a baseline."""
    if strategy is None or not strategy.has_baseline:
        return "-"
    return "exact feed" if strategy.exact else "documented-only"


def watch_cards(
    settings: Settings, store: Store, reads: Reads, now: datetime
) -> tuple[list[WatchCard], dict[str, object]]:
    """Every watch's card, and the totals (credits today and this month, balance)."""
    report = build_status(settings, store, now)
    strategies = reads.strategies()
    targets = {w.name: w.describe_target() for w in settings.watches}
    tz = settings.timezone
    cards = []
    for w in report.watches:
        upcoming = local_time(w.next_poll, tz) if w.next_poll else (w.next_note or "-")
        cards.append(
            WatchCard(
                status=w,
                target=display_text(targets.get(w.name, "(removed from the config)")),
                strategy=strategy_text(strategies.get(w.name)),
                last_poll=local_time(w.last_poll, tz),
                last_ago=ago(now, w.last_poll) if w.last_poll else "never polled",
                next_poll=upcoming,
                error=display_text(w.last_error) if w.last_error else None,
            )
        )
    totals: dict[str, object] = {
        "credits_today": report.credits_today,
        "credits_month": report.credits_month,
        "balance": report.balance,
        "outbox_pending": report.outbox_pending,
        "budget": settings.budget.monthly_credits,
    }
    return cards, totals


def watch_api_json(card: WatchCard, strategy: WatchStrategy | None) -> dict[str, object]:
    w = card.status
    return {
        "name": w.name,
        "target": card.target,
        "schedule": w.schedule,
        "enabled": w.enabled,
        "removed": w.removed,
        "strategy": card.strategy if card.strategy != "-" else None,
        "exact_feed": strategy.exact if strategy and strategy.has_baseline else None,
        "last_poll": w.last_poll.astimezone(UTC).isoformat() if w.last_poll else None,
        "outcome": w.outcome,
        "last_error": card.error,
        "next_poll": w.next_poll.astimezone(UTC).isoformat() if w.next_poll else w.next_note,
        "consecutive_failures": w.consecutive_failures,
        "credits_today": w.credits_today,
        "credits_month": w.credits_month,
    }


# --- chart ------------------------------------------------------------------------------


def credits_chart(
    settings: Settings, reads: Reads, now: datetime, watch: str | None = None
) -> Chart:
    """Credits per local day over the last 30 days; the budget's daily share on the
    overall chart (a watch's own chart has no share of its own)."""
    tz = settings.timezone
    bounds = day_bounds(now, tz, CHART_DAYS)
    spent = reads.credits_per_window(bounds, watch)
    days = [b.date() for b in bounds[:-1]]
    share = None if watch else daily_share(settings.budget.monthly_credits, days[-1])
    return build_chart(days, spent, share)


# --- pages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventsView:
    cards: tuple[EventCard, ...]
    page: EventPage
    filters: Filters
    watch_names: tuple[str, ...]
    kinds: tuple[str, ...]


def events_view(settings: Settings, reads: Reads, filters: Filters, now: datetime) -> EventsView:
    page = reads.events(
        watch=filters.watch,
        kinds=filters.kinds,
        since=filters.since,
        before=filters.before,
        limit=filters.limit,
    )
    names = [w.name for w in settings.watches]
    known = set(names)
    names += sorted(n for n in reads.strategies() if n not in known)
    kinds = sorted({k.value for k in EventKind if not k.is_ops} | set(reads.event_kinds()))
    return EventsView(
        cards=tuple(event_card(v, now, settings.timezone) for v in page.events),
        page=page,
        filters=filters,
        watch_names=tuple(names),
        kinds=tuple(kinds),
    )


@dataclass(frozen=True, slots=True)
class PollLine:
    when: str
    ago: str
    outcome: str
    items: int
    events: int
    credits: int
    duration_ms: int
    error: str | None


def poll_lines(polls: Sequence[PollView], now: datetime, tz: ZoneInfo) -> list[PollLine]:
    return [
        PollLine(
            when=local_time(p.started_at, tz),
            ago=ago(now, p.started_at),
            outcome=p.outcome,
            items=p.items,
            events=p.events,
            credits=p.credits,
            duration_ms=p.duration_ms,
            error=display_text(p.error) if p.error else None,
        )
        for p in polls
    ]
