"""Fixtures for rendering and delivery: a renderer and real local receivers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.receivers import (
    HttpReceiver,
    SmtpReceiver,
    point_slack_at,
    point_telegram_at,
)
from watcher.render import Renderer


@pytest.fixture
def renderer() -> Renderer:
    """The shipped templates, default limits."""
    return Renderer()


@pytest.fixture
def json_rx() -> Iterator[HttpReceiver]:
    """A json:// receiver on loopback."""
    with HttpReceiver.json() as rx:
        yield rx


@pytest.fixture
def slack_rx(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    """A fake Slack webhook API that apprise's real Slack plugin posts to."""
    with HttpReceiver.slack() as rx:
        point_slack_at(monkeypatch, rx)
        yield rx


@pytest.fixture
def telegram_rx(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    """A fake Telegram bot API that apprise's real Telegram plugin calls."""
    with HttpReceiver.telegram() as rx:
        point_telegram_at(monkeypatch, rx)
        yield rx


@pytest.fixture
def smtp_rx() -> Iterator[SmtpReceiver]:
    """A real SMTP server on loopback."""
    with SmtpReceiver() as rx:
        yield rx


SLACK_URL = "slack://T0SECRET/B0SECRET/XoxSecretToken/#competitors"
TELEGRAM_URL = "tgram://123456:AAsecretBotToken/-1001234"
