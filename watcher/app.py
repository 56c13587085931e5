"""Builds the real objects from the config (store, API client, runner) for the commands.

The CLI parses arguments and calls in here; tests call the same functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from watcher.channels import TEXT, clean
from watcher.config import ExternalChecks, Settings, Watch, load_settings
from watcher.errors import ConfigError, ConfigProblem, PollCrashed
from watcher.logs import register_public_names, register_secret, register_url
from watcher.notify import url_problem
from watcher.outbox import FlushReport, Outbox
from watcher.planner import Outcome
from watcher.poller import PollOutcome
from watcher.render import Renderer
from watcher.render_guard import GuardedRenderer
from watcher.runner import Runner
from watcher.schedule import in_poll_retries
from watcher.store import Store
from watcher.store.urls import password as database_password
from watcher.trendtrack.client import TrendTrackClient
from watcher.triggers import never_fires


def settings_from(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Load the config and register its secrets with the log redactor."""
    settings = load_settings(path, env, ExternalChecks(url_problem, never_fires))
    register_settings_secrets(settings)
    return settings


def register_settings_secrets(settings: Settings) -> None:
    """The API key, every notifier URL, the dashboard token and the database password
    never reach a log line; the names of notifiers and watches stay readable."""
    register_public_names([*settings.notifiers, *(w.name for w in settings.watches)])
    key = settings.api.api_key.get_secret_value() if settings.api.api_key else None
    register_secret(key)
    for notifier in settings.notifiers.values():
        for url in notifier.urls:
            register_url(url.get_secret_value())
    if settings.health.token is not None:
        register_secret(settings.health.token.get_secret_value())
    register_secret(database_password(settings.state.database))


def open_store(settings: Settings) -> Store:
    return Store(settings.state.database)


def make_client(settings: Settings, *, max_retries: int = 5) -> TrendTrackClient:
    """The one API client of a process; its rate limit is shared by every watch."""
    key = settings.api.api_key.get_secret_value() if settings.api.api_key else ""
    if not key:
        where = str(settings.source or "watches.yaml")
        raise ConfigError(
            [ConfigProblem(where, None, "api.api_key is not set: set TRENDTRACK_API_KEY")]
        )
    return TrendTrackClient(
        settings.api.base_url,
        key,
        max_requests_per_minute=settings.api.max_requests_per_minute,
        max_concurrency=settings.api.max_concurrency,
        timeout=settings.api.timeout_seconds,
        max_retries=max_retries,
    )


def daemon_client(settings: Settings) -> TrendTrackClient:
    """The daemon's one API client, with retries sized by ``in_poll_retries`` (a watch
    polled every few seconds fails fast instead of stacking missed runs)."""
    return make_client(settings, max_retries=in_poll_retries(settings))


def renderer_for(settings: Settings) -> GuardedRenderer:
    """The config's templates, rendered in a child process under a deadline."""
    return GuardedRenderer(
        settings.templates_dir, digest_threshold=settings.delivery.digest_threshold
    )


def select_watches(settings: Settings, names: Sequence[str]) -> list[Watch]:
    """The named watches (all enabled ones when none named); an unknown name is an error."""
    if not names:
        return [w for w in settings.watches if w.enabled]
    by_name = {w.name: w for w in settings.watches}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        where = str(settings.source or "watches.yaml")
        raise ConfigError([ConfigProblem(where, None, f"no watch named {n!r}") for n in unknown])
    return [by_name[n] for n in names]


@dataclass(frozen=True, slots=True)
class OnceResult:
    outcomes: tuple[PollOutcome, ...]
    delivery: FlushReport | None = None

    @property
    def failed(self) -> bool:
        return any(o.outcome in {Outcome.FAILED, Outcome.PAUSED} for o in self.outcomes)


ONCE_DEADLINE = 600.0  # seconds a watch's poll may take in `watcher once`


async def poll_once(
    settings: Settings,
    store: Store,
    watches: Sequence[Watch],
    *,
    dry_run: bool,
    deadline: float = ONCE_DEADLINE,
) -> OnceResult:
    """Poll each watch once, concurrently under the client's limits.

    Every poll ends by ``deadline`` seconds (a server that never stops answering, or
    never answers, can't keep ``once`` running): past it, the poll is a failure of its
    watch, counted like any other.
    """
    async with make_client(settings) as client:
        runner = Runner(settings, store, client)

        async def bounded(watch: Watch) -> PollOutcome:
            try:
                async with asyncio.timeout(deadline):
                    return await runner.poll(watch, dry_run=dry_run)
            except TimeoutError:
                error = PollCrashed(f"the poll did not finish within {deadline:g}s")
                if not dry_run:
                    await runner.record_failure(watch, error)
                return PollOutcome(watch.name, Outcome.FAILED, error=error)

        outcomes = await asyncio.gather(*(bounded(w) for w in watches))
    if dry_run:
        return OnceResult(tuple(outcomes))
    report = await Outbox(settings, store).flush(force=True)  # the user wants it sent now
    return OnceResult(tuple(outcomes), report)


def print_outcomes(
    result: OnceResult, out: TextIO, renderer: Renderer | GuardedRenderer | None = None
) -> None:
    """One line per watch; with a renderer (``--dry-run``), each alert as it would read."""
    for o in result.outcomes:
        line = f"{o.watch}: {o.outcome}, {len(o.events)} events, {o.credits} credits"
        if o.error is not None:
            line += f" ({o.error})"
        print(clean(line), file=out)
        if renderer is not None and o.events:
            for message in renderer.render_digest(o.watch, list(o.events), TEXT):
                print(f"\n{message.title}\n{message.body}\n", file=out)
    if result.delivery is not None:
        d = result.delivery
        print(f"delivered {d.sent}, failed {d.failed}, dead {d.dead}", file=out)
