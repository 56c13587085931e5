"""`watcher once` through the command line against the simulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.simworld import Target, config
from watcher.cli import cli
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with running_simulator(seed=3, rate_limit=100_000, credits=1_000_000) as handle:
        yield handle


def _config(sim: SimHandle, tmp_path: Path) -> Path:
    shops = sim.world()["shops"]
    assert isinstance(shops, list)
    targets = [
        Target("shop", "shop", str(shops[0]["id"])),
        Target("other", "shop", str(shops[1]["id"])),
    ]
    path = tmp_path / "watches.yaml"
    path.write_text(config(sim, tmp_path / "state.db", targets), "utf-8")
    return path


def _once(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(path), "once", *args], env={})
    return result.exit_code, result.stdout


def test_dry_run_prints_alerts_and_changes_no_state(sim: SimHandle, tmp_path: Path) -> None:
    """--dry-run polls and prints what it would send, and stores nothing at all."""
    path = _config(sim, tmp_path)
    code, out = _once(path)
    assert code == 0, out
    assert "shop: baseline" in out
    item = sim.change("new_item", type="ad", shopId=str(sim.world()["shops"][0]["id"]))  # type: ignore[index]
    sim.advance_days(1)
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    before = (
        [(w.name, w.last_poll_at) for w in store.memory.watches()],
        len(store.outbox.events()),
    )
    code, out = _once(path, "--dry-run")
    assert code == 0, out
    assert item.removeprefix("tiktok_") in out, "the alert is printed with the tiktok id"
    after = ([(w.name, w.last_poll_at) for w in store.memory.watches()], len(store.outbox.events()))
    assert after == before, "a dry run changes no state"
    code, out = _once(path)
    assert code == 0
    assert len(store.outbox.events()) > before[1], "the real run records what the dry run showed"
    store.close()


def test_watch_option_polls_only_the_named_watch(sim: SimHandle, tmp_path: Path) -> None:
    """--watch NAME polls that watch only; an unknown name is an error (exit 1)."""
    path = _config(sim, tmp_path)
    code, out = _once(path, "--watch", "other")
    assert code == 0, out
    assert "other: baseline" in out
    assert "shop:" not in out
    code, _ = _once(path, "--watch", "nope")
    assert code == 1


def test_a_failed_poll_exits_1(sim: SimHandle, tmp_path: Path) -> None:
    """A rejected key fails the poll, and `once` says so with exit code 1."""
    path = _config(sim, tmp_path)
    path.write_text(path.read_text("utf-8").replace(sim.api_key, "tt_live_wrong"), "utf-8")
    code, out = _once(path)
    assert code == 1
    assert "failed" in out
    assert "tt_live_wrong" not in out
