"""What every ``watcher`` command shares: one clear error line instead of a traceback, and
``-c/--config`` before or after the subcommand."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from watcher.errors import WatcherError

CONFIG_HELP = "Path to watches.yaml (default: $WATCHER_CONFIG, else ./watches.yaml)."


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)
        ctx.obj["config"] = Path(value)


def _config_option() -> click.Option:
    """``-c/--config`` after the subcommand: the same as before it."""
    return click.Option(
        ["-c", "--config"],
        metavar="PATH",
        help=CONFIG_HELP,
        expose_value=False,
        callback=_set_config,
    )


class CommandGroup(click.Group):
    """Turns our own errors into one clear line and exit code 1, never a traceback; every
    command it holds also takes ``-c/--config``."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any("--config" in getattr(p, "opts", ()) for p in cmd.params):
            cmd.params.append(_config_option())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WatcherError as exc:
            fail(str(exc))
