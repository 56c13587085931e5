"""The ``watcher`` command line: parses arguments, builds the real objects, calls in.

Exit codes: 0 ok, 1 a problem the user must fix, 2 usage error (click's own).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watcher import __version__
from watcher.cli.base import CONFIG_HELP, CommandGroup, fail
from watcher.cli.db import db
from watcher.cli.silence import silence

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import Settings, Watch


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="watcher")
@click.option(
    "-c",
    "--config",
    "config",
    metavar="PATH",
    envvar="WATCHER_CONFIG",
    default="watches.yaml",
    show_default=False,
    help=CONFIG_HELP,
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for humans or JSON lines for machines.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def cli(ctx: click.Context, config: str, log_format: str, verbose: bool) -> None:
    """Alerts on competitor activity in the TrendTrack TikTok library."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = Path(config)
    ctx.obj["log_format"] = log_format
    ctx.obj["verbose"] = verbose
    from watcher.logs import setup_logging

    # Services log their work; one-shot commands report on stdout and log only warnings.
    quiet = ctx.invoked_subcommand not in {"run", "simulate", "demo"}
    setup_logging(log_format, verbose, quiet=quiet)


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: poll every watch on schedule, hot-reload watches.yaml."""
    from watcher.config import environment
    from watcher.daemon import Daemon

    daemon = Daemon(ctx.obj["config"], environment())
    sys.exit(asyncio.run(daemon.run()))


@cli.command()
@click.option("--watch", "watches", multiple=True, metavar="NAME", help="Only this watch.")
@click.option("--dry-run", is_flag=True, help="Print alerts instead of sending; change no state.")
@click.pass_context
def once(ctx: click.Context, watches: tuple[str, ...], dry_run: bool) -> None:
    """Poll the named (default: all) watches once, deliver their alerts, exit."""
    from watcher import app, dblock
    from watcher.store.leases import refuse_beside_replicas

    settings = app.settings_from(ctx.obj["config"])
    chosen = app.select_watches(settings, watches)
    # A dry run sends and stores nothing: it may run beside a daemon; a real one may not.
    lock = None if dry_run else dblock.acquire(settings.state.database, purpose="`watcher once`")
    try:
        store = app.open_store(settings)
        try:
            if not dry_run:  # on PostgreSQL, running replicas play the part of the lock
                refuse_beside_replicas(store, "`watcher once`")
            result = asyncio.run(app.poll_once(settings, store, chosen, dry_run=dry_run))
            renderer = app.renderer_for(settings) if dry_run else None
            app.print_outcomes(result, sys.stdout, renderer)
        finally:
            store.close()
    finally:
        if lock is not None:
            lock.release()
    if result.failed:
        sys.exit(1)


def _learned_reading(settings: Settings) -> Callable[[Watch], str]:
    """Each watch's reading strategy from what the state database learned (the API's
    ``updatedAfter``, each scope's ``updatedAt``), read-only; without a database, what
    the plan would try first. ``check`` never creates or migrates a database."""
    from watcher.errors import WatcherError
    from watcher.plan import UPDATED_AFTER_KEY, strategy
    from watcher.store import Store

    url = settings.state.database
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not url.startswith("sqlite:///") or not Path(path).is_file():
        return lambda watch: strategy(watch, None)
    try:
        store = Store(url, read_only=True)
        try:
            known = {info.name: info for info in store.memory.watches()}
            learned = store.meta.get(UPDATED_AFTER_KEY)
        finally:
            store.close()
    except WatcherError:
        return lambda watch: strategy(watch, None)
    updated_after = None if learned is None else learned == "1"

    def reading(watch: Watch) -> str:
        info = known.get(watch.name)
        if info is None:
            return strategy(watch, updated_after)
        return strategy(watch, updated_after, info.exact, info.moves)

    return reading


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config and its templates; show schedules and estimated credits."""
    from watcher import app
    from watcher.check import format_check_report, planned_estimate
    from watcher.errors import ConfigError

    try:
        settings = app.settings_from(ctx.obj["config"])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    renderer = app.renderer_for(settings)
    template_problems = renderer.validate()
    renderer.close()
    if template_problems:
        for line in template_problems:
            click.echo(f"template: {line}", err=True)
        sys.exit(1)
    click.echo(
        format_check_report(
            settings, lambda watch: planned_estimate(watch, settings), _learned_reading(settings)
        )
    )
    for line in _delivery_lines(settings):
        click.echo(line)


def _delivery_lines(settings: Settings) -> list[str]:
    """Each notifier's delivery control, and a warning per stored silence that can match
    no configured watch (read from an existing database only: check creates nothing)."""
    from datetime import UTC, datetime

    from watcher.errors import StoreError
    from watcher.silencing import unmatched
    from watcher.store import Store
    from watcher.store.control import Control

    lines = []
    for name, notifier in settings.notifiers.items():
        parts = []
        if notifier.quiet_hours is not None:
            parts.append(f"quiet hours {notifier.quiet_hours.describe()}")
        if notifier.digest is not None:
            parts.append(f"digest {notifier.digest.describe()}")
        if parts:
            lines.append(f"notifier {name}: {', '.join(parts)} ({settings.timezone.key})")
    url = settings.state.database
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return lines
    try:
        store = Store(url, migrate=False)
        try:
            views = Control(store).silences(now=datetime.now(UTC))
        finally:
            store.close()
    except StoreError:
        return lines  # no database yet, or one older than silences
    for view in views:
        reason = unmatched(view.silence, settings)
        if reason is not None:
            lines.append(f"warning: {reason}")
    return lines


