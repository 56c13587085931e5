"""The dashboard's HTML: Jinja templates shipped in the package, autoescaped (rendered by
``watcher.render.pages.HtmlPages``, so Jinja stays in one module).

The alerts' templates (``watcher.render``) escape per chat format and are overridable by
users; these are the dashboard's own, fixed, and escape for HTML only: every ``{{ }}``
is HTML-escaped (attributes included) and ``StrictUndefined`` turns a typo into an
error, not an empty cell. The pages carry no inline script or style, so the
Content-Security-Policy can forbid both; the only script is the shipped
``static/dashboard.js``, which the pages work without.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from watcher.render.pages import HtmlPages

TEMPLATES = Path(__file__).parent / "templates"
STATIC_TYPES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "placeholder.svg": "image/svg+xml",
}


def query_url(path: str, pairs: Sequence[tuple[str, str]]) -> str:
    """``path?a=1&b=2`` (or ``path`` alone), every value percent-encoded."""
    return f"{path}?{urlencode(list(pairs))}" if pairs else path


def _number(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.0f}"
    return "-" if value is None else str(value)


class Pages:
    """Renders the dashboard's pages; built once per app."""

    def __init__(self) -> None:
        self._pages = HtmlPages(
            TEMPLATES, helpers={"query": query_url}, filters={"number": _number}
        )

    def render(self, name: str, **context: object) -> str:
        return self._pages.render(name, **context)


def static_files() -> dict[str, tuple[bytes, str]]:
    """The shipped CSS, script and placeholder image: name -> (bytes, media type)."""
    folder = resources.files("watcher.dashboard") / "static"
    return {name: ((folder / name).read_bytes(), kind) for name, kind in STATIC_TYPES.items()}
