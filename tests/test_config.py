"""watches.yaml -> Settings: every problem with its line, env, secrets, defaults, fingerprints."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from watcher.config import Settings, Target, Watch, load_settings, parse_settings
from watcher.errors import ConfigError, ConfigProblem
from watcher.models import EventKind
from watcher.schedule import Schedule
from watcher.trendtrack import QueryBody

REPO = Path(__file__).resolve().parents[1]
SHOP = "3f8aa146-6f96-46e8-9781-64db5166f9a8"

# Lines 1-8; the snippets of the bad-config table start at line 9.
HEAD = """\
version: 1
notifiers:
  marketing:
    urls: ["json://localhost/marketing"]
  ops:
    urls: ["json://localhost/ops"]
defaults:
  notify: [marketing]
"""


def parse(text: str, env: dict[str, str] | None = None, base_dir: Path | None = None) -> Settings:
    return parse_settings(textwrap.dedent(text), "watches.yaml", env or {}, base_dir)


def problems(text: str, env: dict[str, str] | None = None) -> tuple[ConfigProblem, ...]:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return info.value.problems


def one_watch(body: str) -> Watch:
    """The single watch of HEAD + ``watches:`` + the given watch lines."""
    settings = parse(HEAD + "watches:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    (watch,) = settings.watches
    return watch


BAD = [
    # (snippet from line 9, expected line, fragment)
    ("bogus: 1\n", 9, "unknown key 'bogus'"),
    ("api:\n  max_concurency: 3\n", 10, "did you mean 'max_concurrency'"),
    ("api:\n  base_url: ftp://x\n", 10, "http(s) URL"),
    ("api:\n  max_concurrency: 0\n", 10, "api.max_concurrency: should be greater than or equal"),
    ("timezone: Mars/Olympus\n", 9, "unknown time zone 'Mars/Olympus'"),
    ("state:\n  retention: 3 months\n", 10, "bad duration '3 months'"),
    ("state:\n  retention: 90\n", 10, "a duration is a string"),
    ("ops_notify: [pager]\n", 9, "unknown notifier 'pager' (defined: marketing, ops)"),
    ("route:\n  rank_jump: [nobody]\n", 10, "unknown notifier 'nobody'"),
    ("route:\n  new_thing: [ops]\n", 10, "unknown event kind 'new_thing'"),
    ("route:\n  watch_failing: [ops]\n", 10, "is an ops event"),
    ("health:\n  port: 70000\n", 10, "health.port"),
    ("  every: 1h\n  cron: '0 * * * *'\n", 10, "defaults.cron: set either every or cron"),
    ("watches:\n  - name: a\n    shop: not-a-uuid\n", 11, "a UUID"),
    ("watches:\n  - name: a\n", 10, "watch 'a': needs exactly one target"),
    ("watches:\n  - name: a\n    hashtag: x\n    handle: y\n", 12, "several targets"),
    ("watches:\n  - name: a\n    hashtag: x\n    every: 5 min\n", 12, "bad duration '5 min'"),
    (
        "watches:\n  - name: a\n    hashtag: x\n    every: 1h\n    cron: '0 9 * * 1'\n",
        13,
        "not both",
    ),
    ("watches:\n  - name: a\n    hashtag: x\n    cron: '0 9 * * 9'\n", 12, "bad cron"),
    ("watches:\n  - name: a\n    hashtag: x\n    events: [new_ad, boom]\n", 12, "'boom'"),
    ("watches:\n  - name: a\n    hashtag: x\n    events: [credits_low]\n", 12, "ops event"),
    ("watches:\n  - name: a\n    hashtag: x\n    events: [baseline]\n", 12, "on_first_run"),
    ("watches:\n  - name: a\n    hashtag: x\n    events: []\n", 12, "at least 1 item"),
    (
        "watches:\n  - name: a\n    hashtag: x\n    notify: [sales]\n",
        12,
        "unknown notifier 'sales'",
    ),
    ("watches:\n  - name: a\n    hashtag: x\n    priority: urgent\n", 12, "not 'urgent'"),
    ("watches:\n  - name: a\n    hashtag: x\n    type: video\n", 12, "'ad', 'organic' or 'all'"),
    ("watches:\n  - name: a\n    hashtag: x\n    status: paused\n", 12, "watch 'a': status"),
    ("watches:\n  - name: a\n    hashtag: x\n    on_first_run: loud\n", 12, "'notify_all'"),
    ("watches:\n  - name: a\n    hashtag: x\n    min_views: -1\n", 12, "greater than or equal"),
    ("watches:\n  - name: a\n    hashtag: x\n    max_credits_per_poll: 0\n", 12, "max_credits"),
    ("watches:\n  - name: a\n    hashtag: x\n    rank_jump: {track: 51}\n", 12, "less than or"),
    ("watches:\n  - name: a\n    hashtag: x\n    filter_window: 1.5d\n", 12, "bad duration"),
    ("watches:\n  - name: a\n    hashtag: x\n    search_area: caption\n", 12, "only applies"),
    ("watches:\n  - name: a\n    hashtag: x\n    evry: 1h\n", 12, "did you mean 'every'"),
    ("watches:\n  - name: a\n    search: [x]\n    keyword_mode: most\n", 12, "'any' or 'all'"),
    ("watches:\n  - name: a\n    query: {sortby: views}\n", 11, "unknown key 'sortby'"),
    ("watches:\n  - name: a\n    query: {limit: 500}\n", 11, "less than or equal to 50"),
    ("watches:\n  - name: a\n    query: {minViews: lots}\n", 11, "valid integer"),
    (
        "watches:\n  - name: a\n    query: {minViews: 100, maxViews: 10}\n",
        11,
        "query: is not a valid query body: maxViews (10) is below minViews (100)",
    ),
    (
        "watches:\n  - name: a\n    query: {publishedAfter: 2024-01-01}\n",
        11,
        "publishedAfter must be timezone-aware",
    ),
    ("watches:\n  - name: a b\n    hashtag: x\n", 10, "bad name 'a b'"),
    ("watches:\n  - hashtag: x\n", 10, "missing required key 'name'"),
    ("watches:\n  - name: a\n    hashtag: x\n  - name: a\n    hashtag: y\n", 12, "duplicate"),
    ("watches:\n  - name: a\n    hashtag: '#'\n", 11, "hashtag: is empty"),
    ("templates_dir: no/such/dir\n", 9, "is not a folder"),
    ("budget:\n  monthly_credits: many\n", 10, "valid integer"),
]


@pytest.mark.parametrize(("snippet", "line", "fragment"), BAD)
def test_bad_config_names_line_and_problem(snippet: str, line: int, fragment: str) -> None:
    """Each kind of mistake is reported at its line with what is wrong."""
    found = problems(HEAD + snippet)
    assert any(p.line == line and fragment in p.message for p in found), found
    assert all(p.file == "watches.yaml" for p in found)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("api: {max_concurrency: 3\n", 2, "YAML syntax error"),
        ("version: 1\nwatches:\n  - name: a\n   bad-indent: 1\n", 4, "YAML syntax error"),
        ("version: 1\nversion: 1\n", 2, "duplicate key 'version'"),
        ("- a list\n", 1, "must be a mapping"),
        ("", 1, "must be a mapping"),
        ("version: 2\n", 1, "unsupported version 2"),
        ("watches: []\n", 1, "missing required key 'version'"),
        ("version: 1\nnotifiers:\n  x:\n    urls: []\n", 4, "at least 1 item"),
        ("version: 1\nnotifiers:\n  x:\n    urls: ['not a url']\n", 4, "scheme://"),
        ("version: 1\nnotifiers:\n  x:\n    urls: 'json://x'\n  'a b': {urls: x}\n", 5, "bad name"),
    ],
)
def test_file_level_problems(text: str, line: int, fragment: str) -> None:
    """Syntax errors, duplicate keys, the wrong shape and a bad version are located too."""
    found = problems(text)
    assert any(p.line == line and fragment in p.message for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    """A bad duration in watch 1 and an unknown notifier in watch 3 both come back, in order."""
    text = HEAD + textwrap.dedent(
        """\
        watches:
          - name: one
            hashtag: x
            every: 1 hour
          - name: two
            hashtag: y
          - name: three
            hashtag: z
            notify: [marketing, slack]
        """
    )
    found = problems(text)
    assert [(p.line, p.message.split(": ")[1]) for p in found] == [
        (12, "every"),
        (17, "notify[1]"),
    ]
    assert "watch 'one'" in found[0].message
    assert "unknown notifier 'slack'" in found[1].message


def test_config_error_prints_file_and_line_per_problem() -> None:
    """str(ConfigError) is one `file:line: message` per problem."""
    with pytest.raises(ConfigError) as info:
        parse(HEAD + "bogus: 1\nother: 2\n")
    assert str(info.value).splitlines() == [
        "watches.yaml:9: unknown key 'bogus'",
        "watches.yaml:10: unknown key 'other'",
    ]


def test_env_variables_expand_in_values() -> None:
    """${VAR} takes the environment's value, ${VAR:-x} falls back to x, $$ is a dollar."""
    settings = parse(
        """\
        version: 1
        api:
          api_key: ${KEY}
          base_url: ${URL:-http://127.0.0.1:8765}
        state:
          database: ${DB:-}/tmp/$$HOME.db
        timezone: ${TZ_NAME:-UTC}
        """,
        env={"KEY": "tt_live_abc", "TZ_NAME": "Europe/Paris"},
    )
    assert settings.api.api_key is not None
    assert settings.api.api_key.get_secret_value() == "tt_live_abc"
    assert settings.api.base_url == "http://127.0.0.1:8765"
    assert settings.state.database == "sqlite:////tmp/$HOME.db"
    assert settings.timezone.key == "Europe/Paris"


