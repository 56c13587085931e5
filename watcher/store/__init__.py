"""The state database: tables, plain values, migrations and the store over them.

Callers import from here; only this package talks to the database. The modules:

- ``database``: engine, transactions (the one write path), migrations
- ``state``: ``Store``, the aggregates over one database, and a poll's one transaction
- ``watches``, ``queue``, ``episodes``, ``ledger``, ``meta``: one aggregate each
- ``aio``: ``AsyncStore``, the store for async code (the only place it meets threads)
- ``control``: silences, holds and digest marks; ``reads``: the dashboard's queries
- ``tables``, ``values``, ``bulk``, ``snapshots``, ``readonly``, ``failures``: helpers
"""

from watcher.planner.steps import Resume
from watcher.store.aio import AsyncStore
from watcher.store.database import SCHEMA_HEAD
from watcher.store.reads import EventPage, PollView, Reads, WatchStrategy
from watcher.store.state import Store
from watcher.store.values import (
    Applied,
    DeliveryView,
    DueDelivery,
    EventView,
    PollRecord,
    Routes,
    WatchInfo,
)

__all__ = [
    "SCHEMA_HEAD",
    "Applied",
    "AsyncStore",
    "DeliveryView",
    "DueDelivery",
    "EventPage",
    "EventView",
    "PollRecord",
    "PollView",
    "Reads",
    "Resume",
    "Routes",
    "Store",
    "WatchInfo",
    "WatchStrategy",
]
