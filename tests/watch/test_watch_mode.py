"""Observer choice (mount types, inotify limits), event folding and budget pacing, without a loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from assetsync.scan.rules import IgnoreRules
from assetsync.watch.events import Change, DirtySet, ignored_by
from assetsync.watch.mode import choose_mode, filesystem_type, sysctl_advice
from assetsync.watch.run import builds_made, coalesce_window

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:50 / /mnt/share rw,relatime - nfs4 server:/export rw,vers=4.2
41 40 0:51 / /mnt/share/local rw,relatime - tmpfs tmpfs rw
42 27 0:52 / /home/me/remote\\040box rw,nosuid - fuse.sshfs me@box: rw
43 27 0:53 / /mnt/c rw - 9p drvfs rw
"""


@pytest.mark.parametrize(
    ("path", "fs_type"),
    [
        ("/home/me/site", "ext4"),
        ("/mnt/share/site", "nfs4"),
        ("/mnt/share/local/site", "tmpfs"),  # a mount stacked inside the share
        ("/mnt/shared", "ext4"),  # a name prefix is not a mount prefix
        ("/home/me/remote box/site", "fuse.sshfs"),  # mountinfo escapes the space as \040
        ("/mnt/c/Users", "9p"),
    ],
)
def test_filesystem_type_takes_the_deepest_mount(path: str, fs_type: str) -> None:
    assert filesystem_type(Path(path), MOUNTINFO) == fs_type


def _mountinfo_for(path: Path, fs_type: str) -> str:
    return MOUNTINFO + f"50 27 0:60 / {path} rw - {fs_type} src rw\n"


@pytest.mark.parametrize("fs_type", ["nfs4", "cifs", "fuse.sshfs", "fuse", "9p", "smb3"])
def test_auto_polls_on_network_and_fuse_mounts(tmp_path: Path, fs_type: str) -> None:
    choice = choose_mode(tmp_path, "auto", mountinfo=_mountinfo_for(tmp_path.resolve(), fs_type), watch_limit=8192)
    assert choice.mode == "polling"
    assert fs_type in choice.reason


def test_auto_uses_inotify_on_a_local_disk(tmp_path: Path) -> None:
    choice = choose_mode(tmp_path, "auto", mountinfo=_mountinfo_for(tmp_path.resolve(), "ext4"), watch_limit=8192)
    assert choice.mode == "inotify"
    assert choice.advice is None


def test_auto_polls_with_sysctl_advice_when_folders_exceed_the_watch_limit(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"d{i}").mkdir()
    choice = choose_mode(tmp_path, "auto", mountinfo=_mountinfo_for(tmp_path.resolve(), "ext4"), watch_limit=16)
    assert choice.mode == "polling"
    assert choice.advice is not None
    assert "sudo sysctl fs.inotify.max_user_watches=524288" in choice.advice
    assert "(now 16)" in choice.advice


def test_explicit_polling_setting_wins(tmp_path: Path) -> None:
    nfs = _mountinfo_for(tmp_path.resolve(), "nfs")
    assert choose_mode(tmp_path, "off", mountinfo=nfs, watch_limit=1).mode == "inotify"
    assert choose_mode(tmp_path, "on", mountinfo="", watch_limit=10**6).mode == "polling"


def test_sysctl_advice_for_instances() -> None:
    assert "fs.inotify.max_user_instances=1024" in sysctl_advice(None, "max_user_instances")


@pytest.mark.parametrize(
    ("rel", "is_dir", "ignored"),
    [
        (".notes.txt.swp", False, True), ("img/.notes.txt.swx", False, True), ("4913", False, True),
        ("notes.txt~", False, True), (".#notes.txt", False, True), ("a.png___jb_tmp___", False, True),
        ("sedAb12Cd", False, True), ("img/sedAb12Cd", False, True), (".goutputstream-ABC123", False, True),
        (".git/HEAD", False, True), (".git", True, True), ("state/x.db", False, True),
        ("drafts/a.png", False, True), ("drafts", True, True),
        ("notes.txt", False, False), ("sedona.png", False, False), ("4913.png", False, False),
        ("logo.swp.png", False, False), ("sedAb12Cd", True, False), ("img", True, False),
    ],
)
def test_events_the_scan_would_skip_are_dropped(rel: str, is_dir: bool, ignored: bool) -> None:
    predicate = ignored_by(IgnoreRules(patterns=("drafts/",), excluded=("state",)))
    assert predicate(rel, is_dir) is ignored


def test_dirty_set_folds_events_into_relative_paths(tmp_path: Path) -> None:
    dirty = DirtySet(tmp_path, ignored_by(IgnoreRules()))
    root = str(tmp_path)
    dirty.add(Change("created", f"{root}/img/a.png", None, False, 1.0))
    dirty.add(Change("moved", f"{root}/.a.tmp-1", f"{root}/b.png", False, 2.0))  # an atomic save
    dirty.add(Change("deleted", f"{root}/old", None, True, 3.0))
    dirty.add(Change("modified", f"{root}/.b.png.swp", None, False, 4.0))
    dirty.add(Change("created", "/elsewhere/x.png", None, False, 5.0))
    assert dirty.first_seen() == 1.0 and dirty.last_seen() == 3.0
    # a created file with no close yet is still being written; the renamed one arrived complete
    assert dirty.held(now=2.5, settle_s=2.0) == {"img/a.png": 3.0}
    assert dirty.held(now=3.5, settle_s=2.0) == {}
    batch = dirty.take(held=["img/a.png"])
    assert batch == frozenset({"b.png", "old"})  # the save's temp name is no change
    assert len(dirty) == 1
    dirty.add(Change("closed", f"{root}/img/a.png", None, False, 6.0))
    assert dirty.held(now=6.0, settle_s=2.0) == {}


def test_polling_changes_are_never_held(tmp_path: Path) -> None:
    dirty = DirtySet(tmp_path)
    dirty.add(Change("modified", f"{tmp_path}/a.png", None, False, 1.0), trust_close=False)
    assert dirty.held(now=1.0, settle_s=5.0) == {}


def test_quiet_window_grows_as_the_budget_runs_low() -> None:
    assert coalesce_window(0.3, 100, 100) == 0.3
    assert coalesce_window(0.3, 50, 100) == 0.3
    assert coalesce_window(0.3, 25, 100) == pytest.approx(18.0)
    assert coalesce_window(0.3, 0, 100) == pytest.approx(36.0)
    assert coalesce_window(60.0, 25, 100) == 60.0  # never shorter than configured


@dataclass(frozen=True)
class _Result:
    build_sid: str | None
    services: tuple[_Result, ...] = ()


def test_builds_made_reads_plain_sharded_and_unknown_results() -> None:
    Result = _Result
    assert builds_made(Result("ZB1")) == 1
    assert builds_made(Result(None)) == 0
    # a sharded sync: the first service made no build, two others did
    assert builds_made(Result(None, (Result(None), Result("ZB2"), Result("ZB3")))) == 2
    assert builds_made(object()) == 1  # unknown shape: counted, the safe side for the budget
