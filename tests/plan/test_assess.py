"""Issue 23's user-visible cases: `plan`, `status`, `sync --dry-run` and `sync` answer from one
assessment, every check runs before the first request, and the live build is the truth.

Each test drives the CLI (`main([...])`) or the library against the emulator over its socket
and checks what the emulator then serves or was asked.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from assetsync.errors import LimitError
from assetsync.sync.operations import prune, rollback, status
from assetsync.sync.run import sync
from tests.sync_harness import api_get, enter_cli, load, write_config, writes


def served_paths(emulator: Any, service: str = "site") -> list[str]:
    """The asset paths of the dev environment's live build."""
    svc = api_get(emulator, f"/v1/Services/{service}")
    env = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"][0]
    build = api_get(emulator, f"/v1/Services/{svc['sid']}/Builds/{env['build_sid']}")
    return sorted(v["path"] for v in build["asset_versions"])


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ the live build is the truth

def test_after_prune_and_rollback_status_lists_the_deleted_file_and_sync_stops_serving_it(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    (config.source / "a.txt").write_text("a")
    (config.source / "b.txt").write_text("b")
    sync(config)
    (config.source / "b.txt").unlink()
    sync(config)
    assert served_paths(emulator) == ["/a.txt"]
    assert [name for _sid, name in prune(config, yes=True).candidates] == ["/b.txt"]
    rollback(config)
    assert served_paths(emulator) == ["/a.txt", "/b.txt"]  # the rollback brought it back

    now = status(config)
    assert now.pending_drops == ("/b.txt",)
    assert not now.in_sync
    again = sync(config)
    assert again.dropped == ("/b.txt",) and not again.noop
    assert served_paths(emulator) == ["/a.txt"]
    assert status(config).in_sync


def test_a_file_that_kept_changing_while_read_keeps_its_live_version(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    (config.source / "a.txt").write_text("a")
    log = config.source / "log.txt"
    log.write_text("line 1\n")
    sync(config)
    (config.source / "a.txt").write_text("a, edited")  # a change, so the sync builds
    with open(log, "wb") as f:
        f.truncate(128 << 20)  # sparse: long enough that appends land inside every read
    stop, writing = threading.Event(), threading.Event()

    def append() -> None:
        with open(log, "ab", buffering=0) as f:
            while not stop.is_set():
                f.write(b"x")
                writing.set()

    writer = threading.Thread(target=append)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    writer.start()
    try:
        writing.wait()
        result = sync(config)
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
    assert any("log.txt: kept changing while being read" in w for w in result.warnings)
    assert result.dropped == ()
    assert served_paths(emulator) == ["/a.txt", "/log.txt"]


# ------------------------------------------------------------------ checks before any request

@pytest.mark.parametrize("names", [("a b.txt", "a-b.txt"), ("x.txt", "x.private.txt")])
def test_a_collision_fails_plan_and_sync_alike_with_no_request(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], names: tuple[str, str]) -> None:
    write_config(tmp_path, emulator)
    enter_cli(tmp_path, emulator, monkeypatch)
    for name in names:
        (tmp_path / "site" / name).write_text(name)
    (tmp_path / "site" / "ok.txt").write_text("ok")

    code, out, plan_err = cli(capsys, "plan")
    assert code == 1
    assert "nothing to do" not in out
    lines = [line for line in plan_err.splitlines() if "publishes to" in line]
    assert lines and all(names[0] in line or names[1] in line for line in lines)

    code, _out, sync_err = cli(capsys, "sync")
    assert code == 1
    assert [line for line in sync_err.splitlines() if "publishes to" in line] == lines
    assert emulator.state.request_log == []
    code, _out, _err = cli(capsys, "sync", "--dry-run")
    assert code == 1 and emulator.state.request_log == []


def test_an_empty_source_folder_is_one_line_and_creates_nothing(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, emulator)
    enter_cli(tmp_path, emulator, monkeypatch)
    code, out, err = cli(capsys, "sync")
    assert code == 1
    assert "no file to publish" in err and len(err.strip().splitlines()) == 1
    assert out == ""
    assert emulator.state.request_log == []
    code, out, err = cli(capsys, "plan")
    assert code == 1 and "nothing to do" not in out and "no file to publish" in err


def test_51_functions_fail_before_any_write(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, emulator)
    enter_cli(tmp_path, emulator, monkeypatch)
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>")
    for i in range(51):
        path = tmp_path / "functions" / f"f{i:02d}.js"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"exports.handler = (c, e, cb) => cb(null, {i});\n")
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {}}))
    code, _out, plan_err = cli(capsys, "plan")
    assert code == 1 and "51 function versions" in plan_err
    code, _out, err = cli(capsys, "sync")
    assert code == 1 and "51 function versions" in err
    assert writes(emulator) == []
    assert not any(e.method == "POST" for e in emulator.state.request_log)


