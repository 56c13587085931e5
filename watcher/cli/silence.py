"""``watcher silence add/list/expire``: mute matching alerts for a while (stored in the
state database; the outbox's gate applies them)."""

from __future__ import annotations

import click

from watcher.cli.base import CommandGroup, fail


@click.group(cls=CommandGroup)
def silence() -> None:
    """Mute matching alerts for a while (stored in the state database)."""


@silence.command("add")
@click.option("--for", "duration", metavar="DURATION", help="How long, e.g. 2h, 7d.")
@click.option("--until", metavar="ISO", help="Until this time (the config's time zone).")
@click.option("--watch", metavar="NAME", help="Alerts of this watch.")
@click.option("--handle", metavar="H", help="Alerts about this profile handle.")
@click.option("--shop", metavar="ID", help="Alerts about this shop (id or domain).")
@click.option("--item", metavar="ID", help="Alerts about this item (item id or tiktokId).")
@click.option("--kind", "kinds", multiple=True, metavar="K", help="This event kind (repeatable).")
@click.option("--reason", metavar="TEXT", help="Why, shown in lists and the end notice.")
@click.pass_context
def silence_add(
    ctx: click.Context,
    duration: str | None,
    until: str | None,
    watch: str | None,
    handle: str | None,
    shop: str | None,
    item: str | None,
    kinds: tuple[str, ...],
    reason: str | None,
) -> None:
    """Mute matching alerts until the silence ends; prints its id."""
    from datetime import UTC, datetime

    from watcher import app
    from watcher.models import EventKind
    from watcher.silencing import silence_end
    from watcher.store.control import Control

    unknown = [k for k in kinds if k not in set(EventKind)]
    if unknown:
        raise click.BadParameter(f"unknown event kind {unknown[0]!r}", param_hint="--kind")
    if not (watch or handle or shop or item or kinds):
        raise click.UsageError(
            "give at least one matcher: --watch, --handle, --shop, --item or --kind"
        )
    settings = app.settings_from(ctx.obj["config"])
    now = datetime.now(UTC)
    try:
        end = silence_end(now, duration, until, settings.timezone)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    store = app.open_store(settings)
    try:
        silence_id = Control(store).add_silence(
            now, end, watch=watch, handle=handle, shop=shop, item=item, kinds=kinds, reason=reason
        )
    finally:
        store.close()
    click.echo(silence_id)


@silence.command("list")
@click.option("--all", "everything", is_flag=True, help="Ended silences too.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one silence each.")
@click.pass_context
def silence_list(ctx: click.Context, everything: bool, as_json: bool) -> None:
    """Show active silences (with --all, ended ones too) and the alerts each held."""
    import json
    from datetime import UTC, datetime

    from watcher import app
    from watcher.silencing import format_silences, silence_json
    from watcher.store.control import Control

    settings = app.settings_from(ctx.obj["config"])
    now = datetime.now(UTC)
    store = app.open_store(settings)
    try:
        views = Control(store).silences(everything=everything, now=now)
    finally:
        store.close()
    if as_json:
        for view in views:
            click.echo(json.dumps(silence_json(view, now), ensure_ascii=False))
    elif views:
        click.echo(format_silences(views, now, settings.timezone))
    else:
        click.echo("no silences" if everything else "no active silences")


@silence.command("expire")
@click.argument("silence_id", metavar="ID", type=int)
@click.pass_context
def silence_expire(ctx: click.Context, silence_id: int) -> None:
    """End a silence now (its notifiers then hear what it held)."""
    from datetime import UTC, datetime

    from watcher import app
    from watcher.store.control import Control

    settings = app.settings_from(ctx.obj["config"])
    store = app.open_store(settings)
    try:
        ended = Control(store).expire_silence(silence_id, datetime.now(UTC))
    finally:
        store.close()
    if not ended:
        fail(f"no active silence {silence_id}")
    click.echo(f"silence {silence_id} expired")
