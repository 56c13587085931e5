"""`watcher render` and `watcher test-notify` against a real local receiver."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.receivers import HttpReceiver
from watcher.cli import cli


def _config(tmp_path: Path, urls: list[str]) -> Path:
    quoted = ", ".join(f'"{u}"' for u in urls)
    path = tmp_path / "watches.yaml"
    path.write_text(
        "version: 1\n"
        f"notifiers:\n  marketing:\n    urls: [{quoted}]\n"
        "  team:\n    urls: ['slack://T000/B000/XXXX/#x']\n"
        "defaults:\n  notify: [marketing]\n"
    )
    return path


def test_render_without_config_prints_text(tmp_path: Path) -> None:
    """With no config file, render prints the text form of the sample event."""
    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "none.yaml"), "render", "rank_jump"])
    assert result.exit_code == 0, result.output
    assert "48 → 7" in result.output
    assert "https://www.tiktok.com/@rivalbrand/video/7078586231734521093" in result.output


def test_render_as_a_notifier_uses_its_channel(tmp_path: Path) -> None:
    """--notifier renders in the format of that notifier's first URL."""
    config = _config(tmp_path, ["json://localhost/"])
    result = CliRunner().invoke(cli, ["-c", str(config), "render", "new_ad", "--notifier", "team"])
    assert result.exit_code == 0, result.output
    assert "**🆕 New ad**" in result.output


def test_render_unknown_event_fails(tmp_path: Path) -> None:
    """An unknown event kind is exit 1 with the list of kinds."""
    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "none.yaml"), "render", "new_adz"])
    assert result.exit_code == 1
    assert "new_ad" in result.output


def test_test_notify_reports_each_url(tmp_path: Path) -> None:
    """test-notify reports per URL position and exits 1 when one failed."""
    with HttpReceiver.json() as good, HttpReceiver.json() as bad:
        bad.fail_next(1)
        config = _config(tmp_path, [good.url, bad.url])
        result = CliRunner().invoke(cli, ["-c", str(config), "test-notify", "marketing"])
        [request] = good.wait_for(1)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "marketing[0] json: ok"
    assert lines[1].startswith("marketing[1] json: FAILED (")
    assert str(bad.port) not in result.output
    payload = request.json()
    assert isinstance(payload, dict)
    assert "test alert" in payload["title"]
