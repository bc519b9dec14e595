"""What the CLI itself loads before a command runs: the command's module found without listing
the commands folder, help laid out at the terminal's width without shutil, logging set up only
for a command that runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assetsync.cli import main


def _run(code: str, columns: int) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env).stdout


def test_help_fits_the_terminal_width_and_loads_no_shutil_logging_or_discovery() -> None:
    code = ("import sys, io\n"
            "from assetsync.cli import main\n"
            "out, sys.stdout = sys.stdout, io.StringIO()\n"
            "rc = main(['plan', '--help'])\n"
            "text, sys.stdout = sys.stdout.getvalue(), out\n"
            "print(rc, sorted(m for m in ('shutil', 'logging', 'pkgutil') if m in sys.modules))\n"
            "print(max(map(len, text.splitlines())))\n")
    narrow = _run(code, 50).split("\n")
    wide = _run(code, 200).split("\n")
    assert narrow[0] == wide[0] == "0 []"
    assert int(narrow[1]) <= 50 < int(wide[1])


def test_a_word_that_names_no_command_module_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An identifier, so the CLI first looks for its module, then lists every command.
    assert main(["bogus"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err and "'plan'" in err