def test_missing_env_variable_is_an_error_naming_it_and_its_line() -> None:
    """${VAR} with VAR unset is reported with the variable's name and the line."""
    found = problems("version: 1\napi:\n  api_key: ${TT_KEY}\n")
    assert [(p.line, "TT_KEY is not set" in p.message) for p in found] == [(3, True)]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("${OPEN", "unterminated"), ("${1BAD}", "bad variable reference"), ("${}", "bad variable")],
)
def test_malformed_variable_references_are_errors(value: str, fragment: str) -> None:
    """A reference that is not ${NAME} or ${NAME:-default} is reported, not kept."""
    found = problems(f"version: 1\napi:\n  base_url: 'http://h/{value}'\n")
    assert any(p.line == 3 and fragment in p.message for p in found), found


def test_env_is_not_expanded_in_keys() -> None:
    """Keys are never expanded: a ${...} key is just an unknown key."""
    found = problems("version: 1\n${KEY}: 1\n", env={"KEY": "api"})
    assert any("unknown key '${KEY}'" in p.message for p in found), found


def test_environment_overrides_and_fallbacks() -> None:
    """TRENDTRACK_BASE_URL and WATCHER_DB override; TRENDTRACK_API_KEY fills a missing key."""
    env = {
        "TRENDTRACK_BASE_URL": "http://127.0.0.1:9999/",
        "WATCHER_DB": "/data/watcher.db",
        "TRENDTRACK_API_KEY": "tt_live_env",
    }
    settings = parse("version: 1\napi:\n  base_url: https://api.trendtrack.io\n", env=env)
    assert settings.api.base_url == "http://127.0.0.1:9999"
    assert settings.state.database == "sqlite:////data/watcher.db"
    assert settings.api.api_key is not None
    assert settings.api.api_key.get_secret_value() == "tt_live_env"
    own = parse("version: 1\napi:\n  api_key: tt_live_file\n", env=env)
    assert own.api.api_key is not None
    assert own.api.api_key.get_secret_value() == "tt_live_file"


