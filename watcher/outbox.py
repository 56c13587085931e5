"""The delivery worker: drains the transactional outbox through the notifiers.

Events are queued in the same transaction that records them (``Store.apply_poll``), one
outbox row per event, notifier and URL position. This worker groups due rows into one
message per watch and poll (a digest), renders it for the URL's channel, sends it, and
marks the rows sent. A failed URL is retried with exponential backoff and jitter, by
itself: other URLs of the same notifier are not held back and not sent twice. After
``delivery.max_attempts`` the rows are marked dead and the ops notifiers told once.

Delivery is at-least-once: if the process dies between a send and its mark, that one
message is sent again on restart; nothing recorded is ever dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher import notify
from watcher.config import Settings
from watcher.errors import TemplateError
from watcher.models import Event, EventKind, ops_event
from watcher.render import Message, Renderer, channel_for_url
from watcher.runner import ops_routes, utcnow
from watcher.store import DueDelivery, Store

logger = logging.getLogger("watcher.deliver")

SendAll = Callable[[str, Sequence[Message]], Awaitable[tuple[int, notify.SendResult]]]
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What one pass over the outbox did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0


def _group_key(row: DueDelivery) -> tuple[str, int, str]:
    """Rows sharing a key go out as one message: a watch's events from one poll."""
    if row.event.kind.is_ops or row.event.kind == EventKind.BASELINE or row.poll_id is None:
        group = f"event:{row.event_id}"
    else:
        group = f"poll:{row.poll_id}"
    return row.notifier, row.url_index, group


def backoff(attempts: int, base_seconds: float, rng: Callable[[], float]) -> timedelta:
    """Exponential backoff with full jitter, capped at an hour."""
    ceiling = min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=ceiling * (0.5 + rng() / 2))


class Outbox:
    """Sends due outbox rows; ``flush`` once (``watcher once``) or ``run`` (the daemon)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        renderer: Renderer | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        send_all: SendAll | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        self.renderer = renderer or Renderer(
            settings.templates_dir, digest_threshold=settings.delivery.digest_threshold
        )
        self.clock = clock
        self._send_all = send_all or _default_send_all
        self._rng = rng
        self.wakeup = asyncio.Event()
        self.totals = FlushReport()

    def messages_for(self, url: str, events: Sequence[Event]) -> list[Message]:
        channel = channel_for_url(url)
        if len(events) == 1:
            return [self.renderer.render_event(events[0], channel)]
        return self.renderer.render_digest(events[0].watch, events, channel)

    async def flush(self) -> FlushReport:
        """Send everything due now; each URL independently and concurrently."""
        due = await asyncio.to_thread(self.store.due_deliveries, self.clock())
        groups: dict[tuple[str, int, str], list[DueDelivery]] = {}
        for row in due:
            groups.setdefault(_group_key(row), []).append(row)
        by_url: dict[tuple[str, int], list[list[DueDelivery]]] = {}
        for (notifier, index, _), rows in groups.items():
            by_url.setdefault((notifier, index), []).append(rows)
        reports = await asyncio.gather(
            *(self._deliver_url(n, i, batches) for (n, i), batches in by_url.items())
        )
        total = FlushReport(
            sum(r.sent for r in reports),
            sum(r.failed for r in reports),
            sum(r.dead for r in reports),
        )
        self.totals = FlushReport(
            self.totals.sent + total.sent,
            self.totals.failed + total.failed,
            self.totals.dead + total.dead,
        )
        return total

    async def _deliver_url(
        self, notifier: str, index: int, batches: list[list[DueDelivery]]
    ) -> FlushReport:
        """One URL's due messages, in order; stop at its first failure (retry later)."""
        sent = failed = dead = 0
        config = self.settings.notifiers.get(notifier)
        if config is None or index >= len(config.urls):
            ids = [r.id for rows in batches for r in rows]
            await asyncio.to_thread(
                self.store.mark_failed,
                ids,
                "notifier no longer configured",
                self.clock(),
                dead=True,
            )
            logger.warning(
                "%s[%d]: no longer configured; %d deliveries dropped as dead",
                notifier,
                index,
                len(ids),
            )
            return FlushReport(dead=len(ids))
        url = config.urls[index].get_secret_value()
        subject = f"{notifier}[{index}]"
        for rows in batches:
            events = [r.event for r in rows]
            ids = [r.id for r in rows]
            try:
                messages = self.messages_for(url, events)
            except TemplateError as exc:  # a broken template must not stall the outbox
                logger.exception("%s: cannot render", subject)
                messages = None
                error = f"render failed: {exc}"
            if messages is not None:
                _, result = await self._send_all(url, messages)
                if result.ok:
                    await asyncio.to_thread(self.store.mark_sent, ids, self.clock())
                    sent += len(ids)
                    await self._recovered(subject)
                    continue
                error = result.error or "delivery failed"
            attempts = max(r.attempts for r in rows) + 1
            is_dead = attempts >= self.settings.delivery.max_attempts
            wait = backoff(attempts, self.settings.delivery.backoff_seconds, self._rng)
            await asyncio.to_thread(
                self.store.mark_failed, ids, error, self.clock() + wait, dead=is_dead
            )
            logger.warning(
                "%s: delivery failed (attempt %d): %s%s",
                subject,
                attempts,
                error,
                "; giving up" if is_dead else f"; retry in {int(wait.total_seconds())}s",
            )
            if is_dead:
                dead += len(ids)
                await self._dead(subject, error, len(ids))
            else:
                failed += len(ids)
            break  # keep this URL's messages in order: the rest wait for the retry
        return FlushReport(sent, failed, dead)

    async def _dead(self, subject: str, error: str, count: int) -> None:
        now = self.clock()
        opened = await asyncio.to_thread(
            self.store.open_episode, EventKind.DELIVERY_FAILED, subject, now
        )
        if opened:
            event = ops_event(
                EventKind.DELIVERY_FAILED, subject, now, {"error": error, "messages": count}
            )
            await asyncio.to_thread(self.store.record_event, event, ops_routes(self.settings))
            self.wakeup.set()

    async def _recovered(self, subject: str) -> None:
        await asyncio.to_thread(self.store.close_episode, EventKind.DELIVERY_FAILED, subject)

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """Drain the outbox until ``stop`` is set; wake early when ``wakeup`` is set."""
        while not stop.is_set():
            try:
                await self.flush()
            except Exception:  # the worker must outlive any single bad pass
                logger.exception("delivery pass failed; retrying")
            self.wakeup.clear()
            waiter = asyncio.ensure_future(self.wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()


async def _default_send_all(url: str, messages: Sequence[Message]) -> tuple[int, notify.SendResult]:
    return await notify.send_all(url, messages)
