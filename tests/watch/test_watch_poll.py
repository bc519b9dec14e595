"""TreePoller: the polling fallback reports creations, edits, deletes and folder moves as events."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assetsync.scan.rules import IgnoreRules
from assetsync.watch.events import Change, ignored_by
from assetsync.watch.poll import TreePoller
from tests.watch_harness import BOUND_S


class Sink:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.changes: list[tuple[str, str, bool]] = []
        self.cond = threading.Condition()

    def __call__(self, change: Change) -> None:
        with self.cond:
            self.changes.append((change.kind, os.path.relpath(change.src, self.root), change.is_dir))
            self.cond.notify_all()

    def wait_for(self, *expected: tuple[str, str, bool]) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: set(expected) <= set(self.changes), BOUND_S)
            assert ok, f"missing {set(expected) - set(self.changes)}; got {self.changes}"


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[tuple[Path, Sink]]:
    root = tmp_path / "site"
    (root / "img").mkdir(parents=True)
    (root / "img" / "a.png").write_bytes(b"aaaa")
    (root / "keep.txt").write_bytes(b"keep")
    (root / ".git").mkdir()
    sink = Sink(root)
    poller = TreePoller(root, sink, ignored=ignored_by(IgnoreRules()), interval_s=0.05)
    poller.start()
    try:
        yield root, sink
    finally:
        poller.stop()
        poller.join(BOUND_S)


def test_creations_edits_and_deletes_are_reported(polled: tuple[Path, Sink]) -> None:
    root, sink = polled
    (root / "new.png").write_bytes(b"new")
    (root / "keep.txt").write_bytes(b"KEEP")  # same size
    (root / "img" / "a.png").unlink()
    sink.wait_for(("created", "new.png", False), ("modified", "keep.txt", False), ("deleted", "img/a.png", False))


def test_a_rewrite_that_restores_the_mtime_is_still_a_change(polled: tuple[Path, Sink]) -> None:
    root, sink = polled
    target = root / "keep.txt"
    before = target.stat()
    target.write_bytes(b"KEEP")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    sink.wait_for(("modified", "keep.txt", False))


def test_folder_moves_report_both_sides_and_ignored_folders_stay_silent(polled: tuple[Path, Sink]) -> None:
    root, sink = polled
    (root / ".git" / "HEAD").write_bytes(b"ref")
    os.rename(root / "img", root / "pics")
    sink.wait_for(
        ("deleted", "img", True), ("deleted", "img/a.png", False),
        ("created", "pics", True), ("created", "pics/a.png", False),
    )
    assert not [c for c in sink.changes if c[1].startswith(".git")]
