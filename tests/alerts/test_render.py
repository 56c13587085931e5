"""Rendering: templates, escaping per format, digests, splitting, overrides, sandbox."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.alerts.corpus import FORBIDDEN, NASTY_CAPTIONS, UNSAFE_ANYWHERE
from watcher.channels import (
    DISCORD,
    EMAIL,
    SLACK,
    TELEGRAM,
    TEXT,
    Channel,
    channel_for_url,
    clean,
    escape_for,
    human_date,
    human_number,
    truncate,
)
from watcher.errors import TemplateError
from watcher.models import Event, EventKind
from watcher.render import Renderer
from watcher.samples import sample_event, sample_item

GOLDEN = Path(__file__).parent / "golden"
CHANNELS = (TEXT, SLACK, TELEGRAM, EMAIL, DISCORD)


def _events(count: int, kind: EventKind = EventKind.NEW_AD) -> list[Event]:
    return [sample_event(kind, n=i) for i in range(count)]


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        ("slack://T/B/C", SLACK),
        ("slacks://T/B/C", SLACK),
        ("tgram://token/chat", TELEGRAM),
        ("mailtos://u:p@example.com", EMAIL),
        ("mailto://example.com", EMAIL),
        ("discord://id/token", DISCORD),
        ("json://localhost/", TEXT),
        ("form://localhost/", TEXT),
        ("nonsense", TEXT),
    ],
)
def test_channel_for_url(url: str, channel: Channel) -> None:
    """A notifier URL's scheme picks the channel profile; unknown schemes get text."""
    assert channel_for_url(url) == channel


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (999, "999"),
        (1_000, "1K"),
        (12_345, "12.3K"),
        (999_999, "999.9K"),
        (1_250_000, "1.2M"),
        (3_000_000_000, "3B"),
        (None, "?"),
        (True, "?"),
    ],
)
def test_human_number(value: object, shown: str) -> None:
    """Counts read the way people say them."""
    assert human_number(value) == shown


def test_human_date_is_utc_and_readable() -> None:
    """Dates print as day, month, year, time and zone."""
    assert human_date(datetime(2025, 3, 2, 9, 5, tzinfo=UTC)) == "2 Mar 2025 09:05 UTC"


def test_clean_removes_invisible_and_fixes_surrogates() -> None:
    """Bidi and zero-width characters go, controls become spaces, lone surrogates U+FFFD."""
    assert clean("a\u202eb\u200bc\x00d\ud800e\n f") == "abc d\ufffde f"
    assert clean("👨‍👩‍👧") == "👨‍👩‍👧"


def test_truncate_never_exceeds_limit() -> None:
    """A truncated caption fits its budget and says it was cut."""
    out = truncate("x" * 5000, 100)
    assert len(out) == 100
    assert out.endswith("…")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_escape_neutralises_pings(fmt: str) -> None:
    """No format lets a caption ping a whole channel."""
    out = escape_for(fmt, "@everyone @here @channel")  # type: ignore[arg-type]
    assert not re.search(r"@(everyone|here|channel)", out)


@pytest.mark.parametrize("kind", list(EventKind))
@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
def test_every_kind_renders_with_its_facts(
    renderer: Renderer, kind: EventKind, channel: Channel
) -> None:
    """Every kind renders in every channel; item alerts carry id, link, handle and watch."""
    event = sample_event(kind)
    message = renderer.render_event(event, channel)
    assert message.title
    assert message.body
    assert message.format == channel.format
    if event.item is not None:
        text = message.title + message.body
        assert event.watch in text
        assert str(event.item.tiktok_id) in message.body
        assert str(event.item.link) in message.body
        assert "@rivalbrand" in message.body


def test_rank_jump_shows_the_climb(renderer: Renderer) -> None:
    """A rank jump shows where it came from and where it is."""
    message = renderer.render_event(sample_event(EventKind.RANK_JUMP), TEXT)
    assert "48 → 7" in message.title
    assert "1.2M views" in message.body


@pytest.mark.parametrize("name", sorted(NASTY_CAPTIONS))
@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
def test_nasty_captions_render_inert(renderer: Renderer, name: str, channel: Channel) -> None:
    """A hostile caption renders without pings, tags, controls; within the budget."""
    item = replace(sample_item(), caption=NASTY_CAPTIONS[name])
    message = renderer.render_event(sample_event(EventKind.NEW_AD, item=item), channel)
    forbidden = UNSAFE_ANYWHERE if channel.format == "text" else FORBIDDEN
    if channel.format != "html":  # an attribute is only live inside an HTML tag
        forbidden = tuple(f for f in forbidden if not f.startswith("href"))
    # In CommonMark a backslash-escaped character is literal text, never markup.
    body = re.sub(r"\\.", "", message.body) if channel.format == "markdown" else message.body
    for bad in forbidden:
        assert bad not in body, bad
    assert len(message.title) + len(message.body) <= channel.max_chars
    assert item.tiktok_id in message.body


def test_digest_groups_events_of_one_poll(renderer: Renderer) -> None:
    """A few events of one watch become one message naming the watch, listing them all."""
    events = _events(3)
    [message] = renderer.render_digest("acme-shop", events, SLACK)
    assert "acme-shop" in message.title
    for event in events:
        assert str(event.item and event.item.tiktok_id) in message.body


def test_single_event_digest_is_the_plain_alert(renderer: Renderer) -> None:
    """A digest of one event is that event's own alert."""
    event = sample_event(EventKind.PINNED)
    assert renderer.render_digest("acme-shop", [event], TEXT) == [
        renderer.render_event(event, TEXT)
    ]


