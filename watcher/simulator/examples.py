"""The product spec's example entities, added to every world so the shipped config works.

The example ``watches.yaml`` watches the shop ``3f8aa146-…`` (Acme), ``#creatine``,
``@rivalbrand``, captions saying "protein gummies" or "creatine gummies", and the
most-viewed active skincare ads. Every seeded world therefore also holds:

- Acme, a supplements shop with that fixed id, and its two profiles;
- RivalBrand, a supplements shop whose profile ``rivalbrand`` runs ads and pins some;
- a few dozen long-running skincare ads with six-figure views, spread over the world's
  skincare shops (the market a rank-tracking query follows).

``#creatine`` and the gummies captions come from the supplements niche's vocabulary, so
every supplements shop and creator uses them, now and in the items that arrive later.

They are drawn from their own RNG (derived from the seed) after the rest of the world, so
the random shops, profiles and items of a seed are exactly those it had without them.
Once made they are ordinary records: they grow, rank, stop, get pinned and post new items
at each refresh like everything else.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

from watcher.simulator import vocab
from watcher.simulator.clock import DAY, midnight_on_or_before
from watcher.simulator.entities import Profile, Shop, SimItem
from watcher.simulator.generate import Generator, Genesis

ACME_SHOP_ID = "3f8aa146-6f96-46e8-9781-64db5166f9a8"
RIVAL_HANDLE = "rivalbrand"
SUPPLEMENTS = 0
SKINCARE = 1
SKINCARE_ADS = 36
"""Winning skincare ads added: comfortably over the 25 a rank-tracking watch follows."""


@dataclass(frozen=True, slots=True)
class ExampleShop:
    """A named shop of the spec's examples: its identity and its profiles' sizes."""

    name: str
    domain: str
    shop_id: str | None
    """A fixed id, or None for one drawn from the seed."""
    profiles: tuple[tuple[str, int], ...]
    """(handle, number of initial items) per profile, the main account first."""


EXAMPLE_SHOPS = (
    ExampleShop(
        "Acme",
        "acme-nutrition.com",
        ACME_SHOP_ID,
        (("acmenutrition", 36), ("acme.official", 18)),
    ),
    ExampleShop(
        "RivalBrand",
        "rivalbrand.com",
        None,
        ((RIVAL_HANDLE, 30), ("rivalbrand.shop", 10)),
    ),
)


EXAMPLE_ITEMS = sum(count for shop in EXAMPLE_SHOPS for _, count in shop.profiles) + SKINCARE_ADS
"""Initial items the examples add to a world that has a skincare shop (two shops or more)."""


def example_rng(seed: int) -> Random:
    """The examples' own RNG: fixed per seed, independent of the world's stream."""
    return Random(f"watcher-simulator-examples-{seed}")


def add_examples(
    generator: Generator, genesis: Genesis, first_refresh: datetime, seed: int
) -> None:
    """Append the example shops, profiles and items to ``genesis`` (deterministic per seed)."""
    rng = example_rng(seed)
    with generator.drawing_from(rng):
        for spec in EXAMPLE_SHOPS:
            shop = _shop(rng, spec)
            genesis.shops.append(shop)
            for handle, count in spec.profiles:
                profile = generator.profile(shop.niche, shop, first_refresh, handle=handle)
                genesis.profiles.append(profile)
                genesis.items.extend(
                    generator.past_item(profile, first_refresh) for _ in range(count)
                )
                generator.initial_pins(profile, first_refresh, at_least=1)
        owners = [p for p in genesis.profiles if p.shop is not None and p.niche == SKINCARE]
        if owners:
            for _ in range(SKINCARE_ADS):
                genesis.items.append(
                    _skincare_ad(generator, rng, rng.choice(owners), first_refresh)
                )


def _shop(rng: Random, spec: ExampleShop) -> Shop:
    """The shop of ``spec``: fixed names (and id, if given), figures drawn like any shop's."""
    drawn_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return Shop(
        id=spec.shop_id or drawn_id,
        domain=spec.domain,
        name=spec.name,
        niche=SUPPLEMENTS,
        country_code="US",
        monthly_visits=int(rng.lognormvariate(11.8, 0.5)),
        traffic_growth_30d=round(rng.gauss(6.0, 12.0), 1),
        products_count=int(rng.lognormvariate(3.0, 0.5)) + 1,
        google_category_ids=vocab.NICHES[SUPPLEMENTS].google_category_ids,
    )


def _skincare_ad(generator: Generator, rng: Random, profile: Profile, now: datetime) -> SimItem:
    """A skincare ad running for weeks and still active: popular enough to clear 100k views."""
    spec = vocab.NICHES[SKINCARE]
    age = timedelta(days=rng.uniform(16.0, 75.0))
    published = now - age
    indexed = midnight_on_or_before(published + generator.index_lag()) + DAY
    product = rng.choice(spec.products)
    others = [tag for tag in spec.hashtags if tag != "skincare"]
    tags = ["skincare", rng.choice(others), *rng.sample(vocab.GENERIC_HASHTAGS, 2)]
    if rng.random() < 0.5:
        tags.append(product.replace(" ", ""))
    text = rng.choice(vocab.CAPTION_TEMPLATES).format(product=product)
    caption = f"{text} " + " ".join(f"#{tag}" for tag in tags)
    item = generator.item(profile, published, indexed, kind="ad", caption=caption, hashtags=tags)
    # ads are drawn at 2.5x an organic base; these sit in the library's top few percent
    item.base_views = 2.5 * max(4500.0, math.exp(rng.gauss(8.8, 0.35)))
    item.days_running = age.days
    profile.items.append(item)
    return item
