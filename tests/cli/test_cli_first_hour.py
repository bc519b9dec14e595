"""Issue 25, the command line as a new user meets it: `sync -q --log-file` is quiet, a busy
emulator port is one line and an exit code of its own, `--env` and `-c FILE` work on every
command, a dry run says "would upload", the summary accounts for private and protected files
and gives the local URL, long function lists say how many were left out, and each environment
can have its own .env."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import assetsync
from assetsync.cli import build_parser, main
from assetsync.cli.commands.emulator import EXIT_PORT_IN_USE
from assetsync.emulator.serve import start_in_thread
from assetsync.emulator.state import EmulatorState
from tests.sync_harness import api_get, enter_cli, make_tree, write_config
from tests.toolkit_harness import toolkit_project


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assetsync_process(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m assetsync ARGV` run in `root`, importing this checkout's package."""
    env = {**os.environ, "PYTHONPATH": str(Path(assetsync.__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "assetsync", *argv], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def local_project(root: Path) -> Path:
    """A project publishing to the embedded target (no credentials, no network)."""
    site = root / "site"
    (site / "img").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>\n")
    (site / "img" / "a.txt").write_text("a\n")
    (site / "key.private.txt").write_text("for functions\n")
    (site / "ivr.protected.txt").write_text("signed only\n")
    (root / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "first-hour"\n', encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_config(tmp_path, emulator)
    make_tree(tmp_path / "site", 3)
    (tmp_path / "site" / "secret.private.txt").write_text("for functions only")
    return enter_cli(tmp_path, emulator, monkeypatch)


# --- 1. quiet means quiet --------------------------------------------------------------------


def test_quiet_sync_with_a_log_file_prints_nothing_as_a_process(tmp_path: Path) -> None:
    # A whole process: in-process, pytest's own log handlers stand in for the stderr handler
    # that let the INFO lines through.
    local_project(tmp_path)
    log = tmp_path / "sync.log"
    proc = assetsync_process(tmp_path, "sync", "--quiet", "--log-file", str(log))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert "INFO assetsync.remote.client: POST" in log.read_text()
    verbose = assetsync_process(tmp_path, "-v", "sync", "--full")
    assert verbose.returncode == 0 and "INFO assetsync.remote.client: POST" in verbose.stderr


# --- 2. a busy emulator port -----------------------------------------------------------------


def test_emulator_on_a_busy_port_is_one_line_and_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run(capsys, "emulator", "--port", str(port), "--data", "emu")
    assert code == EXIT_PORT_IN_USE and code not in (1, 2, 3)
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert f"port {port}" in err and "--port N" in err and "Traceback" not in err


def test_start_in_thread_on_a_busy_port_raises_address_in_use(tmp_path: Path) -> None:
    import errno

    state = EmulatorState(tmp_path / "emu")
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            with pytest.raises(OSError) as caught:
                start_in_thread(state, port=busy.getsockname()[1])
        assert caught.value.errno == errno.EADDRINUSE
    finally:
        state.close()


# --- 3. --env and -c on every command --------------------------------------------------------


def test_plan_takes_env_like_sync_and_keeps_the_old_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(local_project(tmp_path))
    for flag in ("--env", "-e", "--environment"):
        code, out, err = run(capsys, "plan", flag, "prod", "--json")
        assert code == 0, err
        assert json.loads(out)["environment"] == "prod"
    assert "--environment" not in run(capsys, "plan", "--help")[1]


def _parsers(parser: Any) -> list[Any]:
    found = []
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for sub in action.choices.values():
                found += [sub, *_parsers(sub)]
    return found


def test_every_command_accepts_the_config_flag_after_its_name() -> None:
    parsers = _parsers(build_parser())
    assert len(parsers) >= 12
    for parser in parsers:
        assert "-c" in parser._option_string_actions, parser.prog
    args = build_parser("plan").parse_args(["-c", "before.toml", "plan"])
    assert args.config == "before.toml"  # a command without -c keeps the one given before it
    args = build_parser("state").parse_args(["state", "export", "-c", "after.toml"])
    assert args.config == "after.toml"


def test_config_after_the_command_from_another_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    local_project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = "../.assetsync.toml"
    code, out, err = run(capsys, "plan", "-c", config, "--json")
    assert code == 0, err
    assert json.loads(out)["service"] == "first-hour"
    assert run(capsys, "sync", "-c", config, "-q")[0] == 0
    code, out, err = run(capsys, "urls", "--json", "-c", config)
    assert code == 0 and "/index.html" in json.loads(out), err
    code, out, err = run(capsys, "state", "export", "-c", config)
    assert code == 0 and json.loads(out)["format"] == "assetsync-state", err


# --- 6. a dry run says "would" ---------------------------------------------------------------


def test_dry_run_progress_says_would_upload(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "sync", "--dry-run")
    assert code == 0 and "would upload 4 file(s)" in out
    assert "would upload 4 of 4 files" in err and "uploading" not in err


# --- 7. the summary: private, protected, local URLs -------------------------------------------


def test_summary_names_private_files_and_marks_protected_ones(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "site" / "ivr.protected.txt").write_text("for twilio")
    code, out, err = run(capsys, "sync")
    assert code == 0, err
    assert "uploaded 5 file(s)" in out
    assert "1 private file(s) have no URL" in out
    protected = [line for line in out.splitlines() if "/ivr.txt" in line]
    assert len(protected) == 1 and "protected" in protected[0] and "403" in protected[0]
    public = [line for line in out.splitlines() if "/d0/f0000.txt" in line]
    assert len(public) == 1 and "protected" not in public[0]
    assert "127.0.0.1" not in out  # a real target: no local form
    code, out, _ = run(capsys, "urls")
    assert code == 0 and "403" in next(ln for ln in out.splitlines() if "/ivr.txt" in ln)


def test_the_local_target_prints_urls_the_emulator_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(local_project(tmp_path))
    code, out, err = run(capsys, "sync")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "/img/a.txt" in ln)
    local = next(word for word in line.split() if word.startswith("http://127.0.0.1:4280/"))
    # `assetsync emulator` serves the state folder the embedded target published to.
    state = EmulatorState(tmp_path / ".assetsync" / "emulator")
    running = start_in_thread(state)
    try:
        answer = httpx.get(local.replace("http://127.0.0.1:4280", running.url))
        assert answer.status_code == 200 and answer.text == "a\n"
    finally:
        running.stop()
        state.close()
    code, out, _ = run(capsys, "urls")
    assert local in out


# --- 8. long lists say how many were left out ------------------------------------------------


def test_functions_line_counts_the_names_it_leaves_out(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, emulator)
    toolkit_project(tmp_path)
    for i in range(4):
        (tmp_path / "functions" / f"f{i}.js").write_text("exports.handler = () => {};\n")
    enter_cli(tmp_path, emulator, monkeypatch)
    code, out, err = run(capsys, "sync")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("functions:"))
    assert "uploaded 7 (" in line and "… and 2 more)" in line


# --- 5. one .env per environment -------------------------------------------------------------


def synced_and_promoted(
    root: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, envs: dict[str, str], extra: str = ""
) -> str:
    """A Toolkit project with `env_file = ".env.{env}"` (`envs`: each file's text), synced to
    dev and promoted to prod; promote's stderr."""
    write_config(root, emulator)
    toolkit_project(root)
    text = (root / ".assetsync.toml").read_text()
    (root / ".assetsync.toml").write_text(
        text.replace('environment = "dev"\n', 'environment = "dev"\nenv_file = ".env.{env}"\n')
        + extra)
    for env, body in envs.items():
        (root / f".env.{env}").write_text(body)
    enter_cli(root, emulator, monkeypatch)
    assert run(capsys, "sync")[0] == 0
    code, _out, err = run(capsys, "promote", "dev", "prod")
    assert code == 0, err
    return err


def test_each_environment_reads_its_own_env_file(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_and_promoted(tmp_path, emulator, capsys, monkeypatch,
                        {"dev": "GREETING=dev-hello\n", "prod": "GREETING=prod-hello\nONLY_PROD=1\n"})
    svc = api_get(emulator, "/v1/Services/site")
    envs = {e["unique_name"]: e for e in
            api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"]}

    def variables(prefix: str) -> dict[str, str]:
        env = next(e for name, e in envs.items() if name.startswith(prefix))
        listed = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments/{env['sid']}"
                         "/Variables")["variables"]
        return {v["key"]: v["value"] for v in listed}

    assert variables("dev") == {"GREETING": "dev-hello"}
    assert variables("prod") == {"GREETING": "prod-hello", "ONLY_PROD": "1"}
    status = json.loads(run(capsys, "status", "--env", "prod", "--json")[1])
    assert status["variables"]["create"] == [] and status["variables"]["update"] == []
    plan = json.loads(run(capsys, "plan", "--env", "prod", "--json")[1])
    assert plan["environment"] == "prod"


def test_promote_says_each_config_warning_once(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    err = synced_and_promoted(tmp_path, emulator, capsys, monkeypatch,
                              {"dev": "A=1\n", "prod": "A=2\n"},
                              extra='[optimize.profiles.whatsap]\nglobs = ["img/**"]\n')
    assert err.count("did you mean [optimize.profiles.whatsapp]?") == 1, err


def test_a_missing_env_file_is_refused_even_without_functions(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, emulator)
    make_tree(tmp_path / "site", 3)
    enter_cli(tmp_path, emulator, monkeypatch)
    code, _out, err = run(capsys, "sync", "--env-file", "nope.env")
    assert code != 0 and "nope.env does not exist" in err and "Traceback" not in err
    assert api_get(emulator, "/v1/Services")["services"] == []  # nothing was changed
    assert run(capsys, "sync")[0] == 0


def test_the_emulator_finds_the_projects_data_from_a_subfolder(tmp_path: Path) -> None:
    import signal

    local_project(tmp_path)
    (tmp_path / ".git").mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(assetsync.__file__).parents[1]),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "assetsync", "emulator", "--port", "0"],
                            cwd=tmp_path / "site" / "img", env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        data = next(line for line in proc.stdout if line.strip().startswith("data:"))
        assert data.split(":", 1)[1].strip() == str(tmp_path / ".assetsync" / "emulator")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