def test_sync_refuses_a_collision_in_the_library_too(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    (config.source / "a b.txt").write_text("1")
    (config.source / "a-b.txt").write_text("2")
    with pytest.raises(LimitError, match="publishes to /a-b.txt"):
        sync(config)
    assert emulator.state.request_log == []


# ------------------------------------------------------------------ one answer

def test_plan_json_lists_exactly_the_uploads_and_drops_sync_then_makes(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, emulator)
    enter_cli(tmp_path, emulator, monkeypatch)
    site = tmp_path / "site"
    for name in ("a.txt", "b.txt", "c.txt"):
        (site / name).write_text(name)
    assert cli(capsys, "sync")[0] == 0
    (site / "b.txt").unlink()
    (site / "c.txt").write_text("c, edited")
    (site / "d.txt").write_text("d")
    code, out, err = cli(capsys, "plan", "--json")
    assert code == 0, err
    planned = json.loads(out)
    code, out, err = cli(capsys, "sync", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert sorted(u["path"] for u in planned["uploads"]) == sorted(done["uploaded"]) == [
        "/c.txt", "/d.txt"]
    assert planned["drops"] == done["dropped"] == ["/b.txt"]


def test_after_a_rollback_plan_status_and_sync_name_the_same_drop(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, emulator)
    enter_cli(tmp_path, emulator, monkeypatch)
    site = tmp_path / "site"
    (site / "a.txt").write_text("a")
    (site / "b.txt").write_text("b")
    assert cli(capsys, "sync")[0] == 0
    (site / "b.txt").unlink()
    assert cli(capsys, "sync")[0] == 0  # its outcome is carried for the next sync
    assert cli(capsys, "rollback")[0] == 0

    code, out, err = cli(capsys, "plan", "--json")
    assert code == 0, err
    assert json.loads(out)["drops"] == ["/b.txt"]
    code, out, err = cli(capsys, "status", "--json")
    assert code == 0, err
    now = json.loads(out)
    assert now["pending_drops"] == ["/b.txt"] and now["in_sync"] is False
    code, out, err = cli(capsys, "sync", "--json")
    assert code == 0, err
    assert json.loads(out)["dropped"] == ["/b.txt"]
    assert served_paths(emulator) == ["/a.txt"]
    code, out, err = cli(capsys, "status", "--json")
    assert json.loads(out)["in_sync"] is True


def test_the_library_sync_takes_the_build_budget_before_any_request(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from assetsync.config import load_config
    from assetsync.errors import AssetsyncError
    from assetsync.sync.budget import budget_for_config
    from tests.sync_harness import credentials_env, quick_client

    monkeypatch.setenv("ASSETSYNC_BUDGET_DIR", str(tmp_path / "budget"))
    # A Twilio target (its budget is the account's), driven through a client of the emulator:
    # whatever happens, nothing leaves loopback.
    emulated = load(tmp_path / "emulated", emulator)
    write_config(tmp_path / "real", emulator)
    path = tmp_path / "real" / ".assetsync.toml"
    path.write_text(path.read_text().replace(f'api = "{emulator.url}"', 'api = "twilio"'))
    config = load_config(path, environ=credentials_env(emulator))
    (config.source / "a.txt").write_text("a")
    budget = budget_for_config(config)
    budget.record(budget.limit)  # every build of this hour spent by other processes

    with pytest.raises(AssetsyncError, match="build budget spent"):
        sync(config, client=quick_client(emulated))
    assert emulator.state.request_log == []
    # Watch mode keeps the budget itself: it asks the library not to.
    done = sync(config, client=quick_client(emulated), spend_budget=False)
    assert done.uploaded == ("/a.txt",)
