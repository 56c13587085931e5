"""`watcher simulate` wires its flags into the simulator it serves."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from watcher.cli import cli
from watcher.simulator import server
from watcher.simulator.app import SimConfig


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """What `simulate` would serve: the config and the uvicorn options (nothing runs)."""
    captured: dict[str, object] = {}
    monkeypatch.setattr(server, "create_app", lambda config: config)
    monkeypatch.setattr(
        server.uvicorn, "run", lambda app, **options: captured.update(config=app, **options)
    )
    return captured


def test_simulate_serves_with_flags_and_default_key(served: dict[str, object]) -> None:
    """The command builds the simulator from its flags; no --api-key means tt_sim_demo."""
    args = ["simulate", "--port", "9911", "--seed", "4", "--credits", "77", "--documented-only"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 9911)
    config = served["config"]
    assert isinstance(config, SimConfig)
    assert config.api_keys == ("tt_sim_demo",)
    assert (config.seed, config.credits, config.rate_limit) == (4, 77, 60)
    assert config.documented_only
    assert config.speed == 0.0


def test_simulate_replaces_the_default_key(served: dict[str, object]) -> None:
    """--api-key replaces tt_sim_demo and repeats; --speed and --rate-limit pass through."""
    args = [
        "simulate",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
        "--speed",
        "2880",
        "--rate-limit",
        "5",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = served["config"]
    assert isinstance(config, SimConfig)
    assert config.api_keys == ("k1", "k2")
    assert (config.speed, config.rate_limit) == (2880.0, 5)
