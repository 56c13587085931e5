"""Log lines for people or machines, and never a secret in either."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from watcher.cli import cli
from watcher.logs import (
    NOISY_LOGGERS,
    JsonFormatter,
    TextFormatter,
    clear_secrets,
    redact,
    register_public_names,
    register_secret,
    register_secrets,
    register_url,
    setup_logging,
    url_secrets,
)

SLACK_HOOK = "https://hooks.slack.com/services/T/B/XYZ"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)
    clear_secrets()


def _fail(message: str) -> None:
    raise RuntimeError(message)


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_lines_carry_the_poll_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON format: ts, level, logger, msg plus the extra fields the poll log passes."""
    setup_logging("json")
    logging.getLogger("watcher.run").info(
        "poll watch=%s outcome=%s",
        "acme",
        "ok",
        extra={
            "watch": "acme",
            "outcome": "ok",
            "items": 3,
            "events": 1,
            "credits": 4,
            "duration_ms": 812,
        },
    )
    [entry] = _lines(capsys.readouterr().err)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "watcher.run"
    assert entry["msg"] == "poll watch=acme outcome=ok"
    assert str(entry["ts"]).endswith("+00:00")
    assert {k: entry[k] for k in ("watch", "outcome", "items", "events", "credits")} == {
        "watch": "acme",
        "outcome": "ok",
        "items": 3,
        "events": 1,
        "credits": 4,
    }
    assert entry["duration_ms"] == 812


