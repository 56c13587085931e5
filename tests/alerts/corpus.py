"""Hostile captions: what TikTok may serve, and what must never arrive at a channel."""

from __future__ import annotations

NASTY_CAPTIONS: dict[str, str] = {
    "slack_pings": "<!channel> <!here> <!everyone> heads up",
    "plain_pings": "@channel @here @everyone @Channel look",
    "slack_user_and_link": "hi <@U123ABC> see <http://evil.example|totally safe>",
    "html_script": '<script>alert(1)</script><img src=x onerror="alert(2)"> & <b>bold</b>',
    "markdown": "*bold* _it_ ~strike~ `code` [click](http://evil.example) ![i](http://x/y.png)",
    "telegram_html": (
        '<b>bold</b> <a href="http://evil.example">link</a> <tg-spoiler>s</tg-spoiler>'
    ),
    "invisible": (
        "zero\u200bwidth\u200c joiner\u2060 rtl\u202egnp.exe\u202c lri\u2066x\u2069 bom\ufeff"
    ),
    "controls": "bell\x07 nul\x00 esc\x1b[31m red\r\nnew line\ttab",
    "emoji": "creatine 💪🏽 family 👨‍👩‍👧 flag 🇺🇸 ✨",
    "surrogates": "broken \ud800 pair \udfff end",
    "long": "word " * 1000,
}

# Substrings that must never arrive in any format: pings and invisible/control characters.
UNSAFE_ANYWHERE = (
    "@channel",
    "@here",
    "@everyone",
    "\u202e",
    "\u200b" + "width",
    "\x07",
    "\x00",
    "\x1b",
    "\ud800",
)

# Substrings that, arriving in a markup message (Slack, Telegram, email), are an injection.
FORBIDDEN = (
    *UNSAFE_ANYWHERE,
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123ABC>",
    "<http://evil",
    "<script",
    "<img",
    'href="http://evil',
    "<tg-spoiler>",
)
