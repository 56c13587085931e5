"""The delivery worker: drains the transactional outbox through the notifiers.

Events are queued in the same transaction that records them (``Store.apply_poll``), one
outbox row per event, notifier and URL position (never the URL: URLs carry secrets). A
pass (``flush``) works on every URL concurrently, and on each URL's messages in order:

- Grouping: a watch's due events from one poll go out as one digest; ops and baseline
  events go alone. A digest too long for the channel is several messages ("parts").
- Parts: each part of a multi-part digest is noted as sent as soon as the service takes
  it (the store's digest parts, one digest under way per URL), so a digest failing at part 3
  resumes at part 3 and a crash repeats at most the part that was in flight.
- Failure: a URL that fails is backed off as a whole (exponential, with equal jitter,
  capped at an hour). Every message waiting for it, also ones queued later, holds until
  the retry, which probes the URL with its oldest message only; each try counts as an
  attempt for every message held. Messages reaching ``delivery.max_attempts`` are marked
  dead and ONE ``delivery_failed`` ops event is recorded for the URL's episode (the next
  one only after the URL has delivered again). Other URLs, of the same notifier too, are
  neither held back nor sent anything twice.
- A notifier, or a URL position, removed from the config: its waiting rows become dead
  with the reason in ``last_error``. Errors stored or logged never carry the URL.
- A row never attempted is due at once, whatever its ``next_attempt_at``: events are
  stamped with the API's clock, which may run ahead of ours.

``flush`` also sends, in the same call, the ``delivery_failed`` events its own pass
recorded (so ``watcher once`` reports a dead URL before it exits).

Delivery is at-least-once: if the process dies between a send and its mark, that one
message is sent again on restart; nothing else is repeated, nothing recorded is dropped.
With several replicas (``watcher.replicas``), only the holder of the outbox lease runs
passes (``may_send``, checked before each pass and each message); when it dies, the next
holder sends what it left, the one message in flight included.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watcher import notify
from watcher.channels import channel_for_url
from watcher.config import Settings
from watcher.delivery_rules import roundup_order
from watcher.errors import StoreError, TemplateError
from watcher.gate import Gate, release_reason
from watcher.models import Event, EventKind, ops_event
from watcher.render import Message, Renderer
from watcher.render_guard import GuardedRenderer
from watcher.runner import ops_routes, utcnow
from watcher.sent_journal import SendMemory
from watcher.store import AsyncStore, DueDelivery, Store

logger = logging.getLogger("watcher.deliver")

SendAll = Callable[[str, Sequence[Message]], Awaitable[tuple[int, notify.SendResult]]]
MAX_BACKOFF = timedelta(hours=1)
MAX_PASS_BACKOFF = 60.0  # seconds between passes while the store keeps failing
MAX_PASSES = 3  # a pass may record delivery_failed events; the next sends them
_EVERYTHING = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What one pass over the outbox did, in deliveries (event x URL).

    ``failed`` deliveries will be retried; ``dead`` ones were given up.
    """

    sent: int = 0
    failed: int = 0
    dead: int = 0

    def __add__(self, other: FlushReport) -> FlushReport:
        return FlushReport(
            self.sent + other.sent, self.failed + other.failed, self.dead + other.dead
        )


def _group_key(row: DueDelivery) -> str:
    """Rows sharing a key go out as one message: a watch's events from one poll, or the
    alerts a notifier held (quiet hours, digest), released together."""
    if row.release is not None:
        return f"release:{row.release}"
    if row.event.kind.is_ops or row.event.kind == EventKind.BASELINE or row.poll_id is None:
        return f"event:{row.event_id}"
    return f"poll:{row.poll_id}"


def _batches(rows: Sequence[DueDelivery]) -> list[list[DueDelivery]]:
    """One URL's rows as messages-to-be, in the order of their oldest event."""
    groups: dict[str, list[DueDelivery]] = {}
    for row in rows:
        groups.setdefault(_group_key(row), []).append(row)
    return list(groups.values())


def backoff(attempts: int, base_seconds: float, rng: Callable[[], float]) -> timedelta:
    """Exponential backoff with equal jitter (half fixed, half random), capped at an hour.

    ``rng`` returns a float in [0, 1); the wait after attempt n is in
    [base * 2**(n-1) / 2, base * 2**(n-1)].
    """
    ceiling = min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=ceiling * (0.5 + rng() / 2))


