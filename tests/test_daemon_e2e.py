"""`watcher run` as a subprocess against the simulator over real HTTP, with a fast clock
(a simulated day every few seconds), `every: 1s` watches and a real local receiver.

Nothing waits by sleeping: every wait polls the JSON log, the receiver or the state
database with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.receivers import HttpReceiver, free_port, wait_until
from tests.simworld import ITEM_EVENTS, Target, expected_events, items_of, world_lists
from watcher.models import ITEM_KINDS
from watcher.simulator.clock import parse_iso
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store

DAY_EVERY_SECONDS = 3.0
SPEED = 86400 / DAY_EVERY_SECONDS
WAIT = 60.0  # generous: a deadline only costs time when something is wrong
SECRET_KEY = "e2e-secret-key-7f3a9c21d4"
SETUP_KEY = "e2e-setup-key-0b8e4f"
KEYS = (SECRET_KEY, SETUP_KEY, "e2e-key-auth-5d2c9a")
TITLES = {
    "config_rejected": "change rejected",
    "watch_failing": "failing",
    "watch_recovered": "recovered",
    "auth_rejected": "key rejected",
    "credits_exhausted": "credits exhausted",
}
WATCHER = (sys.executable, "-m", "watcher", "--log-format", "json")
TIKTOK_ID = re.compile(r"\b\d{15,20}\b")

Line = dict[str, object]


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with running_simulator(
        seed=5, speed=SPEED, api_keys=KEYS, rate_limit=100_000, credits=1_000_000
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def _healthy_sim(sim: SimHandle) -> Iterator[None]:
    """Each test starts and ends with an API without faults."""
    sim.faults(0.0, [])
    yield
    sim.faults(0.0, [])


def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``predicate`` every 0.2 s until true or the deadline (for the database: the
    daemon is writing it, so the test must not hammer it)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.2)  # polling with a deadline


def messages(rx: HttpReceiver, path: str) -> list[dict[str, str]]:
    """The JSON alerts that arrived at ``path`` (apprise's json:// payload)."""
    out = []
    for request in rx.requests:
        if request.path == path:
            body = request.json()
            assert isinstance(body, dict)
            out.append({"title": str(body["title"]), "message": str(body["message"])})
    return out


def ops(rx: HttpReceiver, path: str, kind: str) -> list[dict[str, str]]:
    return [m for m in messages(rx, path) if TITLES[kind] in m["title"]]


def wait_ops(rx: HttpReceiver, path: str, kind: str, count: int = 1) -> list[dict[str, str]]:
    wait_until(lambda: len(ops(rx, path, kind)) >= count, WAIT)
    return ops(rx, path, kind)


def write_atomically(path: Path, text: str) -> None:
    """Save like an editor does: a new file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def yaml_config(
    sim: SimHandle,
    db: Path,
    watches: Mapping[str, Target],
    *,
    hook: str,
    ops_url: str | None = None,
    key: str = SECRET_KEY,
    extra: str = "",
) -> str:
    notifiers = f'hook: {{urls: ["{hook}"]}}'
    if ops_url is not None:
        notifiers += f', ops: {{urls: ["{ops_url}"]}}'
    lines = [
        "version: 1",
        f'api: {{base_url: "{sim.base_url}", api_key: "{key}", max_requests_per_minute: 6000}}',
        f'state: {{database: "sqlite:///{db}"}}',
        f"notifiers: {{{notifiers}}}",
        "ops_notify: [ops]" if ops_url is not None else "",
        f"defaults: {{notify: [hook], every: 1s, events: {ITEM_EVENTS}}}",
        extra,
        "watches:",
        *(f'  - {{name: {name}, {t.kind}: "{t.value}"}}' for name, t in watches.items()),
    ]
    return "\n".join(line for line in lines if line) + "\n"


def targets(sim: SimHandle) -> dict[str, Target]:
    world = world_lists(sim)
    out = {
        f"shop{i}": Target(f"shop{i}", "shop", str(s["id"])) for i, s in enumerate(world.shops[:4])
    }
    out["handle0"] = Target("handle0", "handle", str(world.profiles[0]["handle"]))
    out["tag0"] = Target("tag0", "hashtag", world.hashtags[0])
    return out


def tiktok_id_of(sim: SimHandle, item_id: str) -> str:
    """The tiktok id of a staged item, once its change has landed in the truth log."""
    found: list[str] = []

    def landed() -> bool:
        found.extend(str(c["tiktokId"]) for c in sim.truth() if c["itemId"] == item_id)
        return bool(found)

    wait_until(landed, WAIT)
    return found[0]


class Daemon:
    """``python -m watcher --log-format json -c CONFIG run`` with its log in a file."""

    def __init__(self, config: Path, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.log = config.with_name("daemon.log")
        self.env = {**os.environ, "TRENDTRACK_API_KEY": "", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*WATCHER, "-c", str(self.config), "run"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=self.env,
            )
        return self

    @property
    def text(self) -> str:
        return self.log.read_text("utf-8") if self.log.exists() else ""

    def lines(self) -> list[Line]:
        out: list[Line] = []
        for raw in self.text.splitlines():
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a line still being written, or not ours
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def find(self, match: Callable[[Line], bool], after: int = -1) -> list[int]:
        return [i for i, line in enumerate(self.lines()) if i > after and match(line)]

    def wait(self, match: Callable[[Line], bool], after: int = -1, timeout: float = WAIT) -> int:
        """The index of the first line after ``after`` that matches, once it is logged."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(match, after)
            if found:
                return found[0]
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"watcher exited {self.proc.returncode}:\n{self.text[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no such log line within {timeout}s:\n{self.text[-3000:]}")
            time.sleep(0.05)  # polling the log with a deadline

    def wait_poll(self, watch: str, outcome: str | None = None, after: int = -1) -> int:
        return self.wait(lambda line: is_poll(line, watch, outcome), after)

    def terminate(self) -> float:
        """SIGTERM; returns how long the exit took (asserting exit code 0)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        elapsed = time.monotonic() - started
        assert code == 0, self.text[-3000:]
        return elapsed

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def is_poll(line: Line, watch: str, outcome: str | None = None) -> bool:
    return (
        line.get("logger") == "watcher.run"
        and line.get("watch") == watch
        and "outcome" in line
        and (outcome is None or line["outcome"] == outcome)
    )


def says(text: str) -> Callable[[Line], bool]:
    return lambda line: text in str(line.get("msg", ""))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test started; any still running at the end is killed."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.close()


def launch(daemons: list[Daemon], config: Path, env: Mapping[str, str] | None = None) -> Daemon:
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    return daemon


def assert_clean_stop(daemon: Daemon, limit: float = 10.0) -> None:
    elapsed = daemon.terminate()
    assert elapsed < limit, f"SIGTERM took {elapsed:.1f}s"
    summaries = daemon.find(says("watcher stopped after"))
    assert len(summaries) == 1, daemon.text[-2000:]


# --- the tests ----------------------------------------------------------------------------


def test_scripted_changes_are_detected_and_delivered(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A new ad in a watched shop and a pin on a watched handle reach the receiver; every
    poll logs one JSON line with its figures, and no secret is ever logged."""
    t = targets(sim)
    hook = f"{rx.url}t1/hook?token=hook-secret-5e1d"
    cfg = tmp_path / "watches.yaml"
    watches = {"shop0": t["shop0"], "handle0": t["handle0"]}
    cfg.write_text(yaml_config(sim, tmp_path / "state.db", watches, hook=hook), "utf-8")
    daemon = launch(daemons, cfg)
    daemon.wait_poll("shop0", "baseline")
    daemon.wait_poll("handle0", "baseline")

    new_ad = sim.change("new_item", type="ad", shopId=t["shop0"].value)
    unpinned = [i for i in items_of(sim, t["handle0"].value, SETUP_KEY) if not i["isPinned"]]
    sim.change("pin", itemId=str(unpinned[0]["id"]))
    wanted = {tiktok_id_of(sim, new_ad), str(unpinned[0]["tiktokId"])}

    def delivered() -> bool:
        text = " ".join(m["message"] for m in messages(rx, "/t1/hook"))
        return all(tiktok_id in text for tiktok_id in wanted)

    wait_until(delivered, WAIT)
    polls = [line for line in daemon.lines() if "outcome" in line]
    assert polls
    for line in polls:
        assert {"watch", "outcome", "items", "events", "credits", "duration_ms"} <= set(line)
    assert any(line["outcome"] == "ok" and line["events"] for line in polls)
    assert_clean_stop(daemon)
    for secret in (SECRET_KEY, "hook-secret-5e1d", hook):
        assert secret not in daemon.text


