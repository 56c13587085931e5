"""Delivery through apprise's real plugins to real local receivers."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest

from tests.alerts.conftest import SLACK_URL, TELEGRAM_URL
from tests.alerts.corpus import FORBIDDEN, NASTY_CAPTIONS, UNSAFE_ANYWHERE
from tests.receivers import HttpReceiver, SmtpReceiver
from watcher.channels import channel_for_url
from watcher.models import Event, EventKind
from watcher.notify import hide_urls, send, send_to_notifier
from watcher.render import Message, Renderer
from watcher.samples import sample_event, sample_item

TIMEOUT = 10.0


def _nasty_events() -> list[Event]:
    return [
        sample_event(EventKind.NEW_AD, item=replace(sample_item(n), caption=caption), n=n)
        for n, caption in enumerate(NASTY_CAPTIONS.values())
    ]


def _assert_inert(text: str, forbidden: tuple[str, ...]) -> None:
    for bad in forbidden:
        assert bad.lower() not in text.lower(), bad


async def test_json_receiver_gets_title_and_body(renderer: Renderer, json_rx: HttpReceiver) -> None:
    """A json:// notifier posts the rendered title and body."""
    message = renderer.render_event(sample_event(EventKind.NEW_AD), channel_for_url(json_rx.url))
    result = await send(json_rx.url, message, timeout=TIMEOUT)
    assert result.ok, result.error
    [request] = json_rx.wait_for(1)
    payload = request.json()
    assert isinstance(payload, dict)
    assert payload["title"] == message.title
    assert "7078586231734521093" in payload["message"]


async def test_nasty_digest_to_slack_arrives_inert(
    renderer: Renderer, slack_rx: HttpReceiver
) -> None:
    """Hostile captions reach Slack entity-escaped: no ping, link, tag; ids and links intact."""
    events = _nasty_events()
    messages = renderer.render_digest("acme-shop", events, channel_for_url(SLACK_URL))
    [result] = await send_to_notifier([SLACK_URL], lambda url: messages, timeout=TIMEOUT)
    assert result.ok, result.error
    arrived = slack_rx.wait_for(len(messages))
    assert all(r.path == "/services/T0SECRET/B0SECRET/XoxSecretToken" for r in arrived)
    texts = []
    for request in arrived:
        payload = request.json()
        assert isinstance(payload, dict)
        attachment = payload["attachments"][0]
        texts.append(attachment["title"] + "\n" + attachment["text"])
        assert len(attachment["text"]) < 40_000
    text = "\n".join(texts)
    _assert_inert(text, FORBIDDEN)
    # Slack markup left: only our own <https://www.tiktok.com/...> links.
    for markup in re.findall(r"<[^>]*>", text):
        assert markup.startswith("<https://www.tiktok.com/@"), markup
    assert "acme-shop" in text
    for event in events:
        assert event.item is not None
        assert str(event.item.tiktok_id) in text
        assert str(event.item.link) in text


async def test_nasty_digest_to_telegram_arrives_inert(
    renderer: Renderer, telegram_rx: HttpReceiver
) -> None:
    """Hostile captions reach Telegram as escaped HTML text within 4,096 characters."""
    events = _nasty_events()
    messages = renderer.render_digest("acme-shop", events, channel_for_url(TELEGRAM_URL))
    [result] = await send_to_notifier([TELEGRAM_URL], lambda url: messages, timeout=TIMEOUT)
    assert result.ok, result.error
    arrived = telegram_rx.wait_for(len(messages))
    assert all(r.path == "/bot123456:AAsecretBotToken/sendMessage" for r in arrived)
    texts = []
    for request in arrived:
        payload = request.json()
        assert isinstance(payload, dict)
        assert payload["parse_mode"] == "HTML"
        assert len(payload["text"]) <= 4_096
        texts.append(payload["text"])
    text = "\n".join(texts)
    _assert_inert(text, FORBIDDEN)
    for tag in re.findall(r"<(/?[a-z-]+)", text):
        assert tag in ("b", "/b", "a", "/a"), tag
    assert "acme-shop" in text
    for event in events:
        assert event.item is not None
        assert str(event.item.tiktok_id) in text


