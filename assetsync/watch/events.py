"""Watch mode's event side: watchdog events → a queue → the dirty set of paths waiting to sync.

Events are only hints. Nothing here stats, hashes or talks to the network: the watchdog thread
only appends to a queue (work in that thread lets the kernel queue overflow), and the watch loop
folds queued changes into a `DirtySet` whose paths the engine then reconciles. Besides the
source folder, `ToolkitPaths` names the Serverless Toolkit files a sync also deploys (the
functions folder, package.json, the env file).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from assetsync.frozen import frozen
from assetsync.functions.toolkit import toolkit_function
from assetsync.scan.rules import IgnoreRules

__all__ = [
    "EVENT_FILTER",
    "Change",
    "DirtySet",
    "Ignored",
    "OverflowHook",
    "QueueHandler",
    "ToolkitPaths",
    "WatchTarget",
    "ignored_by",
    "only_names",
    "split_batch",
]

# Scheduling with this filter drops IN_OPEN, IN_CLOSE_NOWRITE and IN_ATTRIB from the kernel mask
# (watch-hash-manifest.md §3.4), so the reads of assetsync's own hashing raise no events at all.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]

# Temp names that editors write and rename over the target within milliseconds, which the
# scan's deny list leaves alone (each could be a real file's name), so only their events are
# dropped here. The deny list (`assetsync.scan.rules`) has the rest: vim `.name.swp`/`.swx` and
# its `4913` probe, `name~` backups, emacs `.#name` locks, JetBrains `name___jb_tmp___`/
# `___jb_old___`, gedit `.goutputstream-*`, Sublime `.subl*.tmp` (watch-hash-manifest.md §3.4).
_EDITOR_TEMP_NAMES = re.compile(
    r"(?:sed[A-Za-z0-9]{6}"  # `sed -i` (watch-hash-manifest.md §3.2)
    # VS Code's atomic write: `name.vsctmp` (microsoft/vscode, `{postfix: '.vsctmp'}`)
    r"|.+\.vsctmp"
    # `.name.tmp-XXXX`: VS Code extensions', Node's and Python's temp-then-rename
    r"|\..+\.tmp-[^/]*"
    r"|#.+#)"  # emacs auto-save `#name#`
    r"\Z"
)

Ignored = Callable[[str, bool], bool]


def ignored_by(rules: IgnoreRules) -> Ignored:
    """A predicate over (relative path, is folder): True when events there can never matter,
    because the scan skips the path (deny list, `[ignore]`, the state folder) or it is a temp file.
    """

    def ignored(rel: str, is_dir: bool) -> bool:
        if not is_dir and _EDITOR_TEMP_NAMES.match(rel.rpartition("/")[2]):
            return True
        return rules.is_ignored(rel, is_dir)

    return ignored


# The deny list alone (editor swap and temp files, `.git/`, ...): the user's `[ignore] patterns`
# are for the source folder's paths and must not hide a function.
_EDITOR_TEMP = ignored_by(IgnoreRules())


def _function_ignored(rel: str, is_dir: bool) -> bool:
    """Events in the functions folder that cannot change what a sync deploys: editor temp files,
    and files that are not functions (`load_functions` deploys only what `toolkit_function`
    accepts: `.js`, not `.DS_Store`)."""
    return _EDITOR_TEMP(rel, is_dir) or (not is_dir and toolkit_function(rel) is None)


@frozen
class WatchTarget:
    """A folder watched besides the source folder. `ignored` takes paths relative to `folder`;
    the poller never enters an ignored folder, nor any folder of a target that is not recursive."""

    folder: Path
    recursive: bool
    ignored: Ignored


@frozen
class ToolkitPaths:
    """The Serverless Toolkit side of the project, which every sync re-reads from disk
    (`functions_local.load_functions`): the functions folder, watched recursively, and single
    files (package.json, the env file), watched alone, not the rest of their folder.

    Paths are absolute and resolved. Their keys in a `DirtySet` are absolute POSIX paths, which
    no source-relative path can be, so one dirty set holds both kinds (see `split_batch`).
    """

    functions: Path | None = None
    files: tuple[Path, ...] = ()

    def key(self, path: str, is_dir: bool) -> str | None:
        """The dirty-set key of an event at absolute `path`, or None if it cannot matter here."""
        norm = os.path.normpath(path)
        if any(norm == str(f) for f in self.files):
            return Path(norm).as_posix()
        if self.functions is None:
            return None
        folder = str(self.functions)
        if norm == folder:  # the folder itself deleted, moved or made
            return Path(norm).as_posix()
        if not norm.startswith(folder.rstrip(os.sep) + os.sep):
            return None
        rel = PurePosixPath(*Path(os.path.relpath(norm, folder)).parts).as_posix()
        return None if _function_ignored(rel, is_dir) else Path(norm).as_posix()

    def targets(self) -> tuple[WatchTarget, ...]:
        """What to watch besides the source folder: the functions folder, and each single
        file's folder (not recursively, and only that file of it)."""
        targets = [WatchTarget(self.functions, True, _function_ignored)] if self.functions else []
        names: dict[Path, set[str]] = {}
        for file in self.files:
            names.setdefault(file.parent, set()).add(file.name)
        targets.extend(WatchTarget(folder, False, only_names(frozenset(wanted)))
                       for folder, wanted in names.items())
        return tuple(targets)