def test_config_edit_adds_and_removes_watches_without_disturbing_others(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Saving the config with one watch removed and one added: the kept watch polls on
    from its baseline, the removed one stops, the added one takes a baseline."""
    t = targets(sim)
    db = tmp_path / "state.db"
    hook = f"{rx.url}t2/hook"
    cfg = tmp_path / "watches.yaml"
    cfg.write_text(yaml_config(sim, db, {"a": t["shop1"], "b": t["shop2"]}, hook=hook), "utf-8")
    daemon = launch(daemons, cfg)
    daemon.wait_poll("a", "baseline")
    daemon.wait_poll("b", "baseline")

    write_atomically(cfg, yaml_config(sim, db, {"a": t["shop1"], "c": t["shop3"]}, hook=hook))
    removed = daemon.wait(says("reload: watch b removed"))
    added = daemon.wait(says("reload: watch c added"))
    daemon.wait_poll("c", "baseline", after=added)
    # A refresh later the kept watch reads its changes (an `ok` poll, not a new baseline).
    kept = daemon.wait_poll("a", "ok", after=added)
    last_b = max(daemon.find(lambda line: is_poll(line, "b")))
    assert last_b < kept, "the removed watch polled on"
    assert not daemon.find(lambda line: is_poll(line, "a", "baseline"), after=removed)
    assert not daemon.find(says("reload: watch a"))
    assert_clean_stop(daemon)


def test_invalid_edit_keeps_the_old_config_and_alerts_once(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Bad YAML keeps the last good config polling and sends one config_rejected, also
    when saved again unchanged; another bad version is told once more; a fix resumes."""
    t = targets(sim)
    db = tmp_path / "state.db"
    hook, ops_url = f"{rx.url}t3/hook", f"{rx.url}t3/ops"
    cfg = tmp_path / "watches.yaml"
    good = yaml_config(sim, db, {"a": t["shop1"]}, hook=hook, ops_url=ops_url)
    cfg.write_text(good, "utf-8")
    daemon = launch(daemons, cfg)
    daemon.wait_poll("a", "baseline")

    bad_yaml = good + "  - {name: b, shop: [unclosed\n"
    write_atomically(cfg, bad_yaml)
    rejected = daemon.wait(says("keeping the last good config"))
    [alert] = wait_ops(rx, "/t3/ops", "config_rejected")
    daemon.wait_poll("a", after=rejected)  # the old config keeps polling

    write_atomically(cfg, bad_yaml)  # saved again, unchanged
    again = daemon.wait(says("keeping the last good config"), after=rejected)
    unknown_key = good.replace("version: 1\n", "version: 1\nsurprise: true\n")
    write_atomically(cfg, unknown_key)
    daemon.wait(says("keeping the last good config"), after=again)
    # Alerts go out in order, so once the second version's alert is here, any repeat of
    # the first would be too.
    alerts = wait_ops(rx, "/t3/ops", "config_rejected", 2)
    assert len(alerts) == 2, alerts
    assert alerts[0] == alert
    assert "surprise" in alerts[1]["message"]

    fixed = yaml_config(sim, db, {"a": t["shop1"], "d": t["shop2"]}, hook=hook, ops_url=ops_url)
    write_atomically(cfg, fixed)
    added = daemon.wait(says("reload: watch d added"))
    daemon.wait_poll("d", "baseline", after=added)
    daemon.wait_poll("a", after=added)
    assert_clean_stop(daemon)
    assert len(ops(rx, "/t3/ops", "config_rejected")) == 2


def test_health_metrics_and_sigterm(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """With WATCHER_HEALTH_PORT set, /healthz is 200 and /metrics counts polls while the
    daemon runs; SIGHUP reloads; SIGTERM exits 0 promptly with one summary line."""
    t = targets(sim)
    cfg = tmp_path / "watches.yaml"
    watches = {"shop0": t["shop0"], "tag0": t["tag0"]}
    cfg.write_text(yaml_config(sim, tmp_path / "state.db", watches, hook=f"{rx.url}t4"), "utf-8")
    port = free_port()
    daemon = launch(daemons, cfg, {"WATCHER_HEALTH_PORT": str(port)})
    daemon.wait_poll("shop0", "baseline")
    daemon.wait_poll("tag0", "baseline")
    base = f"http://127.0.0.1:{port}"

    def metrics_show_polls() -> bool:
        text = httpx.get(f"{base}/metrics").text
        return 'watcher_polls_total{outcome="baseline"} 2.0' in text

    wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, WAIT)
    assert httpx.get(f"{base}/healthz").json()["scheduler_running"] is True
    wait_until(metrics_show_polls, WAIT)
    text = httpx.get(f"{base}/metrics").text
    for name in (
        "watcher_watches 2.0",
        "watcher_schedule_lag_seconds_count",
        "watcher_outbox_depth",
    ):
        assert name in text
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait(says("config reloaded: 2 watches (0 added, 0 removed, 0 changed)"))
    assert_clean_stop(daemon, limit=5.0)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz")


def _baselines(db: Path, names: list[str]) -> dict[str, datetime]:
    store = Store(f"sqlite:///{db}")
    try:
        out = {}
        for name in names:
            at = store.memory.load(name).baseline_at
            assert at is not None
            out[name] = at
        return out
    finally:
        store.close()


def _recorded(db: Path) -> Counter[tuple[str, str, str]]:
    store = Store(f"sqlite:///{db}")
    try:
        return Counter(
            (v.event.watch, v.event.kind.value, v.event.item.id)
            for v in store.outbox.events(limit=100_000)
            if v.event.kind in ITEM_KINDS and v.event.item is not None
        )
    finally:
        store.close()


def _expected(
    sim: SimHandle, watches: dict[str, Target], since: dict[str, datetime], until: datetime
) -> Counter[tuple[str, str, str]]:
    """The events the truth log calls for, per watch after its own baseline."""
    truth = sim.truth()
    out: Counter[tuple[str, str, str]] = Counter()
    for name, target in watches.items():
        mine = [c for c in truth if since[name] < _at(c) <= until]
        out += expected_events(mine, [target])
    return out


def _at(change: Mapping[str, object]) -> datetime:
    at = parse_iso(str(change["at"]))
    assert at is not None
    return at


def test_sigkill_and_restart_lose_and_repeat_nothing(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """SIGKILL right after a poll found events, refreshes while down, restart: events equal
    the truth log, all delivered, at most the one message in flight sent twice."""
    t = targets(sim)
    watches = {name: t[name] for name in ("shop0", "shop1", "handle0", "tag0")}
    db = tmp_path / "state.db"
    cfg = tmp_path / "watches.yaml"
    cfg.write_text(yaml_config(sim, db, watches, hook=f"{rx.url}t5"), "utf-8")
    first = launch(daemons, cfg)
    for name in watches:
        first.wait_poll(name, "baseline")
    # The world refreshes every few seconds on its own: a refresh that lands while a
    # baseline is read belongs to the baseline or not, depending on the instant. Count
    # changes from the first refresh after every baseline on, and stage them after it.
    landed = sim.world()["refreshes"]
    wait_until(lambda: sim.world()["refreshes"] != landed, WAIT)
    after = sim.now()
    baselines = _baselines(db, list(watches))
    since = {name: max(at, after) for name, at in baselines.items()}

    sim.change("new_item", type="ad", shopId=t["shop0"].value)
    sim.change("new_item", type="ad", shopId=t["shop1"].value)
    first.wait(lambda line: "outcome" in line and bool(line.get("events")))
    first.kill()
    refreshes = sim.world()["refreshes"]
    assert isinstance(refreshes, int)
    sim.change("new_item", type="ad", shopId=t["shop0"].value)
    wait_until(lambda: sim.world()["refreshes"] != refreshes, WAIT)  # one lands while down

    second = launch(daemons, cfg)
    until = sim.now()
    expected = _expected(sim, watches, since, until)
    eventually(lambda: not expected - _recorded(db))

    def all_sent() -> bool:
        store = Store(f"sqlite:///{db}")
        try:
            return store.outbox.depth() == 0
        finally:
            store.close()

    eventually(all_sent)
    assert_clean_stop(second)
    got = _recorded(db)
    assert got - _expected(sim, watches, baselines, sim.now()) == Counter(), "none extra or twice"
    assert expected - got == Counter(), "none lost"

    received = messages(rx, "/t5")
    text = " ".join(m["message"] for m in received)
    truth_ids = {str(c["itemId"]): str(c["tiktokId"]) for c in sim.truth()}
    for _watch, _kind, item_id in got:
        assert truth_ids[item_id] in text, f"event of {item_id} never delivered"
    keys = Counter((m["title"], frozenset(TIKTOK_ID.findall(m["message"]))) for m in received)
    repeats = sum(n - 1 for n in keys.values())
    assert repeats <= 1, [k for k, n in keys.items() if n > 1]


def test_failing_api_alerts_once_and_recovers_once(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Every request failing with 500: one watch_failing after `failing_after` failed
    polls; once the API answers again, one watch_recovered."""
    t = targets(sim)
    cfg = tmp_path / "watches.yaml"
    text = yaml_config(
        sim,
        tmp_path / "state.db",
        {"a": t["shop1"]},
        hook=f"{rx.url}t6/hook",
        ops_url=f"{rx.url}t6/ops",
        extra="ops: {failing_after: 3}",
    )
    cfg.write_text(text, "utf-8")
    daemon = launch(daemons, cfg)
    start = daemon.wait_poll("a", "baseline")
    sim.faults(1.0, ["500"])
    [failing] = wait_ops(rx, "/t6/ops", "watch_failing")
    assert len(daemon.find(lambda line: is_poll(line, "a", "failed"), after=start)) >= 3
    sim.faults(0.0, [])
    wait_ops(rx, "/t6/ops", "watch_recovered")
    assert len(ops(rx, "/t6/ops", "watch_failing")) == 1
    assert len(ops(rx, "/t6/ops", "watch_recovered")) == 1
    assert "Watch a failing" in failing["title"]
    assert "failed 3 polls in a row" in failing["message"]
    assert_clean_stop(daemon)


def test_auth_and_credit_pauses_alert_once_and_resume(
    sim: SimHandle, rx: HttpReceiver, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A rejected key pauses polling with one auth_rejected until the config's key is
    fixed; an empty balance pauses with one credits_exhausted until it is refilled."""
    t = targets(sim)
    db = tmp_path / "state.db"
    key = KEYS[2]
    cfg = tmp_path / "watches.yaml"

    def text(api_key: str) -> str:
        return yaml_config(
            sim,
            db,
            {"a": t["shop2"], "b": t["tag0"]},
            hook=f"{rx.url}t7/hook",
            ops_url=f"{rx.url}t7/ops",
            key=api_key,
        )

    cfg.write_text(text("e2e-wrong-key-3c9d1e"), "utf-8")
    daemon = launch(daemons, cfg)
    wait_ops(rx, "/t7/ops", "auth_rejected")
    paused = daemon.wait(says("ops: auth_rejected"))  # paused polls themselves log at DEBUG
    assert not daemon.find(lambda line: is_poll(line, "a", "baseline"))

    write_atomically(cfg, text(key))
    daemon.wait_poll("a", "baseline", after=paused)
    daemon.wait_poll("b", "baseline", after=paused)

    sim.set_credits(0, key)
    wait_ops(rx, "/t7/ops", "credits_exhausted")
    stopped = daemon.wait(says("ops: credits_exhausted"))
    sim.set_credits(10_000, key)
    resumed = daemon.wait(says("polling resumes"), after=stopped)
    daemon.wait(lambda line: is_poll(line, "a") and line["outcome"] != "paused", after=resumed)
    assert len(ops(rx, "/t7/ops", "auth_rejected")) == 1
    assert len(ops(rx, "/t7/ops", "credits_exhausted")) == 1
    assert_clean_stop(daemon)
    assert "e2e-wrong-key-3c9d1e" not in daemon.text
    assert key not in daemon.text
