"""Scanning the source folder: the walk, ignore and deny rules, the stat cache protocol, and
xxh3_128 content hashing streamed in 1 MiB chunks.

A file's digest is reused when (size, mtime_ns, ctime_ns, inode) equal the cached entry and the
entry is not racy (the file was modified within 2 s of being hashed: git's racy-clean rule, as
`shared/reference/watch-hash-manifest.md` §4 describes). Otherwise it is hashed through one file
descriptor, stat'ed before and after, and re-read if it changed underneath.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from itertools import compress, repeat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from assetsync.errors import ConfigError, ScanError
from assetsync.frozen import frozen
from assetsync.models import ScannedFile
from assetsync.results import SyncEvent
from assetsync.scan.globs import GlobSet, compile_glob_set
from assetsync.scan.stat_table import StatRow, StatTable
from assetsync.scan.walk import CHUNK_SIZE, RACY_WINDOW_NS, Walker, WalkResult, hash_fd

if TYPE_CHECKING:
    from assetsync.config import Config

__all__ = [
    "CHUNK_SIZE",
    "DENY_PATTERNS",
    "RACY_WINDOW_NS",
    "IgnoreRules",
    "NameFilter",
    "ScanIssue",
    "Snapshot",
    "StatCache",
    "StatEntry",
    "StatRow",
    "hash_file",
    "rescan_paths",
    "scan_tree",
]

log = logging.getLogger(__name__)

# Never published, whatever the config says; `[ignore] patterns` can only add to this.
DENY_PATTERNS: tuple[str, ...] = (
    # secrets and keys
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".assetsync.toml",
    # version control and OS litter
    ".git/",
    ".hg/",
    ".svn/",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "__MACOSX/",
    # editor swap and temp files (watch-hash-manifest.md §3.4)
    ".*.sw[a-p]",
    ".*.swx",
    "4913",
    "*~",
    ".#*",
    "*___jb_tmp___",
    "*___jb_old___",
    ".subl*.tmp",
    ".goutputstream-*",
    "*.tmp",
    "*.part",
    "*.crdownload",
    "~$*",
    ".~lock.*#",
    "*.kate-swp",
)


@frozen
class IgnoreRules:
    """What the scan skips: the deny list, the user's `[ignore] patterns`, and whole folders
    (the state folder) given by their path relative to the source folder.
    """

    patterns: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def for_config(cls, config: Config) -> IgnoreRules:
        """The rules for a config: its ignore patterns, plus its state folder and the config
        file itself when they lie inside the source folder."""
        excluded: list[str] = []
        patterns = list(config.ignore)
        try:
            excluded.append(config.state_dir.relative_to(config.source).as_posix())
        except ValueError:
            pass
        try:
            rel = config.config_path.relative_to(config.source).as_posix()
        except ValueError:
            pass
        else:  # anchored, with glob characters escaped: exactly this one file
            patterns.append("/" + "".join("\\" + c if c in "*?[\\" else c for c in rel))
        return cls(patterns=tuple(patterns), excluded=tuple(excluded))

    @property
    def key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What a folder listing taken under these rules depends on (kept with the cache)."""
        return DENY_PATTERNS + self.patterns, self.excluded

    @property
    def globs(self) -> GlobSet:
        """The compiled deny list plus user patterns."""
        return compile_glob_set(DENY_PATTERNS + self.patterns)

    def is_ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether `rel_path` or a folder above it is ignored, denied or excluded."""
        for folder in self.excluded:
            if rel_path == folder or rel_path.startswith(folder + "/"):
                return True
        return self.globs.match(rel_path, is_dir)


_GLOB_META = frozenset("*?[\\")


class NameFilter:
    """The name-only globs (no '/', not folder-only) of a GlobSet, applied to a whole folder's
    names at once: which of them are ignored.

    A Python-level test per file name cost ~5 ms per 10,000 files (bench/bench_scan.py). Here
    literal names are one set intersection, `*suffix` and `prefix*` one C-level
    `map(str.endswith/startswith)` over the folder, and only the names that begin with another
    pattern's literal prefix go through the GlobSet's own test, so the answer is the
    GlobSet's answer by construction.
    """

    __slots__ = ("_ends", "_exact", "_lead", "_rest", "_starts")

    def __init__(self, globs: GlobSet) -> None:
        exact: set[str] = set()
        ends: list[str] = []
        starts: list[str] = []
        rest: list[str] = []
        for pattern in globs.patterns:
            p = pattern.strip()
            if p.endswith("/") or "/" in p:
                continue  # folder-only or anchored: GlobSet.match_entry / the path test
            if not _GLOB_META & set(p):
                exact.add(p)
            elif p.startswith("*") and not _GLOB_META & set(p[1:]):
                ends.append(p[1:])
            elif p.endswith("*") and not p.endswith("**") and not _GLOB_META & set(p[:-1]):
                starts.append(p[:-1])
            else:
                rest.append(p)
        self._exact = frozenset(exact)
        self._ends = tuple(ends)
        self._starts = tuple(starts)
        # The literal text before each remaining pattern's first glob character: a name that
        # starts with none of them cannot match (an empty prefix makes every name a candidate).
        leads = [next((p[:i] for i, c in enumerate(p) if c in _GLOB_META), p) for p in rest]
        self._lead = tuple(leads)
        self._rest = compile_glob_set(tuple(rest)).file_matchers()[0] if rest else None

    def __bool__(self) -> bool:
        return bool(self._exact or self._ends or self._starts or self._rest)

    def hits(self, names: list[str]) -> set[str]:
        """The names in `names` that a name-only pattern matches."""
        found = set(self._exact.intersection(names))
        if self._ends:
            found.update(compress(names, map(str.endswith, names, repeat(self._ends))))
        if self._starts:
            found.update(compress(names, map(str.startswith, names, repeat(self._starts))))
        if self._rest is not None:
            candidates = (
                compress(names, map(str.startswith, names, repeat(self._lead)))
                if all(self._lead)
                else names
            )
            found.update(filter(self._rest, candidates))
        return found


class StatEntry(NamedTuple):
    """A cached digest and the stat validator it was computed under (a `StatRow` with names).

    A NamedTuple rather than a dataclass: caches hand back plain `StatRow` tuples of this
    shape (the state loads 10,000s per scan) and the scanner reads them by index.
    """

    rel_path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    digest: str
    hashed_at_ns: int


class StatCache(Protocol):
    """Where digests are remembered between scans (implemented by `assetsync.state.db.State`)."""

    def stat_table(self) -> StatTable:
        """The cached table (read once per scan; never changed in place)."""

    def save_stat_table(self, table: StatTable) -> None:
        """Replace the cached table (stored in one transaction, now or later: it is a cache)."""


@frozen
class ScanIssue:
    """One file or folder the scan could not take; the rest of the scan went on."""

    path: str
    message: str


@frozen
class Snapshot:
    """The scanned tree: files by relative path (sorted), problems found, and work done."""

    files: Mapping[str, ScannedFile]
    issues: tuple[ScanIssue, ...] = ()
    hashed: int = 0
    bytes_hashed: int = 0
    reused: int = 0


OnEvent = Callable[[SyncEvent], None]


def hash_file(path: Path | str) -> str:
    """The "xxh3_128:<hex>" digest of a file, read in 1 MiB chunks (memory stays flat)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return hash_fd(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _check_source(source: Path) -> str:
    if not source.is_dir():
        what = "does not exist" if not source.exists() else "is not a folder"
        # A config problem (exit 2, like any other): the folder the config names is not there.
        raise ConfigError(f"source folder {source} {what}: fix [project] source",
                          key="[project] source")
    return str(source)


def _walker(source: str, rules: IgnoreRules, cache: StatCache | None, now_ns: int | None) -> Walker:
    names = NameFilter(rules.globs)
    return Walker(
        source,
        rules.globs,
        names.hits if names else None,
        rules.excluded,
        cache.stat_table() if cache is not None else StatTable(),
        rules.key,
        time.time_ns() if now_ns is None else now_ns,
    )


def _finish(
    result: WalkResult,
    files: Mapping[str, ScannedFile],
    issues: list[ScanIssue],
    ordered: bool,
    started: float,
    on_event: OnEvent | None,
) -> Snapshot:
    new_issues = [ScanIssue(path, message) for path, message in result.issues]
    for issue in new_issues:
        log.debug("scan issue: %s: %s", issue.path, issue.message)
        if on_event is not None:
            on_event(SyncEvent("scan_issue", path=issue.path, message=issue.message))
    if not ordered:
        # Sorting the keys alone is ~5x cheaper than sorting (key, value) pairs.
        files = dict(zip(order := sorted(files), map(files.__getitem__, order), strict=True))
    snapshot = Snapshot(
        files=files,
        issues=tuple(sorted(issues + new_issues, key=lambda i: (i.path, i.message))),
        hashed=result.hashed,
        bytes_hashed=result.bytes_hashed,
        reused=len(result.files) - result.hashed,
    )
    seconds = time.perf_counter() - started
    log.debug("scanned %d files (%d hashed) in %.3f s", len(files), result.hashed, seconds)
    if on_event is not None:
        on_event(
            SyncEvent(
                "scan_done",
                files=len(snapshot.files),
                bytes=snapshot.bytes_hashed,
                total=snapshot.hashed,
                message=f"{len(snapshot.files)} files, {snapshot.hashed} hashed, "
                f"{len(snapshot.issues)} issues in {seconds:.3f} s",
            )
        )
    return snapshot


def scan_tree(
    source: Path,
    *,
    rules: IgnoreRules,
    cache: StatCache | None,
    now_ns: int | None = None,
    on_event: OnEvent | None = None,
) -> Snapshot:
    """Walk `source` and return every publishable file with its digest.

    Args:
        source: the source folder.
        rules: what to skip (deny list, user patterns, the state folder).
        cache: digests from earlier scans; updated (new entries stored, vanished files
            forgotten) in one transaction at the end.
        now_ns: the wall clock at the start of the scan (for the racy rule); default now.
        on_event: receives `SyncEvent("scan_issue", path, message)` per problem and one
            `SyncEvent("scan_done", files=found, bytes=bytes hashed, total=files hashed)`.

    Raises:
        ConfigError: the source folder itself is missing or not a folder. Problems with single
            files are `Snapshot.issues`; the scan goes on.
    """
    started = time.perf_counter()
    top = _check_source(source)
    walker = _walker(top, rules, cache, now_ns)
    # The walk emits files in sorted order, folder by folder, each where it sorts.
    result = walker.walk([(top, "", frozenset())])
    old = walker.table
    if cache is not None and (
        result.rebuilt or len(result.folders) != len(old.folders) or not walker.trust_listings
    ):
        # Folders not walked this time are gone (or ignored now): the new table drops them.
        cache.save_stat_table(StatTable(result.folders, walker.rules_key))
    return _finish(result, result.files, [], result.ordered, started, on_event)


def _normalize(rel_path: str) -> str:
    parts = [p for p in rel_path.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ScanError(f"path {rel_path!r} escapes the source folder", path=rel_path)
    return "/".join(parts)


def rescan_paths(
    previous: Snapshot,
    rel_paths: Iterable[str],
    *,
    source: Path,
    rules: IgnoreRules,
    cache: StatCache | None,
    now_ns: int | None = None,
    on_event: OnEvent | None = None,
) -> Snapshot:
    """Re-stat only `rel_paths` (and every file under any that is a folder) on top of `previous`.

    A path that no longer exists drops out with everything under it. Used by watch mode, whose
    events say which paths may have changed; the result equals a full scan's for those paths.
    """
    started = time.perf_counter()
    top = _check_source(source)
    targets = sorted({_normalize(p) for p in rel_paths})
    if "" in targets:
        return scan_tree(source, rules=rules, cache=cache, now_ns=now_ns, on_event=on_event)
    prefixes = tuple(t + "/" for t in targets)
    wanted = frozenset(targets)

    def covered(rel: str) -> bool:
        return rel in wanted or rel.startswith(prefixes)

    walker = _walker(top, rules, cache, now_ns)
    result = walker.walk([item for t in targets for item in walker.single(t, rules.is_ignored)])
    files = {k: v for k, v in previous.files.items() if not covered(k)}
    files.update(result.files.items())
    issues = [i for i in previous.issues if not covered(i.path)]
    gone = [k for k in previous.files if covered(k) and k not in result.files]
    if cache is not None and (result.put or gone):
        # Row by row: the folders' listings stay as they were (one a file was added to or
        # removed from has a new mtime, so the next full scan lists it again).
        cache.save_stat_table(
            walker.table.with_changes(result.put, gone, racy_ns=RACY_WINDOW_NS)
        )
    return _finish(result, files, issues, False, started, on_event)
