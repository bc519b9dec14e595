"""`assetsync check --live`: after a sync every published URL is probed as Twilio would fetch it
(protected ones signed, private ones confirmed unserved), against the emulator over a socket and
the embedded target; a file served with the wrong Content-Type (a fault switch) is named."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from assetsync.check.live import check_live, expected_probes, sign_url
from assetsync.cli import main
from assetsync.emulator.serving import twilio_signature
from assetsync.sync.run import sync
from tests.check.test_check import _wav
from tests.conftest import EmulatorHandle
from tests.sync_harness import credentials_env, deploy_function_build, load


def _site(site: Path) -> None:
    _wav(site / "audio" / "welcome.wav")
    _wav(site / "audio" / "hold.protected.wav")
    (site / "menu.private.json").write_text('{"greeting": "hi"}')
    (site / "index.html").write_text("<h1>hello</h1>\n")
    (site / "notes.txt").write_text("some notes\n" * 50)


PATHS = ["/audio/hold.wav", "/audio/welcome.wav", "/index.html", "/menu.json", "/notes.txt"]


@pytest.fixture
def synced(tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site synced to the emulator over its socket; returns its config file, with the
    account's credentials in the environment as a user has them."""
    root = tmp_path / "proj"
    _site(root / "site")
    sync(load(root, emulator))
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    return root / ".assetsync.toml"


def _live(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["-c", str(config), "check", "--live", "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


def test_every_published_url_is_probed_and_none_is_wrong(
        synced: Path, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    emulator.state.request_log.clear()
    code, data = _live(synced, capsys)
    assert code == 0 and data["ok"] and data["problems"] == 0
    by_path = {r["path"]: r for r in data["results"]}
    assert sorted(by_path) == PATHS
    assert by_path["/audio/hold.wav"]["visibility"] == "protected"
    assert by_path["/audio/hold.wav"]["status"] == 200  # signed as Twilio signs: served
    assert by_path["/menu.json"]["status"] == 404  # private: confirmed not served
    assert by_path["/audio/welcome.wav"]["content_type"].startswith("audio/")
    assert by_path["/notes.txt"]["size"] == len("some notes\n" * 50)
    served = {e.path.split("/", 3)[3] for e in emulator.state.request_log.matching(kind="serve")}
    assert served == {p.lstrip("/") for p in PATHS}  # every URL reached the serving host
    assert emulator.auth_token not in json.dumps(data)


def test_the_human_output_is_a_summary(
        synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(synced), "check", "--live"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["probed 5 URL(s) (3 public, 1 protected, 1 private): 0 wrong"]


def test_a_file_served_with_the_wrong_content_type_is_named(
        synced: Path, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    emulator.state.faults.add("*", "*/audio/welcome.wav", "wrong-type", count=None)
    assert main(["-c", str(synced), "check", "--live"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[-1].endswith("1 wrong")
    assert out[0].startswith("error: /audio/welcome.wav: served as application/octet-stream")
    code, data = _live(synced, capsys)
    [wrong] = [r for r in data["results"] if r["problem"]]
    assert code == 1 and wrong["path"] == "/audio/welcome.wav"


def test_a_build_deployed_by_another_tool_without_the_files_shows_each_missing(
        tmp_path: Path, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    _site(root / "site")
    first = sync(load(root, emulator))
    assert first.service_sid and first.environment_sid
    deploy_function_build(emulator, first.service_sid, first.environment_sid, [])
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    code, data = _live(root / ".assetsync.toml", capsys)
    assert code == 1
    wrong = {r["path"]: r["problem"] for r in data["results"] if r["problem"]}
    assert sorted(wrong) == [p for p in PATHS if p != "/menu.json"]  # private: still unserved
    assert wrong["/audio/hold.wav"] == "answered 404 with a valid X-Twilio-Signature, expected 200"
    assert wrong["/index.html"] == "answered 404, expected 200"


def test_the_embedded_target_is_probed_in_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "local"
    _site(root / "site")
    (root / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "ivr"\nenvironment = "dev"\n'
        '[target]\napi = "local"\n')
    assert main(["-c", str(root / ".assetsync.toml"), "sync"]) == 0
    capsys.readouterr()
    code, data = _live(root / ".assetsync.toml", capsys)
    assert code == 0 and sorted(r["path"] for r in data["results"]) == PATHS
    assert {r["path"]: r["status"] for r in data["results"]}["/audio/hold.wav"] == 200


def test_nothing_deployed_yet_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "ivr"\nenvironment = "dev"\n'
        '[target]\napi = "local"\n')
    assert main(["-c", str(tmp_path / ".assetsync.toml"), "check", "--live"]) == 0
    assert "run `assetsync sync`" in capsys.readouterr().out


def test_a_head_without_a_size_is_followed_by_a_ranged_get(
        tmp_path: Path, emulator: EmulatorHandle) -> None:
    root = tmp_path / "proj"
    (root / "site").mkdir(parents=True)
    (root / "site" / "a.txt").write_text("0123456789")
    config = load(root, emulator)
    sync(config)
    asked: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        # A CDN-like server: HEAD not allowed, a ranged GET answered 206 with Content-Range.
        asked.append((request.method, request.headers.get("range")))
        if request.method == "HEAD":
            return httpx.Response(405)
        return httpx.Response(206, headers={"Content-Type": "text/plain; charset=utf-8",
                                            "Content-Range": "bytes 0-0/11"}, content=b"0")

    report = check_live(config, transport=httpx.MockTransport(answer))
    assert asked == [("HEAD", None), ("GET", "bytes=0-0")]
    [result] = report.results
    assert result.size == 11 and result.problem == "served 11 bytes, expected 10 " \
        "(the deployed version's size)"
    assert [p.path for p in expected_probes(config)] == ["/a.txt"]


def test_a_private_file_that_is_served_is_an_error(
        synced: Path, emulator: EmulatorHandle) -> None:
    config = load(synced.parent, emulator)
    probes = {p.path: p for p in expected_probes(config)}

    def answer(request: httpx.Request) -> httpx.Response:
        # A server that serves everything, as asked, private files included.
        probe = probes["/" + request.url.path.split("/", 3)[3]]
        return httpx.Response(200, headers={"Content-Type": probe.content_type,
                                            "Content-Length": str(probe.size)})

    report = check_live(config, transport=httpx.MockTransport(answer))
    assert [(r.probe.path, r.problem) for r in report.problems] == [
        ("/menu.json", "private, but served (200): anyone can fetch it")]


def test_the_signature_is_the_one_the_emulator_checks() -> None:
    url = "https://ivr-1234-dev.twil.io/audio/hold.wav"
    assert sign_url("token123", url) == twilio_signature("token123", url)
