"""`assetsync plan` on a big tree prints a summary: reused files counted, not listed, and at most
the first changes; `-v` and `--json` keep every file (issue 26)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assetsync.cli import main
from assetsync.cli.commands.plan import SHOWN_CHANGES

REPO = Path(__file__).resolve().parents[2]
FIXTURE_FILES = 12  # what the repository's config publishes from fixtures/site


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "fixtures" / "site", tmp_path / "fixtures" / "site")
    shutil.copy(REPO / ".assetsync.toml", tmp_path / ".assetsync.toml")
    return tmp_path


def _plan(project: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> list[str]:
    code = main([*flags, "-c", str(project / ".assetsync.toml"), "plan"])
    assert code == 0
    return capsys.readouterr().out.splitlines()


def _file_rows(lines: list[str], action: str) -> list[str]:
    return [line for line in lines if line.split()[:1] == [action]]


def test_unchanged_files_are_counted_not_listed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(project / ".assetsync.toml"), "sync", "--quiet"]) == 0
    capsys.readouterr()
    lines = _plan(project, capsys)
    assert _file_rows(lines, "reuse") == []
    assert f"  {FIXTURE_FILES} file(s) reused as published (-v lists them)" in lines
    assert "nothing to do: everything is published" in lines
    verbose = _plan(project, capsys, "-v")
    assert len(_file_rows(verbose, "reuse")) == FIXTURE_FILES
    assert not any("reused as published" in line for line in verbose)
    code = main(["-c", str(project / ".assetsync.toml"), "plan", "--json"])
    assert code == 0 and len(json.loads(capsys.readouterr().out)["reuses"]) == FIXTURE_FILES


def test_many_changes_show_the_first_and_how_many_more(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = SHOWN_CHANGES + 7
    for i in range(extra):
        (project / "fixtures" / "site" / "bulk").mkdir(exist_ok=True)
        (project / "fixtures" / "site" / "bulk" / f"n{i:03d}.txt").write_text(f"file {i}\n")
    lines = _plan(project, capsys)
    uploads = _file_rows(lines, "upload")
    total = FIXTURE_FILES + extra
    assert len(uploads) == SHOWN_CHANGES
    # The first changes by path, so a rerun shows the same ones.
    paths = [row.split()[2] for row in uploads]
    assert paths == sorted(paths)
    assert f"  ... and {total - SHOWN_CHANGES} more upload(s) and drop(s) (-v lists every file)" \
        in lines
    assert f"{total} new assets, {total} uploads" in "\n".join(lines)
    assert len(_file_rows(_plan(project, capsys, "-v"), "upload")) == total
