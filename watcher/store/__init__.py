"""The state database: tables, plain values, migrations and the store over them.

Callers import from here; only this package talks to the database.
"""

from watcher.store.state import *  # noqa: F403
from watcher.store.state import __all__ as __all__
