"""Word lists the simulated world is generated from: niches, names, hashtags, music.

Plain data, no logic: each niche brings the products, hashtags and caption phrases that
its shops and creators use, so searches by keyword or hashtag find coherent results.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Niche:
    """A market segment: what its shops sell and how their videos talk."""

    name: str
    category: str
    google_category_ids: tuple[int, ...]
    products: tuple[str, ...]
    hashtags: tuple[str, ...]
    brand_roots: tuple[str, ...]


NICHES: tuple[Niche, ...] = (
    Niche(
        "supplements",
        "Health & Fitness",
        (491, 5702),
        ("protein gummies", "creatine gummies", "collagen powder", "sleep gummies", "greens blend"),
        ("protein", "gymtok", "supplements", "fitnesstips", "creatine"),
        ("Vital", "Nutri", "Peak", "Core", "Pure"),
    ),
    Niche(
        "skincare",
        "Beauty",
        (469, 2915),
        ("vitamin c serum", "snail mucin", "retinol cream", "sunscreen stick", "lip oil"),
        ("skincare", "skintok", "glowup", "beautytok", "selfcare"),
        ("Glow", "Dew", "Lumi", "Silk", "Bloom"),
    ),
    Niche(
        "pets",
        "Pet Supplies",
        (1, 5),
        ("dog bed", "cat fountain", "lick mat", "dog harness", "pet hair remover"),
        ("dogsoftiktok", "catsoftiktok", "petproducts", "doglover", "pettok"),
        ("Paw", "Woof", "Furry", "Kitty", "Pup"),
    ),
    Niche(
        "home",
        "Home & Garden",
        (536, 638),
        ("led strip lights", "sunset lamp", "mini vacuum", "shower filter", "cloud slides"),
        ("homedecor", "cleantok", "homehacks", "roomtransformation", "amazonfinds"),
        ("Nest", "Cozy", "Haven", "Loft", "Hearth"),
    ),
    Niche(
        "kitchen",
        "Kitchen & Dining",
        (638, 730),
        ("air fryer liners", "vegetable chopper", "milk frother", "ice roller", "glass jars"),
        ("kitchenhacks", "foodtok", "cookinghacks", "mealprep", "kitchengadgets"),
        ("Chef", "Zest", "Whisk", "Spoon", "Crisp"),
    ),
    Niche(
        "fashion",
        "Apparel & Accessories",
        (166, 1604),
        ("seamless leggings", "oversized hoodie", "claw clips", "tote bag", "gold hoops"),
        ("ootd", "fashiontok", "outfitideas", "styleinspo", "haul"),
        ("Luxe", "Muse", "Vogue", "Aura", "Thread"),
    ),
    Niche(
        "tech",
        "Electronics",
        (222, 2082),
        ("magsafe wallet", "phone tripod", "wireless earbuds", "ring light", "power bank"),
        ("techtok", "gadgets", "techfinds", "iphonehacks", "desksetup"),
        ("Volt", "Pixel", "Nova", "Byte", "Flux"),
    ),
)

GENERIC_HASHTAGS = ("fyp", "foryou", "viral", "tiktokmademebuyit", "tiktokshop", "smallbusiness")

BRAND_SUFFIXES = ("ly", "io", "ify", "Co", "Lab", "Hub", "Nest", "Works", "Shop", "Goods")
TLDS = ("com", "com", "com", "co", "shop", "store", "co.uk", "de")
COUNTRIES = ("US", "US", "US", "GB", "DE", "CA", "AU", "FR", "ES")
LANGUAGES = ("en", "en", "en", "en", "es", "de", "fr", "pt")

FIRST_NAMES = (
    "Mia", "Liam", "Ava", "Noah", "Zoe", "Leo", "Emma", "Kai", "Luna", "Jade",
    "Ella", "Max", "Nora", "Finn", "Ivy", "Sam", "Rosa", "Theo", "Lena", "Omar",
)  # fmt: skip
HANDLE_SUFFIXES = ("official", "tok", "daily", "finds", "hq", "club", "co", "life", "shop", "x")

CAPTION_TEMPLATES = (
    "POV: you finally found the {product} that actually works",
    "this {product} changed my routine 😍",
    "{product} restock is LIVE 🚨 link in bio",
    "3 reasons our {product} sells out every week",
    "honest review of the viral {product}",
    "wait for it... {product} edition",
    "the {product} everyone is asking about",
    "day 30 using the {product} — results?",
    "unboxing our new {product} drop",
    "{product} vs the cheap dupe, you decide",
)

MUSIC_TITLES = (
    "Espresso", "Good Luck, Babe!", "APT.", "Birds of a Feather", "Die With A Smile",
    "Million Dollar Baby", "Beautiful Things", "Lose Control", "Too Sweet", "Please Please Please",
    "Gata Only", "Stargazing", "Taste", "Sailor Song", "Timeless", "Pink Pony Club",
    "Messy", "Abracadabra", "Ordinary", "Manchild",
)  # fmt: skip
MUSIC_AUTHORS = (
    "Sabrina Carpenter", "Chappell Roan", "ROSÉ & Bruno Mars", "Billie Eilish",
    "Lady Gaga & Bruno Mars", "Leon Thomas", "Benson Boone", "Teddy Swims", "Hozier",
    "FloyyMenor & Cris MJ", "Myles Smith", "Doechii", "Alex Warren", "The Weeknd",
)  # fmt: skip
