"""Issue 26: `assetsync plan` and `assetsync --help` processes never import `dataclasses` nor
the `inspect` it pulls in (as `pkgutil` would): ~7 ms of every process. Value classes are `@frozen`
(`assetsync.frozen`), and the working records on these paths are plain slotted classes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs the command as `python -m assetsync` does, then names the modules of interest it loaded.
_PROBE = """
import sys
from assetsync.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(code, sorted({"dataclasses", "inspect"} & set(sys.modules)), file=sys.stderr)
"""


def _loaded(folder: Path, *argv: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=folder,
                          capture_output=True, text=True, check=True, timeout=120)
    code, _, modules = done.stderr.strip().splitlines()[-1].partition(" ")
    return code, modules


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "site" / "img").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("<p>hi</p>")
    (tmp_path / "site" / "img" / "a.txt").write_text("a")
    (tmp_path / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "startup"\nstate_dir = "state"\n')
    return tmp_path


def test_plan_imports_neither_dataclasses_nor_inspect(site: Path) -> None:
    assert _loaded(site, "plan") == ("0", "[]")  # a first plan: scan, prepare, assess
    assert _loaded(site, "plan") == ("0", "[]")  # an unchanged tree: from the memos


def test_help_imports_neither_dataclasses_nor_inspect(site: Path) -> None:
    assert _loaded(site, "--help") == ("0", "[]")