def only_names(names: frozenset[str]) -> Ignored:
    """Drops everything but the files named `names` (a non-recursive watch of a folder)."""

    def ignored(rel: str, is_dir: bool) -> bool:
        return is_dir or rel not in names

    return ignored


def split_batch(batch: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """A `DirtySet.take` batch as (source-relative paths, Toolkit-side absolute paths)."""
    paths = tuple(batch)
    toolkit = frozenset(p for p in paths if p.startswith("/"))
    return frozenset(paths) - toolkit, toolkit


@frozen
class Change:
    """One filesystem event, from the watchdog thread or the poller (absolute paths, loop clock)."""

    kind: str  # "created" | "modified" | "closed" | "moved" | "deleted"
    src: str
    dest: str | None
    is_dir: bool
    at: float


class QueueHandler(FileSystemEventHandler):
    """Passes each event on as a `Change` (to a queue's `put`); runs in the watchdog thread, so
    it does nothing else."""

    def __init__(self, sink: Callable[[Change], None], clock: Callable[[], float]) -> None:
        super().__init__()
        self._sink = sink
        self._clock = clock

    def on_any_event(self, event: FileSystemEvent) -> None:
        dest = os.fsdecode(event.dest_path) if event.dest_path else None
        self._sink(
            Change(
                event.event_type,
                os.fsdecode(event.src_path),
                dest,
                event.is_directory,
                self._clock(),
            )
        )


class OverflowHook(logging.Handler):
    """Notices watchdog's overflow warning, which is the only sign that events were lost.

    watchdog 7.1 logs "Inotify queue overflowed; filesystem events were lost" and re-adds its
    watches but passes nothing to the handler (watch-hash-manifest.md §3.3); a lost event can only
    be made up for by a full reconcile. Failing to re-add watches (ENOSPC) is logged there too.
    """

    LOGGER = "watchdog.observers"

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.overflowed = threading.Event()
        self.watch_limit_hit = threading.Event()
        self._logger = logging.getLogger(self.LOGGER)
        self._saved_level: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "overflowed" in message:
            self.overflowed.set()
        if "Unable to rebuild" in message or "watch limit" in message:
            self.watch_limit_hit.set()

    def install(self) -> None:
        # Logger.warning() drops the record before any handler sees it when the level is above
        # WARNING (e.g. a quiet CLI), so make sure watchdog's warnings are at least created.
        if not self._logger.isEnabledFor(logging.WARNING):
            self._saved_level = self._logger.level
            self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(self)

    def uninstall(self) -> None:
        self._logger.removeHandler(self)
        if self._saved_level is not None:
            self._logger.setLevel(self._saved_level)


@dataclass(slots=True)
class _Dirty:
    first_seen: float
    last_seen: float
    writing: bool


@dataclass(slots=True)
class DirtySet:
    """Paths (POSIX, relative to the source folder) waiting for a reconcile, and the Toolkit
    side's changed files (absolute POSIX paths, see `ToolkitPaths`).

    A folder path stands for itself and every file recorded or found under it: that is how a
    deleted or moved-away folder reaches the engine, whose scan expands it. Events on the
    config file (`config_file`, absolute and normalized) are no path to sync: they only note
    when it last changed (`config_seen`), for watch to read it again.
    """

    root: Path
    ignored: Ignored = lambda _rel, _is_dir: False
    toolkit: ToolkitPaths = field(default_factory=ToolkitPaths)
    config_file: str | None = None
    config_seen: float | None = None
    files: dict[str, _Dirty] = field(default_factory=dict)
    dirs: dict[str, _Dirty] = field(default_factory=dict)
    # folders created in the current batch: files that appear inside them arrive complete
    _new_dirs: set[str] = field(default_factory=set)
    # kept up to date on every change, since the loop reads them after every drain of the queue
    _first: float | None = None
    _last: float | None = None

    def __len__(self) -> int:
        return len(self.files) + len(self.dirs)

    def relative(self, path: str, is_dir: bool) -> str | None:
        """The watched-relative POSIX path, or None if outside the tree or ignored."""
        rel = os.path.relpath(path, self.root)
        if rel == "." or rel == ".." or rel.startswith(".." + os.sep):
            return None
        text = PurePosixPath(*Path(rel).parts).as_posix()
        return None if self.ignored(text, is_dir) else text

    def add(self, change: Change, *, trust_close: bool = True) -> None:
        """Fold one event in. `trust_close=False` (polling) treats every change as complete."""
        paths = [change.src] if change.dest is None else [change.src, change.dest]
        for index, path in enumerate(paths):
            if self.config_file is not None and os.path.normpath(path) == self.config_file:
                self.config_seen = change.at
                continue
            # A source path first: its sync re-reads the Toolkit side anyway (a functions folder
            # inside the source, say). An ignored one (`.env` is on the deny list) may still be
            # a Toolkit file.
            rel = self.relative(path, change.is_dir) or self.toolkit.key(path, change.is_dir)
            if rel is None:
                continue
            if change.is_dir:
                if change.kind == "created" or (change.kind == "moved" and index == 1):
                    self._new_dirs.add(rel)
                self._mark(self.dirs, rel, change.at, writing=False)
                continue
            # Created/modified mean a writer may still hold the file open; a close, a rename
            # (the file was complete before it) or a delete settle it.
            writing = trust_close and change.kind in ("created", "modified")
            if writing and change.kind == "created" and self._in_new_dir(rel):
                writing = False  # synthesised for a folder moved in: already complete
            self._mark(self.files, rel, change.at, writing=writing)

    def _in_new_dir(self, rel: str) -> bool:
        parent = rel.rpartition("/")[0]
        while parent:
            if parent in self._new_dirs:
                return True
            parent = parent.rpartition("/")[0]
        return False

    def _mark(self, table: dict[str, _Dirty], rel: str, at: float, *, writing: bool) -> None:
        entry = table.get(rel)
        if entry is None:
            table[rel] = _Dirty(at, at, writing)
        else:
            entry.last_seen = max(entry.last_seen, at)
            entry.writing = writing
        self._first = at if self._first is None else min(self._first, at)
        self._last = at if self._last is None else max(self._last, at)

    def first_seen(self) -> float | None:
        """When the oldest pending change arrived."""
        return self._first

    def last_seen(self) -> float | None:
        """When the newest pending change arrived."""
        return self._last

    def due_at(self, quiet_s: float, max_wait_s: float) -> float | None:
        """When the pending batch is due: once the paths have been quiet for `quiet_s`, but at
        most `max_wait_s` after the first change. A busy path, whose own events already span
        `quiet_s` (a log appended to in a loop, a slow copy), does not keep the others waiting:
        it counts on its own, due once quiet or `max_wait_s` after its first change."""
        first = last = busy = None
        for entry in (*self.files.values(), *self.dirs.values()):
            if entry.last_seen - entry.first_seen >= quiet_s:
                due = min(entry.last_seen + quiet_s, entry.first_seen + max_wait_s)
                busy = due if busy is None else min(busy, due)
            else:
                first = entry.first_seen if first is None else min(first, entry.first_seen)
                last = entry.last_seen if last is None else max(last, entry.last_seen)
        steady = None if first is None or last is None else min(last + quiet_s, first + max_wait_s)
        times = [t for t in (steady, busy) if t is not None]
        return min(times) if times else None

    def held(self, now: float, settle_s: float) -> dict[str, float]:
        """Files still being written: path → when they count as settled if nothing else happens."""
        return {
            rel: e.last_seen + settle_s
            for rel, e in self.files.items()
            if e.writing and now < e.last_seen + settle_s
        }

    def take(self, held: Iterable[str]) -> frozenset[str]:
        """Remove and return every pending path except the held ones."""
        keep = set(held)
        batch = frozenset(p for p in (*self.files, *self.dirs) if p not in keep)
        self.files = {p: e for p, e in self.files.items() if p in keep}
        self.dirs = {}
        self._new_dirs = set()
        self._first = min((e.first_seen for e in self.files.values()), default=None)
        self._last = max((e.last_seen for e in self.files.values()), default=None)
        return batch

    def clear(self) -> None:
        """Drop everything pending (a full reconcile covers it)."""
        self.files.clear()
        self.dirs.clear()
        self._new_dirs.clear()
        self._first = self._last = None

    def restore(self, paths: Iterable[str], at: float) -> None:
        """Put back a batch whose sync failed, so the retry covers it."""
        for rel in paths:
            self._mark(self.files, rel, at, writing=False)
