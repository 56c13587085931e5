"""The knobs of the simulated world: its size and how fast it changes per refresh."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorldParams:
    """Size and evolution rates of a world; the defaults give a realistic, moderate pace.

    Rates are probabilities per candidate per daily refresh (e.g. ``stop_rate`` per
    active ad), so a world of any size changes at a proportionate pace.
    """

    shops: int = 40
    profiles_per_shop: int = 2
    creators: int = 30
    """Profiles without a shop: creators posting organic videos."""
    items: int = 3000
    history_days: int = 90
    """Initial items were published over this many days before the clock starts."""
    ad_share: float = 0.55
    """Share of a shop profile's items that are ads (creators post organic only)."""
    new_item_rate: float = 0.25
    """Chance per shop profile per refresh of a new item (about 5 per 10 shops a day)."""
    creator_post_rate: float = 0.1
    """Chance per creator per refresh of a new organic video."""
    lagged_share: float = 0.2
    """Share of new items indexed one to five days after publishing (the rest: hours)."""
    stop_rate: float = 0.005
    resume_rate: float = 0.006
    pin_rate: float = 0.04
    """Chance per profile per refresh of pinning one of its recent items."""
    unpin_rate: float = 0.015
    remove_rate: float = 0.0005
    """Chance per unpinned indexed item per refresh of leaving the index."""
    restore_rate: float = 0.1
    """Chance per removed item per refresh of coming back into the index."""
    max_pins: int = 3
    rank_log_threshold: int = 10
    """A refresh logs a ``rank`` truth entry for every move of at least this many places."""
    profile_rolls: int = 1
    """How many times per refresh each profile draws its new-item, pin and unpin chances.
    A world whose profiles hold k times the default's items sets about k, so each item
    changes at the default pace (``large``)."""
    publish_resolution: int = 0
    """``publishedAt`` is rounded down to a multiple of this many seconds (0: not rounded).
    A coarse one makes items share ``publishedAt``, the ties ``--unstable-ties`` shuffles
    in ``newest`` order (as a library storing dates only would)."""

    @classmethod
    def small(cls) -> WorldParams:
        """A small world for fast tests: same rates, a tenth of the size."""
        return cls(shops=6, profiles_per_shop=2, creators=4, items=300)

    @classmethod
    def large(cls, publish_resolution: int = 0) -> WorldParams:
        """Big profiles, the default pace per item: scopes of hundreds of items each.

        16 shops with one brand account each and 4 creators (plus the example accounts)
        share 10,000 items, about 16 times the default's items per profile. With
        ``profile_rolls=15``, new items (about 0.8 % of the items a refresh) come at the
        default world's rate per item, and pins (about 0.15 %) with ``pin_rate`` a quarter
        higher (a profile's three pins refuse some of its draws in a refresh); the other
        rates are per item already (stops and resumes per ad, removals per item).
        """
        return cls(
            shops=16,
            profiles_per_shop=1,
            creators=4,
            items=10_000,
            profile_rolls=15,
            pin_rate=0.05,
            publish_resolution=publish_resolution,
        )
