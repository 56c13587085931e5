"""The report of ``watcher check``: each watch, its schedule and its estimated credits.

The estimator is injected; ``planned_estimate`` is the polling plan's (``watcher.plan``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from watcher.config import Settings, Watch
from watcher.models import EventKind
from watcher.plan import CreditEstimate, estimate, strategy
from watcher.schedule import fires_per_day


def planned_estimate(
    watch: Watch, settings: Settings, history: Mapping[str, float] | None = None
) -> CreditEstimate:
    """The polling plan's estimate; ``history`` maps watch names to their measured
    changed rows per refresh (from the state database), when there is one."""
    polls = fires_per_day(watch.schedule, settings.timezone)
    measured = (history or {}).get(watch.name)
    return estimate(watch, polls, changes_per_refresh=measured)


def _credits(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:,.1f}"


def _notifiers(watch: Watch, settings: Settings) -> str:
    own = ", ".join(watch.notify) or "none"
    extra = [
        f"{kind.value} -> {', '.join(names)}"
        for kind, names in settings.route.items()
        if kind in watch.events and names
    ]
    return own + (f" (+ {'; '.join(extra)})" if extra else "")


def format_check_report(
    settings: Settings,
    estimate: Callable[[Watch], CreditEstimate],
    reading: Callable[[Watch], str] = lambda watch: strategy(watch, None),
) -> str:
    """Every watch with target, schedule, events, notifiers, how it reads its changes
    and credits; then the total."""
    source = str(settings.source) if settings.source else "config"
    enabled = [w for w in settings.watches if w.enabled]
    lines = [
        f"{source}: OK, {len(settings.watches)} watches ({len(enabled)} enabled), "
        f"timezone {settings.timezone.key}",
    ]
    if settings.api.api_key is None:
        lines.append("warning: no API key (set api.api_key or TRENDTRACK_API_KEY)")
    health = settings.health
    if health.open_beyond_loopback:
        lines.append(
            f"warning: the dashboard on {health.host}:{health.port} is open to anyone who can "
            "reach it: set health.token (e.g. token: ${WATCHER_DASHBOARD_TOKEN})"
        )
    total_day = total_month = 0.0
    for watch in settings.watches:
        cost = estimate(watch)
        state = f"enabled, priority {watch.priority}" if watch.enabled else "DISABLED"
        events = ", ".join(kind.value for kind in EventKind if kind in watch.events)
        lines += [
            "",
            f"{watch.name}  [{state}]",
            f"  target:    {watch.describe_target()}",
            f"  schedule:  {watch.schedule.describe()}",
            f"  events:    {events}",
            f"  notify:    {_notifiers(watch, settings)}",
            f"  reading:   {reading(watch)}",
            f"  credits:   ~{_credits(cost.per_day)}/day, ~{_credits(cost.per_month)}/month"
            + (f"  ({cost.note})" if cost.note else ""),
        ]
        if watch.enabled:
            total_day += cost.per_day
            total_month += cost.per_month
    lines += ["", f"total: ~{_credits(total_day)} credits/day, ~{_credits(total_month)}/month"]
    budget = settings.budget.monthly_credits
    if budget is None:
        lines.append("budget: none set (budget.monthly_credits)")
    elif total_month > budget:
        lines.append(
            f"budget: OVER: ~{_credits(total_month)} of {budget:,} credits/month "
            f"({total_month / budget:.0%}); low-priority watches will be shed"
        )
    else:
        lines.append(
            f"budget: ok, ~{_credits(total_month)} of {budget:,} credits/month "
            f"({total_month / budget:.0%})"
        )
    return "\n".join(lines)
