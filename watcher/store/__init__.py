"""The state database: tables, plain values, migrations and the store over them.

Callers import from here; only this package talks to the database.
"""

from watcher.store.reads import EventPage, PollView, Reads, WatchStrategy
from watcher.store.state import *  # noqa: F403
from watcher.store.state import __all__ as _state_all

__all__ = [*_state_all, "EventPage", "PollView", "Reads", "WatchStrategy"]  # noqa: PLE0604