async def test_nasty_alert_by_email_has_html_and_text(
    renderer: Renderer, smtp_rx: SmtpReceiver
) -> None:
    """An email arrives over SMTP with an escaped HTML part and a plain-text part."""
    url = smtp_rx.url()
    events = _nasty_events()
    messages = renderer.render_digest("acme-shop", events, channel_for_url(url))
    [result] = await send_to_notifier([url], lambda u: messages, timeout=TIMEOUT)
    assert result.ok, result.error
    [mail] = smtp_rx.wait_for(1)
    assert "acme-shop" in mail["Subject"]
    html_part = mail.get_body(("html",))
    text_part = mail.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    html_body, text_body = html_part.get_content(), text_part.get_content()
    _assert_inert(html_body, FORBIDDEN)
    _assert_inert(text_body, UNSAFE_ANYWHERE)
    for event in events:
        assert event.item is not None
        assert str(event.item.tiktok_id) in html_body
        assert str(event.item.link) in text_body


async def test_200_events_all_arrive_across_messages(
    renderer: Renderer, telegram_rx: HttpReceiver
) -> None:
    """A 200-event digest arrives in several messages carrying every tiktokId."""
    events = [sample_event(EventKind.NEW_AD, n=n) for n in range(200)]
    messages = renderer.render_digest("acme-shop", events, channel_for_url(TELEGRAM_URL))
    [result] = await send_to_notifier([TELEGRAM_URL], lambda url: messages, timeout=TIMEOUT)
    assert result.ok, result.error
    assert result.sent == result.total == len(messages) > 1
    text = "".join(str(r.json()) for r in telegram_rx.wait_for(len(messages)))
    for event in events:
        assert event.item is not None
        assert str(event.item.tiktok_id) in text


async def test_failure_is_reported_per_url_without_secrets(
    json_rx: HttpReceiver, slack_rx: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """One failing URL fails alone; its reason and the logs never hold the URL or token."""
    slack_rx.fail_next(1)
    message = Message("title", "body", "text")
    with caplog.at_level(logging.DEBUG):
        results = await send_to_notifier(
            [json_rx.url, SLACK_URL], lambda url: [message], timeout=TIMEOUT
        )
    assert [(r.index, r.scheme, r.ok) for r in results] == [(0, "json", True), (1, "slack", False)]
    error = results[1].error
    assert error
    for secret in ("T0SECRET", "B0SECRET", "XoxSecretToken", "slack://T0"):
        assert secret not in error
        assert secret not in caplog.text


async def test_json_receiver_recovers_after_failures(json_rx: HttpReceiver) -> None:
    """The receiver's injected 500s fail sends until they are used up."""
    json_rx.fail_next(2)
    message = Message("t", "b", "text")
    outcomes = [(await send(json_rx.url, message, timeout=TIMEOUT)).ok for _ in range(3)]
    assert outcomes == [False, False, True]


async def test_invalid_url_fails_cleanly() -> None:
    """A URL apprise cannot parse is a failed result naming only the scheme."""
    result = await send("slack://bad", Message("t", "b", "text"), timeout=TIMEOUT)
    assert not result.ok
    assert result.error == "not a valid slack:// notifier URL"


async def test_unreachable_server_is_a_failure() -> None:
    """A refused connection is a failed result, not an exception."""
    with HttpReceiver.json() as rx:
        url = rx.url
    result = await send(url, Message("t", "b", "text"), timeout=TIMEOUT)
    assert not result.ok
    assert result.error


async def test_console_prints_message(capsys: pytest.CaptureFixture[str]) -> None:
    """console:// prints title and body to stdout."""
    result = await send("console://", Message("Title", "Body", "text"))
    assert result.ok
    assert capsys.readouterr().out == "Title\nBody\n\n"


def test_redact_removes_urls_and_known_secrets() -> None:
    """Redaction hides whole URLs."""
    assert hide_urls("POST https://api.telegram.org/bot123:ABC/sendMessage failed") == (
        "POST https://*** failed"
    )
