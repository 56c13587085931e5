"""The command line surface: every command exists and explains itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from watcher.cli import cli

COMMANDS = [
    "run",
    "once",
    "check",
    "test-notify",
    "render",
    "events",
    "status",
    "simulate",
    "demo",
]


def test_help_lists_every_command() -> None:
    """`watcher --help` names every command of the product spec."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name: str) -> None:
    """Every command answers --help with exit 0 and a usage line."""
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    """A usage error exits 2, as the spec says."""
    result = CliRunner().invoke(cli, ["once", "--no-such-flag"])
    assert result.exit_code == 2


def test_python_dash_m_runs_the_cli() -> None:
    """`python -m watcher` is the same entry point."""
    proc = subprocess.run(
        [sys.executable, "-m", "watcher", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "simulate" in proc.stdout