def test_health_endpoint_from_environment() -> None:
    """WATCHER_HEALTH_PORT / _HOST turn the health endpoint on without editing the file."""
    text = "version: 1\nhealth: {port: 9100}\n"
    assert parse(text).health.port == 9100
    settings = parse(text, env={"WATCHER_HEALTH_PORT": "8080", "WATCHER_HEALTH_HOST": "0.0.0.0"})
    assert (settings.health.port, settings.health.host) == (8080, "0.0.0.0")
    assert parse("version: 1\n").health.port is None
    found = problems("version: 1\n", env={"WATCHER_HEALTH_PORT": "http"})
    assert [p.message.split(":")[0] for p in found] == ["WATCHER_HEALTH_PORT"]


def test_bad_base_url_from_environment_is_reported() -> None:
    """An unusable TRENDTRACK_BASE_URL is a problem naming the variable."""
    found = problems("version: 1\n", env={"TRENDTRACK_BASE_URL": "localhost"})
    assert [p.message.split(":")[0] for p in found] == ["TRENDTRACK_BASE_URL"]


def test_built_in_defaults() -> None:
    """A minimal file gets the documented defaults everywhere."""
    settings = parse("version: 1\n")
    assert settings.api.base_url == "https://api.trendtrack.io"
    assert settings.api.api_key is None
    assert (settings.api.max_requests_per_minute, settings.api.max_concurrency) == (60, 4)
    assert settings.api.timeout_seconds == 30
    assert settings.budget.monthly_credits is None
    assert settings.state.database == "sqlite:///watcher.db"
    assert settings.state.retention == timedelta(days=90)
    assert settings.state.removed_watch_grace == timedelta(days=7)
    assert settings.timezone.key == "UTC"
    assert settings.templates_dir is None
    assert (settings.ops.failing_after, settings.ops.credits_low_below) == (3, 1000)
    assert settings.delivery.max_attempts == 8
    assert settings.delivery.digest_threshold == 10
    assert settings.health.port is None
    assert settings.health.host == "127.0.0.1"
    assert settings.watches == ()


