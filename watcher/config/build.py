"""The validated model -> frozen ``Settings``: defaults inherited per watch, targets
normalised, notifiers built; problems found on the way go to the same report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from watcher.config.checks import Report
from watcher.config.schema import (
    ConfigModel,
    FirstRun,
    NotifierModel,
    WatchModel,
    WatchOptions,
    WatchType,
)
from watcher.config.values import (
    DEFAULT_EVENTS,
    DEFAULT_EVERY,
    DEFAULT_MILESTONES,
    DEFAULT_RANK_JUMP,
    ApiSettings,
    BudgetSettings,
    DeliverySettings,
    HealthSettings,
    Notifier,
    OpsSettings,
    RankJump,
    Settings,
    StateSettings,
    Target,
    Watch,
)
from watcher.config.yaml_source import KeyPath
from watcher.delivery_rules import WEEKDAYS, QuietHours
from watcher.errors import ParameterError
from watcher.models import EventKind, KeywordMode, SearchArea, StatusFilter
from watcher.schedule import Schedule
from watcher.trendtrack.params import QueryBody


def build_settings(
    model: ConfigModel,
    env: Mapping[str, str],
    base_url: str,
    database: str,
    health: HealthSettings,
    base_dir: Path,
    report: Report,
) -> Settings:
    api_key = model.api.api_key
    if api_key is None or not api_key.get_secret_value():
        from_env = env.get("TRENDTRACK_API_KEY")
        api_key = SecretStr(from_env) if from_env else None
    templates_dir = None
    if model.templates_dir is not None:
        templates_dir = (base_dir / Path(model.templates_dir).expanduser()).resolve()
        if not templates_dir.is_dir():
            report(("templates_dir",), f"{str(templates_dir)!r} is not a folder")
    watches = tuple(
        _watch(w, model.defaults, ("watches", i), report) for i, w in enumerate(model.watches)
    )
    return Settings(
        api=ApiSettings(
            base_url=base_url,
            api_key=api_key,
            max_requests_per_minute=model.api.max_requests_per_minute,
            max_concurrency=model.api.max_concurrency,
            timeout_seconds=model.api.timeout_seconds,
        ),
        budget=BudgetSettings(monthly_credits=model.budget.monthly_credits),
        state=StateSettings(
            database=database,
            retention=model.state.retention,
            removed_watch_grace=model.state.removed_watch_grace,
            lease=model.state.lease,
            replica_id=model.state.replica_id,
        ),
        timezone=ZoneInfo(model.timezone),
        templates_dir=templates_dir,
        notifiers=MappingProxyType(
            {name: _notifier(name, n, report) for name, n in model.notifiers.items()}
        ),
        ops_notify=model.ops_notify,
        route=MappingProxyType({EventKind(k): v for k, v in model.route.items()}),
        ops=OpsSettings(model.ops.failing_after, model.ops.credits_low_below),
        delivery=DeliverySettings(
            model.delivery.max_attempts,
            model.delivery.digest_threshold,
            model.delivery.backoff_seconds,
        ),
        health=health,
        watches=watches,
    )


def _notifier(name: str, model: NotifierModel, report: Report) -> Notifier:
    """A notifier with its delivery control (quiet hours, digest schedule)."""
    quiet = None
    if model.quiet_hours is not None:
        q = model.quiet_hours
        days = frozenset(WEEKDAYS.index(d) for d in q.days) if q.days else frozenset(range(7))
        start, end = time.fromisoformat(f"{q.from_:0>5}"), time.fromisoformat(f"{q.to:0>5}")
        if start == end:
            report(("notifiers", name, "quiet_hours"), "`from` and `to` are the same time")
        else:
            quiet = QuietHours(start, end, days)
    digest = None
    if model.digest is not None:
        d = model.digest
        if (d.every is None) == (d.cron is None):
            report(("notifiers", name, "digest"), "give exactly one of `every` or `cron`")
        else:
            digest = Schedule(every=d.every, cron=d.cron)
    return Notifier(name, model.urls, quiet, digest)


_T = TypeVar("_T")


def pick(own: _T | None, inherited: _T | None, builtin: _T) -> _T:
    """A watch's own value, else the ``defaults`` one, else the built-in one."""
    if own is not None:
        return own
    return inherited if inherited is not None else builtin


def _watch(w: WatchModel, d: WatchOptions, path: KeyPath, report: Report) -> Watch:
    if w.every is not None or w.cron is not None:
        schedule = Schedule(every=w.every, cron=w.cron)
    elif d.every is not None or d.cron is not None:
        schedule = Schedule(every=d.every, cron=d.cron)
    else:
        schedule = Schedule(every=DEFAULT_EVERY)
    own_jump, inherited_jump = w.rank_jump, d.rank_jump
    return Watch(
        name=w.name,
        target=_target(w, path, report),
        schedule=schedule,
        type=pick(w.type, d.type, WatchType.ALL),
        status=pick(w.status, d.status, StatusFilter.ALL),
        min_views=w.min_views if w.min_views is not None else d.min_views,
        language=w.language if w.language is not None else d.language,
        events=frozenset(EventKind(e) for e in pick(w.events, d.events, tuple(DEFAULT_EVENTS))),
        on_first_run=pick(w.on_first_run, d.on_first_run, FirstRun.SILENT),
        notify=pick(w.notify, d.notify, ()),
        enabled=pick(w.enabled, d.enabled, True),
        priority=pick(w.priority, d.priority, "normal"),
        max_credits_per_poll=pick(w.max_credits_per_poll, d.max_credits_per_poll, 200),
        filter_window=pick(w.filter_window, d.filter_window, timedelta(days=7)),
        milestones=tuple(sorted(set(pick(w.milestones, d.milestones, DEFAULT_MILESTONES)))),
        rank_jump=RankJump(
            min_climb=pick(
                own_jump.min_climb if own_jump else None,
                inherited_jump.min_climb if inherited_jump else None,
                DEFAULT_RANK_JUMP.min_climb,
            ),
            track=pick(
                own_jump.track if own_jump else None,
                inherited_jump.track if inherited_jump else None,
                DEFAULT_RANK_JUMP.track,
            ),
        ),
    )


def _target(w: WatchModel, path: KeyPath, report: Report) -> Target:
    if w.shop is not None:
        return Target("shop", (w.shop,))
    if w.hashtag is not None:
        tag = w.hashtag.lstrip("#").strip()
        if not tag:
            report((*path, "hashtag"), "is empty")
        return Target("hashtag", (tag,))
    if w.handle is not None:
        handle = w.handle.lstrip("@").strip().lower()
        if not handle:
            report((*path, "handle"), "is empty")
        return Target("handle", (handle,))
    if w.search is not None:
        return Target(
            "search", w.search, w.search_area or SearchArea.ALL, w.keyword_mode or KeywordMode.ANY
        )
    raw = w.query.model_dump(by_alias=True, exclude_none=True) if w.query else {}
    body = {k: str(v) if isinstance(v, StrEnum) else v for k, v in raw.items()}
    try:
        typed = QueryBody.from_json(body)
    except ParameterError as exc:
        report((*path, "query"), f"is not a valid query body: {exc}")
        typed = QueryBody()
    return Target("query", query=MappingProxyType(body), body=typed)