def test_text_format_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Text format: time, level, logger and message on one line; debug hidden by default."""
    setup_logging("text")
    logging.getLogger("watcher.daemon").info("started %d watches", 3)
    logging.getLogger("watcher.daemon").debug("hidden")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("INFO watcher.daemon: started 3 watches")


def test_registered_secret_never_appears(capsys: pytest.CaptureFixture[str]) -> None:
    """A registered secret is scrubbed from messages, args, extras and tracebacks."""
    secret = "hunter2-very-secret"
    register_secret(secret)
    setup_logging("json")
    log = logging.getLogger("watcher.test")
    log.warning("key is %s", secret, extra={"detail": f"url with {secret}"})
    try:
        _fail(f"failed with {secret}")
    except RuntimeError:
        log.exception("oops")
    err = capsys.readouterr().err
    assert secret not in err
    first, second = _lines(err)
    assert first["msg"] == "key is ***"
    assert first["detail"] == "url with ***"
    assert "RuntimeError: failed with ***" in str(second["exc"])


def test_slack_webhook_is_redacted_in_text_logs(capsys: pytest.CaptureFixture[str]) -> None:
    """A Slack webhook URL (its path is the secret) never reaches the log."""
    setup_logging("text")
    logging.getLogger("watcher.deliver").warning("delivery to %s failed", SLACK_HOOK)
    err = capsys.readouterr().err
    assert "T/B/XYZ" not in err
    assert "https://hooks.slack.com/***" in err


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (SLACK_HOOK, "T/B/XYZ"),
        ("mailtos://alerts:pa55word@example.com?to=ops@example.com", "pa55word"),
        ("postgresql://watcher:dbpa55@db:5432/watcher", "dbpa55"),
        ("slack://T000/B000/XXXX/#competitors", "XXXX"),
        ("tgram://123456:ABCdef/ChatID", "ABCdef"),
        ("https://api.example.com/hook?token=abc123&x=1", "abc123"),
        ("https://api.example.com/v1?api_key=abc123", "abc123"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("headers={'authorization': 'Bearer tok3n'}", "tok3n"),
        ("x-api-key: tt_live_9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("rejected key tt_sim_demo", "tt_sim_demo"),
        ("key tt_live_abcDEF123", "abcDEF123"),
        ("https://user:pw9@discord.com/api/webhooks/1/abc", "pw9"),
    ],
)
def test_redact_scrubs_secret_looking_values(text: str, secret: str) -> None:
    """Credentials in URLs, webhook paths, bearer tokens and TrendTrack keys are masked."""
    scrubbed = redact(f"before {text} after")
    assert secret not in scrubbed
    assert scrubbed.startswith("before ")
    assert "***" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "https://www.tiktok.com/@brand/video/7078586231734521093",
        "sqlite:////data/watcher.db",
        "https://api.trendtrack.io/v1/ads?page=2",
        "poll watch=acme outcome=ok items=3 events=1 credits=4 duration_ms=812",
        "GET /healthz 200",
    ],
)
def test_redact_leaves_harmless_text_alone(text: str) -> None:
    """Public links, the database path and ordinary log lines are kept as they are."""
    assert redact(text) == text


def test_register_secret_ignores_empty_and_tiny_values() -> None:
    """Empty or very short values are not registered (they would blank ordinary words)."""
    register_secret("")
    register_secret(None)
    register_secret("ab")
    assert redact("about a tab") == "about a tab"


def test_register_secrets_takes_many_values() -> None:
    """The API key and every notifier URL can be registered in one call."""
    register_secrets(["key-one-abc", None, "json://hooks.example/xyz"])
    assert redact("key-one-abc to json://hooks.example/xyz") == "*** to ***"


def test_register_secret_covers_the_url_quoted_form() -> None:
    """A registered URL is also scrubbed where it appears percent-encoded."""
    register_secret("json://host/p?x=a b")
    assert redact("sent to json%3A%2F%2Fhost%2Fp%3Fx%3Da%20b") == "sent to ***"


def test_a_notifier_urls_token_parts_are_registered_but_not_its_words_or_domain() -> None:
    """register_url masks a URL's tokens anywhere (a bot token, a webhook path); its host
    name when it is a domain, and its short path words, stay readable."""
    assert url_secrets("tgram://123456789:AAFbotTOKEN/-1001234") == [
        "tgram://123456789:AAFbotTOKEN/-1001234",
        "123456789",
        "AAFbotTOKEN",
        "-1001234",
    ]
    register_url("json://hooks.example.com/hook/s3cr3tWebhookPath")
    assert redact("token s3cr3tWebhookPath on hooks.example.com for hook") == (
        "token *** on hooks.example.com for hook"
    )


def test_a_url_part_that_names_a_notifier_or_watch_stays_readable() -> None:
    """The shipped config's ``json://localhost:8089/marketing`` for the notifier
    ``marketing``: its log lines said ``***[0]: delivery failed``. A part equal to a name
    the config gives in the clear is no credential; the URL itself and its other parts
    stay masked."""
    register_public_names(["marketing", "acme-shop"])
    register_url("json://localhost:8089/marketing/acme-shop/s3cr3tWebhookPath")
    line = "marketing[0] for acme-shop: json://localhost:8089/marketing/acme-shop/s3cr3tWebhookPath"
    assert redact(line) == "marketing[0] for acme-shop: ***"
    assert redact("token s3cr3tWebhookPath") == "token ***"


def test_noisy_libraries_are_quiet_unless_verbose() -> None:
    """httpx, apscheduler, apprise and uvicorn.access log WARNING+ unless --verbose."""
    setup_logging("text")
    for name in ("httpx", "apscheduler", "apprise", "uvicorn.access"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    assert logging.getLogger("watcher.run").isEnabledFor(logging.INFO)
    setup_logging("text", verbose=True)
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("watcher.run").isEnabledFor(logging.DEBUG)


def test_quiet_mode_keeps_only_warnings() -> None:
    """One-shot commands (quiet) log warnings only, and only the libraries' errors."""
    setup_logging("text", quiet=True)
    assert not logging.getLogger("watcher.notify").isEnabledFor(logging.INFO)
    assert logging.getLogger("watcher.notify").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("apprise").isEnabledFor(logging.WARNING)
    setup_logging("text", verbose=True, quiet=True)
    assert logging.getLogger("apprise").isEnabledFor(logging.DEBUG)


@pytest.mark.parametrize(
    ("command", "level"),
    [("run", logging.INFO), ("simulate", logging.INFO), ("status", logging.WARNING)],
)
def test_cli_logs_info_only_for_services(command: str, level: int) -> None:
    """`run` and `simulate` log their work; one-shot commands only warnings."""
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert logging.getLogger().level == level


def test_setup_is_idempotent_and_rejects_unknown_formats() -> None:
    """Calling setup twice leaves one handler; an unknown format is a ValueError."""
    first = setup_logging("text")
    second = setup_logging("json")
    root = logging.getLogger()
    assert first not in root.handlers
    assert second in root.handlers
    assert isinstance(second.formatter, JsonFormatter)
    with pytest.raises(ValueError, match="log format"):
        setup_logging("xml")


def test_cli_group_sets_up_logging_from_its_options() -> None:
    """`watcher --log-format json` installs the JSON formatter before the command runs."""
    result = CliRunner().invoke(cli, ["--log-format", "json", "status", "--help"])
    assert result.exit_code == 0
    formatters = [h.formatter for h in logging.getLogger().handlers]
    assert any(isinstance(f, JsonFormatter) for f in formatters)
    CliRunner().invoke(cli, ["status", "--help"])
    formatters = [h.formatter for h in logging.getLogger().handlers]
    assert any(isinstance(f, TextFormatter) for f in formatters)
