"""Issue 15 item 16: `watcher status` and `watcher events` read a database on read-only
media (a real tmpfs remounted read-only; skipped where mounting is not permitted)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_outbox import item_event, make_settings, record_poll
from watcher.cli import cli
from watcher.store import Store


def _mount(*args: str) -> bool:
    result = subprocess.run(["mount", *args], capture_output=True, check=False)
    return result.returncode == 0


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    """A config whose database (one event) sits on a tmpfs remounted read-only."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        settings = make_settings(tmp_path, {"marketing": ["json://127.0.0.1:9/"]})
        path = tmp_path / "watches.yaml"
        db = folder / "w.db"
        path.write_text(
            path.read_text("utf-8").replace(
                "version: 1\n", f"version: 1\nstate: {{database: 'sqlite:///{db}'}}\n"
            ),
            "utf-8",
        )
        store = Store(f"sqlite:///{db}")
        record_poll(store, settings, "acme", [item_event("acme", 1)])
        store.close()
        assert _mount("-o", "remount,ro", str(folder))
        yield path
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=False)


@pytest.mark.parametrize("command", [["status"], ["events", "--since", "3650d"]])
def test_read_only_commands_read_a_database_on_read_only_media(
    read_only_db: Path, command: list[str]
) -> None:
    """Exit 0 with the watch in the output; nothing is (or could be) written."""
    result = CliRunner().invoke(cli, ["-c", str(read_only_db), *command], env={})
    assert result.exit_code == 0, result.output
    assert "acme" in result.output
