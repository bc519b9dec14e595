"""Agreement after the core's rebuild: `status` refuses what `sync` refuses (the same lines `plan`
prints), a file that changes between its secret check and its upload stays out of the build,
and `sync` runs the offline reference check. Real emulator over a socket, real files."""

from __future__ import annotations

import asyncio
import json
import wave
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from assetsync.prepare.stage import BlockedError
from assetsync.remote.limiter import AdaptiveLimit
from assetsync.results import SyncEvent, SyncResult
from assetsync.sync.run import sync
from tests.sync_harness import api_get, enter_cli, load, write_config


def writes(emulator: Any) -> list[Any]:
    """Every request the emulator answered that could change something."""
    return [e for e in emulator.state.request_log if e.method != "GET"]

STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one published file and the account's credentials in the environment."""
    write_config(tmp_path, emulator)
    (tmp_path / "site" / "ok.txt").write_text("fine")
    return enter_cli(tmp_path, emulator, monkeypatch)


def _problem_lines(err: str) -> list[str]:
    return sorted(line for line in err.splitlines() if line.startswith("error: "))


BLOCKERS = {
    "private marker": {"x.txt": "one", "x.private.txt": "two"},
    "whitespace": {"a b.txt": "one", "a-b.txt": "two"},
    "secret": {"keys.txt": f"stripe = {STRIPE}\n"},
}


@pytest.mark.parametrize("name", sorted(BLOCKERS))
def test_status_reports_what_blocks_a_sync_as_plan_and_sync_do(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert run(capsys, "sync")[0] == 0
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["in_sync"] is True
    for rel, text in BLOCKERS[name].items():
        (project / "site" / rel).write_text(text)

    plan_code, _, plan_err = run(capsys, "plan")
    before = len(writes(emulator))
    sync_code, _, sync_err = run(capsys, "sync")
    assert plan_code == sync_code == 1 and len(writes(emulator)) == before
    lines = _problem_lines(plan_err)
    assert lines and lines == _problem_lines(sync_err)

    code, out, _ = run(capsys, "status", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["in_sync"] is False
    assert sorted(f"error: {p['path']}: {p['message']}" for p in doc["problems"]) == lines
    assert STRIPE not in out

    code, out, err = run(capsys, "status")
    assert code == 0 and "in sync" not in out and "blocked" in out
    assert _problem_lines(err) == lines


def test_status_of_an_empty_folder_is_blocked_as_sync_is(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "site" / "ok.txt").unlink()
    code, out, _ = run(capsys, "status", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["in_sync"] is False
    assert [p["path"] for p in doc["problems"]] == ["/"]
    assert "nothing left to publish" in doc["problems"][0]["message"]
    assert run(capsys, "sync")[0] == 1 and writes(emulator) == []


def test_successes_sent_before_a_429_do_not_raise_the_lowered_limit() -> None:
    """Answers arrive in any order: a 429 may come after successes of requests sent at the old
    concurrency. Those successes say nothing about the lowered limit (8 -> 4 -> 2 -> 1)."""

    async def main() -> tuple[int, int, int]:
        limit = AdaptiveLimit(8)
        async with AsyncExitStack() as stack:
            first = [await stack.enter_async_context(limit.admit()) for _ in range(8)]
            limit.throttled()
            limit.throttled()
            for admission in first[2:7]:  # five successes of the first eight
                limit.succeeded(admission)
            held = limit.limit
            limit.throttled()  # the eighth answers 429 last
        lowest = limit.lowest
        async with limit.admit() as admission:  # admitted at limit 1: its success counts
            pass
        limit.succeeded(admission)
        return held, lowest, limit.limit

    assert asyncio.run(main()) == (2, 1, 2)


def _live_versions(emulator: Any, result: SyncResult) -> dict[str, str]:
    """Published path -> version SID in the environment's live build."""
    env = api_get(emulator, f"/v1/Services/{result.service_sid}/Environments/"
                            f"{result.environment_sid}")
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{env['build_sid']}")
    return {v["path"]: v["sid"] for v in build["asset_versions"]}


def test_a_file_changed_after_its_secret_check_stays_out_of_the_build(
        tmp_path: Path, emulator: Any) -> None:
    """DESIGN.md invariant 6: the bytes a build publishes are the bytes that were checked."""
    config = load(tmp_path, emulator)
    (config.source / "a.txt").write_text("hello")
    (config.source / "x.txt").write_text("plain one")
    first = sync(config)
    before = _live_versions(emulator, first)

    (config.source / "x.txt").write_text("plain two")
    (config.source / "y.txt").write_text("new and plain")
    (config.source / "b.txt").write_text("another new one")

    def write_a_secret(event: SyncEvent) -> None:
        # Between the secret check (done) and the upload (about to read the file).
        if event.kind == "upload_started" and event.path in ("/x.txt", "/y.txt"):
            (config.source / event.path[1:]).write_text(f"key = {STRIPE}\n")

    second = sync(config, on_event=write_a_secret)
    live = _live_versions(emulator, second)
    assert live["/x.txt"] == before["/x.txt"]  # the live version stays
    assert "/y.txt" not in live  # a new file waits
    assert "/b.txt" in live and live["/a.txt"] == before["/a.txt"]
    assert sorted(second.uploaded) == ["/b.txt"]
    assert [w.split(":")[0] for w in second.warnings
            if "changed while being uploaded" in w] == ["/x.txt", "/y.txt"]

    # The next sync checks the new content: refused before any write, and nothing served moves.
    count = len(writes(emulator))
    with pytest.raises(BlockedError) as refused:
        sync(config)
    assert {i.path for i in refused.value.issues} == {"x.txt", "y.txt"}
    assert len(writes(emulator)) == count
    assert _live_versions(emulator, second) == live


TWIML = "<Response>\n  <Play>/audio/welcome.wav</Play>\n</Response>\n"


def test_sync_warns_of_a_broken_reference_and_strict_refuses_it(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "site" / "voice.xml").write_text(TWIML)
    code, out, _ = run(capsys, "sync", "--json")
    doc = json.loads(out)
    assert code == 0 and "/voice.xml" in doc["uploaded"]
    [warning] = [w for w in doc["warnings"] if "/audio/welcome.wav" in w]
    assert warning.startswith("site/voice.xml:2: /audio/welcome.wav: ")

    config = project / ".assetsync.toml"
    config.write_text(config.read_text() + "[check]\nstrict = true\n")
    before = len(writes(emulator))  # nothing changed since: the last outcome is carried
    code, _, err = run(capsys, "sync")
    assert code == 1 and len(writes(emulator)) == before
    [line] = [line for line in err.splitlines() if "welcome.wav" in line]
    assert line.startswith("error: site/voice.xml:2: /audio/welcome.wav: ")
    code, _, err = run(capsys, "plan")  # plan and status say what stops the sync
    assert code == 1 and line in err.splitlines()
    code, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["in_sync"] is False
    assert [p["path"] for p in json.loads(out)["problems"]] == ["site/voice.xml:2"]

    with wave.open(str(project / "site" / "welcome.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    (project / "site" / "audio").mkdir()
    (project / "site" / "welcome.wav").rename(project / "site" / "audio" / "welcome.wav")
    code, out, _ = run(capsys, "sync", "--json")
    assert code == 0 and not [w for w in json.loads(out)["warnings"] if "welcome" in w]
