"""Issue 15 items 3 and 4: user templates that raise, loop or eat memory fail their own
messages only, never stall the outbox, block the event loop or hang ``watcher check``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receivers import HttpReceiver
from tests.test_outbox import Clock, item_event, make_settings, record_poll, text_of
from watcher.channels import TEXT
from watcher.errors import TemplateError
from watcher.models import EventKind
from watcher.outbox import Outbox
from watcher.render import Renderer
from watcher.render_guard import GuardedRenderer
from watcher.samples import sample_event
from watcher.store import Store

RAISING = {
    "zero-division": "{{ 1 // 0 }}",
    "huge-range": "{% for i in range(10**9) %}x{% endfor %}",
    "self-include": '{% include "new_ad.body.j2" %}',
}
LOOPING = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'watcher.db'}")
    yield s
    s.close()


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


@pytest.fixture
def ops_rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


def templates(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "new_ad.body.j2").write_text(source, "utf-8")
    return folder


@pytest.mark.parametrize("source", RAISING.values(), ids=RAISING.keys())
def test_a_template_raising_anything_is_a_template_error(tmp_path: Path, source: str) -> None:
    """Division by zero, an oversized range or a self-include is a TemplateError, not a crash."""
    renderer = Renderer(templates(tmp_path, source))
    with pytest.raises(TemplateError, match=r"new_ad\.body\.j2"):
        renderer.render_event(sample_event(EventKind.NEW_AD), TEXT)
    assert renderer.validate([EventKind.NEW_AD]), "validate reports it instead of raising"
    assert renderer.validate([EventKind.PINNED]) == [], "other kinds are unaffected"


@pytest.mark.parametrize("source", RAISING.values(), ids=RAISING.keys())
async def test_a_raising_template_dies_after_its_attempts_and_holds_back_nothing_else(
    tmp_path: Path, store: Store, rx: HttpReceiver, ops_rx: HttpReceiver, source: str
) -> None:
    """Its rows count attempts and die with one delivery_failed; a pinned alert still goes."""
    folder = templates(tmp_path, source)
    settings = make_settings(
        tmp_path,
        {"marketing": [rx.url], "ops": [ops_rx.url]},
        extra=f"templates_dir: {folder}\ndelivery: {{max_attempts: 3, backoff_seconds: 10}}",
    )
    clock = Clock()
    outbox = Outbox(settings, store, GuardedRenderer(folder, timeout=5), clock=clock)
    record_poll(store, settings, "acme", [item_event("acme", 1)])
    record_poll(store, settings, "acme", [item_event("acme", 2, EventKind.PINNED)])

    await outbox.flush()
    [pinned] = rx.wait_for(1)
    assert "Pinned" in text_of(pinned), "the good template is not held behind the bad one"
    for _ in range(3):
        clock.advance(3600)
        await outbox.flush()
    views = store.outbox.events()
    bad = next(v for v in views if v.event.kind == EventKind.NEW_AD)
    assert [(d.state, d.attempts) for d in bad.deliveries] == [("dead", 3)]
    assert "render failed" in (bad.deliveries[0].last_error or "")
    kinds = [v.event.kind for v in views]
    assert kinds.count(EventKind.DELIVERY_FAILED) == 1
    assert len(ops_rx.wait_for(1)) == 1
    assert len(rx.requests) == 1, "nothing half-rendered was sent"


def test_a_looping_template_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    """Nested range(100000) loops end in a TemplateError after the timeout; the next call works."""
    renderer = GuardedRenderer(templates(tmp_path, LOOPING), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(TemplateError, match="longer than 1s"):
        renderer.render_event(sample_event(EventKind.NEW_AD), TEXT)
    assert time.monotonic() - started < 15
    assert renderer.render_event(sample_event(EventKind.PINNED), TEXT).title
    renderer.close()


def test_a_template_eating_memory_fails_its_message_only(tmp_path: Path) -> None:
    """A gigabyte string hits the child's memory limit: a TemplateError, the parent unharmed."""
    renderer = GuardedRenderer(templates(tmp_path, "{{ 'x' * 10**9 }}"), timeout=20.0)
    with pytest.raises(TemplateError):
        renderer.render_event(sample_event(EventKind.NEW_AD), TEXT)
    assert renderer.render_event(sample_event(EventKind.PINNED), TEXT).title
    renderer.close()


async def test_a_looping_template_never_blocks_the_event_loop(
    tmp_path: Path, store: Store, rx: HttpReceiver
) -> None:
    """While a looping template renders, the loop keeps ticking; the other event is sent."""
    folder = templates(tmp_path, LOOPING)
    settings = make_settings(tmp_path, {"marketing": [rx.url]}, extra=f"templates_dir: {folder}")
    outbox = Outbox(settings, store, GuardedRenderer(folder, timeout=2.0), clock=Clock())
    record_poll(store, settings, "acme", [item_event("acme", 1)])
    record_poll(store, settings, "acme", [item_event("acme", 2, EventKind.PINNED)])

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    report = await outbox.flush()
    tick.cancel()
    assert (report.sent, report.failed) == (1, 1)
    assert len(gaps) >= 10, "the loop ran during the render"
    assert max(gaps) < 1.5, "no render blocked the loop for its whole deadline"
    assert len(rx.wait_for(1)) == 1


@pytest.mark.parametrize("source", [LOOPING, *RAISING.values()])
def test_check_reports_a_broken_or_looping_template_and_finishes(
    tmp_path: Path, source: str
) -> None:
    """``watcher check`` exits 1 with the template's problem, no traceback, in bounded time."""
    folder = templates(tmp_path, source)
    config = tmp_path / "watches.yaml"
    config.write_text(
        f"version: 1\ntemplates_dir: {folder}\nnotifiers: {{m: {{urls: ['json://127.0.0.1:9']}}}}\n"
        "watches:\n  - {name: acme, handle: acme, notify: [m]}\n",
        "utf-8",
    )
    watcher = shutil.which("watcher", path=str(Path(sys.executable).parent))
    assert watcher
    started = time.monotonic()
    result = subprocess.run(
        [watcher, "-c", str(config), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 40
    assert result.returncode == 1
    assert "template:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
