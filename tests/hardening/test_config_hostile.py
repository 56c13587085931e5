"""Issue 15 items 5-8: hostile or mistaken config files are rejected whole, in bounded
time and memory, without echoing a secret, and a rejected reload keeps the file watched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_daemon import SHOP, Clock, ops_events, save, yaml
from watcher.cli import cli
from watcher.config import load_settings
from watcher.config.yaml_source import MAX_NODES
from watcher.daemon import Daemon
from watcher.errors import ConfigError
from watcher.models import EventKind

PASSWORD = "hunter2-s3cret"
OPS_URL = f"mailtos://alerts:{PASSWORD}@example.com?to=ops@example.com"


def bomb(levels: int) -> str:
    """A YAML alias bomb: ``levels`` levels of 9 aliases each."""
    return "\n".join(
        [
            "version: 1",
            'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
            *(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)),
            "watches: []",
        ]
    )


BOMB = bomb(9)
WATCHES = f"  - {{name: a, shop: {SHOP}}}\n  - {{name: b, hashtag: gummies}}\n"


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    """Poll ``condition`` until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds * 10)):
        if condition() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


def check(path: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(path), "check"], env=env or {})
    return result.exit_code, result.output


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    """A Daemon over a real store and the real scheduler, started paused (no job runs)."""
    path = tmp_path / "watches.yaml"
    path.write_text(yaml(tmp_path, WATCHES), "utf-8")
    built = Daemon(path, {"OPS_URL": OPS_URL}, clock=Clock())
    settings = load_settings(path, {})
    built.build(settings)
    built.scheduler.start(paused=True)
    await built._schedule_all()
    yield built
    built.stop.set()
    built.scheduler.shutdown(wait=False)
    await built.runner.client.aclose()
    built.store.close()


# --- item 5: alias bombs and huge files ------------------------------------------------


def test_an_alias_bomb_is_refused_quickly_with_a_clear_error(tmp_path: Path) -> None:
    """9 levels of 9 aliases are rejected, naming the limit; so is a bomb of 20 levels,
    whose 9^20 nodes no machine could expand: that it ends at all (within the test's
    timeout) shows the bound is on expansion, not on time (a wall-clock limit would fail
    on a loaded machine)."""
    path = tmp_path / "watches.yaml"
    for levels in (9, 20):
        path.write_text(bomb(levels), "utf-8")
        with pytest.raises(ConfigError, match="expands to more than") as caught:
            load_settings(path, {})
        assert f"{MAX_NODES:,}" in str(caught.value)
    path.write_text(BOMB, "utf-8")
    code, output = check(path)
    assert code == 1
    assert "aliases" in output


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    """A config file over 1 MiB is refused before it is parsed."""
    path = tmp_path / "watches.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 200_000, "utf-8")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_settings(path, {})


async def test_an_alias_bomb_saved_over_a_live_config_keeps_the_last_good_one(
    daemon: Daemon, tmp_path: Path
) -> None:
    """The daemon rejects the bomb (one config_rejected) and keeps its jobs."""
    before = {job.id for job in daemon.scheduler.get_jobs()}
    save(daemon, BOMB)
    assert not await daemon.reload()
    assert {job.id for job in daemon.scheduler.get_jobs()} == before
    assert ops_events(daemon, EventKind.CONFIG_REJECTED) == 1


# --- item 6: no secret in any error ----------------------------------------------------


def pasted_url_config(tmp_path: Path) -> str:
    return yaml(tmp_path, f'  - {{name: a, shop: {SHOP}, notify: [hook, "${{OPS_URL}}"]}}\n')


def test_check_never_echoes_a_url_pasted_where_a_name_belongs(tmp_path: Path) -> None:
    """`watcher check` names the problem and the line, not the password or the URL."""
    path = tmp_path / "watches.yaml"
    path.write_text(pasted_url_config(tmp_path), "utf-8")
    code, output = check(path, {"OPS_URL": OPS_URL})
    assert code == 1
    assert "unknown notifier" in output
    assert PASSWORD not in output
    assert "example.com" not in output


