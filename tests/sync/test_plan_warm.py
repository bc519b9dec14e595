"""A warm `plan` (the last sync's carried outcome standing in for the recorded build) answers
exactly as a cold one, and still sees every change (issue 26)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from assetsync.results import SyncEvent
from assetsync.sync.offline_plan import plan_offline
from assetsync.sync.run import sync
from tests.state.test_carry import EXTRA, _forget_carried, _png, _site
from tests.sync_harness import enter_cli, load


def _plan_json(config_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["-c", str(config_path), "plan", "--json"]) in (0, 1)
    answer = json.loads(capsys.readouterr().out)
    del answer["scan"]  # how many files were hashed: the stat cache's business, not the plan's
    return answer  # type: ignore[no-any-return]


def _carried(config: Any) -> list[int | None]:
    events: list[SyncEvent] = []
    plan_offline(config, on_event=events.append)
    return [e.files for e in events if e.kind == "carried"]


def test_a_warm_plan_answers_as_a_cold_one_and_sees_changes(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    config = load(tmp_path, emulator, extra=EXTRA)
    path = tmp_path / ".assetsync.toml"
    _site(config)
    enter_cli(tmp_path, emulator, monkeypatch)
    sync(config)
    assert _carried(config) == [0]  # unchanged: every file as the last sync published it
    warm_unchanged = _plan_json(path, capsys)

    target = config.source / "d3" / "f0003.txt"
    old = target.read_bytes()
    target.write_bytes(b"changed since the sync")
    (config.source / "img" / "logo.png").write_bytes(_png(7))
    assert _carried(config) == [2]
    warm_changed = _plan_json(path, capsys)
    uploads = {u["path"] if isinstance(u, dict) else u for u in warm_changed["uploads"]}
    assert "/d3/f0003.txt" in uploads and not warm_changed["noop"]

    _forget_carried(config)  # cold: the general path prepares and reads every file's record
    assert _carried(config) == []
    assert _plan_json(path, capsys) == warm_changed
    target.write_bytes(old)
    (config.source / "img" / "logo.png").write_bytes(_png(0))
    cold_unchanged = _plan_json(path, capsys)
    assert cold_unchanged == warm_unchanged
    assert cold_unchanged["noop"]
