"""`assetsync plan` for a Serverless Toolkit project: functions, Dependencies and Variables planned
offline against what the last sync recorded (its build's manifest, its Function Versions, keyed
digests of the Variables), through `main([...])`, with syncs to the emulator over a socket."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import xxhash

from tests.toolkit_harness import (
    HELLO,
    SECRETS,
    enter_toolkit_project,
    run,
)


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_toolkit_project(tmp_path, emulator, monkeypatch)


FUNCTIONS = ["/admin/secret", "/hello", "/lib/util"]
KEYS = ["GREETING", "OTHER"]  # what the project's .env deploys (ACCOUNT_SID, EMPTY are left out)


def plan_json(capsys: pytest.CaptureFixture[str], emulator: Any,
              *extra: str) -> dict[str, Any]:
    """`plan --json`, checked to have sent no request (it is offline)."""
    emulator.state.request_log.clear()
    code, out, err = run(capsys, "plan", "--json", *extra)
    assert code == 0, err
    assert list(emulator.state.request_log) == []
    doc: dict[str, Any] = json.loads(out)
    return doc


def synced(capsys: pytest.CaptureFixture[str], *extra: str) -> None:
    code, _out, err = run(capsys, "sync", *extra)
    assert code == 0, err


def variables(*, create: list[str] | None = None, update: list[str] | None = None,
              delete: list[str] | None = None, kept: list[str] | None = None,
              unchanged: list[str] | None = None) -> dict[str, list[str]]:
    """`VariablePlan.to_json`'s shape (what `sync --json` prints too)."""
    return {"create": create or [], "update": update or [], "delete": delete or [],
            "kept": kept or [], "unchanged": unchanged or []}


def test_before_any_sync_three_functions_upload_and_every_key_is_to_set(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_json(capsys, emulator)
    fn = doc["functions"]
    assert [(f["path"], f["visibility"], f["source"]) for f in fn["uploads"]] == [
        ("/admin/secret", "protected", "admin/secret.protected.js"),
        ("/hello", "public", "hello.js"), ("/lib/util", "private", "lib/util.private.js")]
    assert fn["reuses"] == [] and fn["drops"] == [] and fn["needs_build"] is True
    assert fn["dependencies"] == [["lodash", "^4.17.21"]] and fn["dependencies_changed"] is True
    assert doc["variables"] == variables(create=KEYS)
    assert [u["path"] for u in doc["uploads"]] == ["/index.html"]  # the assets as before

    code, out, err = run(capsys, "plan")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.endswith("function")]
    size = {f["path"]: str(f["size"]) for f in fn["uploads"]}
    assert size["/hello"] == str(len(HELLO))
    assert rows == [["upload", "protected", "/admin/secret", size["/admin/secret"], "B",
                     "function"],
                    ["upload", "public", "/hello", size["/hello"], "B", "function"],
                    ["upload", "private", "/lib/util", size["/lib/util"], "B", "function"]]
    assert "functions: 3 uploads" in out
    assert "dependencies changed: lodash@^4.17.21" in out
    assert "variables: 2 to set (GREETING OTHER)" in out
    assert "nothing to do" not in out


