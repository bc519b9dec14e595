"""`assetsync sync|status|urls|rollback|promote|prune` through `main([...])`, against the emulator
over a socket: output, JSON, exit codes, and no credential anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from assetsync.state.db import State
from tests.sync_harness import (
    count,
    credentials_env,
    deploy_function_build,
    enter_cli,
    make_tree,
    uploads,
    write_config,
    writes,
)


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with three files, its config and the account's credentials in the env."""
    write_config(tmp_path, emulator)
    make_tree(tmp_path / "site", 3)
    (tmp_path / "site" / "secret.private.txt").write_text("for functions only")
    return enter_cli(tmp_path, emulator, monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sync_prints_a_summary_and_the_urls(project: Path, emulator: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sync")
    assert code == 0, err
    assert "uploaded 4 file(s)" in out and "reused 0" in out
    assert "/d0/f0000.txt  https://" in out and "secret" not in out
    assert "uploaded 4/4 files" in err  # plain progress lines: stderr is not a terminal

    code, out, _ = run(capsys, "sync")
    assert code == 0 and out.startswith("Up to date") and "4 file(s)" in out


def test_sync_json_is_one_document(project: Path, emulator: Any,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sync", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["ok"] is True
    assert sorted(doc["uploaded"]) == ["/d0/f0000.txt", "/d1/f0001.txt", "/d2/f0002.txt",
                                       "/secret.txt"]
    # 12, + the service manifest's Function and its version (docs/sync.md).
    assert doc["build_sid"].startswith("ZB") and doc["write_requests"] == 12 + 2
    assert set(doc["urls"]) == {"/d0/f0000.txt", "/d1/f0001.txt", "/d2/f0002.txt"}


def test_quiet_prints_nothing_and_the_log_file_has_one_line_per_change(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    log = project / "sync.log"
    code, out, err = run(capsys, "sync", "--quiet", "--log-file", str(log))
    assert (code, out, err) == (0, "", "")
    lines = log.read_text().splitlines()
    assert len(lines) == len(writes(emulator)) == 12 + 2  # + the service manifest's two
    assert sum("/Versions -> 201" in line for line in lines) == 4 + 1  # + the manifest's


def test_dry_run_writes_nothing(project: Path, emulator: Any,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sync", "--dry-run")
    assert code == 0 and "would upload 4 file(s)" in out
    assert writes(emulator) == []


def test_credentials_never_appear_in_output_logs_state_or_json(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    token = emulator.auth_token
    log = project / "sync.log"
    outputs = []
    for argv in (["-v", "-v", "sync", "--log-file", str(log)], ["sync", "--json"],
                 ["status", "--json"], ["status"], ["urls", "--json"], ["prune"],
                 ["state", "export"]):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        outputs += [out, err]
    (project / "site" / "d0" / "f0000.txt").write_text("changed")
    code, out, err = run(capsys, "-v", "sync")
    outputs += [out, err]
    assert all(token not in text for text in outputs)
    assert token not in log.read_text()
    for path in (project / ".assetsync").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_bad_credentials_are_one_clear_line_and_exit_1(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token-000")
    code, out, err = run(capsys, "sync")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0] and "GET " in lines[0]
    assert "TWILIO_AUTH_TOKEN" in lines[0] and "wrong-token-000" not in err
    assert "Traceback" not in err
    with State.open(project / ".assetsync") as state:
        assert state.export_json()["tables"]["services"] == []  # type: ignore[index]


def test_a_400_mid_sync_keeps_only_what_was_acknowledged(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # One file over the emulator's (lowered) size limit: its upload gets a 4xx.
    from assetsync.frozen import replace

    emulator.state.limits = replace(emulator.state.limits, max_public_bytes=1000)
    (project / "site" / "big.txt").write_bytes(b"x" * 5000)
    code, _out, err = run(capsys, "sync")
    assert code == 1 and "POST " in err and "/Versions" in err and "Traceback" not in err
    acknowledged = uploads(emulator)
    with State.open(project / ".assetsync") as state:
        versions = state.export_json()["tables"]["asset_versions"]  # type: ignore[index]
    assert len(versions) == acknowledged < 5  # type: ignore[arg-type]
    assert count(emulator, "POST", "/Builds") == 0


def test_missing_credentials_is_a_config_error(
    project: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    code, _out, err = run(capsys, "sync")
    assert code == 2 and "TWILIO_ACCOUNT_SID" in err and "TWILIO_AUTH_TOKEN" in err


def test_lock_held_exits_3(project: Path, emulator: Any,
                           capsys: pytest.CaptureFixture[str]) -> None:
    with State.open(project / ".assetsync"):
        code, _out, err = run(capsys, "sync")
    assert code == 3 and "another assetsync" in err


def test_drift_exits_1_and_adopt_resolves_it(project: Path, emulator: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(run(capsys, "sync", "--json")[1])
    _fn, foreign = deploy_function_build(emulator, doc["service_sid"], doc["environment_sid"], [])
    (project / "site" / "extra.txt").write_text("x")
    emulator.state.request_log.clear()

    code, out, err = run(capsys, "sync")
    assert code == 1 and out == "" and foreign in err and "--adopt" in err
    assert writes(emulator) == []
    code, out, _err = run(capsys, "sync", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["type"] == "DriftError"
    assert foreign in doc["error"] and doc["exit_code"] == 1

    code, out, err = run(capsys, "sync", "--adopt")
    assert code == 0 and f"adopted live build {foreign}" in err
    assert run(capsys, "sync")[2] == ""  # in sync again: no drift, no note


def test_status_urls_rollback_promote_prune(project: Path, emulator: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sync")[0] == 0
    first = json.loads(run(capsys, "status", "--json")[1])
    assert first["in_sync"] and first["live_build_sid"] == first["recorded_build_sid"]
    (project / "site" / "d0" / "f0000.txt").write_text("v2")
    pending = json.loads(run(capsys, "status", "--json")[1])
    assert pending["pending_uploads"] == ["/d0/f0000.txt"] and not pending["in_sync"]
    code, out, _ = run(capsys, "status")
    assert code == 0 and "to upload (1):" in out

    second = json.loads(run(capsys, "sync", "--json")[1])
    urls = json.loads(run(capsys, "urls", "--json")[1])
    assert urls["/d0/f0000.txt"] == f"https://{second['domain_name']}/d0/f0000.txt"
    csv_lines = run(capsys, "urls", "--format", "csv")[1].splitlines()
    assert csv_lines[0] == "path,url,visibility,service,environment_domain"
    assert len(csv_lines) == 4 and all(",public,site," in line for line in csv_lines[1:])

    code, out, _ = run(capsys, "rollback")
    assert code == 0 and first["live_build_sid"] in out
    code, out, _ = run(capsys, "promote", "dev", "prod")
    assert code == 0 and first["live_build_sid"] in out
    code, out, _ = run(capsys, "prune")
    assert code == 0 and "would delete" not in out  # every asset is live somewhere


def test_builds_on_a_twilio_target_count_against_the_shared_budget(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from assetsync.config import load_config
    from assetsync.sync.budget import budget_for_config

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("a")
    # A "twilio" target whose URL is overridden to the emulator, as a proxy would be.
    (tmp_path / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "site"\n'
        f'[target]\napi = "twilio"\napi_url = "{emulator.url}"\n[sync]\npoll_interval_s = 0.05\n')
    env = {**credentials_env(emulator), "ASSETSYNC_BUDGET_DIR": str(tmp_path / "budget")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    budget = budget_for_config(load_config(tmp_path / ".assetsync.toml", environ=env),
                               environ=env)
    assert budget.used() == 0

    assert run(capsys, "sync")[0] == 0
    assert budget.used() == 1
    assert run(capsys, "sync")[0] == 0  # no-op: no build
    assert budget.used() == 1