def test_watch_gets_built_in_defaults() -> None:
    """A watch with only a target polls hourly for every event but rank_jump."""
    watch = one_watch("- name: a\n  hashtag: x\n")
    assert watch.schedule == Schedule(every=timedelta(hours=1))
    assert EventKind.RANK_JUMP not in watch.events
    assert watch.events == {
        EventKind.NEW_AD,
        EventKind.NEW_VIDEO,
        EventKind.PINNED,
        EventKind.UNPINNED,
        EventKind.AD_STOPPED,
        EventKind.AD_RESUMED,
    }
    assert (watch.on_first_run, watch.priority, watch.enabled) == ("silent", "normal", True)
    assert (watch.type, watch.status, watch.min_views, watch.language) == ("all", "all", None, None)
    assert watch.max_credits_per_poll == 200
    assert watch.filter_window == timedelta(days=7)
    assert (watch.rank_jump.min_climb, watch.rank_jump.track) == (20, 25)
    assert watch.notify == ("marketing",)


def test_defaults_are_inherited_and_a_watch_own_value_wins() -> None:
    """Defaults fill what a watch leaves out; its own keys win; cron beats a default every."""
    settings = parse(
        HEAD
        + textwrap.dedent(
            """\
              every: 6h
              events: [new_ad]
              priority: low
              min_views: 500
              rank_jump: {min_climb: 5}
            watches:
              - name: inherits
                hashtag: x
              - name: overrides
                hashtag: y
                cron: "0 9 * * 1"
                events: [pinned, rank_jump]
                notify: [ops]
                priority: high
                min_views: 0
                rank_jump: {track: 10}
            """
        )
    )
    inherits, overrides = settings.watches
    assert inherits.schedule == Schedule(every=timedelta(hours=6))
    assert inherits.events == {EventKind.NEW_AD}
    assert (inherits.priority, inherits.min_views, inherits.notify) == ("low", 500, ("marketing",))
    assert overrides.schedule == Schedule(cron="0 9 * * 1")
    assert overrides.events == {EventKind.PINNED, EventKind.RANK_JUMP}
    assert (overrides.priority, overrides.min_views, overrides.notify) == ("high", 0, ("ops",))
    assert (overrides.rank_jump.min_climb, overrides.rank_jump.track) == (5, 10)


