"""Functions, Dependencies, Runtime and Variables in `sync`: a Serverless Toolkit project beside
the assets folder, published to the emulator over a socket through `main([...])` and
`assetsync.sync.run.sync`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.errors import DriftError, LimitError
from assetsync.sync.run import sync
from tests.sync_harness import api_get, load, quick_client
from tests.toolkit_harness import (
    HELLO,
    SECRETS,
    enter_toolkit_project,
    live,
    redeploy_hello_elsewhere,
    run,
    toolkit_project,
    uploads_to,
)


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_toolkit_project(tmp_path, emulator, monkeypatch)


def test_a_toolkit_project_publishes_functions_and_variables_then_one_change_uploads_one(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sync")
    assert code == 0, err
    assert "uploaded 1 file(s) and 3 function(s) (" in out  # the bytes count both
    assert "functions: uploaded 3 (/admin/secret, /hello, /lib/util)" in out
    now = live(emulator)
    # The Toolkit's rules: suffix stripped, folders kept as segments, visibility from the suffix.
    assert now["functions"] == [("/admin/secret", "protected"), ("/hello", "public"),
                                ("/lib/util", "private")]
    assert now["function_names"] == ["/admin/secret", "/hello", "/lib/util"]
    assert now["assets"] == ["/index.html"]
    # twilio-run leaves out empty values and the deploy's own credentials.
    assert now["variables"] == {"GREETING": SECRETS[0], "OTHER": SECRETS[1]}
    assert now["build"]["dependencies"] == [{"name": "lodash", "version": "^4.17.21"}]

    (project / "functions" / "hello.js").write_text(HELLO + "// changed\n")
    emulator.state.request_log.clear()
    code, out, err = run(capsys, "sync", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["functions"]["uploaded"] == ["/hello"] and doc["functions"]["reused"] == 2
    assert uploads_to(emulator, "Functions") == 1 and uploads_to(emulator, "Assets") == 0
    after = live(emulator)
    assert after["functions"] == now["functions"] and after["assets"] == ["/index.html"]
    assert after["build"]["sid"] != now["build"]["sid"]

    emulator.state.request_log.clear()
    code, out, _ = run(capsys, "sync")
    assert code == 0 and out.startswith("Up to date")
    assert [e for e in emulator.state.request_log if e.method != "GET"] == []


def test_no_variable_value_reaches_output_json_logs_or_state(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    log = project / "sync.log"
    outputs = []
    for argv in (["sync", "--log-file", str(log)], ["sync", "--json"], ["plan"], ["status"],
                 ["plan", "--json"], ["status", "--json"], ["state", "export"]):
        code, out, err = run(capsys, *argv)
        assert code == 0, (argv, err)
        outputs += [out, err]
    (project / ".env").write_text(f"GREETING={SECRETS[0]}-new\n")
    code, out, err = run(capsys, "sync", "--prune-variables", "--json")
    assert code == 0, err
    outputs += [out, err]
    assert json.loads(out)["variables"] == {"create": [], "update": ["GREETING"],
                                            "delete": ["OTHER"], "kept": [], "unchanged": []}
    stored = [p.read_bytes() for p in (project / ".assetsync").rglob("*") if p.is_file()]
    text = "\n".join(outputs) + log.read_text()
    assert "GREETING" in text  # keys are shown ...
    for secret in SECRETS:  # ... values never
        assert secret not in text
        assert all(secret.encode() not in blob for blob in stored)


def test_variables_are_diffed_and_keys_absent_locally_are_kept_unless_pruned(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    sync(config)
    (tmp_path / ".env").write_text(f"GREETING={SECRETS[0]}\nNEW=fresh\n")
    emulator.state.request_log.clear()
    second = sync(config)
    assert second.variables is not None
    assert (second.variables.create, second.variables.update, second.variables.kept) == (
        ("NEW",), (), ("OTHER",))
    variable_writes = [e for e in emulator.state.request_log
                       if e.method != "GET" and "/Variables" in e.path]
    assert len(variable_writes) == 1  # one create, nothing sent for the unchanged key
    assert set(live(emulator)["variables"]) == {"GREETING", "NEW", "OTHER"}

    pruned = sync(config, prune_variables=True)
    assert pruned.variables is not None and pruned.variables.delete == ("OTHER",)
    assert set(live(emulator)["variables"]) == {"GREETING", "NEW"}


def test_a_dependency_change_alone_makes_a_new_build_without_uploads(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    first = sync(config)
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"lodash": "^4.17.21",
                                                                        "axios": "1.7.2"}}))
    emulator.state.request_log.clear()
    second = sync(config)
    assert not second.noop and second.build_sid != first.build_sid
    assert second.functions is not None and second.functions.dependencies_changed
    assert uploads_to(emulator, "Functions") == 0 and uploads_to(emulator, "Assets") == 0
    deps = live(emulator)["build"]["dependencies"]
    assert sorted(d["name"] for d in deps) == ["axios", "lodash"]
    assert sync(config).noop


def test_runtime_from_the_project_reaches_the_build(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, extra="")
    toolkit_project(tmp_path)
    text = (tmp_path / ".assetsync.toml").read_text()
    (tmp_path / ".assetsync.toml").write_text(
        text.replace('environment = "dev"\n', 'environment = "dev"\nruntime = "node20"\n', 1))
    config = load(tmp_path, emulator)
    sync(config)
    assert live(emulator)["build"]["runtime"] == "node20"


def test_more_functions_than_a_build_holds_is_one_error_and_nothing_is_sent(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    for i in range(50):
        (tmp_path / "functions" / f"extra{i:02d}.js").write_text(HELLO)
    with pytest.raises(LimitError, match="53 function versions") as caught:
        sync(config)
    assert "50" in str(caught.value)
    assert [e for e in emulator.state.request_log if e.kind == "upload"] == []


def test_a_function_and_an_asset_at_one_path_is_an_error_naming_both(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    enter_toolkit_project(tmp_path, emulator, monkeypatch)
    (tmp_path / "site" / "hello").write_text("an asset at the function's path")
    code, _out, err = run(capsys, "sync")
    assert code != 0 and "Traceback" not in err
    assert "functions/hello.js" in err and "/hello" in err
    assert [e for e in emulator.state.request_log if e.kind == "upload"] == []


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("package.json", "{not json", "package.json: not valid JSON"),
    (".env", "GOOD=1\nthis line has no equals sign but is long\n", ".env"),
])
def test_a_bad_package_json_or_env_is_one_line_and_nothing_changes(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
        name: str, text: str, fragment: str) -> None:
    (project / name).write_text(text)
    code, _out, err = run(capsys, "sync")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err
    assert [e for e in emulator.state.request_log if e.method != "GET"] == []


def test_a_function_changed_by_another_tool_is_drift_naming_it(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    first = sync(config)
    assert first.service_sid and first.environment_sid and first.build_sid
    ours, theirs = redeploy_hello_elsewhere(emulator, first.service_sid, first.environment_sid,
                                            first.build_sid)
    with pytest.raises(DriftError, match="/hello"):
        sync(config)
    # --force puts the local function back: its content was uploaded before, so the version
    # assetsync recorded is reused, not sent again.
    forced = sync(config, force=True)
    assert forced.functions is not None and forced.functions.uploaded == ()
    now = api_get(emulator, f"/v1/Services/{first.service_sid}/Builds/{forced.build_sid}")
    assert ours in {v["sid"] for v in now["function_versions"]}
    assert theirs not in {v["sid"] for v in now["function_versions"]}


def test_a_function_upload_whose_answer_was_lost_is_recorded_not_sent_twice(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    emulator.state.faults.add("POST", "/v1/Services/*/Functions/*/Versions", "drop-after", count=1)
    result = sync(config, client=quick_client(config))
    assert emulator.state.faults.pending == []
    assert result.functions is not None and len(result.functions.uploaded) == 3
    assert len(live(emulator)["functions"]) == 3
    emulator.state.request_log.clear()
    assert sync(config).noop


def test_functions_off_keeps_the_live_builds_functions(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    sync(config)
    text = (tmp_path / ".assetsync.toml").read_text()
    (tmp_path / ".assetsync.toml").write_text(
        text.replace('environment = "dev"\n', 'environment = "dev"\nfunctions = ""\n', 1))
    (tmp_path / "site" / "more.txt").write_text("more")
    config = load(tmp_path, emulator)
    emulator.state.request_log.clear()
    result = sync(config)
    assert result.functions is None
    assert uploads_to(emulator, "Functions") == 0
    assert len(live(emulator)["functions"]) == 3  # carried forward untouched


def test_an_editors_lock_and_swap_files_beside_a_function_are_not_deployed(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    toolkit_project(tmp_path)
    functions = tmp_path / "functions"
    # emacs marks an unsaved buffer with a dangling symlink; vim keeps a swap file
    (functions / ".#hello.js").symlink_to("someone@host.4242:1700000000")
    (functions / ".hello.js.swp").write_bytes(b"b0VIM 9.0")
    (functions / ".git").mkdir()
    (functions / ".git" / "hook.js").write_text("// not a function")
    result = sync(config)
    assert result.functions is not None
    assert sorted(result.functions.uploaded) == ["/admin/secret", "/hello", "/lib/util"]
    assert [path for path, _vis in live(emulator)["functions"]] == [
        "/admin/secret", "/hello", "/lib/util"]


def test_public_and_protected_functions_are_listed_with_the_urls(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sync", "--json")
    assert code == 0, err
    synced = json.loads(out)["urls"]
    code, out, err = run(capsys, "urls", "--json")
    assert code == 0, err
    # private functions, like private files, have no URL
    domain = synced["/index.html"].removesuffix("/index.html")
    assert synced == json.loads(out) == {path: domain + path for path in (
        "/index.html", "/hello", "/admin/secret")}


def test_promote_sets_the_target_environments_variables_from_an_env_file(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sync")[0] == 0
    prod_secret = "prod-value-93d1"
    (project / ".env.prod").write_text(f"GREETING={prod_secret}\nACCOUNT_SID=ACnot\n")
    code, out, err = run(capsys, "promote", "dev", "prod", "--env-file", ".env.prod")
    assert code == 0, err
    assert "variables: 1 created, 0 updated, 0 deleted, 0 unchanged" in out
    assert prod_secret not in out + err
    svc = api_get(emulator, "/v1/Services/site")
    envs = {e["unique_name"]: e for e in
            api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"]}
    prod, dev = envs["prod"], envs["dev"]
    assert prod["build_sid"] == dev["build_sid"]  # the same build, functions and all
    variables = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments/{prod['sid']}"
                                  "/Variables")["variables"]
    assert {v["key"]: v["value"] for v in variables} == {"GREETING": prod_secret}
    assert live(emulator)["variables"]["GREETING"] == SECRETS[0]  # dev keeps its own

    assert run(capsys, "promote", "dev", "prod", "--prune-variables")[0] == 2