def _fingerprint(message: Message) -> str:
    raw = "\0".join((message.format, message.title, message.body)).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _scrub(error: str, url: str) -> str:
    """An error fit to store and log: neither the URL nor any credential in it."""
    return notify.hide_urls(error.replace(url, "***"))


class Outbox:
    """Sends due outbox rows; ``flush`` once (``watcher once``) or ``run`` (the daemon)."""

    def __init__(
        self,
        settings: Settings,
        store: Store | AsyncStore,
        renderer: Renderer | GuardedRenderer | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        send_all: SendAll | None = None,
        rng: Callable[[], float] = random.random,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.store = AsyncStore.of(store)
        # With several replicas, only the one holding the outbox lease sends (and decides
        # releases, digests and silence summaries); checked per pass and per message.
        self._may_send = may_send or (lambda: True)
        self.renderer: Renderer | GuardedRenderer = renderer or GuardedRenderer(
            settings.templates_dir, digest_threshold=settings.delivery.digest_threshold
        )
        self.clock = clock
        self._send_all = send_all or _default_send_all
        self._rng = rng
        self._lock = asyncio.Lock()  # two passes at once would send the same rows twice
        self._recorded = False
        self.wakeup = asyncio.Event()
        self.totals = FlushReport()
        # Rows whose message failed to render: they back off on their own and never hold
        # their URL's other messages (a broken template fails its messages only).
        self._unrenderable: set[int] = set()
        # Sends whose mark failed (row ids -> message fingerprints), and digest parts sent
        # whose note failed: a later pass marks them instead of sending them again (kept
        # in a file beside the database as well, so a restart doesn't send them again).
        self._sent = SendMemory(store.url)
        self._due: set[int] = set()
        self.gate = Gate(settings, self.store)

    def messages_for(
        self, url: str, events: Sequence[Event], release: str | None = None
    ) -> list[Message]:
        """The message(s) ``events`` (one event, one watch's poll, or a released roundup)
        make for ``url``; whether one event is its own alert or a digest is the renderer's
        (``render_digest``)."""
        channel = channel_for_url(url)
        if release is not None:
            groups = roundup_order(list(events))
            return self.renderer.render_roundup(groups, channel, release_reason(release))
        return self.renderer.render_digest(events[0].watch, events, channel)

    async def flush(self, *, force: bool = False) -> FlushReport:
        """Send everything due now; each URL independently and concurrently. ``force``
        (``watcher once``) also tries URLs backing off after a failure, now."""
        async with self._lock:
            total = FlushReport()
            for _ in range(MAX_PASSES):
                if not self._may_send():
                    break
                self._recorded = False
                total += await self._pass(force=force)
                if not self._recorded:
                    break
            self.totals += total
            return total

    async def _pass(self, *, force: bool = False) -> FlushReport:
        now = self.clock()
        await self.gate.prepare(now)
        waiting = await self.store.outbox.due(_EVERYTHING)
        await self._sent.settle({r.id for r in waiting})
        waiting = await self.gate.sift(waiting, now)
        due = {
            r.id for r in waiting if force or r.next_attempt_at is None or r.next_attempt_at <= now
        }
        self._due = due
        by_url: dict[tuple[str, int], list[DueDelivery]] = {}
        for row in waiting:
            by_url.setdefault((row.notifier, row.url_index), []).append(row)
        work = [
            self._deliver_url(notifier, index, rows)
            for (notifier, index), rows in by_url.items()
            if not any(
                r.attempts and r.id not in due and r.id not in self._unrenderable for r in rows
            )  # else: the URL is backing off
        ]
        reports = await asyncio.gather(*work)
        return sum(reports, FlushReport())

    async def _deliver_url(self, notifier: str, index: int, rows: list[DueDelivery]) -> FlushReport:
        """One URL's waiting messages, in order, until the first failure holds the rest."""
        config = self.settings.notifiers.get(notifier)
        if config is None or index >= len(config.urls):
            return await self._unconfigured(notifier, index, rows, known=config is not None)
        url = config.urls[index].get_secret_value()
        batches = _batches(rows)
        sent = 0
        report = FlushReport()
        for number, batch in enumerate(batches):
            if not self._may_send():
                break  # the outbox lease ran out: the next holder sends the rest
            if any(r.attempts and r.id not in self._due for r in batch):
                continue  # an unrenderable batch waiting for its own retry
            try:
                messages = await asyncio.to_thread(
                    self.messages_for, url, [r.event for r in batch], batch[0].release
                )
            except TemplateError as exc:  # fails this batch's rows only, never the others
                logger.warning("%s[%d]: cannot render: %s", notifier, index, exc)
                self._unrenderable.update(r.id for r in batch)
                report += await self._failed(notifier, index, batch, f"render failed: {exc}")
                continue
            error = await self._send_batch(notifier, index, url, batch, messages)
            if error is not None:
                held = [r for later in batches[number:] for r in later]
                report = await self._failed(notifier, index, held, error)
                break
            sent += len(batch)
        if sent:
            await self.store.episodes.close(EventKind.DELIVERY_FAILED, f"{notifier}[{index}]")
        return report + FlushReport(sent=sent)

    async def _send_batch(
        self, notifier: str, index: int, url: str, rows: list[DueDelivery], messages: list[Message]
    ) -> str | None:
        """Send one batch's message(s) and mark its rows sent; the error if it failed."""
        ids = [r.id for r in rows]
        hashes = [_fingerprint(m) for m in messages]
        if self._sent.whole(ids) == hashes:
            # Sent by an earlier pass whose mark failed (disk full, database locked): mark
            # it now instead of sending it again.
            logger.info("%s[%d]: marking %d rows sent earlier", notifier, index, len(ids))
            await self._mark_sent(ids, hashes, f"{notifier}[{index}]")
            return None
        if len(messages) <= 1:
            _, result = await self._send_all(url, messages)
            if not result.ok:
                return _scrub(result.error or "delivery failed", url)
            await self._mark_sent(ids, hashes, f"{notifier}[{index}]")
            return None
        done = await self._parts_done(notifier, index, ids, hashes)
        remembered = self._sent.parts(ids)
        if remembered == hashes[: len(remembered)]:
            done = max(done, len(remembered))
        if done:
            logger.info("%s[%d]: resuming a digest at part %d", notifier, index, done + 1)
        for number in range(done, len(messages)):
            _, result = await self._send_all(url, [messages[number]])
            if not result.ok:
                error = _scrub(result.error or "delivery failed", url)
                return f"part {number + 1} of {len(messages)}: {error}"
            self._sent.part_sent(ids, hashes[: number + 1])
            try:
                await self.store.outbox.part_sent(notifier, index, ids, number, hashes[number])
            except StoreError as exc:
                await self._unrecorded(ids, None, f"{notifier}[{index}]", exc)
                raise
        await self._mark_sent(ids, hashes, f"{notifier}[{index}]")
        await self._sent.recorded(ids, parts=True)
        await self.store.outbox.clear_parts(notifier, index)
        return None

    async def _mark_sent(self, ids: list[int], hashes: list[str], subject: str) -> None:
        """Mark rows sent; if the store fails, remember the send so no pass repeats it."""
        try:
            await self.store.outbox.mark_sent(ids, self.clock())
        except StoreError as exc:
            await self._unrecorded(ids, hashes, subject, exc)
            raise
        await self._sent.recorded(ids)

    async def _unrecorded(
        self, ids: list[int], hashes: list[str] | None, subject: str, exc: StoreError
    ) -> None:
        """A notifier took what the database then failed to record: remember it, and
        tell the ops notifiers once per episode. The database is what failed, so that
        alert goes straight to every ops URL, unrecorded; the spec has no kind for it: it
        is a ``delivery_failed`` with ``unrecorded: true``."""
        first, durable = await self._sent.unrecorded(ids, hashes)
        if not first:
            return
        kept = f"kept in {self._sent.journal.path}" if durable else "kept in memory only"
        logger.error("%s: sent, but not recorded (%s); %s, never sent again", subject, exc, kept)
        figures = {"subject": subject, "unrecorded": True, "error": str(exc)}
        event = ops_event(EventKind.DELIVERY_FAILED, subject, self.clock(), figures)
        for name, count in ops_routes(self.settings).get(EventKind.DELIVERY_FAILED, []):
            for position in range(count):
                url = self.settings.notifiers[name].urls[position].get_secret_value()
                try:
                    messages = await asyncio.to_thread(self.messages_for, url, [event])
                except TemplateError as error:
                    logger.warning("%s[%d]: cannot render: %s", name, position, error)
                    continue
                _, result = await self._send_all(url, messages)
                if not result.ok:
                    logger.warning("%s[%d]: ops alert not taken", name, position)

    async def _parts_done(
        self, notifier: str, index: int, ids: list[int], hashes: list[str]
    ) -> int:
        """How many leading parts of this very digest an earlier try already sent."""
        sent = await self.store.outbox.parts_sent(notifier, index, ids)
        if hashes[: len(sent)] != sent:
            return 0  # rendered differently now (e.g. new templates): send it whole
        return len(sent)

    async def _failed(
        self, notifier: str, index: int, held: list[DueDelivery], error: str
    ) -> FlushReport:
        """Back the URL off: every held row counts an attempt; the exhausted ones die."""
        now = self.clock()
        limit = self.settings.delivery.max_attempts
        attempts = max(r.attempts for r in held) + 1
        wait = backoff(attempts, self.settings.delivery.backoff_seconds, self._rng)
        dead = [r.id for r in held if r.attempts + 1 >= limit]
        alive = [r.id for r in held if r.attempts + 1 < limit]
        if alive:
            await self.store.outbox.mark_failed(alive, error, now + wait, dead=False)
        if dead:
            await self.store.outbox.mark_failed(dead, error, now, dead=True)
        logger.warning(
            "%s[%d]: delivery failed (attempt %d): %s; %d held, retry in %ds; %d given up",
            notifier,
            index,
            attempts,
            error,
            len(alive),
            int(wait.total_seconds()),
            len(dead),
        )
        if dead:
            await self._dead(notifier, index, error, attempts, len(dead))
        return FlushReport(failed=len(alive), dead=len(dead))

    async def _unconfigured(
        self, notifier: str, index: int, rows: list[DueDelivery], *, known: bool
    ) -> FlushReport:
        if known:
            reason = f"notifier {notifier!r} has no URL at position {index} any more"
        else:
            reason = f"notifier {notifier!r} is no longer configured"
        ids = [r.id for r in rows]
        await self.store.outbox.mark_failed(ids, reason, self.clock(), dead=True)
        logger.warning("%s; %d deliveries dropped as dead", reason, len(ids))
        return FlushReport(dead=len(ids))

    async def _dead(self, notifier: str, index: int, error: str, attempts: int, count: int) -> None:
        """Tell the ops notifiers, once per episode of this URL, that messages were lost."""
        now = self.clock()
        subject = f"{notifier}[{index}]"
        opened = await self.store.episodes.open(EventKind.DELIVERY_FAILED, subject, now)
        if not opened:
            return
        figures: dict[str, object] = {
            "notifier": notifier,
            "index": index,
            "attempts": attempts,
            "error": error,
            "messages": count,
        }
        event = ops_event(EventKind.DELIVERY_FAILED, subject, now, figures)
        await self.store.outbox.record(event, ops_routes(self.settings))
        self._recorded = True
        self.wakeup.set()

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """Drain the outbox until ``stop`` is set; wake early when ``wakeup`` is set."""
        failures = 0
        while not stop.is_set():
            wait = interval
            try:
                await self.flush()
            except Exception as exc:  # the worker must outlive any single bad pass
                failures += 1
                wait = min(interval * 2**failures, MAX_PASS_BACKOFF)
                if failures == 1:  # said once per episode, not once a second
                    logger.exception("delivery pass failed; retrying with backoff")
                else:
                    logger.warning("delivery pass failed again (%s); next in %.0fs", exc, wait)
            else:
                if failures:
                    logger.warning("delivery passes work again after %d failures", failures)
                failures = 0
            self.wakeup.clear()
            waiter = asyncio.ensure_future(self.wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter if not failures else stopper, stopper},
                timeout=wait,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            stopper.cancel()


async def _default_send_all(url: str, messages: Sequence[Message]) -> tuple[int, notify.SendResult]:
    return await notify.send_all(url, messages)
