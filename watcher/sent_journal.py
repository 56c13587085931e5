"""Sends the database failed to record, kept where a later run can see them.

When a notifier has taken a message and the state database then refuses to record it
(disk full, another process holding ``BEGIN EXCLUSIVE``), the outbox remembers the send
(its row ids and the fingerprints of the messages sent) and marks the rows on a later pass
instead of sending them again. This file keeps that memory across a restart.

It lives beside the SQLite file (``state.db.sent``) and is written only when the database
fails. Since that may be because the disk is full, its space is taken when the worker
starts: two fixed slots of spaces, overwritten in place (overwriting bytes a file already
has needs no free space), alternately, each with a generation number, so a write torn by
a crash leaves the other slot readable. Anything unreadable counts as empty: the worst
case is the at-least-once resend of those messages.

Without a local database file (PostgreSQL, ``:memory:``), or when the slots can't be
taken, the memory stays in the process only (and the log says so).

``SendMemory`` is what the outbox uses: the memory, its journal, and the episode (the
first unrecorded send of an episode tells ops; the episode ends once all are recorded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from watcher.dblock import sqlite_path

logger = logging.getLogger("watcher.deliver")

SLOT = 32 * 1024  # bytes per slot; a few hundred unrecorded sends fit in one

Sends = dict[tuple[int, ...], list[str]]  # outbox row ids -> fingerprints of what was sent


@dataclass
class Unrecorded:
    """What was sent and not recorded: whole batches, leading parts of digests, and
    whether ops were told in this episode."""

    whole: Sends = field(default_factory=dict)
    parts: Sends = field(default_factory=dict)
    told: bool = False

    def __bool__(self) -> bool:
        return bool(self.whole or self.parts)

    def copy(self) -> Unrecorded:
        return Unrecorded(dict(self.whole), dict(self.parts), self.told)

    def to_json(self, generation: int) -> bytes:
        data = {
            "generation": generation,
            "whole": [[list(k), v] for k, v in self.whole.items()],
            "parts": [[list(k), v] for k, v in self.parts.items()],
            "told": self.told,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @staticmethod
    def from_json(raw: bytes) -> tuple[int, Unrecorded] | None:
        """(generation, contents) of one slot; None if the slot is blank or torn."""
        try:
            data = json.loads(raw.decode())
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("generation"), int):
            return None
        try:
            out = Unrecorded(
                {tuple(int(i) for i in k): [str(h) for h in v] for k, v in data["whole"]},
                {tuple(int(i) for i in k): [str(h) for h in v] for k, v in data["parts"]},
                bool(data["told"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return data["generation"], out


class SentJournal:
    """The ``.sent`` file beside one SQLite database; a no-op without one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.durable = False  # whether writes reach the file (else memory only)
        self._generation = 0
        self._slot = 0  # the slot holding the latest generation
        self._lock = threading.Lock()  # saves run in threads

    @classmethod
    def beside(cls, database_url: str) -> SentJournal:
        """The journal of the database at ``database_url`` (none for PostgreSQL)."""
        db = sqlite_path(database_url)
        return cls(db.with_name(db.name + ".sent") if db is not None else None)

    def open(self) -> Unrecorded:
        """Take the file's space now (while there is some) and read what it holds."""
        if self.path is None:
            return Unrecorded()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size < 2 * SLOT:
                    os.pwrite(fd, b" " * (2 * SLOT - size), size)
                    os.fsync(fd)
                slots = [os.pread(fd, SLOT, 0), os.pread(fd, SLOT, SLOT)]
            finally:
                os.close(fd)
        except OSError as exc:
            logger.warning(
                "cannot prepare %s (%s): unrecorded sends stay in memory", self.path, exc
            )
            return Unrecorded()
        self.durable = True
        found = [(got, n) for n, raw in enumerate(slots) if (got := Unrecorded.from_json(raw))]
        if not found:
            return Unrecorded()
        (generation, contents), slot = max(found, key=lambda f: f[0][0])
        self._generation, self._slot = generation, slot
        if contents:
            logger.warning(
                "%d sends from an earlier run were never recorded: they will be marked, not sent",
                len(contents.whole) + len(contents.parts),
            )
        return contents

    def save(self, contents: Unrecorded) -> bool:
        """Write ``contents`` over the older slot and sync it; False if it could not."""
        if not self.durable or self.path is None:
            return False
        with self._lock:
            raw = contents.to_json(self._generation + 1)
            if len(raw) > SLOT:
                logger.warning(
                    "too many unrecorded sends for %s: the rest stay in memory", self.path
                )
                return False
            slot = 1 - self._slot
            try:
                fd = os.open(self.path, os.O_WRONLY)  # the file exists: no space needed
                try:
                    os.pwrite(fd, raw + b" " * (SLOT - len(raw)), slot * SLOT)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                logger.warning(
                    "cannot write %s (%s): unrecorded sends stay in memory", self.path, exc
                )
                return False
            self._generation += 1
            self._slot = slot
            return True


class SendMemory:
    """Sends not recorded yet, by batch (row ids): the outbox marks them, never resends."""

    def __init__(self, database_url: str) -> None:
        self.journal = SentJournal.beside(database_url)
        self._kept = self.journal.open()

    def whole(self, ids: list[int]) -> list[str] | None:
        """The fingerprints of this batch's messages if all were sent, not recorded."""
        return self._kept.whole.get(tuple(ids))

    def parts(self, ids: list[int]) -> list[str]:
        """The fingerprints of this digest's leading parts sent (maybe not recorded)."""
        return self._kept.parts.get(tuple(ids), [])

    def part_sent(self, ids: list[int], hashes: list[str]) -> None:
        """Parts sent so far (in memory; written to the journal only if the note fails)."""
        self._kept.parts[tuple(ids)] = hashes

    async def unrecorded(self, ids: list[int], hashes: list[str] | None) -> tuple[bool, bool]:
        """The store failed to record a send (the whole batch with ``hashes``, or its
        parts so far): keep it. Returns (first of its episode: tell ops, durable)."""
        if hashes is not None:
            self._kept.whole[tuple(ids)] = hashes
        first = not self._kept.told
        self._kept.told = True
        durable = await asyncio.to_thread(self.journal.save, self._kept.copy())
        return first, durable

    async def recorded(self, ids: list[int], *, parts: bool = False) -> None:
        """The store recorded this batch (or its last part's note is gone)."""
        memory = self._kept.parts if parts else self._kept.whole
        if memory.pop(tuple(ids), None) is not None:
            await self._changed()

    async def settle(self, pending: set[int]) -> None:
        """Forget sends any of whose rows is no longer pending (sent, dead or held since):
        their batch can never come back in that form."""
        stale = [
            (memory, ids)
            for memory in (self._kept.whole, self._kept.parts)
            for ids in memory
            if not pending.issuperset(ids)
        ]
        for memory, ids in stale:
            del memory[ids]
        if stale or (self._kept.told and not self._kept):
            await self._changed()

    async def _changed(self) -> None:
        if not self._kept and self._kept.told:
            logger.warning("every send that was not recorded is recorded now")
            self._kept.told = False  # the episode is over
        await asyncio.to_thread(self.journal.save, self._kept.copy())
