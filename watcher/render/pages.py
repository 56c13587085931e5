"""Fixed HTML pages (the dashboard's), rendered with Jinja here so Jinja stays in
``watcher.render``; the alert renderer is the package itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import jinja2

from watcher.errors import TemplateError


class HtmlPages:
    """Fixed HTML templates from a package folder (the dashboard's pages).

    Not user-editable, so not sandboxed; autoescaped, so every ``{{ }}`` is HTML-escaped
    once (attributes included), and ``StrictUndefined``, so a typo is an error.
    """

    def __init__(
        self,
        folder: Path,
        *,
        helpers: Mapping[str, Callable[..., object]] | None = None,
        filters: Mapping[str, Callable[..., object]] | None = None,
    ) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals.update(helpers or {})
        self._env.filters.update(filters or {})

    def render(self, name: str, **context: object) -> str:
        try:
            return self._env.get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"page template {name}: {exc}") from exc
