"""The CLI entry point: command discovery, lazy imports, usage errors, a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assetsync.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_command_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = sorted(p.stem for p in (REPO / "assetsync/cli/commands").glob("[!_]*.py"))
    assert "sync" in commands and "plan" in commands
    for name in commands:
        assert f"    {name} " in out or f"    {name}\n" in out, name


def test_running_one_command_imports_only_that_command() -> None:
    code = (
        "import sys; from assetsync.cli import build_parser; build_parser('init');"
        "print(sorted(m for m in sys.modules if m.startswith('assetsync.cli.commands.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['assetsync.cli.commands.init']"


def test_config_flag_value_is_not_taken_for_the_command(tmp_path: Path) -> None:
    parser = build_parser("plan")
    args = parser.parse_args(["-c", "plan", "plan", "--json"])
    assert args.config == "plan" and args.command == "plan"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_a_reader_that_closes_the_pipe_is_not_an_error(tmp_path: Path) -> None:
    # `assetsync plan | head -0`: the reader is gone before anything is written, so the first
    # print fails with EPIPE every time; the command must not end in a traceback.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("hello\n")
    (tmp_path / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "pipe-test"\nenvironment = "dev"\n'
    )
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "assetsync", "plan"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode == 0
