"""Where a message goes and how its text is made safe there (PURE text, no Jinja).

A ``Channel`` is a kind of notifier (format and size budget), found by the notifier URL's
scheme. Hostile text (everything TikTok serves) is cleaned of bad surrogates, control,
zero-width and bidi-override characters, has its mentions neutralised and is escaped
per format; captions are truncated on character boundaries; numbers and dates are
written for people. ``watcher.render`` applies these in its Jinja environment.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, urlsplit

from watcher.models import Item

Format = Literal["text", "markdown", "html"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "html")


@dataclass(frozen=True, slots=True)
class Channel:
    """How a kind of notifier wants its messages: format and size budget.

    ``max_chars`` bounds title + body of one message (below the service's hard limit,
    leaving room for what apprise adds); ``caption_chars`` is the caption budget.
    """

    name: str
    format: Format
    max_chars: int
    caption_chars: int


TEXT = Channel("text", "text", 8_000, 500)
SLACK = Channel("slack", "markdown", 3_500, 400)
TELEGRAM = Channel("telegram", "html", 3_800, 300)
EMAIL = Channel("email", "html", 60_000, 1_000)
DISCORD = Channel("discord", "markdown", 1_900, 150)

_CHANNEL_BY_SCHEME = {
    "slack": SLACK,
    "slacks": SLACK,
    "tgram": TELEGRAM,
    "mailto": EMAIL,
    "mailtos": EMAIL,
    "email": EMAIL,
    "discord": DISCORD,
}


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case ('?' if it has none): the only part we ever show."""
    return url.split("://", 1)[0].strip().lower() if "://" in url else "?"


def channel_for_url(url: str) -> Channel:
    """The channel profile for a notifier URL, by its scheme (unknown schemes: text)."""
    return _CHANNEL_BY_SCHEME.get(scheme_of(url), TEXT)


# --- hostile text -----------------------------------------------------------------

_MENTION = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_MD_SPECIAL = re.compile(r"([\\`*_~\[\]()<>!#])")
_KEEP_FORMAT_CHARS = {"\u200d"}  # zero-width joiner glues emoji sequences
_ZWSP = "\u200b"


def clean(text: str) -> str:
    """One line of displayable text: no bad surrogates, control or invisible characters."""
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp"):
            kept.append(" ")
        elif category in ("Cf", "Co", "Cs", "Cn") and ch not in _KEEP_FORMAT_CHARS:
            continue
        else:
            kept.append(ch)
    return _SPACE.sub(" ", "".join(kept)).strip()


def neutralise_mentions(text: str) -> str:
    """Break ``@channel``/``@here``/``@everyone`` so no chat service pings on them."""
    return _MENTION.sub("@" + _ZWSP, text)


def escape_for(fmt: Format, text: str) -> str:
    """Clean, de-mention and escape hostile ``text`` for ``fmt`` (exactly once)."""
    text = neutralise_mentions(clean(text))
    if fmt == "html":
        return html.escape(text, quote=True)
    if fmt == "markdown":
        return _MD_SPECIAL.sub(r"\\\1", text)
    return text


def truncate(text: str, limit: int) -> str:
    """Cut cleaned ``text`` to ``limit`` characters at a word if one is near, add an ellipsis."""
    text = clean(text)
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.7:
        cut = cut[:space]
    while cut and (unicodedata.category(cut[-1]) in ("Mn", "Me") or cut[-1] == "\u200d"):
        cut = cut[:-1]
    return cut.rstrip() + "…"


def safe_url(url: str) -> str:
    """``url`` with every character that could end a link or an attribute percent-encoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return ""
    return quote(url, safe=":/@.-_~%?=&+,;")


# --- humane figures ---------------------------------------------------------------


def human_number(value: object) -> str:
    """1234 -> '1.2K', 1_250_000 -> '1.2M'; unknown -> '?'."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "?"
    n = float(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            # floor, not round: 999_999 must not read as "1000.0K"
            shown = int(n / size * 10) / 10
            return f"{shown:.1f}".removesuffix(".0") + suffix
    return f"{int(n)}" if n == int(n) else f"{n:.1f}"


def human_date(value: object) -> str:
    """A datetime as '12 Mar 2025 14:05 UTC'; unknown -> '?'."""
    if not isinstance(value, datetime):
        return "?"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"{value.day} {value:%b %Y %H:%M} UTC"


def item_stats(item: Item | None) -> str:
    """The item's figures on one line: views, likes, days running, shop."""
    if item is None:
        return ""
    parts = []
    if item.views is not None:
        parts.append(f"{human_number(item.views)} views")
    if item.likes is not None:
        parts.append(f"{human_number(item.likes)} likes")
    if item.days_running is not None:
        parts.append(f"running {item.days_running} days")
    if item.rank is not None:
        parts.append(f"rank {item.rank}")
    shop = item.shop_name or item.shop_domain
    if shop:
        parts.append(f"shop {shop}")
    return " · ".join(parts)


def handle(item: Item | None) -> str:
    """The item's ``@handle`` (``@?`` when unknown)."""
    if item is None or not item.handle:
        return "@?"
    return "@" + item.handle.lstrip("@")