def test_default_cron_is_overridden_by_a_watch_every() -> None:
    """A watch's every replaces a default cron (and is not a both-set error)."""
    settings = parse(
        HEAD + "  cron: '0 9 * * *'\nwatches:\n  - name: a\n    hashtag: x\n    every: 15m\n"
    )
    assert settings.watches[0].schedule == Schedule(every=timedelta(minutes=15))


@pytest.mark.parametrize(
    ("body", "target", "described"),
    [
        (f"shop: {SHOP.upper()}", Target("shop", (SHOP,)), "shop 3f8aa146…"),
        ("hashtag: '#Creatine'", Target("hashtag", ("Creatine",)), "#Creatine"),
        ("handle: '@RivalBrand'", Target("handle", ("rivalbrand",)), "@rivalbrand"),
        ("handle: rivalbrand", Target("handle", ("rivalbrand",)), "@rivalbrand"),
        ("search: protein gummies", Target("search", ("protein gummies",)), 'search "protein'),
        (
            "search: [a, b]\n  search_area: caption\n  keyword_mode: all",
            Target("search", ("a", "b"), "caption", "all"),
            'search "a", "b" (in caption, all keyword)',
        ),
    ],
)
def test_targets_are_normalised(body: str, target: Target, described: str) -> None:
    """Shop ids are canonical UUIDs, # and @ are dropped, handles lowercased, search a tuple."""
    watch = one_watch(f"- name: a\n  {body}\n")
    assert watch.target == target
    assert watch.describe_target().startswith(described)


def test_query_target_keeps_the_api_body() -> None:
    """A query body keeps its camelCase keys, drops nothing, and is read-only."""
    watch = one_watch(
        "- name: q\n  query: {search: [skincare], type: ad, minViews: 100000, sortBy: views,"
        " pinned: yes, publishedAfter: '2024-01-01T00:00:00Z'}\n"
    )
    assert watch.target.kind == "query"
    assert dict(watch.target.query or {}) == {
        "search": ("skincare",),
        "type": "ad",
        "minViews": 100000,
        "sortBy": "views",
        "pinned": "yes",
        "publishedAfter": "2024-01-01T00:00:00Z",
    }
    with pytest.raises(TypeError):
        watch.target.query["type"] = "organic"  # type: ignore[index]
    assert watch.target.body == QueryBody.from_json(dict(watch.target.query))
    assert watch.describe_target().startswith("query search=skincare ")
    assert "minViews=100000" in watch.describe_target()


def test_secrets_never_show_in_repr_str_or_errors() -> None:
    """The API key and notifier URLs stay hidden in repr/str, and errors never echo them."""
    text = HEAD.replace("json://localhost/ops", "mailtos://u:hunter2@example.com")
    settings = parse(text + "api:\n  api_key: tt_live_s3cret\n")
    for shown in (repr(settings), str(settings), repr(settings.notifiers), str(settings.api)):
        assert "tt_live_s3cret" not in shown
        assert "hunter2" not in shown
    secret_url = "api:\n  api_key: tt_live_s3cret\n  api_key: tt_live_other\n"
    bad_url = "notifiers:\n  x:\n    urls: ['hunter2 not a url']\n"
    for bad in (secret_url, bad_url, "api:\n  api_key: [tt_live_s3cret]\n"):
        message = "\n".join(str(p) for p in problems(HEAD + bad))
        assert "s3cret" not in message
        assert "hunter2" not in message
        assert message


