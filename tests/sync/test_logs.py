"""`assetsync logs`: what deployed functions write with console.* reaches the emulator's Logs
resource and `logs` / `logs --tail` show it (the emulator over a socket, Node running the code)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from assetsync.config import Config
from assetsync.errors import ConfigError
from assetsync.sync.logs import LogLine, TailOptions, parse_since, read_logs, tail_logs
from assetsync.sync.run import sync
from tests.conftest import EmulatorHandle
from tests.sync_harness import api_get, credentials_env, load
from tests.toolkit_harness import run

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")

HELLO = """exports.handler = (context, event, callback) => {
  console.log('x');
  console.warn('careful %s', event.who || 'nobody');
  callback(null, 'hi');
};
"""
BOOM = "exports.handler = () => { throw new Error('kaboom'); };\n"


@pytest.fixture
def deployed(tmp_path: Path, emulator: EmulatorHandle) -> tuple[Config, str]:
    """A project with two functions synced to the emulator; returns its config and domain."""
    root = tmp_path / "proj"
    (root / "functions").mkdir(parents=True)
    (root / "functions" / "hello.js").write_text(HELLO, encoding="utf-8")
    (root / "functions" / "boom.js").write_text(BOOM, encoding="utf-8")
    (root / "site").mkdir()
    (root / "site" / "index.html").write_text("<h1>hi</h1>\n", encoding="utf-8")
    config = load(root, emulator)
    result = sync(config)
    assert result.domain_name
    return config, result.domain_name


def _call(emulator: EmulatorHandle, domain: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{emulator.url}{path}", params=params, headers={"Host": domain}, timeout=30)


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


@needs_node
def test_console_output_and_thrown_errors_become_log_resources_with_twilios_fields(
        deployed: tuple[Config, str], emulator: EmulatorHandle) -> None:
    config, domain = deployed
    assert _call(emulator, domain, "/hello", who="ann").text == "hi"
    assert _call(emulator, domain, "/boom").status_code == 500
    svc = api_get(emulator, f"/v1/Services/{config.service}")
    env = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"][0]
    listed = api_get(emulator, env["links"]["logs"] + "?PageSize=1")
    first = listed["logs"][0]
    assert set(first) == {"sid", "account_sid", "service_sid", "environment_sid", "build_sid",
                          "deployment_sid", "function_sid", "request_sid", "level", "message",
                          "date_created", "url"}
    assert first["sid"].startswith("NO") and first["request_sid"].startswith("RQ")
    assert first["build_sid"] == env["build_sid"] and first["deployment_sid"].startswith("ZD")
    assert listed["meta"]["next_page_url"]  # three entries, one per page
    assert api_get(emulator, first["url"]) == first
    lines = read_logs(config, since=_since())
    assert [(ln.function, ln.level, ln.message) for ln in lines][:2] == [
        ("/hello", "INFO", "x"), ("/hello", "WARN", "careful ann")]
    assert lines[2].function == "/boom" and lines[2].level == "ERROR"
    assert "kaboom" in lines[2].message
    only = read_logs(config, since=_since(), function="boom")
    assert [ln.function for ln in only] == ["/boom"]
    later = read_logs(config, since=datetime.now(UTC) + timedelta(hours=1))
    assert later == ()


@needs_node
def test_logs_prints_one_line_per_entry_and_json(
        deployed: tuple[Config, str], emulator: EmulatorHandle,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    config, domain = deployed
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    _call(emulator, domain, "/hello")
    cfg = str(config.config_path)
    code, out, err = run(capsys, "-c", cfg, "logs")
    assert code == 0, err
    first = out.splitlines()[0].split()
    assert first[1:] == ["INFO", "/hello", "x"]
    datetime.fromisoformat(first[0])  # the time comes first
    code, out, _ = run(capsys, "-c", cfg, "logs", "--json", "--function", "/hello")
    assert [json.loads(x)["message"] for x in out.splitlines()] == ["x", "careful nobody"]
    code, _, err = run(capsys, "-c", cfg, "logs", "--function", "/nope")
    assert code == 2 and "--function /nope" in err and "/hello" in err
    assert emulator.auth_token not in out + err


@needs_node
def test_tail_shows_a_new_entry_on_its_next_poll_and_never_twice(
        deployed: tuple[Config, str], emulator: EmulatorHandle) -> None:
    config, domain = deployed
    _call(emulator, domain, "/hello", who="before")
    shown: list[LogLine] = []
    polls = {"slept": 0}

    async def sleep(seconds: float) -> None:
        # Between the first and the second poll the function runs again: the second poll (one
        # interval later) must show exactly its two new lines.
        polls["slept"] += 1
        if polls["slept"] == 1:
            _call(emulator, domain, "/hello", who="during")

    def stop() -> bool:
        return polls["slept"] >= 3

    count = tail_logs(config, shown.append, since=_since(),
                      options=TailOptions(interval_s=0.01, sleep=sleep, stop=stop))
    messages = [ln.message for ln in shown]
    assert messages == ["x", "careful before", "x", "careful during"]
    assert count == 4 and len({ln.sid for ln in shown}) == 4


def test_tail_backs_off_while_nothing_comes(
        tmp_path: Path, emulator: EmulatorHandle) -> None:
    root = tmp_path / "proj"
    (root / "functions").mkdir(parents=True)
    (root / "functions" / "quiet.js").write_text("exports.handler = (c, e, cb) => cb(null, 1);\n")
    config = load(root, emulator)
    sync(config)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    shown = tail_logs(config, lambda line: None, since=_since(),
                      options=TailOptions(interval_s=1, max_interval_s=4, sleep=sleep,
                                          stop=lambda: len(waits) >= 5))
    assert shown == 0 and waits == [1, 2, 4, 4, 4]


def test_since_takes_durations_and_dates() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-12-07T10:00:00", now) == datetime(2026, 12, 7, 10, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--since 'soon'"):
        parse_since("soon", now)


def test_the_logs_list_filters_by_date_and_refuses_a_bad_one(
        emulator: EmulatorHandle, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "site").mkdir(parents=True)
    (root / "site" / "a.txt").write_text("a")
    config = load(root, emulator)
    result = sync(config)
    path = f"/v1/Services/{result.service_sid}/Environments/{result.environment_sid}/Logs"
    with emulator.client() as http:
        bad = http.get(path, params={"StartDate": "yesterday"})
        assert bad.status_code == 400 and "StartDate" in bad.json()["message"]
        page = http.get(path, params={"StartDate": "2018-11-10T20:00:00Z"}).json()
        assert page["logs"] == [] and "StartDate=2018-11-10" in page["meta"]["url"]
        missing = http.get(path + "/NO" + "0" * 32)
        assert missing.status_code == 404


@needs_node
def test_logs_tail_in_a_process_ends_cleanly_on_ctrl_c(
        deployed: tuple[Config, str], emulator: EmulatorHandle) -> None:
    config, domain = deployed
    _call(emulator, domain, "/hello")
    env = {**os.environ, **credentials_env(emulator)}
    child = subprocess.Popen(
        [sys.executable, "-m", "assetsync", "-c", str(config.config_path), "logs", "--tail",
         "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        first = child.stdout.readline()  # blocks until the first poll has printed it
        assert first.split()[1:] == ["INFO", "/hello", "x"]
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130 and "Traceback" not in err
