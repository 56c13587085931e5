"""Item snapshots for events detected from memory alone (``ad_milestone``).

A watch's memory keeps the fields detection compares, not the handle or caption an alert
shows; an event built from memory borrows them from the latest event recorded for the
same item of the same watch, in the transaction that records it (no API read).
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection
from sqlmodel import col, select

from watcher.models import Event, EventKind, Item, item_from_json
from watcher.store.tables import EventRow

_IN_CHUNK = 500


def with_snapshots(connection: Connection, fresh: dict[str, Event]) -> dict[str, Event]:
    """``fresh`` with each bare ``ad_milestone`` item completed from the item's last event;
    the figures of the new event (status, views, days running) win."""
    bare = {
        key: e
        for key, e in fresh.items()
        if e.kind == EventKind.AD_MILESTONE and e.item is not None and not e.item.handle
    }
    if not bare:
        return fresh
    wanted = sorted({e.item.id for e in bare.values() if e.item is not None})
    latest: dict[tuple[str, str], Item] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        query = (
            select(col(EventRow.watch), col(EventRow.item_id), col(EventRow.item))
            .where(col(EventRow.item_id).in_(wanted[start : start + _IN_CHUNK]))
            .where(col(EventRow.item).is_not(None))
            .order_by(col(EventRow.id))
        )
        for watch, item_id, snapshot in connection.execute(query):
            if isinstance(snapshot, dict) and item_id:
                latest[(watch, item_id)] = item_from_json(snapshot)
    out = dict(fresh)
    for key, event in bare.items():
        item = event.item
        assert item is not None  # noqa: S101 - filtered above
        known = latest.get((event.watch, item.id))
        if known is None:
            continue
        merged = replace(
            known,
            status=item.status or known.status,
            views=item.views if item.views is not None else known.views,
            rank=item.rank if item.rank is not None else known.rank,
            days_running=item.days_running,
        )
        out[key] = replace(event, item=merged)
    return out
