"""The validated configuration as plain frozen values: Settings, Watch, Target, ...

What the rest of watcher uses; nothing here knows about YAML or pydantic (the secret
values are pydantic ``SecretStr``, whose repr and str never show them). Built by
:mod:`watcher.config`, which re-exports every name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from watcher.config.schema import (
    FirstRun,
    Priority,
    WatchType,
)
from watcher.delivery_rules import QuietHours
from watcher.models import EventKind, KeywordMode, SearchArea, StatusFilter
from watcher.schedule import Schedule
from watcher.trendtrack.params import QueryBody

TargetKind = Literal["shop", "hashtag", "handle", "search", "query"]
DEFAULT_EVENTS = frozenset(
    {
        EventKind.NEW_AD,
        EventKind.NEW_VIDEO,
        EventKind.PINNED,
        EventKind.UNPINNED,
        EventKind.AD_STOPPED,
        EventKind.AD_RESUMED,
    }
)
DEFAULT_EVERY = timedelta(hours=1)
DEFAULT_MILESTONES = (7, 14, 30)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    base_url: str
    api_key: SecretStr | None
    max_requests_per_minute: int
    max_concurrency: int
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    monthly_credits: int | None


@dataclass(frozen=True, slots=True)
class StateSettings:
    database: str = field(repr=False)  # a postgresql:// URL may carry a password
    retention: timedelta
    removed_watch_grace: timedelta
    lease: timedelta = timedelta(seconds=30)
    """How long a replica's lease on a watch or the outbox lasts without renewal."""
    replica_id: str | None = None
    """This replica's name in the leases; None: hostname-pid."""


@dataclass(frozen=True, slots=True)
class OpsSettings:
    failing_after: int
    credits_low_below: int


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    max_attempts: int
    digest_threshold: int
    backoff_seconds: float


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Where ``/healthz``, ``/metrics`` and the dashboard are served, and the token that
    guards every route but ``/healthz`` (None: open, so bound to loopback by default)."""

    port: int | None
    host: str
    token: SecretStr | None = field(default=None, repr=False)

    @property
    def open_beyond_loopback(self) -> bool:
        """Served on a non-loopback address without a token: anyone who reaches it reads it."""
        loopback = self.host in {"127.0.0.1", "::1", "localhost"} or self.host.startswith("127.")
        return self.port is not None and self.token is None and not loopback


@dataclass(frozen=True, slots=True)
class Notifier:
    """A named group of Apprise URLs; the URLs are secrets (tokens, passwords)."""

    name: str
    urls: tuple[SecretStr, ...]
    quiet_hours: QuietHours | None = None
    digest: Schedule | None = None

    @property
    def controlled(self) -> bool:
        """Whether its alerts may be held (quiet hours or a digest schedule)."""
        return self.quiet_hours is not None or self.digest is not None


@dataclass(frozen=True, slots=True)
class RankJump:
    min_climb: int = 20
    track: int = 25


@dataclass(frozen=True, slots=True)
class Target:
    """What a watch follows. ``values``: the shop id, hashtag (no ``#``), handle (no
    ``@``, lowercase) or search keywords; empty for a raw ``query`` body.

    A raw body is kept twice: ``query`` as written (for display and the fingerprint) and
    ``body``, the API client's typed :class:`QueryBody` built from it at config load, so
    a body the client would refuse fails ``watcher check`` instead of a poll."""

    kind: TargetKind
    values: tuple[str, ...] = ()
    search_area: SearchArea = SearchArea.ALL
    keyword_mode: KeywordMode = KeywordMode.ANY
    query: Mapping[str, object] | None = None
    body: QueryBody | None = None

    @property
    def value(self) -> str:
        """The single value of a shop, hashtag or handle target."""
        return self.values[0] if self.values else ""

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able form, for fingerprints and display."""
        return {
            "kind": self.kind,
            "values": list(self.values),
            "search_area": self.search_area,
            "keyword_mode": self.keyword_mode,
            "query": None if self.query is None else dict(self.query),
        }

    def __hash__(self) -> int:
        return hash(json.dumps(self.as_dict(), sort_keys=True))


@dataclass(frozen=True, slots=True)
class Watch:
    """One watch, with ``defaults`` and the built-in defaults already merged in."""

    name: str
    target: Target
    schedule: Schedule
    type: WatchType = WatchType.ALL
    status: StatusFilter = StatusFilter.ALL
    min_views: int | None = None
    language: str | None = None
    events: frozenset[EventKind] = DEFAULT_EVENTS
    on_first_run: FirstRun = FirstRun.SILENT
    notify: tuple[str, ...] = ()
    enabled: bool = True
    priority: Priority = "normal"
    max_credits_per_poll: int = 200
    filter_window: timedelta = timedelta(days=7)
    rank_jump: RankJump = field(default_factory=RankJump)
    milestones: tuple[int, ...] = DEFAULT_MILESTONES

    def describe_target(self) -> str:
        """``shop 3f8aa146…``, ``#creatine``, ``@rivalbrand``, ``search "a", "b"``."""
        target = self.target
        if target.kind == "shop":
            return f"shop {target.value[:8]}…"
        if target.kind == "hashtag":
            return f"#{target.value}"
        if target.kind == "handle":
            return f"@{target.value}"
        if target.kind == "search":
            words = ", ".join(json.dumps(v, ensure_ascii=False) for v in target.values)
            extras = [f"in {target.search_area}"] if target.search_area != "all" else []
            if len(target.values) > 1:
                extras.append(f"{target.keyword_mode} keyword")
            return f"search {words}" + (f" ({', '.join(extras)})" if extras else "")
        body = target.query or {}
        parts = [f"{k}={_compact(v)}" for k, v in body.items()]
        return "query " + (" ".join(parts) if parts else "(whole library)")

    @property
    def fingerprint(self) -> str:
        """A stable hash of every effective setting: equal iff the watch is unchanged."""
        effective = {
            "name": self.name,
            "target": self.target.as_dict(),
            "schedule": self.schedule.describe(),
            "type": self.type,
            "status": self.status,
            "min_views": self.min_views,
            "language": self.language,
            "events": sorted(self.events),
            "on_first_run": self.on_first_run,
            "notify": list(self.notify),
            "enabled": self.enabled,
            "priority": self.priority,
            "max_credits_per_poll": self.max_credits_per_poll,
            "filter_window": self.filter_window.total_seconds(),
            "rank_jump": [self.rank_jump.min_climb, self.rank_jump.track],
        }
        if EventKind.AD_MILESTONE in self.events:  # the fingerprint of older watches holds
            effective["milestones"] = list(self.milestones)
        canonical = json.dumps(effective, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


DEFAULT_RANK_JUMP = RankJump()


def _compact(value: object) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration."""

    api: ApiSettings
    budget: BudgetSettings
    state: StateSettings
    timezone: ZoneInfo
    templates_dir: Path | None
    notifiers: Mapping[str, Notifier]
    ops_notify: tuple[str, ...]
    route: Mapping[EventKind, tuple[str, ...]]
    ops: OpsSettings
    delivery: DeliverySettings
    health: HealthSettings
    watches: tuple[Watch, ...]
    source: Path | None = None

    def watch(self, name: str) -> Watch:
        """The watch called ``name``; ``KeyError`` if there is none."""
        for watch in self.watches:
            if watch.name == name:
                return watch
        raise KeyError(name)
