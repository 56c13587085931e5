"""PURE polling strategy, sans I/O: what one poll of a watch asks the API, and what it found.

``Planner`` (``machine``) answers "the next request" and absorbs each answer; the poller
(``watcher.poller``) is the loop that executes the requests. ``steps`` holds the
vocabulary: requests, outcomes, the progress kept between polls. The scopes, rules and
credit arithmetic are in ``watcher.plan``.
"""

from __future__ import annotations

from watcher.planner.machine import UPDATED_AFTER, Answer, Planner, skips
from watcher.planner.steps import (
    Count,
    Done,
    Fetch,
    Freshness,
    Lookup,
    Outcome,
    Params,
    Request,
    Resume,
)

__all__ = [
    "UPDATED_AFTER",
    "Answer",
    "Count",
    "Done",
    "Fetch",
    "Freshness",
    "Lookup",
    "Outcome",
    "Params",
    "Planner",
    "Request",
    "Resume",
    "skips",
]
