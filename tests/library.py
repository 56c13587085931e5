"""An in-memory TrendTrack library that answers the planner's requests (pure-core tests).

It filters, sorts and pages like the contract says (``newest`` = ``publishedAt`` then id,
descending; a page past the end is empty with the true total, for 0 credits), can refuse
``updatedAfter`` (the documented API) and enforce the result window. ``run`` drives a
``Planner`` to ``Done`` and returns each request in a short text form for tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from watcher.errors import ApiError, NotFound, ValidationDetail, ValidationFailed
from watcher.models import Item
from watcher.planner import Count, Done, Fetch, Lookup, Planner, Request
from watcher.trendtrack import Page

WINDOW = 10_000


def describe(request: Request) -> str:
    """A request in a few words: ``count status=active``, ``updatedAt desc 2x4``, ``lookup 7``."""
    if isinstance(request, Lookup):
        return f"lookup {request.item_id.removeprefix('tiktok_')}"
    p = request.params
    filters = [
        f"{name}={value}"
        for name, value in (("status", p.status), ("type", p.type), ("pinned", p.pinned))
        if value is not None
    ]
    if p.updated_after is not None:
        filters.append("after")
    if isinstance(request, Count):
        return " ".join(["count", *filters])
    head = f"{p.sort_by or 'newest'} {p.order or 'desc'} {p.page or 1}x{p.limit or 25}"
    return " ".join([head, *filters])


@dataclass
class Library:
    """The scope's items as the API holds them now."""

    items: Sequence[Item]
    updated_after: bool = True
    window: bool = False
    credits_header: int | None = None
    """When set, every page claims to have cost this (a lying ``X-Credits-Used``)."""
    total_override: int | None = None
    as_listed: bool = False
    """Serve ``items`` in their own order, whatever the sort (a server that misorders)."""
    requests: list[str] = field(default_factory=list)
    served: int = 0
    """Rows returned, whatever the header said: the credits actually billed."""

    def _rejected(self, name: str) -> ValidationFailed:
        detail = ValidationDetail(f"query-string.{name}", "query-string")
        return ValidationFailed(
            f"{name} should not exist", code="validation_error", details=[detail]
        )

    def _match(self, request: Fetch | Count) -> list[Item]:
        p = request.params
        rows = list(self.items)
        if p.updated_after is not None:
            if not self.updated_after:
                raise self._rejected("updatedAfter")
            rows = [i for i in rows if i.updated_at and i.updated_at > p.updated_after]
        if p.status is not None and str(p.status) != "all":
            rows = [i for i in rows if i.status is not None and i.status.value == str(p.status)]
        if p.type is not None and str(p.type) != "all":
            rows = [i for i in rows if i.type is not None and i.type.value == str(p.type)]
        if p.pinned is not None:
            rows = [i for i in rows if bool(i.pinned) == (str(p.pinned) == "yes")]
        return rows

    def _sorted(self, request: Fetch, rows: list[Item]) -> list[Item]:
        p = request.params
        if self.as_listed:
            return rows
        sort = str(p.sort_by or "newest")
        key_of = {
            "updatedAt": lambda i: (i.updated_at, i.id),
            "views": lambda i: (i.views or 0, i.id),
        }.get(sort, lambda i: (i.published_at, i.id))
        return sorted(rows, key=key_of, reverse=str(p.order or "desc") == "desc")

    def answer(self, request: Request) -> Page | int | Item:
        if isinstance(request, Lookup):
            for item in self.items:
                if item.id == request.item_id:
                    self.served += 1
                    return item
            raise NotFound("no such item", code="not_found", status=404)
        rows = self._match(request)
        total = len(rows) if self.total_override is None else self.total_override
        if isinstance(request, Count):
            return total  # how a count stays free (and inside the window) is the client's
        page = request.params.page or 1
        limit = request.params.limit or 25
        if self.window and page * limit > WINDOW:
            raise self._rejected("page")
        chunk = self._sorted(request, rows)[(page - 1) * limit : page * limit]
        self.served += len(chunk)
        used = len(chunk) if self.credits_header is None else self.credits_header
        pages = -(-total // limit) if total else 0
        return Page(tuple(chunk), total, page, limit, pages, used, None)


def run(planner: Planner, library: Library, *, max_requests: int = 1_000) -> Done:
    """Carry out the planner's requests against ``library`` until it is done."""
    request = planner.next_request()
    while not isinstance(request, Done):
        if len(library.requests) >= max_requests:
            raise AssertionError(f"the poll never ended: {library.requests[-5:]}")
        library.requests.append(describe(request))
        try:
            answer: Page | int | Item | ApiError = library.answer(request)
        except ApiError as exc:
            answer = exc
        planner.absorb(answer)
        request = planner.next_request()
    return request
