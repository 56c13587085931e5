"""Changes of the world: staged ones (``POST /_sim/change``) and logged ones (the truth).

A staged change is validated when it is posted (unknown kinds, fields, items, profiles
or shops are refused with the status to answer) and applied by the world at its next
refresh. A ``Change`` is one truth-log entry; it keeps the item by reference because the
fields it reports (id, type, handle, shop, hashtags) never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watcher.simulator.entities import Json, SimItem

if TYPE_CHECKING:
    from watcher.simulator.world import World

STAGE_KINDS = ("new_item", "pin", "unpin", "stop", "resume", "remove", "rank")


class StageError(Exception):
    """A staged change was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Change:
    """One truth-log entry; the item's identity fields never change, so it is kept by ref."""

    at: datetime
    kind: str
    item: SimItem
    before: object
    after: object

    def to_json(self, at: str) -> Json:
        """The entry as ``GET /_sim/truth`` serves it; ``at`` is the formatted instant."""
        item = self.item
        return {
            "at": at,
            "kind": self.kind,
            "itemId": item.id,
            "tiktokId": str(item.tiktok_id),
            "type": item.type,
            "handle": item.profile.handle,
            "shopId": item.shop.id if item.shop else None,
            "hashtags": list(item.hashtags),
            "before": self.before,
            "after": self.after,
        }


@dataclass(slots=True)
class Staged:
    """A change waiting for the next refresh."""

    kind: str
    item: SimItem
    rank: int | None = None


def parse_item_id(ident: str) -> int | None:
    """The numeric tiktokId of ``tiktok_<digits>`` or bare ``<digits>``, else None."""
    digits = ident.removeprefix("tiktok_")
    return int(digits) if digits.isdigit() and len(digits) < 30 else None


def staged_change(world: World, kind: str, fields: Mapping[str, object]) -> Staged:
    """Validate one ``POST /_sim/change`` against ``world``; the change lands next refresh."""
    if kind not in STAGE_KINDS:
        raise StageError(400, f"kind must be one of {', '.join(STAGE_KINDS)}")
    if kind == "new_item":
        return Staged(kind, _staged_item(world, fields))
    allowed = {"itemId", "rank"} if kind == "rank" else {"itemId"}
    _check_keys(fields, allowed)
    ident = fields.get("itemId")
    item = world.find(ident) if isinstance(ident, str) else None
    if item is None:
        raise StageError(404, f"no item {ident!r}")
    if kind in ("stop", "resume") and item.type != "ad":
        raise StageError(400, "only ads stop and resume")
    rank = fields.get("rank")
    if kind == "rank" and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
        raise StageError(400, "rank must be an integer >= 1")
    return Staged(kind, item, rank if isinstance(rank, int) else None)


def _staged_item(world: World, fields: Mapping[str, object]) -> SimItem:
    _check_keys(fields, {"type", "handle", "shopId", "hashtags", "caption", "indexLagHours"})
    kind = fields.get("type", "ad")
    if kind not in ("ad", "organic"):
        raise StageError(400, "type must be ad or organic")
    hashtags = fields.get("hashtags")
    if hashtags is not None and not (
        isinstance(hashtags, list) and all(isinstance(tag, str) for tag in hashtags)
    ):
        raise StageError(400, "hashtags must be a list of strings")
    caption = fields.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise StageError(400, "caption must be a string")
    shop = None
    shop_id = fields.get("shopId")
    if shop_id is not None:
        shop = world.shops.get(str(shop_id))
        if shop is None:
            raise StageError(404, f"no shop {shop_id!r}")
    handle = fields.get("handle")
    if handle is not None:
        profile = world.profiles.get(str(handle).lstrip("@"))
        if profile is None:
            raise StageError(404, f"no profile {handle!r}")
    else:
        pool = [p for p in world.profiles.values() if p.shop and (not shop or p.shop is shop)]
        profile = world.rng.choice(pool or list(world.profiles.values()))
    lag_hours = fields.get("indexLagHours")
    if lag_hours is None:
        lag = world.generator.index_lag()
    elif isinstance(lag_hours, int | float) and not isinstance(lag_hours, bool):
        lag = timedelta(hours=max(0.0, float(lag_hours)))
    else:
        raise StageError(400, "indexLagHours must be a number")
    at = world.next_refresh
    return world.generator.item(
        profile, at - lag, at, kind=str(kind), shop=shop, caption=caption, hashtags=hashtags
    )


def _check_keys(fields: Mapping[str, object], allowed: set[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise StageError(400, f"unknown field(s): {', '.join(unknown)}")
