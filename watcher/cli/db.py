"""``watcher db upgrade`` and ``watcher db copy --to URL``: the state database itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from watcher.cli.base import CommandGroup, fail


@click.group(cls=CommandGroup)
def db() -> None:
    """The state database: migrate it, or copy it to another database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply the state database's migrations (the daemon also does this at start)."""
    from watcher import app
    from watcher.store import SCHEMA_HEAD, Store

    settings = app.settings_from(ctx.obj["config"])
    store = Store(settings.state.database, migrate=False)
    try:
        before = store.schema_version()
        changed = store.migrate()
        where = repr(store.db)
    finally:
        store.close()
    if changed:
        click.echo(f"{where}: upgraded from {before or 'an empty database'} to {SCHEMA_HEAD}")
    else:
        click.echo(f"{where}: already at {SCHEMA_HEAD}")


@contextlib.contextmanager
def _no_daemon(url: str, side: str) -> Iterator[None]:
    """Hold the delivery lock of a SQLite side for the copy (no daemon runs, none starts)."""
    from watcher import dblock

    try:
        lock = dblock.acquire(url, purpose="`watcher db copy`")
    except dblock.DatabaseBusy:
        fail(
            f"a watcher daemon (or `watcher once`) is using the {side} database "
            f"{dblock.sqlite_path(url)}; stop it before copying"
        )
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _unrecorded_sends(url: str) -> int:
    """Sends a SQLite database failed to record, kept in its journal (see sent_journal)."""
    from watcher.sent_journal import SentJournal

    journal = SentJournal.beside(url)
    if journal.path is None or not journal.path.exists():
        return 0
    found = journal.open()
    return len(found.whole) + len(found.parts)


@db.command("copy")
@click.option("--to", "target_url", required=True, metavar="URL", help="The database to fill.")
@click.pass_context
def db_copy(ctx: click.Context, target_url: str) -> None:
    """Copy the whole state to another (empty) database, e.g. SQLite to PostgreSQL.

    The target is migrated to the latest schema first. No daemon may run on either side.
    """
    from watcher import app
    from watcher.config.loader import database_url
    from watcher.logs import register_secret
    from watcher.store import Store
    from watcher.store.copy import copy_state
    from watcher.store.urls import password, same_database, shown

    settings = app.settings_from(ctx.obj["config"])
    source_url = settings.state.database
    target_url = database_url(target_url)
    register_secret(password(target_url))
    if same_database(source_url, target_url):
        fail(f"the target {shown(target_url)} is the configured database itself")
    with _no_daemon(source_url, "source"), _no_daemon(target_url, "target"):
        unrecorded = _unrecorded_sends(source_url)
        if unrecorded:
            fail(
                f"the source database has {unrecorded} sends it could not record (in its "
                "`.sent` journal): run `watcher once` on it first, so that they are marked "
                "there instead of sent again from the copy"
            )
        source = Store(source_url)
        try:
            target = Store(target_url)
            try:
                report = copy_state(source, target)
            finally:
                target.close()
        finally:
            source.close()
    for table, rows in report.tables:
        click.echo(f"{table}: {rows} rows")
    click.echo(f"copied {report.total} rows from {shown(source_url)} to {shown(target_url)}")
