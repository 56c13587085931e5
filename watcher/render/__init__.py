"""Events -> alert messages, per channel; the only Jinja user (the dashboard's fixed HTML
pages render through :class:`HtmlPages` here too).

Templates live in ``watcher/templates`` (``<name>.title.j2`` and ``<name>.body.j2`` for
every event kind, plus ``digest``, ``summary`` and ``test``); a user folder overrides any
of them by file name. Rendering is pure: data in, ``Message`` values out.

Hostile text (everything TikTok serves, and the user's own names) is escaped once, by
the environment's ``finalize`` hook, for every ``{{ ... }}`` a template prints: cleaned
(bad surrogates, control, zero-width and bidi-override characters removed), mentions
neutralised (``@channel`` -> ``@<ZWSP>channel``) and escaped for the channel's format.
Values the helpers ``bold()`` and ``link()`` build are ``Markup`` and pass untouched, so
nothing is escaped twice. Captions are truncated before escaping, so no cut ever lands
inside an entity or an escape sequence; digests split between entries, never inside one.

The channel profiles and the escaping itself are in ``channels.py`` (pure text, no
Jinja); this module wires them into the environment. Formats, and why (see ``notify.py``
for what apprise then does with each):

- ``markdown`` (Slack, Discord): CommonMark with backslash escapes. apprise turns it into
  Slack mrkdwn (``\\<`` -> ``&lt;``, ``&`` -> ``&amp;``), so ``<!channel>`` or
  ``<http://x|y>`` in a caption arrives as inert text.
- ``html`` (Telegram, email): HTML-escaped. apprise reduces it to Telegram's tag subset
  (re-escaping the text it parsed, so once in, once out) or mails it with a plain part.
- ``text`` (json, console, anything else): cleaned and mentions neutralised only.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from watcher.channels import (
    FORMATS,
    SLACK,
    TELEGRAM,
    TEXT,
    Channel,
    Format,
    escape_for,
    handle,
    human_date,
    human_number,
    item_stats,
    safe_url,
    truncate,
)
from watcher.errors import TemplateError
from watcher.models import Event, EventKind, Item
from watcher.samples import sample_event

PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"
DEFAULT_MAX_CHARS = 200_000
DEFAULT_DIGEST_THRESHOLD = 10
SUMMARY_TOP = 5
# Names of templates that are not event kinds; ``baseline`` events use ``summary``.
EXTRA_TEMPLATES = ("digest", "summary", "test", "roundup", "roundup_watch")


@dataclass(frozen=True, slots=True)
class Message:
    """One message as a channel receives it: plain-text title, body in ``format``."""

    title: str
    body: str
    format: Format


# --- the Jinja environments -------------------------------------------------------


def _environment(loader: jinja2.BaseLoader, fmt: Format) -> ImmutableSandboxedEnvironment:
    def finalize(value: object) -> object:
        if isinstance(value, Markup):
            return value
        return Markup(escape_for(fmt, str(value)))  # noqa: S704  # escaped just above

    def bold(text: object) -> Markup:
        inner = finalize(text)
        if fmt == "html":
            return Markup(f"<b>{inner}</b>")  # noqa: S704  # inner is escaped
        if fmt == "markdown":
            return Markup(f"**{inner}**")  # noqa: S704  # inner is escaped
        return Markup(inner)  # noqa: S704  # inner is escaped

    def link(url: object) -> Markup:
        target = safe_url(str(url)) if url else ""
        if not target:
            return Markup("(no link)")
        if fmt == "html":
            attr = html.escape(target, quote=True)
            return Markup(f'<a href="{attr}">{attr}</a>')  # noqa: S704  # attr is escaped
        if fmt == "markdown":
            return Markup(f"<{target}>")  # noqa: S704  # safe_url leaves no "<", ">" or space
        return Markup(target)  # noqa: S704  # text format has no markup

    @jinja2.pass_context
    def caption(context: jinja2.runtime.Context, item: Item | None) -> str:
        text = (item.caption if item else None) or ""
        limit = context.get("caption_limit", 300)
        return truncate(text, limit) if text and limit > 0 else "(no caption)"

    env = ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(bold=bold, link=link, fmt=fmt)
    env.filters.update(
        num=human_number, date=human_date, stats=item_stats, handle=handle, caption=caption
    )
    return env


def _template_location(tb: TracebackType | None) -> str:
    """'file.j2:LINE' of the innermost template frame in a Jinja traceback, if any."""
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{Path(filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


class Renderer:
    """Renders events into ``Message``s for a channel; built once per config."""

    def __init__(
        self,
        templates_dir: Path | None = None,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        digest_threshold: int = DEFAULT_DIGEST_THRESHOLD,
    ) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(PACKAGE_TEMPLATES)]
        if templates_dir is not None:
            loaders.insert(0, jinja2.FileSystemLoader(templates_dir))
        loader = jinja2.ChoiceLoader(loaders)
        self._envs = {fmt: _environment(loader, fmt) for fmt in FORMATS}
        self.max_chars = max_chars
        self.digest_threshold = digest_threshold

    # --- public API -----------------------------------------------------------

    def render_event(self, event: Event, channel: Channel) -> Message:
        """One event (item, ops or baseline) as one message."""
        name = _template_name(event.kind)
        ctx = self._context(event.watch, channel, event=event, in_digest=False)
        return self._message(name, channel, ctx)

    def render_test(self, channel: Channel, notifier: str = "notifier") -> Message:
        """The ``test-notify`` message, with a sample item so formatting can be checked."""
        event = sample_event(EventKind.NEW_AD)
        ctx = self._context(event.watch, channel, event=event, notifier=notifier)
        return self._message("test", channel, ctx)

    def render_digest(self, watch: str, events: Sequence[Event], channel: Channel) -> list[Message]:
        """Events of one watch from one poll, as few messages as the channel allows.

        One event: its own alert. Up to ``digest_threshold``: a digest of full entries.
        Above: a summary (counts by kind, the top entries in full, then one line for
        every other event). Split between entries, never dropping one.
        """
        if not events:
            return []
        if len(events) == 1:
            return [self.render_event(events[0], channel)]
        counts = Counter(str(e.kind) for e in events)
        if len(events) <= self.digest_threshold:
            entries = [self._entry(e, channel) for e in events]
            return self._pack("digest", watch, channel, entries, counts=counts)
        ranked = sorted(events, key=_significance, reverse=True)
        top = ranked[:SUMMARY_TOP]
        rest = [e for e in events if e not in top]
        entries = [self._entry(e, channel) for e in top]
        entries += [self._entry(e, channel, compact=True) for e in rest]
        return self._pack(
            "summary", watch, channel, entries, counts=counts, top=len(top), reason="digest"
        )

    def render_roundup(
        self, groups: Sequence[tuple[str, Sequence[Event]]], channel: Channel, reason: str
    ) -> list[Message]:
        """Held alerts of several watches as one digest (quiet hours over, a scheduled
        digest): a heading per watch, its events in the order given, split when too long.
        A watch with more than ``digest_threshold`` events shows its top ones in full and
        one line for every other."""
        entries: list[Markup] = []
        counts: Counter[str] = Counter()
        for watch, events in groups:
            counts.update(str(e.kind) for e in events)
            ctx = self._context(watch, channel, total=len(events))
            entries.append(Markup(self._render("roundup_watch.body.j2", channel.format, ctx)))  # noqa: S704  # escaped by our environment
            full = events
            if len(events) > self.digest_threshold:
                full = sorted(events, key=_significance, reverse=True)[:SUMMARY_TOP]
            entries += [self._entry(e, channel, compact=e not in full) for e in events]
        if not entries:
            return []
        return self._pack(
            "roundup",
            "watcher",
            channel,
            entries,
            counts=counts,
            reason=reason,
            watches=len(groups),
        )

    def validate(self, kinds: Iterable[EventKind | str] | None = None) -> list[str]:
        """Render every template ``kinds`` need (default: all) in every format; the errors."""
        wanted = list(EventKind) if kinds is None else [EventKind(k) for k in kinds]
        problems: list[str] = []
        for channel in (TEXT, SLACK, TELEGRAM):
            try:
                for kind in wanted:
                    self.render_event(sample_event(kind), channel)
                items = [k for k in wanted if not k.is_ops]
                if items:
                    sample = [sample_event(k) for k in items]
                    self.render_digest("sample-watch", sample * 2, channel)
                    self.render_roundup([("sample-watch", sample)], channel, "Digest")
                    saved, self.digest_threshold = self.digest_threshold, 1
                    try:
                        self.render_digest("sample-watch", sample * 2, channel)
                        self.render_roundup([("sample-watch", sample * 2)], channel, "Digest")
                    finally:
                        self.digest_threshold = saved
                self.render_test(channel)
            except TemplateError as exc:
                if str(exc) not in problems:
                    problems.append(str(exc))
        return problems

    # --- internals ------------------------------------------------------------

    def _context(self, watch: str, channel: Channel, **extra: object) -> dict[str, object]:
        event = extra.get("event")
        ctx: dict[str, object] = {
            "watch": watch,
            "channel": channel.name,
            "caption_limit": channel.caption_chars,
            "in_digest": True,
            "entries": [],
            "counts": [],
            "total": 0,
            "top": 0,
            "part": 1,
            "parts": 1,
            "notifier": "notifier",
        }
        if isinstance(event, Event):
            ctx.update(
                kind=str(event.kind),
                item=event.item,
                figures=event.figures,
                detected_at=event.detected_at,
                reason="baseline",
            )
        ctx.update(extra)
        return ctx

    def _render(self, name: str, fmt: Format, ctx: dict[str, object]) -> str:
        """One template rendered; whatever goes wrong in it is a ``TemplateError``.

        Output is collected chunk by chunk and stopped at ``max_chars``, so a template
        printing in a loop can't grow without bound (time is bounded by the caller:
        ``render_guard`` runs renderers in a child process with a deadline).
        """
        chunks: list[str] = []
        size = 0
        try:
            template = self._envs[fmt].get_template(name)
            for chunk in template.generate(ctx):
                size += len(chunk)
                if size > self.max_chars:
                    break
                chunks.append(chunk)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.name or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} not found") from exc
        except RecursionError as exc:
            where = _template_location(exc.__traceback__) or name
            raise TemplateError(
                f"{where}: recursion too deep (a template includes itself?)"
            ) from exc
        except Exception as exc:  # a user template may raise anything; it fails its message only
            where = _template_location(exc.__traceback__) or name
            raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if size > self.max_chars:
            raise TemplateError(f"{name}: output exceeds {self.max_chars} characters")
        return re.sub(r"\n{3,}", "\n\n", "".join(chunks).strip())

    def _message(self, name: str, channel: Channel, ctx: dict[str, object]) -> Message:
        title = self._render(f"{name}.title.j2", "text", ctx)
        body = self._render(f"{name}.body.j2", channel.format, ctx)
        if channel.format == "html":
            # Values printed by templates never hold a newline (clean() folds them), so
            # every newline here is template layout.
            body = body.replace("\n", "<br>\n")
        return Message(" ".join(title.split()), body, channel.format)

    def _entry(self, event: Event, channel: Channel, *, compact: bool = False) -> Markup:
        """One event as a digest entry, re-rendered with shorter captions if too long."""
        name = "compact" if compact else _template_name(event.kind)
        budget = channel.max_chars // 2
        for limit in (channel.caption_chars, channel.caption_chars // 4, 0):
            ctx = self._context(event.watch, channel, event=event, caption_limit=limit)
            body = self._render(f"{name}.body.j2", channel.format, ctx)
            if len(body) <= budget:
                break
        return Markup(body)  # noqa: S704  # rendered by our escaping environment

    def _pack(
        self,
        name: str,
        watch: str,
        channel: Channel,
        entries: list[Markup],
        **extra: object,
    ) -> list[Message]:
        """Greedy packing of entries into numbered messages within the channel budget."""
        counts = extra.get("counts")
        total = sum(counts.values()) if isinstance(counts, Counter) else len(entries)

        def render(part: list[Markup], index: int, parts: int) -> Message:
            ctx = self._context(
                watch, channel, entries=part, part=index, parts=parts, total=total, **extra
            )
            if isinstance(counts, Counter):
                ctx["counts"] = sorted(counts.items())
            return self._message(name, channel, ctx)

        def size(message: Message) -> int:
            return len(message.title) + len(message.body) + 2

        # Overhead measured with the widest part label the split can plausibly need.
        overhead = size(render([], len(entries), len(entries)))
        separator = 8 if channel.format == "html" else 2
        groups: list[list[Markup]] = [[]]
        used = overhead
        for entry in entries:
            cost = len(entry) + separator
            if groups[-1] and used + cost > channel.max_chars:
                groups.append([])
                used = overhead
            groups[-1].append(entry)
            used += cost
        # The estimate is checked: a part still too long (odd user template) is halved.
        final: list[list[Markup]] = []
        while groups:
            group = groups.pop(0)
            if len(group) > 1 and size(render(group, 1, len(groups) + 2)) > channel.max_chars:
                half = len(group) // 2
                groups[:0] = [group[:half], group[half:]]
                continue
            final.append(group)
        return [render(group, i, len(final)) for i, group in enumerate(final, 1)]


def _template_name(kind: EventKind | str) -> str:
    value = str(kind)
    return "summary" if value == "baseline" else value


def _significance(event: Event) -> tuple[int, int]:
    climb = 0
    before, after = event.figures.get("rank_before"), event.figures.get("rank_after")
    if isinstance(before, int) and isinstance(after, int):
        climb = before - after
    views = event.item.views if event.item and event.item.views is not None else -1
    return climb, views
