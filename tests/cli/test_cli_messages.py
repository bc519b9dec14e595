"""No Python `None`, repr or traceback reaches a message of any command: every command's error
paths (no config, a broken or wrong config, bad flags, nothing published yet, a missing source
folder or env file, an API that refuses, a target that does not answer) run through `main([...])`
in-process, and what they print is checked."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from tests.sync_harness import enter_cli, make_tree, write_config

# What leaks when an object, not a message, is printed: `None`, `<x object at 0x..>`,
# `<class 'x'>`, `ConfigError('...')`, a traceback.
_LEAKS = re.compile(
    r"\bNone\b|Traceback \(most recent|<[\w.]+ object at 0x|<(class|function|module|coroutine) "
    r"|\b\w+(Error|Exception)\(|\bat 0x[0-9a-f]{6,}|\[Errno \d+\]")

LOCAL = '[project]\nsource = "site"\nservice = "messages"\n'


def check(code: int, out: str, err: str, argv: list[str]) -> None:
    assert code != 0, (argv, out, err)
    text = out + err
    leak = _LEAKS.search(text)
    assert leak is None, f"{argv}: {leak.group(0)!r} in {text!r}"
    assert err.strip(), f"{argv}: failed without a word on stderr"


def run_case(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    check(code, out, err, argv)


def _site(root: Path, config: str = LOCAL) -> None:
    (root / "site").mkdir(exist_ok=True)
    (root / "site" / "a.txt").write_text("a\n")
    (root / ".assetsync.toml").write_text(config, encoding="utf-8")


CONFIGS: dict[str, Callable[[Path], object]] = {
    "no config": lambda root: None,
    "broken TOML": lambda root: _site(root, LOCAL + "[target\n"),
    "unknown key": lambda root: _site(root, LOCAL + "colour = 'red'\n"),
    "bad value": lambda root: _site(root, LOCAL.replace('"messages"', '"Not A Name!"')),
    "unknown section": lambda root: _site(root, LOCAL + "[sinc]\nconcurrency = 2\n"),
    "missing source": lambda root: (root / ".assetsync.toml").write_text(LOCAL),
    "env file missing": lambda root: _site(root, LOCAL + 'env_file = ".env.nope"\nfunctions '
                                       '= "functions"\n'),
}

COMMANDS = [
    ["plan"], ["sync"], ["sync", "--dry-run"], ["status"], ["urls"], ["rollback"],
    ["promote", "dev", "prod"], ["prune"], ["state", "export"], ["optimize"], ["watch"],
]


@pytest.mark.parametrize("setup", sorted(CONFIGS))
def test_config_problems(setup: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()  # the config search stops here, never above the test folder
    CONFIGS[setup](tmp_path)
    if setup == "env file missing":
        (tmp_path / "functions").mkdir()
        (tmp_path / "functions" / "hi.js").write_text("exports.handler = () => {};\n")
    monkeypatch.chdir(tmp_path)
    for argv in COMMANDS:
        if setup in ("missing source", "env file missing") and argv[0] in (
                "urls", "rollback", "promote", "prune", "state", "status", "optimize"):
            continue  # these read no source folder or .env; they fail otherwise below
        run_case(capsys, argv)


BAD_FLAGS = [
    ["--no-such-flag"], ["sync", "--no-such-flag"], ["plan", "--env"], ["sync", "--env", "Bad Env!"],
    ["plan", "--env", "x" * 40], ["status", "--env", "Bad Env!"], ["urls", "--format", "xml"],
    ["emulator", "--port", "x"], ["emulator", "--port", "70000"], ["emulator", "--limit", "x"],
    ["emulator", "--limit", "max_public_bytes=-1"], ["emulator", "--fault", "GET"],
    ["emulator", "--account-sid", "nope"], ["emulator", "--build-delay", "-1"],
    ["optimize", "--workers", "x"], ["sync", "--adopt", "--force"], ["sync", "--log-file", "/"],
    ["promote", "dev"], ["promote", "dev", "prod", "--prune-variables"], ["rollback", "--to", "x"],
    ["state", "import", "no-such.json"], ["state", "import", "bad.json"], ["state"],
    ["init"], ["optimize", "no/such/file.png"], ["-c", "no-such.toml", "plan"],
    ["plan", "-c", "no-such.toml"], ["-c", ".", "plan"], ["optimize", "--workers", "0"],
]


def test_bad_flags_and_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _site(tmp_path)  # `init` then fails: the config exists
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)
    for argv in BAD_FLAGS:
        run_case(capsys, argv)


def test_wrong_content(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    _site(tmp_path)
    (tmp_path / "site" / "c#d.txt").write_text("unpublishable name")
    (tmp_path / "wrong.json").write_text('{"format": "something-else"}')
    (tmp_path / "list.json").write_text("[1, 2]")
    monkeypatch.chdir(tmp_path)
    for argv in (["plan"], ["sync"], ["sync", "--dry-run"], ["state", "import", "wrong.json"],
                 ["state", "import", "list.json"], ["optimize", "--source", "no-such-dir"]):
        run_case(capsys, argv)
    (tmp_path / "site" / "c#d.txt").unlink()
    assert main(["sync", "-q"]) == 0
    capsys.readouterr()
    for argv in (["rollback", "--to", "ZB" + "0" * 32], ["promote", "dev", "Bad Env!"],
                 ["promote", "nowhere", "prod"], ["promote", "dev", "prod", "--env-file", "no.env"]):
        run_case(capsys, argv)
    # One .env per environment, and prod's is missing.
    (tmp_path / ".assetsync.toml").write_text(LOCAL + 'env_file = ".env.{env}"\n')
    run_case(capsys, ["promote", "dev", "prod"])


def test_a_corrupt_state_and_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _site(tmp_path)
    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".assetsync"
    state.mkdir()
    for name in ("state.sqlite3", "state.db", "assetsync.sqlite3"):
        (state / name).write_bytes(b"this is not a database" * 100)
    for argv in (["plan"], ["sync"], ["status"], ["urls"], ["state", "export"], ["prune"]):
        run_case(capsys, argv)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run_case(capsys, ["emulator", "--port", str(busy.getsockname()[1]), "--data", "emu"])
    (tmp_path / "emu-file").write_text("a file, not a folder")
    run_case(capsys, ["emulator", "--port", "0", "--data", "emu-file/x"])


@pytest.mark.parametrize("broken", ["package.json", ".env"])
def test_a_broken_toolkit_file(broken: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    _site(tmp_path)
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "hi.js").write_text("exports.handler = () => {};\n")
    (tmp_path / "package.json").write_text('{"dependencies": {"twilio": "^5"}}')
    (tmp_path / ".env").write_text("GREETING=hello\n")
    (tmp_path / broken).write_text({"package.json": "{not json",
                                    ".env": "export GREETING=hello\n"}[broken])
    monkeypatch.chdir(tmp_path)
    for argv in (["plan"], ["sync"], ["sync", "--dry-run"], ["status"]):
        run_case(capsys, argv)


def test_nothing_published_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    _site(tmp_path)
    monkeypatch.chdir(tmp_path)
    for argv in (["rollback"], ["promote", "dev", "prod"], ["rollback", "--to", "ZB" + "0" * 32]):
        run_case(capsys, argv)


def test_an_api_that_refuses(tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, emulator)
    make_tree(tmp_path / "site", 2)
    enter_cli(tmp_path, emulator, monkeypatch)
    assert main(["sync", "-q"]) == 0
    # A Retry-After longer than assetsync waits: every request fails at once, no retry wait.
    emulator.state.faults.add("*", "/v1/*", "429-retry-after", count=None, delay_s=600.0)
    (tmp_path / "site" / "new.txt").write_text("new")
    for argv in (["sync"], ["sync", "--json"], ["status"], ["rollback"],
                 ["promote", "dev", "prod"], ["prune", "--yes"]):
        code = main(argv)
        out, err = capsys.readouterr()
        if argv[-1] == "--json":
            err = err or out  # the one JSON document carries the error
        check(code, out, err, argv)
    emulator.state.faults.clear()
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong")
    for argv in (["sync"], ["status"], ["prune"]):
        run_case(capsys, argv)


def test_a_target_that_does_not_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _site(tmp_path, LOCAL + f'[target]\napi = "http://127.0.0.1:{port}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    run_case(capsys, ["status"])  # the client's retries run first (~30 s of waiting)