def test_above_threshold_a_summary_with_counts(renderer: Renderer) -> None:
    """Above the threshold the digest opens with counts by kind and the top entries."""
    events = _events(8) + _events(5, EventKind.AD_STOPPED)
    messages = renderer.render_digest("acme-shop", events, EMAIL)
    first = messages[0].body
    assert "new ad: 8" in first
    assert "ad stopped: 5" in first
    assert "Top 5" in first


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
@pytest.mark.parametrize("threshold", [10, 1_000])
def test_digest_split_never_drops_an_event(channel: Channel, threshold: int) -> None:
    """200 events split into numbered messages within budget, every tiktokId present."""
    renderer = Renderer(digest_threshold=threshold)
    events = _events(200)
    messages = renderer.render_digest("acme-shop", events, channel)
    assert len(messages) > 1 or channel == EMAIL
    everything = "".join(m.body for m in messages)
    for event in events:
        assert event.item is not None
        assert str(event.item.tiktok_id) in everything
    for i, message in enumerate(messages, 1):
        assert len(messages) == 1 or f"({i}/{len(messages)})" in message.title
        assert len(message.title) + len(message.body) <= channel.max_chars


def test_split_never_cuts_an_entity(renderer: Renderer) -> None:
    """Split HTML messages each hold balanced tags and whole entities."""
    item = replace(sample_item(), caption="&<>\"' " * 400)
    events = [
        sample_event(EventKind.NEW_AD, item=replace(item, tiktok_id=str(i))) for i in range(40)
    ]
    for message in Renderer(digest_threshold=100).render_digest("w", events, TELEGRAM):
        assert message.body.count("<b>") == message.body.count("</b>")
        assert message.body.count("<a ") == message.body.count("</a>")
        assert not re.search(r"&[a-z#0-9]*$", message.body)
        assert not re.search(r"&(?!amp;|lt;|gt;|quot;|#x27;)", message.body)


def test_user_template_overrides_by_name(tmp_path: Path) -> None:
    """A file in templates_dir replaces the shipped one of the same name."""
    (tmp_path / "new_ad.title.j2").write_text("NEW {{ item.tiktok_id }} in {{ watch }}")
    renderer = Renderer(tmp_path)
    message = renderer.render_event(sample_event(EventKind.NEW_AD), TEXT)
    assert message.title == "NEW 7078586231734521093 in acme-shop"
    assert renderer.validate() == []


def test_user_template_output_is_escaped(tmp_path: Path) -> None:
    """A user template printing a raw caption still gets it escaped for the channel."""
    (tmp_path / "new_ad.body.j2").write_text("{{ item.caption }} {{ item.link }}")
    item = replace(sample_item(), caption="<b>x</b> @everyone")
    body = Renderer(tmp_path).render_event(sample_event("new_ad", item=item), TELEGRAM).body
    assert "&lt;b&gt;x&lt;/b&gt;" in body
    assert "@everyone" not in body


def test_strict_undefined_typo_is_an_error(tmp_path: Path) -> None:
    """A typo in a user template fails validation with the file and line."""
    (tmp_path / "pinned.body.j2").write_text("ok\n{{ item.captoin }}\n")
    problems = Renderer(tmp_path).validate([EventKind.PINNED])
    assert problems
    assert "pinned.body.j2:2" in problems[0]
    assert "captoin" in problems[0]
    with pytest.raises(TemplateError):
        Renderer(tmp_path).render_event(sample_event(EventKind.PINNED), TEXT)


def test_syntax_error_is_reported(tmp_path: Path) -> None:
    """A template that does not compile is reported, not raised, by validate()."""
    (tmp_path / "digest.body.j2").write_text("{% for x in %}")
    problems = Renderer(tmp_path).validate([EventKind.NEW_AD])
    assert any("digest.body.j2:1" in p for p in problems)


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__ }}", "{{ item.__class__.__mro__ }}", "{{ figures.clear() }}"],
)
def test_sandbox_blocks_internals(tmp_path: Path, source: str) -> None:
    """Templates cannot reach Python internals or mutate their inputs."""
    (tmp_path / "new_ad.body.j2").write_text(source)
    with pytest.raises(TemplateError):
        Renderer(tmp_path).render_event(sample_event(EventKind.NEW_AD), TEXT)


def test_output_is_capped(tmp_path: Path) -> None:
    """A runaway template is an error, not a giant message."""
    (tmp_path / "new_ad.body.j2").write_text("{% for i in range(100000) %}xxxxxxxx{% endfor %}")
    with pytest.raises(TemplateError, match="exceeds"):
        Renderer(tmp_path, max_chars=10_000).render_event(sample_event("new_ad"), TEXT)


def test_shipped_templates_validate(renderer: Renderer) -> None:
    """Every shipped template renders against the samples in every format."""
    assert renderer.validate() == []


@pytest.mark.parametrize(
    ("name", "kind", "channel"),
    [
        ("rank_jump.slack", EventKind.RANK_JUMP, SLACK),
        ("new_ad.telegram", EventKind.NEW_AD, TELEGRAM),
        ("ad_stopped.text", EventKind.AD_STOPPED, TEXT),
        ("credits_low.email", EventKind.CREDITS_LOW, EMAIL),
        ("ad_milestone.slack", EventKind.AD_MILESTONE, SLACK),
        ("silence_ended.telegram", EventKind.SILENCE_ENDED, TELEGRAM),
    ],
)
def test_golden(renderer: Renderer, name: str, kind: EventKind, channel: Channel) -> None:
    """Rendered alerts match their golden files (WATCHER_REGEN_GOLDEN=1 rewrites them)."""
    message = renderer.render_event(sample_event(kind), channel)
    text = f"{message.title}\n---\n{message.body}\n"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("WATCHER_REGEN_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
