"""PURE: reconcile a list's stored ``newest`` order with the list as the API holds it now.

The documented-only strategy (see ``watcher.plan``) keeps, per watch, the scope's rows in
``newest`` order (``publishedAt`` descending, ties by id). Between two refreshes such a
list changes only by insertions and deletions, so against the stored order a row read at
position ``p`` tells how many rows were inserted minus deleted above it. ``reconcile``
splits the list into segments whose two ends are anchored (a known row at a known
position, or an end of the list): a segment whose new length equals its stored length is
taken as unchanged; a longer or shorter one is split at a probe (``page=p&limit=1``, 1
credit) in its middle, and read whole once it is short. So ``k`` changes in a list of
``n`` rows cost about ``k * log2(n / k)`` probes plus the short segments read.

Rows sharing a ``publishedAt`` may come back in any order (``--unstable-ties``), so a
tied row says nothing of where its ties stand: probes step off them to the nearest
untied row, and a probe that lands on one anyway reads outwards to an untied known row
on each side (about twice the ties, not the segment), bisecting on from those. A probe
that contradicts the stored order (a known row outside its segment, a row where it can't
be) makes the whole segment read, never a guess. What a length can't tell (an insertion
and a deletion inside one segment) is the caller's to rule out with other lists (see
``watcher.plan``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from watcher.models import Item
from watcher.planner.steps import Request

MAX_LIMIT = 50
WINDOW = 10_000
"""The result window: ``page * limit`` may not exceed it (Elasticsearch's default)."""
SHORT = 2
"""A segment this short (new length) is read whole rather than probed."""


def id_number(item_id: str) -> int:
    """The digits of ``tiktok_<digits>`` (ties in ``newest`` break by id, descending)."""
    digits = item_id.rpartition("_")[2]
    return int(digits) if digits.isdigit() else 0


@dataclass(frozen=True, slots=True, order=True)
class Row:
    """A row of a stored order; rows sort newest first (``key`` ascending)."""

    key: tuple[float, int]
    id: str = field(compare=False)

    @classmethod
    def of(cls, item_id: str, published_at: datetime) -> Row:
        return cls((-published_at.timestamp(), -id_number(item_id)), item_id)


def in_order(rows: Sequence[Row]) -> list[Row]:
    """Rows in the stored ``newest`` order, one per id."""
    return sorted({r.id: r for r in rows}.values())


@dataclass
class Found:
    """What a reconcile learned: rows read (current state), rows inserted (not in the
    stored order), stored ids found gone, and what it spent."""

    read: dict[str, Item] = field(default_factory=dict)
    inserted: list[Item] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    probes: int = 0
    contradictions: int = 0


Reader: TypeAlias = Callable[[int, int], Generator[Request, object, Sequence[Item]]]
"""``read(page, limit)``: the rows of one page (the caller pays and counts them)."""


def _tied(stored: Sequence[Row], lo: int, hi: int, item: Item) -> bool:
    """Whether ``item`` shares its ``publishedAt`` with a stored row of the segment other
    than itself (their order is only the id's, which an API may not keep)."""
    if item.published_at is None:
        return True
    stamp = -item.published_at.timestamp()
    first = bisect.bisect_left(stored, (stamp,), lo, hi, key=lambda r: r.key[:1])
    return any(r.id != item.id for r in stored[first : first + 2] if r.key[0] == stamp)


def untied_middle(stored: Sequence[Row], s_lo: int, s_hi: int, n_len: int) -> int:
    """The offset in a segment to probe: its middle, or the nearest offset whose stored
    row shares its ``publishedAt`` with neither neighbour. A tied row may come back
    anywhere among its ties, so a probe landing on one proves nothing and costs the
    segment's read; an untied one, where nothing changed, comes back where it was."""
    middle = n_len // 2
    width = min(s_hi - s_lo, n_len)
    for step in range(width):
        for offset in (middle - step, middle + step):
            if 0 <= offset < width and untied_at(stored, s_lo + offset):
                return offset
    return middle


def untied_at(stored: Sequence[Row], at: int) -> bool:
    """Whether the stored row at ``at`` shares its ``publishedAt`` with neither neighbour."""
    stamp = stored[at].key[0]
    return all(not 0 <= n < len(stored) or stored[n].key[0] != stamp for n in (at - 1, at + 1))


def covering(lo: int, hi: int) -> list[tuple[int, int]]:
    """The (page, limit) requests that read rows ``lo`` to ``hi - 1`` (0-based) with
    fewest rows: one page when some limit up to 50 covers the range, else pages of 50."""
    size = hi - lo
    for limit in range(size, MAX_LIMIT + 1):
        if lo // limit == (hi - 1) // limit:
            return [(lo // limit + 1, limit)]
    return [(page + 1, MAX_LIMIT) for page in range(lo // MAX_LIMIT, (hi - 1) // MAX_LIMIT + 1)]


def reconcile(  # noqa: PLR0915  # one bisection loop, read top to bottom
    stored: Sequence[Row], total: int, read: Reader, *, verify: int = 0, first: int | None = None
) -> Generator[Request, object, Found]:
    """Find how the list now holding ``total`` rows differs from ``stored``.

    ``verify`` levels of segments are probed even when their length did not change (an
    identity check of their middle row), to catch an insertion and a deletion cancelling
    inside a long segment. ``first`` is the stored index of the row right below the band
    where new items can land: the segment holding it is probed where that row should
    now be (below the insertions the count shows) until a probe finds it or its segment
    is read, so an insertion in the band and a deletion below it cancel in the count,
    never in the shift of the rows between them.
    """
    found = Found()
    index = {row.id: n for n, row in enumerate(stored)}
    seen: set[str] = set()
    doubtful: list[tuple[int, int]] = []
    by_position: dict[int, Item] = {}
    edge = first if first is not None and 0 <= first < len(stored) else None
    stack = [(0, len(stored), 0, total, verify)]

    def take(rows: Sequence[Item]) -> None:
        for item in rows:
            seen.add(item.id)
            found.read[item.id] = item
            if item.id not in index and all(i.id != item.id for i in found.inserted):
                found.inserted.append(item)

    def read_at(lo: int, hi: int) -> Generator[Request, object, dict[int, Item]]:
        """Rows ``lo`` to ``hi - 1`` by position (the list holds still during a poll, so
        rows already read at their position are not paid for twice)."""
        hi = min(hi, WINDOW)
        unread = [n for n in range(lo, hi) if n not in by_position]
        if unread:
            for page, limit in covering(unread[0], unread[-1] + 1):
                got = yield from read(page, limit)
                by_position.update(enumerate(got, start=(page - 1) * limit))
        rows = {n: by_position[n] for n in range(lo, hi) if n in by_position}
        take(list(rows.values()))
        return rows

    def read_range(lo: int, hi: int) -> Generator[Request, object, list[Item]]:
        return list((yield from read_at(lo, hi)).values())

    def around_tie(
        s_lo: int, s_hi: int, n_lo: int, n_hi: int, middle: int, row: Item
    ) -> Generator[Request, object, tuple[int, int, int, int] | None]:
        """A probe met a row whose ``publishedAt`` others share, so it may stand anywhere
        among them: read outwards from it (as many rows as its ties and one more on each
        side, then doubling) to the nearest untied known row on each side, or the
        segment's end. Returns those two anchors as (stored index, new position), an end
        being (``s_lo - 1``, ``n_lo - 1``) or (``s_hi``, ``n_hi``); None where reading the
        segment whole costs about as much, or the rows read contradict the stored order
        (the caller then reads the segment)."""
        if row.published_at is None:
            return None  # _tied counts it tied: nothing to place it by
        stamp = -row.published_at.timestamp()
        ties = sum(1 for r in stored[s_lo:s_hi] if r.key[0] == stamp)
        tied = sum(not untied_at(stored, n) for n in range(s_lo, s_hi))
        if 2 * tied > s_hi - s_lo:
            return None  # mostly ties: any probe lands on one; the segment is read whole
        end = min(n_hi, WINDOW)  # rows past the result window can't be read
        reach = ties + 1
        while True:
            lo, hi = max(n_lo, middle - reach), min(end, middle + reach + 1)
            if 2 * (hi - lo) > n_hi - n_lo:
                return None  # about the segment's size: reading it whole costs no more
            got = yield from read_at(lo, hi)
            above = [n for n in range(middle - 1, lo - 1, -1) if anchor(got.get(n), s_lo, s_hi)]
            below = [n for n in range(middle + 1, hi) if anchor(got.get(n), s_lo, s_hi)]
            top = (index[got[above[0]].id], above[0]) if above else None
            bottom = (index[got[below[0]].id], below[0]) if below else None
            if top is None and lo == n_lo:
                top = (s_lo - 1, n_lo - 1)
            if bottom is None and hi == n_hi:
                bottom = (s_hi, n_hi)
            if top is not None and bottom is not None:
                break
            if lo == n_lo and hi == end:
                return None
            reach *= 2
        between = [got[n] for n in range(top[1] + 1, bottom[1]) if n in got]
        known = [index[i.id] for i in between if i.id in index]
        if top[0] >= bottom[0] or any(not top[0] < k < bottom[0] for k in known):
            return None  # a row read between them stood elsewhere: the order is wrong here
        return top[0], top[1], bottom[0], bottom[1]

    def anchor(item: Item | None, s_lo: int, s_hi: int) -> bool:
        return (
            item is not None
            and s_lo <= index.get(item.id, -1) < s_hi
            and not _tied(stored, s_lo, s_hi, item)
        )

    while stack:
        s_lo, s_hi, n_lo, n_hi, depth = stack.pop()
        s_len, n_len = s_hi - s_lo, n_hi - n_lo
        if n_len <= 0:
            doubtful.append((s_lo, s_hi))
            continue
        forced = edge is not None and s_lo <= edge < s_hi
        if s_len == n_len and (depth <= 0 or n_len < 3) and not forced:
            continue
        if n_lo + n_len // 2 >= WINDOW:
            continue  # past the result window: nothing there can be read (see the plan)
        if n_len <= SHORT:
            yield from read_range(n_lo, n_hi)
            doubtful.append((s_lo, s_hi))
            continue
        middle = n_lo + untied_middle(stored, s_lo, s_hi, n_len)
        if forced and edge is not None:
            # Where the row below the band is if every row the count adds landed above it
            # (inside the result window: a band of 10,000 rows leaves nothing to tell apart).
            middle = min(n_hi - 1, WINDOW - 1, n_lo + (edge - s_lo) + max(0, n_len - s_len))
        elif n_lo == 0 and 0 < n_len - s_len < n_len - 1 and s_lo < len(stored):
            # Rows were inserted: new items land at the top, so first try "all of them
            # above the segment's first row" (exponential search from the top).
            middle = n_lo + (n_len - s_len)
        found.probes += 1
        rows = yield from read_range(middle, middle + 1)
        if not rows:  # the list is shorter than its count said: read the segment
            yield from read_range(n_lo, n_hi)
            doubtful.append((s_lo, s_hi))
            continue
        row = rows[0]
        at = index.get(row.id)
        if at is not None and at == edge:
            edge = None  # found where it stands: the band is told apart from the rest
        if _tied(stored, s_lo, s_hi, row):
            # Rows sharing its publishedAt may come back in any order: where it stands
            # says nothing of the others. Read around it to untied rows on both sides;
            # what lies between them is read, the rest bisected as usual.
            found.contradictions += 1
            anchors = yield from around_tie(s_lo, s_hi, n_lo, n_hi, middle, row)
            if anchors is None:
                yield from read_range(n_lo, n_hi)
                if n_hi <= WINDOW:
                    doubtful.append((s_lo, s_hi))
                continue
            a_at, a_pos, b_at, b_pos = anchors
            doubtful.append((a_at + 1, b_at))
            if a_at >= s_lo:
                stack.append((s_lo, a_at, n_lo, a_pos, depth - 1))
            if b_at < s_hi:
                stack.append((b_at + 1, s_hi, b_pos + 1, n_hi, depth - 1))
            continue
        if at is None:
            split = s_lo
            if row.published_at is not None:
                key = Row.of(row.id, row.published_at)
                split = bisect.bisect_left(stored, key, s_lo, s_hi)
            stack.append((s_lo, split, n_lo, middle, depth - 1))
            stack.append((split, s_hi, middle + 1, n_hi, depth - 1))
        elif at == s_lo and middle - n_lo == n_len - s_len:
            # The guess held: the rows above the segment's first row are all new.
            yield from read_range(n_lo, middle)
            stack.append((at + 1, s_hi, middle + 1, n_hi, depth - 1))
        elif s_lo <= at < s_hi:
            stack.append((s_lo, at, n_lo, middle, depth - 1))
            stack.append((at + 1, s_hi, middle + 1, n_hi, depth - 1))
        else:  # a known row outside its segment: the stored order is wrong here
            found.contradictions += 1
            yield from read_range(n_lo, n_hi)
            if n_hi <= WINDOW:
                doubtful.append((s_lo, s_hi))
    for s_lo, s_hi in doubtful:
        found.missing.extend(r.id for r in stored[s_lo:s_hi] if r.id not in seen)
    found.missing = list(dict.fromkeys(found.missing))
    return found
