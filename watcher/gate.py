"""The delivery gate: what the outbox may send now, under quiet hours, digests and silences.

The outbox calls it at the start of every pass (``prepare``) and on the rows it found
waiting (``sift``). Decisions come from :mod:`watcher.delivery_rules` (pure); the state
they act on lives in the database (:mod:`watcher.store.control`), read afresh each pass,
so a silence added by the CLI applies at the next pass and a restart resumes exactly.

- ``prepare``: closes silences that ended (one ``silence_ended`` notice each to the
  notifiers whose alerts it held), starts the digest schedule of a new digest notifier,
  and releases held rows whose window is over or whose digest is due, as ONE roundup per
  notifier (re-checking silences first). Held rows of a notifier that lost its quiet
  hours and digest (a reload) are released too.
- ``sift``: the waiting rows to send now. A row a running silence matches is marked
  ``silenced``; an item alert for a notifier holding (quiet hours, or between digests)
  is marked ``held``; ops events are never held.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from watcher.config import Notifier, Settings
from watcher.delivery_rules import Hold, Silence, decide, muting
from watcher.models import EventKind
from watcher.store import AsyncStore, DueDelivery, Store

logger = logging.getLogger("watcher.deliver")

QUIET_REASON = "Held during quiet hours"
DIGEST_REASON = "Digest"


def _schedule_key(notifier: Notifier) -> str:
    return notifier.digest.describe() if notifier.digest is not None else ""


class Gate:
    """Applies delivery control to the outbox; one per outbox."""

    def __init__(self, settings: Settings, store: Store | AsyncStore) -> None:
        self.settings = settings
        self.control = AsyncStore.of(store).control
        self._silences: list[Silence] = []
        self._holds: dict[str, Hold] = {}

    async def prepare(self, now: datetime) -> None:
        """Close ended silences, release what is due; remember the decisions for ``sift``."""
        silences = await self.control.open_silences()
        for silence in [s for s in silences if s.end <= now]:
            await self._close(silence, now)
        self._silences = [s for s in silences if s.active(now)]
        holds: dict[str, Hold] = {}
        for name, notifier in self.settings.notifiers.items():
            if notifier.controlled:
                hold = holds[name] = await self._decide(notifier, now)
                if hold.release is not None:
                    await self._release(name, hold, now)
        self._holds = holds
        stray = await self.control.held_notifiers()
        for name in sorted(stray - set(holds)):  # lost its quiet hours and digest, or gone
            await self._release(name, Hold(hold=False, release=f"quiet:{now.isoformat()}"), now)

    async def _decide(self, notifier: Notifier, now: datetime) -> Hold:
        tz = self.settings.timezone
        last: datetime | None = None
        if notifier.digest is not None:
            mark = await self.control.digest_mark(notifier.name)
            schedule = _schedule_key(notifier)
            if mark is None or mark[0] != schedule:
                # A new (or changed) schedule starts now: the first digest is the next fire.
                await self.control.set_digest_mark(notifier.name, schedule, now)
                mark = (schedule, now)
            last = mark[1]
        return decide(notifier.quiet_hours, notifier.digest, last, now, tz)

    async def _release(self, name: str, hold: Hold, now: datetime) -> None:
        """Held rows of ``name`` become one roundup (minus newly silenced ones)."""
        assert hold.release is not None  # noqa: S101 - callers release only with a key
        queued = hold.digest_at is not None
        rows = await self.control.held(name, queued=queued)
        silenced: dict[int, int] = {}
        for row in rows:
            silence = muting(self._silences, row.event, now)
            if silence is not None:
                silenced[row.id] = silence.id
        ids = [r.id for r in rows if r.id not in silenced]
        notifier = self.settings.notifiers.get(name)
        mark = None
        if hold.digest_at is not None and notifier is not None:
            mark = (_schedule_key(notifier), hold.digest_at)
        if not ids and not silenced and mark is None:
            return
        await self.control.release(name, hold.release, ids, now, silenced=silenced, mark=mark)
        if ids:
            logger.info("%s: releasing %d held alerts (%s)", name, len(ids), hold.release)

    async def _close(self, silence: Silence, now: datetime) -> None:
        routes = {
            EventKind.SILENCE_ENDED: [
                (name, len(n.urls)) for name, n in self.settings.notifiers.items()
            ]
        }
        event = await self.control.summarize(silence, now, routes)
        if event is not None:
            logger.info(
                "silence %d ended; it held %s alerts", silence.id, event.figures.get("total")
            )

    async def sift(self, rows: Sequence[DueDelivery], now: datetime) -> list[DueDelivery]:
        """The rows to send now; the others are marked silenced or held."""
        silenced: dict[int, int] = {}
        held: list[int] = []
        keep: list[DueDelivery] = []
        for row in rows:
            silence = muting(self._silences, row.event, now)
            if silence is not None:
                silenced[row.id] = silence.id
                continue
            hold = self._holds.get(row.notifier)
            if hold is not None and hold.hold and self._holdable(row, hold):
                held.append(row.id)
                continue
            keep.append(row)
        if silenced:
            await self.control.silence(silenced)
        if held:
            await self.control.hold(held)
        return keep

    @staticmethod
    def _holdable(row: DueDelivery, hold: Hold) -> bool:
        """Ops events always go; a released roundup goes unless quiet hours began again."""
        if row.event.kind.is_ops:
            return False
        return row.release is None or hold.quiet


def release_reason(key: str) -> str:
    """The heading of a roundup from its release key."""
    return DIGEST_REASON if key.startswith("digest:") else QUIET_REASON