@cli.command("test-notify")
@click.argument("notifiers", nargs=-1, metavar="[NOTIFIER]...")
@click.pass_context
def test_notify(ctx: click.Context, notifiers: tuple[str, ...]) -> None:
    """Send one test alert through each (or the named) notifier; report per URL."""
    from watcher import app
    from watcher.channels import channel_for_url
    from watcher.notify import send_to_notifier

    settings = app.settings_from(ctx.obj["config"])
    names = notifiers or tuple(settings.notifiers)
    unknown = [name for name in names if name not in settings.notifiers]
    if unknown:
        fail(f"no notifier named {', '.join(unknown)}")
    renderer = app.renderer_for(settings)
    failed = False
    for name in names:
        urls = [url.get_secret_value() for url in settings.notifiers[name].urls]
        messages = {url: [renderer.render_test(channel_for_url(url), name)] for url in urls}
        results = asyncio.run(send_to_notifier(urls, messages.__getitem__))
        for result in results:
            outcome = "ok" if result.ok else f"FAILED ({result.error})"
            click.echo(f"{name}[{result.index}] {result.scheme}: {outcome}")
            failed = failed or not result.ok
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("event", metavar="EVENT")
@click.option("--notifier", metavar="NAME", help="Render as this notifier's format.")
@click.pass_context
def render(ctx: click.Context, event: str, notifier: str | None) -> None:
    """Render the template for EVENT against a realistic sample; print title and body."""
    from watcher import app
    from watcher.channels import TEXT, channel_for_url
    from watcher.models import EventKind
    from watcher.render_guard import GuardedRenderer
    from watcher.samples import sample_event

    if event not in set(EventKind):
        fail(f"unknown event {event!r}; one of: {', '.join(EventKind)}")
    path: Path = ctx.obj["config"]
    channel, renderer = TEXT, GuardedRenderer()
    if path.exists():
        settings = app.settings_from(path)
        renderer = app.renderer_for(settings)
        if notifier is not None:
            if notifier not in settings.notifiers:
                fail(f"no notifier named {notifier}")
            urls = settings.notifiers[notifier].urls
            channel = channel_for_url(urls[0].get_secret_value()) if urls else TEXT
    elif notifier is not None:
        fail(f"{path} not found: --notifier needs a config file")
    from watcher.errors import TemplateError

    try:
        message = renderer.render_event(sample_event(event), channel)
    except TemplateError as exc:
        fail(f"template: {exc}")
    click.echo(f"{message.title}\n\n{message.body}")


@cli.command()
@click.option("--watch", metavar="NAME", help="Only events of this watch.")
@click.option("--since", default="24h", show_default=True, help="How far back (e.g. 24h, 7d).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one event each.")
@click.pass_context
def events(ctx: click.Context, watch: str | None, since: str, as_json: bool) -> None:
    """Show detected events, newest first, with their delivery state."""
    from datetime import UTC, datetime

    from watcher import app
    from watcher.schedule import parse_duration
    from watcher.status import events_json_lines, format_events, read_events
    from watcher.store import Store

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    settings = app.settings_from(ctx.obj["config"])
    store = Store(settings.state.database, read_only=True)
    try:
        views = read_events(store, datetime.now(UTC), window, watch)
    finally:
        store.close()
    if as_json:
        if views:
            click.echo(events_json_lines(views))
    elif views:
        click.echo(format_events(views, settings.timezone))
    else:
        scope = f" of watch {watch!r}" if watch else ""
        click.echo(f"no events{scope} in the last {since}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each watch's last and next poll, failures, credits; the balance last seen."""
    import json
    from datetime import UTC, datetime

    from watcher import app
    from watcher.status import build_status, format_status, status_json
    from watcher.store import Store

    settings = app.settings_from(ctx.obj["config"])
    store = Store(settings.state.database, read_only=True)
    try:
        report = build_status(settings, store, datetime.now(UTC))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(status_json(report), ensure_ascii=False))
    else:
        click.echo(format_status(report))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--api-key", "api_keys", multiple=True, help="Accepted key (repeatable).")
@click.option("--credits", default=10000, show_default=True, type=int, help="Starting balance.")
@click.option("--rate-limit", default=60, show_default=True, type=int, help="Requests/min/key.")
@click.option("--speed", default=0.0, show_default=True, type=float, help="Sim s per real s.")
@click.option(
    "--documented-only",
    is_flag=True,
    help="Reject every [chosen] parameter; updatedAt moves on metrics; result window.",
)
@click.option("--unstable-ties", is_flag=True, help="Equal sort keys come back in any order.")
def simulate(
    host: str,
    port: int,
    seed: int,
    api_keys: tuple[str, ...],
    credits: int,
    rate_limit: int,
    speed: float,
    documented_only: bool,
    unstable_ties: bool,
) -> None:
    """Serve the bundled TrendTrack simulator on loopback."""
    from watcher.simulator.server import serve  # lazy: uvicorn only when serving

    serve(host, port, seed, api_keys, credits, rate_limit, speed, documented_only, unstable_ties)


@cli.command()
def demo() -> None:
    """Zero-config tour: simulator, demo config and daemon; alerts print here."""
    from watcher.demo import run_demo

    sys.exit(run_demo())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="watcher")


cli.add_command(silence)
cli.add_command(db)
