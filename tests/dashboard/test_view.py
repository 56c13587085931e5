"""The dashboard's pure parts: chart geometry, day windows, hostile links and filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from watcher.dashboard.chart import build_chart, daily_share, day_bounds
from watcher.dashboard.view import (
    BadQuery,
    Filters,
    ago,
    parse_filters,
    thumbnail,
    tiktok_link,
)

NOW = datetime(2026, 12, 20, 15, 30, tzinfo=UTC)


def test_bars_scale_to_the_tallest_day_and_the_share_line() -> None:
    """The top is a round number over both the tallest bar and the share; bars over the
    share are flagged; the share line sits where its value would reach."""
    days = [date(2026, 12, d) for d in range(1, 11)]
    spent = [0, 50, 100, 150, 0, 0, 80, 90, 120, 10]
    chart = build_chart(days, spent, 100.0)
    assert chart.top_label == "200"
    assert [b.over for b in chart.bars] == [s > 100 for s in spent]
    base = chart.baseline_y
    plot = base - 10
    assert chart.share_y == pytest.approx(base - plot / 2)
    tallest = chart.bars[3]
    assert tallest.y == pytest.approx(base - plot * 150 / 200, abs=0.01)
    assert chart.bars[0].height == 0
    assert all(b.x + b.width <= chart.right for b in chart.bars)
    assert [t.label for t in chart.x_ticks] == ["Dec 3", "Dec 10"]
    assert chart.total == 600


def test_no_budget_draws_no_share_line_and_an_empty_month_still_has_a_scale() -> None:
    """Without a budget there is no share; with nothing spent the scale is 0..1."""
    chart = build_chart([date(2026, 12, 1)] * 3, [0, 0, 0], None)
    assert chart.share_y is None
    assert chart.top_label == "1"
    assert not any(b.over for b in chart.bars)


@pytest.mark.parametrize(
    ("monthly", "today", "share"),
    [
        (3100, date(2026, 12, 5), 100.0),
        (2800, date(2026, 2, 1), 100.0),
        (None, date(2026, 1, 1), None),
    ],
)
def test_daily_share_spreads_the_budget_over_the_month(
    monthly: int | None, today: date, share: float | None
) -> None:
    """The budget's daily share is the monthly budget over the days of this month."""
    assert daily_share(monthly, today) == share


def test_day_windows_are_local_days_across_a_dst_change() -> None:
    """30 local days end with today; the day clocks go back is 25 hours long."""
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    bounds = day_bounds(now, paris, 30)
    assert len(bounds) == 31
    assert bounds[-1] == datetime(2026, 11, 11, tzinfo=paris)
    assert bounds[0].date() == date(2026, 10, 12)
    lengths = {b.date(): n.astimezone(UTC) - b.astimezone(UTC) for b, n in pairwise(bounds)}
    assert lengths[date(2026, 10, 25)] == timedelta(hours=25)
    assert lengths[date(2026, 10, 26)] == timedelta(hours=24)


@pytest.mark.parametrize(
    ("handle", "tiktok_id", "link"),
    [
        (
            "rivalbrand",
            "7078586231734521093",
            "https://www.tiktok.com/@rivalbrand/video/7078586231734521093",
        ),
        ("@Rival.Brand_1", "1", "https://www.tiktok.com/@Rival.Brand_1/video/1"),
        ('x"><script>', "2", "https://www.tiktok.com/@x%22%3E%3Cscript%3E/video/2"),
        ("a/../b?c#d", "3", "https://www.tiktok.com/@a%2F..%2Fb%3Fc%23d/video/3"),
        ("rival", "12ab", None),
        ("rival", "javascript:alert(1)", None),
        ("rival", None, None),
        (None, "4", "https://www.tiktok.com/@/video/4"),
    ],
)
def test_tiktok_links_come_from_a_numeric_id_and_an_encoded_handle(
    handle: str | None, tiktok_id: str | None, link: str | None
) -> None:
    """The link is rebuilt, never taken from the item; a non-numeric id gives none."""
    assert tiktok_link(handle, tiktok_id) == link


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://p16-sign.tiktokcdn.com/obj/cover.jpg?x-expires=1&sig=a", True),
        ("http://p16.tiktokcdn.com/cover.jpg", False),
        ("javascript:alert(1)", False),
        ("data:image/svg+xml,<svg onload=alert(1)>", False),
        ("https://user:pass@host.example/x.jpg", False),
        ('https://host.example/x.jpg" onerror="alert(1)', False),
        ("https://host.example/\nx.jpg", False),
        ("//host.example/x.jpg", False),
        ("", False),
        (None, False),
    ],
)
def test_only_plain_https_thumbnails_are_kept(url: str | None, kept: bool) -> None:
    """Thumbnails must be https with a host, no credentials, no whitespace."""
    assert thumbnail(url) == (url if kept else None)


def test_filters_parse_and_rebuild_their_query() -> None:
    """Repeated and comma-separated kinds merge; empty values are absent; the query
    round-trips with a change applied."""
    params = {"watch": [""], "kind": ["new_ad,pinned", "new_ad"], "since": ["7d"], "limit": ["20"]}
    filters = parse_filters(params, NOW)
    assert filters == Filters(
        watch=None,
        kinds=("new_ad", "pinned"),
        since=NOW - timedelta(days=7),
        since_text="7d",
        limit=20,
    )
    assert filters.query(before=9) == [
        ("kind", "new_ad"),
        ("kind", "pinned"),
        ("since", "7d"),
        ("before", "9"),
        ("limit", "20"),
    ]
    naive = parse_filters({"since": ["2026-12-01T00:00:00"]}, NOW)
    assert naive.since == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "params",
    [{"kind": ["new_ad,nope"]}, {"limit": ["0"]}, {"before": ["-1"]}, {"since": ["soon"]}],
)
def test_bad_filters_raise(params: dict[str, list[str]]) -> None:
    """An unknown kind, a bad limit, cursor or since is a BadQuery."""
    with pytest.raises(BadQuery):
        parse_filters(params, NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "just now"), (61, "1 min ago"), (7200, "2 h ago"), (3 * 86400, "3 d ago")],
)
def test_ago_reads_humanly(seconds: int, text: str) -> None:
    """Relative times in the largest whole unit."""
    assert ago(NOW, NOW - timedelta(seconds=seconds)) == text