def test_database_password_is_not_in_repr() -> None:
    """A database URL may carry a password, so StateSettings does not show it."""
    settings = parse("version: 1\n", env={"WATCHER_DB": "postgresql://u:pw123@db/w"})
    assert settings.state.database == "postgresql://u:pw123@db/w"
    assert "pw123" not in repr(settings)


def test_notifiers_and_routes_are_plain_values() -> None:
    """Notifiers carry their URLs as secrets; routes map EventKind to notifier names."""
    settings = parse(HEAD + "route:\n  rank_jump: [ops]\n  baseline: ops\nops_notify: ops\n")
    assert settings.notifiers["ops"].name == "ops"
    assert [u.get_secret_value() for u in settings.notifiers["ops"].urls] == [
        "json://localhost/ops"
    ]
    assert dict(settings.route) == {EventKind.RANK_JUMP: ("ops",), EventKind.BASELINE: ("ops",)}
    assert settings.ops_notify == ("ops",)


def test_templates_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    """templates_dir resolves against the folder of watches.yaml, not the working directory."""
    (tmp_path / "mine").mkdir()
    config = tmp_path / "watches.yaml"
    config.write_text("version: 1\ntemplates_dir: mine\n", encoding="utf-8")
    settings = load_settings(config, {})
    assert settings.templates_dir == tmp_path / "mine"
    assert settings.source == config


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that cannot be read is one ConfigError naming it."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(missing, {})
    assert str(missing) in str(info.value)


FINGERPRINTED = HEAD + textwrap.dedent(
    """\
    watches:
      - name: a
        hashtag: x
      - name: b
        shop: 3f8aa146-6f96-46e8-9781-64db5166f9a8
    """
)


def test_fingerprint_is_stable_across_parses() -> None:
    """Parsing the same file twice gives the same fingerprints (no Python hash seeds)."""
    first = [w.fingerprint for w in parse(FINGERPRINTED).watches]
    second = [w.fingerprint for w in parse(FINGERPRINTED + "# a comment\n").watches]
    assert first == second
    assert first[0] != first[1]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("hashtag: x\n", "hashtag: y\n"),
        ("hashtag: x\n", "hashtag: x\n    every: 2h\n"),
        ("hashtag: x\n", "hashtag: x\n    enabled: false\n"),
        ("hashtag: x\n", "hashtag: x\n    events: [new_ad]\n"),
        ("  notify: [marketing]\n", "  notify: [ops]\n"),
    ],
)
def test_fingerprint_changes_only_for_the_changed_watch(old: str, new: str) -> None:
    """Editing watch a (or a default it inherits) changes a's fingerprint, not b's."""
    before = parse(FINGERPRINTED).watches
    after = parse(FINGERPRINTED.replace(old, new, 1)).watches
    assert before[0].fingerprint != after[0].fingerprint
    if "notify" not in old:
        assert before[1].fingerprint == after[1].fingerprint


def test_shipped_watches_yaml_is_valid() -> None:
    """The watches.yaml at the repo root loads with an empty environment and mirrors the spec."""
    settings = load_settings(REPO / "watches.yaml", {})
    assert [w.name for w in settings.watches] == [
        "acme-shop",
        "creatine-hashtag",
        "rival-handle",
        "gummies",
        "skincare-movers",
    ]
    assert [w.target.kind for w in settings.watches] == [
        "shop",
        "hashtag",
        "handle",
        "search",
        "query",
    ]
    assert settings.api.api_key is not None
    assert settings.api.api_key.get_secret_value() == "tt_sim_demo"
    assert settings.watch("skincare-movers").events == {EventKind.RANK_JUMP}
    assert settings.watch("skincare-movers").priority == "low"
    assert set(settings.notifiers) == {"marketing", "ops"}
