"""Polling for watch mode: re-stat the tree at an interval and report what changed as events.

Used where inotify cannot see changes (network and FUSE mounts) or has run out of watches. It
walks only what the scan would publish (ignored folders such as `.git/` are never entered),
compares each entry's stat fields with the previous walk (equality, never ordering: a file
restored with an older mtime is a change too), and stretches its interval on big or slow trees so
walking never takes more than about 5 % of the time (on NFS a stat can cost a millisecond).
Extra targets (a Toolkit project's functions folder, the folders of package.json and .env) are
walked in the same pass.
"""

from __future__ import annotations

import logging
import os
import stat as statmod
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from assetsync.watch.events import Change, Ignored, WatchTarget

__all__ = ["TreePoller"]

log = logging.getLogger(__name__)

# Walk for at most 1/20 of the time: the interval grows to 20 × the last walk's duration.
_WALK_SHARE = 20.0

# key -> (is folder, size, mtime_ns, ctime_ns, inode); folders compare on is-folder only. The key
# is the path relative to the root, or the absolute path for an extra target's entries
# (os.path.join(root, key) is then the key itself).
_Entry = tuple[bool, int, int, int, int]


class TreePoller:
    """A polling "observer": `start()`, `stop()`, `join()`, reporting to `sink` like watchdog."""

    def __init__(
        self,
        root: Path,
        sink: Callable[[Change], None],
        *,
        ignored: Ignored,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        extra: Sequence[WatchTarget] = (),
    ) -> None:
        self.root = str(root)
        self.sink = sink
        self.ignored = ignored
        self.extra = tuple(extra)
        self.min_interval_s = interval_s
        self.interval_s = interval_s
        self.clock = clock
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="assetsync-poll", daemon=True)
        # The first walk happens in start(), so changes made right after it are seen.
        self._previous: dict[str, _Entry] = {}
        # Ignore decisions are stable per path; remembering them halves the cost of a walk.
        self._verdicts: dict[tuple[str, bool], bool] = {}

    def start(self) -> None:
        self._previous = self._walk()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            started = time.perf_counter()
            current = self._walk()
            took = time.perf_counter() - started
            self._report(self._previous, current)
            self._previous = current
            self.interval_s = max(self.min_interval_s, took * _WALK_SHARE)

    def _walk(self) -> dict[str, _Entry]:
        found: dict[str, _Entry] = {}
        verdicts: dict[tuple[str, bool], bool] = {}
        # (key prefix, prefix relative to the target, folder, the target's rule, recursive)
        pending = [("", "", self.root, self.ignored, True)]
        pending += [(str(t.folder) + os.sep, "", str(t.folder), t.ignored, t.recursive)
                    for t in self.extra]
        while pending:
            key_prefix, prefix, folder, ignored, recursive = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:  # vanished or unreadable: its files count as gone
                log.debug("poll: cannot list %s: %s", folder, exc)
                continue
            for entry in entries:
                rel = prefix + entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                is_dir = statmod.S_ISDIR(st.st_mode)
                if is_dir and not recursive:
                    continue
                found_key = key_prefix + rel
                key = (found_key, is_dir)
                skip = self._verdicts.get(key)
                if skip is None:
                    skip = ignored(rel, is_dir)
                verdicts[key] = skip
                if skip:
                    continue
                if is_dir:
                    found[found_key] = (True, 0, 0, 0, 0)
                    pending.append((key_prefix, rel + "/", entry.path, ignored, recursive))
                else:
                    found[found_key] = (
                        False, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
                    )
        self._verdicts = verdicts  # only what still exists, so the memo never outgrows the tree
        return found

    def _report(self, before: dict[str, _Entry], after: dict[str, _Entry]) -> None:
        now = self.clock()
        for rel, entry in after.items():
            old = before.get(rel)
            if old == entry:
                continue
            if old is None or old[0] != entry[0]:
                if old is not None:
                    self.sink(Change("deleted", os.path.join(self.root, rel), None, old[0], now))
                self.sink(Change("created", os.path.join(self.root, rel), None, entry[0], now))
            elif not entry[0]:
                self.sink(Change("modified", os.path.join(self.root, rel), None, False, now))
        for rel, old in before.items():
            if rel not in after:
                self.sink(Change("deleted", os.path.join(self.root, rel), None, old[0], now))
