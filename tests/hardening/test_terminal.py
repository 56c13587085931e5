"""Issue 15 item 14: ANSI/OSC escapes in TikTok ids or error texts never reach the
terminal through `watcher events`, `watcher status` or `watcher once`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_outbox import item_event, make_settings, record_poll
from watcher.cli import cli
from watcher.store import PollRecord, Store

HOSTILE = "7\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\x1b[2J\x9b31m\u202e"
ESCAPES = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config and a database holding an event with a hostile id and a hostile error."""
    settings = make_settings(tmp_path, {"marketing": ["json://127.0.0.1:9/"]})
    path = tmp_path / "watches.yaml"
    text = path.read_text("utf-8").replace(
        "version: 1\n", f"version: 1\nstate: {{database: 'sqlite:///{tmp_path / 'w.db'}'}}\n"
    )
    path.write_text(text, "utf-8")
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        event = item_event("acme", 1)
        assert event.item is not None
        hostile = dataclasses.replace(event.item, tiktok_id=HOSTILE)
        record_poll(store, settings, "acme", [dataclasses.replace(event, item=hostile)])
        now = datetime.now(UTC)
        store.apply_poll(PollRecord.failed("acme", now, RuntimeError(f"bad {HOSTILE}")), {})
    finally:
        store.close()
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["events", "--since", "3650d"],
        ["events", "--since", "3650d", "--json"],
        ["status"],
        ["status", "--json"],
    ],
)
def test_no_control_character_is_printed(config: Path, command: list[str]) -> None:
    """The id and error still show, minus every escape and control character."""
    result = CliRunner().invoke(cli, ["-c", str(config), *command], env={})
    assert result.exit_code == 0, result.output
    for escape in ESCAPES:
        assert escape not in result.output
    if command[0] == "events":
        assert "click" in result.output
