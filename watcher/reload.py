"""Hot reload of ``watches.yaml`` for a running daemon: file watching on its directory (and
SIGHUP, through ``Daemon.reload``), the new file applied as a diff of watches (removed,
added, changed; a changed scope starts a new baseline), and a rejected file kept out with
one ``config_rejected`` ops alert per bad version.

The diff respects what this replica holds (``watcher.replicas``): a removed watch loses
its job and its lease; a changed one is rescheduled here only if held; an added one is
scheduled by whichever replica takes it, this one included at the step the reload ends
with (on SQLite the one daemon takes every added watch there, at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from watcher import app
from watcher.config import Settings, Watch
from watcher.errors import ConfigError, ConfigProblem
from watcher.models import EventKind, ops_event
from watcher.render_guard import GuardedRenderer
from watcher.schedule import freshness_ttl, in_poll_retries
from watcher.store.leases import claim_meta
from watcher.trendtrack.client import TrendTrackClient

if TYPE_CHECKING:
    from watcher.daemon import Daemon

logger = logging.getLogger("watcher.daemon")

REJECTED_VERSION = "config.rejected_version"


def file_version(path: Path) -> str:
    """A short hash of the config file's bytes: one rejection alert per bad version."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "unreadable"


class Reloader:
    """Reloads one daemon's config, one reload at a time."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._lock = asyncio.Lock()
        self._folder = str(daemon.config_path.absolute().parent)

    async def watch_config(self) -> None:
        """Reload when the config file changes (watching its directory: editors replace it)."""
        from watchfiles import awatch  # noqa: PLC0415  # imported where its thread starts

        folder, name = self._folder, self.daemon.config_path.name

        def relevant(_change: object, path: str) -> bool:
            # Kubernetes swaps a `..data` symlink instead of writing the file itself.
            base = os.path.basename(path)
            return base == name or base.startswith("..")

        async for _changes in awatch(
            folder, stop_event=self.daemon.stop, debounce=300, watch_filter=relevant
        ):
            try:
                await self.reload()
            except Exception:  # the file watch must outlive any one bad reload
                logger.exception("reload failed; still watching %s", self.daemon.config_path)

    async def reload(self) -> bool:
        """Apply the config file as a diff; keep the last good one if it is invalid."""
        async with self._lock:
            old = self.daemon.settings
            if old is None:
                return False
            try:
                new = app.settings_from(self.daemon.config_path, self.daemon.env)
                client, renderer = await self._prepare(old, new)
            except ConfigError as exc:
                await self._rejected(exc)
                return False
            await self._apply(old, new, client, renderer)
            if await self.daemon.async_store.meta.get(REJECTED_VERSION):
                await self.daemon.async_store.meta.set(REJECTED_VERSION, "")
                logger.info("config accepted again")
            await self.daemon.runner.resume_if_possible(config_changed=True)
            return True

    async def _rejected(self, exc: ConfigError) -> None:
        """Keep the last good config; tell the ops notifiers once per bad version."""
        for problem in exc.problems:
            logger.error("config rejected: %s", problem)
        version = file_version(self.daemon.config_path)
        # One statement decides, so of several replicas reading the same bad file one alerts.
        claimed = await self.daemon.async_store.run(
            lambda store: claim_meta(store, REJECTED_VERSION, version)
        )
        if claimed:
            problems = [str(p) for p in exc.problems]
            error = "; ".join(problems[:5])
            if len(problems) > 5:
                error += f" (and {len(problems) - 5} more: run `watcher check`)"
            event = ops_event(
                EventKind.CONFIG_REJECTED,
                "config",
                self.daemon.clock(),
                {"error": error, "version": version, "count": len(problems)},
            )
            await self.daemon.runner.record_ops(event)
            self.daemon.outbox.wakeup.set()
        logger.warning("keeping the last good config (%d watches)", len(self.daemon._wanted()))

    async def _prepare(
        self, old: Settings, new: Settings
    ) -> tuple[TrendTrackClient | None, GuardedRenderer | None]:
        """Everything about ``new`` that can fail, before any of it is applied.

        A reload is applied whole or not at all: a missing API key or a template that
        does not render rejects the file like a syntax error would.
        """
        client = None
        if old.api != new.api or in_poll_retries(old) != in_poll_retries(new):
            client = app.daemon_client(new)
        renderer = None
        if old.templates_dir != new.templates_dir or old.delivery != new.delivery:
            renderer = app.renderer_for(new)
            problems = await asyncio.to_thread(renderer.validate)
            if problems:
                renderer.close()
                if client is not None:
                    await client.aclose()
                where = str(new.source or self.daemon.config_path)
                raise ConfigError([ConfigProblem(where, None, f"template: {p}") for p in problems])
        return client, renderer

    async def _apply(
        self,
        old: Settings,
        new: Settings,
        client: TrendTrackClient | None = None,
        renderer: GuardedRenderer | None = None,
    ) -> None:
        before = {w.name: w for w in old.watches if w.enabled}
        after = {w.name: w for w in new.watches if w.enabled}
        retime = old.timezone != new.timezone
        self.daemon.settings = new
        self.daemon.runner.settings = new
        self.daemon.runner.freshness_ttl = freshness_ttl(new)
        self.daemon.outbox.settings = new
        if renderer is not None:
            self.daemon.outbox.renderer = renderer
        if client is not None:
            self._swap_client(client)
        if old.health != new.health:
            logger.warning("reload: health endpoint changes take effect at the next start")
        last = {w.name: w.last_poll_at for w in await self.daemon.async_store.memory.watches()}
        removed = sorted(before.keys() - after.keys())
        changed = 0
        async with self.daemon.holdings:
            held = self.daemon.replica.watches
            for name in removed:
                self.daemon._remove_job(name)
                logger.info("reload: watch %s removed", name)
            for name, watch in after.items():
                previous = before.get(name)
                if previous is not None:
                    if previous.fingerprint == watch.fingerprint and not retime:
                        continue
                    if _scope_changed(previous, watch):  # a new scope needs a new baseline
                        await self.daemon.async_store.memory.forget(name)
                        last.pop(name, None)
                    if name in held:
                        self.daemon._add_job(watch, new, last.get(name))
                changed += previous is not None
                logger.info("reload: watch %s %s", name, "changed" if previous else "added")
        # Added watches are taken (and removed ones released) now, with the start spread
        # of a new watch; the other replicas take their share at their next step.
        await self.daemon._rebalance(spread=1.0)
        # Disabled watches keep their memory; only watches gone from the file lose it.
        await self.daemon.async_store.memory.mark_removed(
            [w.name for w in new.watches], self.daemon.clock()
        )
        self.daemon.metrics.set_watches(len(after))
        logger.info(
            "config reloaded: %d watches (%d added, %d removed, %d changed)",
            len(after),
            len(after.keys() - before.keys()),
            len(removed),
            changed,
        )

    def _swap_client(self, client: TrendTrackClient) -> None:
        old_client = self.daemon.runner.client
        self.daemon.runner.client = client
        self.daemon.runner.poller.client = client
        self.daemon.runner.forget_freshness()
        self.daemon._background(self._retire(old_client))
        logger.info("reload: API settings changed; new client")

    async def _retire(self, client: TrendTrackClient) -> None:
        """Close a replaced client once the polls that were using it are done."""
        polls = set(self.daemon.in_flight)
        if polls:
            await asyncio.wait(polls)
        await client.aclose()


def _scope_changed(old: Watch, new: Watch) -> bool:
    return (old.target, old.type, old.language) != (new.target, new.type, new.language)
