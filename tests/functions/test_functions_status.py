"""`status` and `rollback` of a Serverless Toolkit project (functions, Dependencies, Variables),
through `main([...])` against the emulator over a socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sync_harness import api_get, enter_cli, write_config
from tests.toolkit_harness import (
    HELLO,
    SECRETS,
    enter_toolkit_project,
    live,
    redeploy_hello_elsewhere,
    run,
)


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_toolkit_project(tmp_path, emulator, monkeypatch)


def synced(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`sync --json`, which must succeed."""
    code, out, err = run(capsys, "sync", "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def status_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def no_writes(emulator: Any) -> bool:
    return not [e for e in emulator.state.request_log if e.method != "GET"]


def function_sids(emulator: Any, service_sid: str, build_sid: str) -> dict[str, str]:
    """Path -> Function Version SID of a build."""
    build = api_get(emulator, f"/v1/Services/{service_sid}/Builds/{build_sid}")
    return {v["path"]: v["sid"] for v in build["function_versions"]}


def test_status_lists_an_edited_and_a_removed_function_and_is_not_in_sync(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    code, out, _ = run(capsys, "status")
    assert code == 0 and "in sync: nothing to upload or build" in out
    assert "functions: 0 to upload, 0 to redeploy, 0 to drop, 3 unchanged" in out
    clean = status_json(capsys)
    assert clean["in_sync"] and clean["functions"]["uploads"] == []
    assert clean["counts"]["functions"] == 3

    (project / "functions" / "hello.js").write_text(HELLO + "// edited\n")
    (project / "functions" / "lib" / "util.private.js").unlink()
    emulator.state.request_log.clear()
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "functions: 1 to upload, 0 to redeploy, 1 to drop, 1 unchanged" in out
    assert "  upload: /hello" in out and "  drop: /lib/util" in out
    assert "in sync" not in out
    doc = status_json(capsys)
    assert [f["path"] for f in doc["functions"]["uploads"]] == ["/hello"]
    assert doc["functions"]["drops"] == ["/lib/util"]
    assert [f["path"] for f in doc["functions"]["reuses"]] == ["/admin/secret"]
    assert doc["needs_build"] and not doc["in_sync"]
    assert doc["pending_uploads"] == []  # the assets are as they were
    assert no_writes(emulator)  # status only looks


def test_status_shows_a_dependency_and_runtime_change(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    (project / "package.json").write_text(json.dumps({"dependencies": {"axios": "1.7.2"}}))
    config = project / ".assetsync.toml"
    config.write_text(config.read_text().replace(
        'environment = "dev"\n', 'environment = "dev"\nruntime = "node20"\n', 1))
    runtime = live(emulator)["build"]["runtime"]
    assert runtime != "node20"
    code, out, _ = run(capsys, "status")
    assert code == 0 and "  dependencies change: axios@1.7.2" in out
    assert f"runtime: {runtime} -> node20" in out and "in sync" not in out
    doc = status_json(capsys)
    assert doc["functions"]["dependencies_changed"]
    assert doc["functions"]["dependencies"] == [["axios", "1.7.2"]]
    assert doc["functions"]["runtime_change"] == {"from": runtime, "to": "node20"}
    assert doc["needs_build"] and not doc["in_sync"]


def test_status_after_an_env_change_names_keys_and_never_a_value(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    new_values = ("changed-value-5d1b", "fresh-value-90ce")
    (project / ".env").write_text(f"GREETING={new_values[0]}\nNEW={new_values[1]}\n")
    emulator.state.request_log.clear()
    outputs: list[str] = []
    code, out, err = run(capsys, "status")
    assert code == 0, err
    outputs += [out, err]
    assert "variables: 1 to create, 1 to update, 0 unchanged, 1 kept (not in the .env)" in out
    assert "  create: NEW" in out and "  update: GREETING" in out
    assert "in sync" not in out
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    outputs += [out, err]
    doc = json.loads(out)
    assert doc["variables"] == {"create": ["NEW"], "update": ["GREETING"], "delete": [],
                                "kept": ["OTHER"], "unchanged": []}
    # A Variable is not part of a build: nothing to build, yet not in sync.
    assert not doc["needs_build"] and not doc["in_sync"]
    assert no_writes(emulator)
    text = "\n".join(outputs)
    stored = [p.read_bytes() for p in (project / ".assetsync").rglob("*") if p.is_file()]
    for secret in (*SECRETS, *new_values):
        assert secret not in text
        assert all(secret.encode() not in blob for blob in stored)

    synced(capsys)  # applying the .env brings status back in sync
    after = status_json(capsys)
    assert after["in_sync"] and after["variables"]["unchanged"] == ["GREETING", "NEW"]


def test_status_names_a_function_another_tool_changed_as_drift(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    first = synced(capsys)
    redeploy_hello_elsewhere(emulator, first["service_sid"], first["environment_sid"],
                             first["build_sid"])
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "drift:" in out and "1 path(s) of functions changed (/hello)" in out
    assert "in sync" not in out
    doc = status_json(capsys)
    assert "/hello" in doc["drift"] and not doc["in_sync"]
    # The local hello.js is the version assetsync recorded: a sync would put it back unsent.
    assert doc["functions"]["uploads"] == [] and doc["functions"]["redeploys"] == ["/hello"]


def test_rollback_after_a_function_change_brings_the_old_version_back(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    first = synced(capsys)
    svc = first["service_sid"]
    before = function_sids(emulator, svc, first["build_sid"])
    (project / "functions" / "hello.js").write_text(HELLO + "// edited\n")
    second = synced(capsys)
    assert function_sids(emulator, svc, second["build_sid"])["/hello"] != before["/hello"]

    code, out, err = run(capsys, "rollback", "--json")
    assert code == 0, err
    back = json.loads(out)
    assert back["build_sid"] == first["build_sid"]  # still there: deployed again as it was
    assert function_sids(emulator, svc, live(emulator)["build"]["sid"]) == before
    # The folder still holds the edit, recorded already: a sync redeploys it without upload.
    doc = status_json(capsys)
    assert doc["drift"] is None and not doc["in_sync"]
    assert doc["functions"]["uploads"] == [] and doc["functions"]["redeploys"] == ["/hello"]


def test_rollback_rebuilds_a_deleted_build_with_its_own_functions_and_dependencies(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    first = synced(capsys)
    svc = first["service_sid"]
    first_build = api_get(emulator, f"/v1/Services/{svc}/Builds/{first['build_sid']}")
    (project / "functions" / "hello.js").write_text(HELLO + "// edited\n")
    (project / "functions" / "extra.js").write_text(HELLO + "// extra\n")
    (project / "package.json").write_text(json.dumps({"dependencies": {"axios": "1.7.2"}}))
    second = synced(capsys)
    assert function_sids(emulator, svc, second["build_sid"]).keys() != function_sids(
        emulator, svc, first["build_sid"]).keys()
    emulator.clock.advance(25 * 3600)  # undeployed builds are deleted after 24 h
    emulator.state.sweep(force=True)

    code, out, err = run(capsys, "rollback", "--json")
    assert code == 0, err
    back = json.loads(out)
    assert back["build_sid"] not in (first["build_sid"], second["build_sid"])
    assert any("rebuilt" in note for note in back["notes"])
    rebuilt = api_get(emulator, f"/v1/Services/{svc}/Builds/{back['build_sid']}")
    assert live(emulator)["build"]["sid"] == rebuilt["sid"]
    assert (sorted(v["sid"] for v in rebuilt["function_versions"])
            == sorted(v["sid"] for v in first_build["function_versions"]))
    assert rebuilt["dependencies"] == first_build["dependencies"]
    assert rebuilt["runtime"] == first_build["runtime"]
    assert (sorted(v["sid"] for v in rebuilt["asset_versions"])
            == sorted(v["sid"] for v in first_build["asset_versions"]))


def test_a_project_without_functions_has_no_functions_or_variables_in_status(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, emulator)
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>\n")
    (tmp_path / ".env").write_text("GREETING=not-deployed-without-functions\n")
    enter_cli(tmp_path, emulator, monkeypatch)
    synced(capsys)
    doc = status_json(capsys)
    assert doc["in_sync"]
    assert "functions" not in doc and "variables" not in doc
    code, out, _ = run(capsys, "status")
    assert code == 0 and "functions:" not in out and "variables:" not in out