def test_after_a_sync_the_functions_plan_is_a_noop(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    doc = plan_json(capsys, emulator)
    fn = doc["functions"]
    assert fn["uploads"] == [] and fn["drops"] == []
    assert [r["path"] for r in fn["reuses"]] == FUNCTIONS
    assert fn["needs_build"] is False and fn["dependencies_changed"] is False
    assert doc["variables"] == variables(unchanged=KEYS)
    code, out, err = run(capsys, "plan")
    assert code == 0, err
    assert "nothing to do: everything is published" in out
    assert "variables since the last sync: 0 unchanged" not in out
    assert "2 unchanged" in out and "dependencies unchanged" in out


def test_editing_hello_plans_exactly_that_function_and_a_dependency_change_shows(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    (project / "functions" / "hello.js").write_text(HELLO + "// changed\n")
    fn = plan_json(capsys, emulator)["functions"]
    assert [f["path"] for f in fn["uploads"]] == ["/hello"]
    assert [r["path"] for r in fn["reuses"]] == ["/admin/secret", "/lib/util"]
    assert fn["needs_build"] is True and fn["dependencies_changed"] is False

    (project / "package.json").write_text(json.dumps({"dependencies": {"lodash": "^4.17.21",
                                                                       "axios": "1.7.2"}}))
    fn = plan_json(capsys, emulator)["functions"]
    assert fn["dependencies_changed"] is True
    assert fn["dependencies"] == [["axios", "1.7.2"], ["lodash", "^4.17.21"]]
    # A function the folder no longer has leaves the next build, and the plan says so.
    (project / "functions" / "lib" / "util.private.js").unlink()
    code, out, err = run(capsys, "plan")
    assert code == 0, err
    assert ["drop", "/lib/util", "function"] in [line.split() for line in out.splitlines()]
    assert "dependencies changed: axios@1.7.2, lodash@^4.17.21" in out


def test_one_changed_value_plans_that_key_as_update_and_a_sync_settles_it(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    env = project / ".env"
    env.write_text(env.read_text().replace(SECRETS[0], SECRETS[0] + "-new"))
    assert plan_json(capsys, emulator)["variables"] == variables(update=["GREETING"],
                                                                 unchanged=["OTHER"])
    _code, out, _err = run(capsys, "plan")
    assert "variables since the last sync: 1 changed (GREETING), 1 unchanged" in out
    synced(capsys)  # applies the update and records the new digest
    assert plan_json(capsys, emulator)["variables"] == variables(unchanged=KEYS)
    env.write_text(env.read_text().replace(SECRETS[0] + "-new", SECRETS[0]))  # back again
    assert plan_json(capsys, emulator)["variables"] == variables(update=["GREETING"],
                                                                 unchanged=["OTHER"])


def test_a_removed_key_is_kept_as_sync_keeps_it_unless_pruned(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys)
    (project / ".env").write_text(f"GREETING={SECRETS[0]}\nNEW=fresh\n")
    assert plan_json(capsys, emulator)["variables"] == variables(
        create=["NEW"], kept=["OTHER"], unchanged=["GREETING"])
    assert plan_json(capsys, emulator, "--prune-variables")["variables"] == variables(
        create=["NEW"], delete=["OTHER"], unchanged=["GREETING"])
    _code, out, _err = run(capsys, "plan")
    assert "1 new (NEW)" in out and "1 kept (OTHER: not in the .env" in out

    code, out, err = run(capsys, "sync", "--json")  # sync agrees, and keeps OTHER live
    assert code == 0, err
    assert json.loads(out)["variables"] == variables(create=["NEW"], kept=["OTHER"],
                                                     unchanged=["GREETING"])
    assert plan_json(capsys, emulator)["variables"] == variables(kept=["OTHER"],
                                                                 unchanged=["GREETING", "NEW"])
    synced(capsys, "--prune-variables")
    assert plan_json(capsys, emulator)["variables"] == variables(unchanged=["GREETING", "NEW"])


def test_a_dry_run_records_no_digest(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    synced(capsys, "--dry-run")
    assert plan_json(capsys, emulator)["variables"] == variables(create=KEYS)
    synced(capsys)
    (project / ".env").write_text(f"GREETING={SECRETS[0]}-new\nOTHER={SECRETS[1]}\n")
    synced(capsys, "--dry-run")  # sees the change, sends and records nothing
    assert plan_json(capsys, emulator)["variables"] == variables(update=["GREETING"],
                                                                 unchanged=["OTHER"])


def test_no_value_reaches_plan_output_json_or_any_byte_of_the_state(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for argv in (["plan"], ["plan", "--json"], ["sync"], ["plan"], ["plan", "--json"]):
        code, out, err = run(capsys, *argv)
        assert code == 0, (argv, err)
        outputs += [out, err]
    (project / ".env").write_text(f"GREETING={SECRETS[0]}-new\n")
    for argv in (["plan"], ["plan", "--json", "--prune-variables"], ["-v", "plan"]):
        code, out, err = run(capsys, *argv)
        assert code == 0, (argv, err)
        outputs += [out, err]
    text = "\n".join(outputs)
    assert "GREETING" in text and "OTHER" in text  # keys are shown ...
    stored = b"".join(p.read_bytes() for p in (project / ".assetsync").rglob("*") if p.is_file())
    assert b"blake2b:" in stored  # digests were recorded ...
    for secret in (*SECRETS, SECRETS[0] + "-new"):  # ... values never, nor a plain hash of one
        assert secret not in text
        data = secret.encode()
        for plain in (data, hashlib.sha256(data).hexdigest().encode(),
                      hashlib.blake2b(data).hexdigest().encode(),
                      hashlib.blake2b(data, digest_size=32).hexdigest().encode(),
                      xxhash.xxh3_128(data).hexdigest().encode()):
            assert plain not in stored


def test_a_function_and_an_asset_at_one_path_is_an_error_line_naming_both(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "site" / "hello").write_text("an asset at the function's path")
    code, out, err = run(capsys, "plan")
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "functions/hello.js" in errors[0] and "/hello" in errors[0]
    assert "an asset also publishes" in errors[0]
    code, out, _err = run(capsys, "plan", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["valid"] is False
    assert [(i["path"], i["severity"]) for i in doc["issues"]] == [("/hello", "error")]


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("package.json", "{not json", "package.json: not valid JSON"),
    (".env", f"GREETING={SECRETS[0]}\nexport OTHER={SECRETS[1]}\n", ".env:2"),
])
def test_a_bad_package_json_or_env_is_one_line_and_exit_2(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
        name: str, text: str, fragment: str) -> None:
    (project / name).write_text(text)
    for argv in (["plan"], ["plan", "--json"]):
        code, out, err = run(capsys, *argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and fragment in lines[0], err
        assert out == "" and "Traceback" not in err
        assert all(secret not in err for secret in SECRETS)


def test_without_a_functions_folder_the_plan_has_no_functions_or_variables(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for path in sorted((project / "functions").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (project / "functions").rmdir()
    doc = plan_json(capsys, emulator)
    assert "functions" not in doc and "variables" not in doc
    code, out, _err = run(capsys, "plan")
    assert code == 0 and "functions:" not in out and "variables" not in out
    assert not [line for line in out.splitlines() if line.endswith("function")]


def test_the_recorded_digests_are_keyed_with_the_states_own_key(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    from assetsync.functions.variables import variable_digests

    synced(capsys)
    conn = sqlite3.connect(project / ".assetsync" / "state.db")
    try:
        rows = dict(conn.execute("SELECT key, digest FROM variable_digests").fetchall())
        (env_sid,) = {r[0] for r in conn.execute("SELECT environment_sid FROM variable_digests")}
        (hex_key,) = conn.execute(
            "SELECT value FROM meta WHERE key = 'variable_digest_key'").fetchone()
    finally:
        conn.close()
    local = {"GREETING": SECRETS[0], "OTHER": SECRETS[1]}
    key = bytes.fromhex(hex_key)
    assert len(key) == 32 and rows == variable_digests(local, key=key, scope=env_sid)
    # Another key, another environment or another name gives another digest: nothing in the
    # state can be matched against guessed values without this state's key.
    assert variable_digests(local, key=bytes(32), scope=env_sid)["GREETING"] != rows["GREETING"]
    assert variable_digests(local, key=key, scope="ZE" + "0" * 32)["GREETING"] != rows["GREETING"]
    same = variable_digests({"A": "x", "B": "x"}, key=key, scope=env_sid)
    assert same["A"] != same["B"]
