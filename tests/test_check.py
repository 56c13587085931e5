"""`watcher check`: the per-watch report, the budget line, and the command's exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.check import format_check_report, planned_estimate
from watcher.cli import cli
from watcher.config import Settings, parse_settings
from watcher.plan import CreditEstimate

REPO = Path(__file__).resolve().parents[1]

CONFIG = textwrap.dedent(
    """\
    version: 1
    budget:
      monthly_credits: 1000
    notifiers:
      marketing: {urls: ["json://localhost/m"]}
      ops: {urls: ["json://localhost/o"]}
    route:
      rank_jump: [ops]
    defaults:
      notify: [marketing]
    watches:
      - name: hourly
        hashtag: creatine
      - name: weekly
        handle: "@RivalBrand"
        cron: "0 9 * * 1"
        events: [rank_jump]
      - name: paused
        shop: 3f8aa146-6f96-46e8-9781-64db5166f9a8
        enabled: false
    """
)


def settings_for(text: str = CONFIG) -> Settings:
    return parse_settings(text, "watches.yaml", {}, None)


def fixed(per_day: float) -> CreditEstimate:
    return CreditEstimate(per_day=per_day, per_month=per_day * 30, note="fixed")


def test_report_shows_every_watch_with_its_details() -> None:
    """Each watch appears with target, schedule, events, notifiers, state and credits."""
    report = format_check_report(settings_for(), lambda watch: fixed(10))
    for expected in (
        "hourly  [enabled, priority normal]",
        "#creatine",
        "every 1h",
        "weekly  [enabled, priority normal]",
        "@rivalbrand",
        "cron 0 9 * * 1",
        "rank_jump",
        "marketing (+ rank_jump -> ops)",
        "paused  [DISABLED]",
        "~10/day, ~300/month  (fixed)",
        "reading:   change feed (updatedAfter) if accepted, else stored newest order",
        "reading:   disabled",
    ):
        assert expected in report, expected


def test_total_counts_enabled_watches_and_flags_over_budget() -> None:
    """The total leaves disabled watches out and says OVER when beyond monthly_credits."""
    report = format_check_report(settings_for(), lambda watch: fixed(20))
    assert "total: ~40 credits/day, ~1,200/month" in report
    assert "budget: OVER: ~1,200 of 1,000 credits/month (120%)" in report


def test_total_within_budget_says_ok() -> None:
    """Under the budget the last line says ok with the share used."""
    report = format_check_report(settings_for(), lambda watch: fixed(5))
    assert "budget: ok, ~300 of 1,000 credits/month (30%)" in report


def test_no_budget_is_said_plainly() -> None:
    """Without budget.monthly_credits the report says none is set."""
    report = format_check_report(settings_for("version: 1\n"), lambda watch: fixed(1))
    assert "budget: none set" in report
    assert "warning: no API key" in report


@pytest.mark.parametrize(
    ("health", "env", "open_"),
    [
        ("health: {port: 8080}", {}, False),
        ("health: {port: 8080, host: 0.0.0.0}", {}, True),
        ('health: {port: 8080, host: 0.0.0.0, token: "${TOKEN}"}', {"TOKEN": "s3cret-tok"}, False),
        ('health: {port: 8080, host: 0.0.0.0, token: "${TOKEN:-}"}', {}, True),
        ("health: {host: 0.0.0.0}", {}, False),
    ],
)
def test_check_warns_when_the_dashboard_is_open_beyond_loopback(
    health: str, env: dict[str, str], open_: bool
) -> None:
    """A non-loopback health.host without health.token (an empty one counts as none) warns."""
    settings = parse_settings(f"version: 1\n{health}\n", "watches.yaml", env, None)
    report = format_check_report(settings, lambda watch: fixed(1))
    assert ("dashboard on 0.0.0.0:8080 is open" in report) is open_
    assert "s3cret-tok" not in report


@pytest.mark.parametrize(
    ("name", "per_day"),
    [("hourly", 5.0), ("weekly", 25 * 52 / 365), ("paused", 0.0)],
)
def test_planned_estimate_follows_refreshes_and_rank_tracking(name: str, per_day: float) -> None:
    """Changed rows once per refresh, + the tracked set per paid poll; 0 if disabled."""
    settings = settings_for()
    estimate = planned_estimate(settings.watch(name), settings)
    assert estimate.per_day == pytest.approx(per_day, rel=0.01)
    assert estimate.per_month == pytest.approx(estimate.per_day * 30)


def test_check_command_accepts_the_shipped_config() -> None:
    """`watcher check` on the shipped watches.yaml exits 0 and lists every watch."""
    result = CliRunner().invoke(cli, ["-c", str(REPO / "watches.yaml"), "check"], env={})
    assert result.exit_code == 0, result.output
    for watch in settings_for((REPO / "watches.yaml").read_text("utf-8")).watches:
        assert watch.name in result.stdout
    assert "total:" in result.stdout


def test_check_command_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    """A bad file exits 1 with one `file:line: message` per problem on stderr."""
    bad = tmp_path / "watches.yaml"
    bad.write_text(
        "version: 1\nwatches:\n  - name: a\n    hashtag: x\n    every: soon\n"
        "  - name: b\n    hashtag: y\n    notify: [nobody]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["-c", str(bad), "check"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}:5: watch 'a': every: bad duration 'soon'")
    assert lines[1].startswith(f"{bad}:8: watch 'b': notify[0]: unknown notifier 'nobody'")
    assert result.stdout == ""


def test_check_command_refuses_a_query_body_the_client_would_refuse(tmp_path: Path) -> None:
    """A raw query the API client would refuse at poll time fails `watcher check`, at its
    line, with the client's reason."""
    bad = tmp_path / "watches.yaml"
    bad.write_text(
        "version: 1\nwatches:\n  - name: a\n    query:\n      minViews: 500\n      maxViews: 5\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["-c", str(bad), "check"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:4: watch 'a': query: is not a valid query body: "
        "maxViews (5) is below minViews (500)"
    ]
