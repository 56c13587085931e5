"""The credits chart as plain geometry: bars per day and the budget's daily share.

Pure: days and figures in, rectangles and lines (in SVG user units) out. The page draws
them as inline SVG, server-side, so the chart needs no script and no library, and every
bar carries its date and figure as text for screen readers and tooltips.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

WIDTH = 800
HEIGHT = 200
LEFT = 48
"""Room for the credit labels on the left."""
RIGHT = 24
"""Room for the last date label on the right."""
BOTTOM = 22
"""Room for the date labels under the bars."""
TOP = 10
GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    day: date
    credits: int
    x: float
    y: float
    width: float
    height: float
    over: bool
    """More than the budget's daily share was spent that day."""


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart ready to draw: ``share_y`` is None without a budget."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    share: float | None
    share_y: float | None
    top_label: str
    x_ticks: tuple[Tick, ...]
    baseline_y: float
    left: int
    right: int
    total: int

    @property
    def days(self) -> int:
        return len(self.bars)


def day_bounds(now: datetime, tz: ZoneInfo, days: int) -> list[datetime]:
    """The starts of the last ``days`` local days (today included), and the end of today,
    as aware instants: ``days + 1`` bounds for ``days`` windows. DST days stay whole."""
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime(d.year, d.month, d.day, tzinfo=tz)
        for d in (first + timedelta(days=n) for n in range(days + 1))
    ]


def daily_share(monthly_credits: int | None, today: date) -> float | None:
    """The budget spread evenly over the days of ``today``'s month; None without one."""
    if monthly_credits is None:
        return None
    return monthly_credits / calendar.monthrange(today.year, today.month)[1]


def _nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def build_chart(days: Sequence[date], credits: Sequence[int], share: float | None) -> Chart:
    """Bars for ``credits[i]`` spent on ``days[i]``, scaled so the tallest bar and the
    share line both fit; a date label every seventh day, counted from the last."""
    top = _nice_ceiling(max([*credits, share or 0, 1]))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    base = TOP + plot_h
    bars = []
    ticks = []
    for n, (day, spent) in enumerate(zip(days, credits, strict=True)):
        h = plot_h * spent / top
        x = LEFT + n * slot
        bars.append(
            Bar(
                day=day,
                credits=spent,
                x=round(x + GAP / 2, 2),
                y=round(base - h, 2),
                width=round(max(slot - GAP, 1), 2),
                height=round(h, 2),
                over=share is not None and spent > share,
            )
        )
        if (len(days) - 1 - n) % 7 == 0:
            ticks.append(Tick(round(x + slot / 2, 2), HEIGHT - 6, f"{day:%b} {day.day}"))
    share_y = round(base - plot_h * share / top, 2) if share is not None else None
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=tuple(bars),
        share=share,
        share_y=share_y,
        top_label=f"{top:,}",
        x_ticks=tuple(ticks),
        baseline_y=base,
        left=LEFT,
        right=WIDTH - RIGHT,
        total=sum(credits),
    )
