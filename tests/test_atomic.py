"""Atomic replacement: the old file or the new one, never a torn file or a stray temporary."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from assetsync.atomic import write_atomic
from assetsync.cli import main


def test_replaces_the_content_and_creates_parent_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "map.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["map.json"]


def test_mode_is_applied_and_defaults_to_private(tmp_path: Path) -> None:
    write_atomic(tmp_path / "shared.txt", b"x", mode=0o644)
    write_atomic(tmp_path / "private.txt", b"x")
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "child").write_text("keep")  # os.replace cannot put a file over a non-empty folder
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert (target / "child").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_state_export_to_an_unwritable_place_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site").mkdir()
    config = tmp_path / ".assetsync.toml"
    config.write_text('[project]\nsource = "site"\nservice = "atomic-test"\n')
    (tmp_path / "a-file").write_text("")
    code = main(["-c", str(config), "state", "export", "-o", str(tmp_path / "a-file" / "out.json")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "cannot write" in err and "Traceback" not in err


def test_a_cache_write_without_fsync_still_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "sniffed.json"
    write_atomic(target, b'{"old": 1}', durable=False)
    write_atomic(target, b'{"new": 2}', durable=False)
    assert target.read_bytes() == b'{"new": 2}'
    assert [p.name for p in target.parent.iterdir()] == ["sniffed.json"]  # no temporary left