async def test_the_config_rejected_alert_and_its_figures_hold_no_secret(
    daemon: Daemon, tmp_path: Path
) -> None:
    """The ops event's figures (stored and sent) carry no part of the pasted URL."""
    save(daemon, pasted_url_config(tmp_path))
    assert not await daemon.reload()
    [event] = [
        v.event
        for v in daemon.store.outbox.events(limit=10)
        if v.event.kind == EventKind.CONFIG_REJECTED
    ]
    text = str(event.figures)
    assert "unknown notifier" in text
    assert PASSWORD not in text
    assert "alerts:" not in text
    message = daemon.outbox.messages_for("json://127.0.0.1:9/o", [event])[0]
    assert PASSWORD not in message.title + message.body


# --- item 7: a reload is whole or nothing, and the file stays watched -----------------


async def test_a_reload_that_removes_the_api_key_is_rejected_whole(
    daemon: Daemon, tmp_path: Path
) -> None:
    """No key: rejected with a config_rejected, the old client and settings stay."""
    client, settings = daemon.runner.client, daemon.settings
    save(daemon, yaml(tmp_path, WATCHES).replace('api_key: "tt_sim_unit"', "max_concurrency: 2"))
    assert not await daemon.reload()
    assert daemon.runner.client is client
    assert daemon.settings is settings
    assert ops_events(daemon, EventKind.CONFIG_REJECTED) == 1


async def test_after_a_rejected_reload_the_file_is_still_watched(
    daemon: Daemon, tmp_path: Path
) -> None:
    """The file-watch task survives a rejected reload and applies the next valid edit."""
    task = asyncio.create_task(daemon.reloader.watch_config())
    await asyncio.sleep(0.5)  # awatch starts its watcher thread
    save(daemon, yaml(tmp_path, WATCHES).replace('api_key: "tt_sim_unit"', "max_concurrency: 2"))
    await until(lambda: ops_events(daemon, EventKind.CONFIG_REJECTED) >= 1)
    assert ops_events(daemon, EventKind.CONFIG_REJECTED) == 1
    assert not task.done()
    save(daemon, yaml(tmp_path, WATCHES + "  - {name: c, hashtag: protein}\n"))
    await until(lambda: "c" in {j.id for j in daemon.scheduler.get_jobs()})
    assert "c" in {j.id for j in daemon.scheduler.get_jobs()}, "the later valid edit applied"
    daemon.stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_reload_with_a_broken_template_is_rejected(daemon: Daemon, tmp_path: Path) -> None:
    """A templates_dir whose template fails to render rejects the reload; the old renderer stays."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "pinned.body.j2").write_text("{{ 1 // 0 }}", "utf-8")
    renderer = daemon.outbox.renderer
    save(daemon, yaml(tmp_path, WATCHES, f"templates_dir: {folder}\n"))
    assert not await daemon.reload()
    assert daemon.outbox.renderer is renderer
    [event] = [
        v.event
        for v in daemon.store.outbox.events(limit=10)
        if v.event.kind == EventKind.CONFIG_REJECTED
    ]
    assert "pinned.body.j2" in str(event.figures["error"])


# --- item 8: schedules that never fire, URLs apprise refuses ---------------------------


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("cron: '0 0 31 2 *'", "never fires"),
        ("cron: '0 0 30 2 *'", "never fires"),
    ],
)
def test_check_rejects_a_cron_that_never_fires(tmp_path: Path, snippet: str, expected: str) -> None:
    """February 31st is a valid crontab line that never fires: an error, with its line."""
    path = tmp_path / "watches.yaml"
    path.write_text(yaml(tmp_path, f"  - {{name: a, shop: {SHOP}, {snippet}}}\n"), "utf-8")
    code, output = check(path)
    assert code == 1
    assert expected in output
    assert "watches.yaml:8" in output


@pytest.mark.parametrize("url", ["notascheme://example.com/hook", "tgram://x"])
def test_check_rejects_urls_apprise_refuses(tmp_path: Path, url: str) -> None:
    """A URL apprise cannot load is an error at check, naming the scheme only. (A bare
    ``notascheme://`` was refused before by the form check: a host after it passed.)"""
    path = tmp_path / "watches.yaml"
    path.write_text(yaml(tmp_path, WATCHES).replace('"json://127.0.0.1:9/o"', f'"{url}"'), "utf-8")
    code, output = check(path)
    assert code == 1
    assert "notifiers.ops.urls[0]" in output
    assert "apprise does not accept" in output
    assert "example.com" not in output
