"""Scanning the source folder: the walk, ignore and deny rules, the stat cache protocol, and
xxh3_128 content hashing streamed in 1 MiB chunks.

A file's digest is reused when (size, mtime_ns, ctime_ns, inode) equal the cached entry and the
entry is not racy (the file was modified within 2 s of being hashed: git's racy-clean rule, as
`shared/reference/watch-hash-manifest.md` §4 describes). Otherwise it is hashed through one file
descriptor, stat'ed before and after, and re-read if it changed underneath.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat as statmod
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import xxhash

from assetsync.errors import ScanError
from assetsync.globs import GlobSet, compile_glob_set
from assetsync.models import DIGEST_PREFIX, ScannedFile
from assetsync.sync_types import SyncEvent

if TYPE_CHECKING:
    from assetsync.config import Config

__all__ = [
    "CHUNK_SIZE",
    "DENY_PATTERNS",
    "RACY_WINDOW_NS",
    "IgnoreRules",
    "ScanIssue",
    "Snapshot",
    "StatCache",
    "StatEntry",
    "hash_file",
    "rescan_paths",
    "scan_tree",
]

log = logging.getLogger(__name__)

# 1 MiB: fewer syscalls than 64 KiB, still inside L2 (watch-hash-manifest.md §2.1: 7.42 GB/s).
CHUNK_SIZE = 1 << 20
# Coarse timestamps (FAT 2 s, HFS+/ext3 1 s): anything modified this close to its hashing is
# re-hashed next time (watch-hash-manifest.md §4, "Racy rule").
RACY_WINDOW_NS = 2_000_000_000
_HASH_ATTEMPTS = 3

# Never published, whatever the config says; `[ignore] patterns` can only add to this.
DENY_PATTERNS: tuple[str, ...] = (
    # secrets and keys
    ".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc",
    ".assetsync.toml",
    # version control and OS litter
    ".git/", ".hg/", ".svn/", ".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX/",
    # editor swap and temp files (watch-hash-manifest.md §3.4)
    ".*.sw[a-p]", ".*.swx", "4913", "*~", ".#*", "*___jb_tmp___", "*___jb_old___",
    ".subl*.tmp", ".goutputstream-*", "*.tmp", "*.part", "*.crdownload", "~$*", ".~lock.*#",
    "*.kate-swp",
)


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """What the scan skips: the deny list, the user's `[ignore] patterns`, and whole folders
    (the state folder) given by their path relative to the source folder.
    """

    patterns: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def for_config(cls, config: Config) -> IgnoreRules:
        """The rules for a config: its ignore patterns, plus its state folder when inside."""
        excluded: list[str] = []
        try:
            excluded.append(config.state_dir.relative_to(config.source).as_posix())
        except ValueError:
            pass
        return cls(patterns=config.ignore, excluded=tuple(excluded))

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


class StatEntry(NamedTuple):
    """A cached digest and the stat validator it was computed under.

    A NamedTuple rather than a dataclass: the stat cache loads 10,000s of these per scan and
    the scanner compares them by index, which is several times cheaper (bench/bench_scan.py).
    """

    rel_path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    digest: str
    hashed_at_ns: int


class StatCache(Protocol):
    """Where digests are remembered between scans (implemented by `assetsync.state.State`)."""

    def stat_entries(self) -> Mapping[str, StatEntry]:
        """Every cached entry by relative path (read once per scan)."""

    def update_stats(self, put: Iterable[StatEntry], drop: Iterable[str] = ()) -> None:
        """Store new entries and forget others, in one transaction."""


@dataclass(frozen=True, slots=True)
class ScanIssue:
    """One file or folder the scan could not take; the rest of the scan went on."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The scanned tree: files by relative path (sorted), problems found, and work done."""

    files: Mapping[str, ScannedFile]
    issues: tuple[ScanIssue, ...] = ()
    hashed: int = 0
    bytes_hashed: int = 0
    reused: int = 0


OnEvent = Callable[[SyncEvent], None]


class _Changed(Exception):
    """The file kept changing while being hashed."""


def _hash_fd(fd: int) -> str:
    hasher = xxhash.xxh3_128()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    reader = io.FileIO(fd, closefd=False)
    while n := reader.readinto(buffer):
        hasher.update(view[:n])
    return DIGEST_PREFIX + hasher.hexdigest()


def hash_file(path: Path | str) -> str:
    """The "xxh3_128:<hex>" digest of a file, read in 1 MiB chunks (memory stays flat)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return _hash_fd(fd)
    finally:
        os.close(fd)


def _validator(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _hash_stable(path: str, follow: bool) -> tuple[str, os.stat_result]:
    """Hash through one descriptor; accept only if nothing changed during the read."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    for _attempt in range(_HASH_ATTEMPTS):
        fd = os.open(path, flags)
        try:
            before = os.fstat(fd)
            if not statmod.S_ISREG(before.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file")
            digest = _hash_fd(fd)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        named = os.stat(path, follow_symlinks=follow)
        if _validator(before) == _validator(after) and named.st_ino == before.st_ino:
            return digest, before
    raise _Changed


def _display(name: str) -> str:
    """A printable form of a name that may hold undecodable bytes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# ScannedFile is a frozen slotted dataclass whose __init__ costs ~1.1 us (one
# object.__setattr__ per field); setting the slots directly costs ~0.35 us. The scan builds one
# per file, so this is a third of its Python overhead on a no-change run.
_SCANNED_SLOTS = tuple(
    getattr(ScannedFile, name).__set__
    for name in ("rel_path", "size", "mtime_ns", "ctime_ns", "inode", "digest")
)


def _scanned(
    rel: str, size: int, mtime_ns: int, ctime_ns: int, inode: int, digest: str
) -> ScannedFile:
    obj = object.__new__(ScannedFile)
    s_rel, s_size, s_mtime, s_ctime, s_inode, s_digest = _SCANNED_SLOTS
    s_rel(obj, rel)
    s_size(obj, size)
    s_mtime(obj, mtime_ns)
    s_ctime(obj, ctime_ns)
    s_inode(obj, inode)
    s_digest(obj, digest)
    return obj


@dataclass
class _Scanner:
    source: str
    rules: IgnoreRules
    cache: StatCache | None
    now_ns: int
    on_event: OnEvent | None
    files: dict[str, ScannedFile] = field(default_factory=dict)
    issues: list[ScanIssue] = field(default_factory=list)
    put: list[StatEntry] = field(default_factory=list)
    hashed: int = 0
    bytes_hashed: int = 0

    def __post_init__(self) -> None:
        self.real_source = os.path.realpath(self.source)
        self.globs = self.rules.globs
        self.excluded = frozenset(self.rules.excluded)
        self.stats: Mapping[str, StatEntry] = (
            self.cache.stat_entries() if self.cache is not None else {}
        )

    def issue(self, rel: str, message: str) -> None:
        log.debug("scan issue: %s: %s", rel, message)
        self.issues.append(ScanIssue(rel, message))
        if self.on_event is not None:
            self.on_event(SyncEvent("scan_issue", path=rel, message=message))

    def walk(self, top: str, prefix: str, ancestors: frozenset[tuple[int, int]]) -> None:
        """Scan the folder `top` whose relative path is `prefix` ("" or ending in '/')."""
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError as exc:
            self.issue(prefix.rstrip("/") or ".", f"cannot read folder: {exc.strerror}")
            return
        by_name, by_path = self.globs.file_matchers()
        stats, files = self.stats, self.files
        # A cached digest is trusted only if hashed more than RACY_WINDOW_NS after the file's
        # last change (mtime and ctime), so a same-size rewrite within one timestamp tick is
        # never missed.
        racy_cut = RACY_WINDOW_NS
        for entry in entries:
            name = entry.name
            rel = prefix + name
            if not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    self.issue(_display(rel), "name is not valid UTF-8: rename it")
                    continue
            try:
                is_file = entry.is_file(follow_symlinks=False)
            except OSError as exc:
                self.issue(rel, f"cannot stat: {exc.strerror}")
                continue
            if is_file:  # the common case, kept inline: no extra calls per file
                if (by_name is not None and by_name(name)) or (
                    by_path is not None and by_path(rel)
                ):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.issue(rel, f"cannot stat: {exc.strerror}")
                    continue
                cached = stats.get(rel)
                if (
                    cached is not None
                    and cached[1] == st.st_size
                    and cached[2] == st.st_mtime_ns
                    and cached[3] == st.st_ctime_ns
                    and cached[4] == st.st_ino
                    and cached[2] < cached[6] - racy_cut
                    and cached[3] < cached[6] - racy_cut
                ):
                    files[rel] = _scanned(
                        rel, cached[1], cached[2], cached[3], cached[4], cached[5]
                    )
                    continue
                self.hash_into(entry.path, rel, follow=False)
                continue
            self.visit_other(entry, rel, name, ancestors)

    def visit_other(
        self, entry: os.DirEntry[str], rel: str, name: str, ancestors: frozenset[tuple[int, int]]
    ) -> None:
        """Folders, symlinks and special files."""
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            self.issue(rel, f"cannot stat: {exc.strerror}")
            return
        if is_link:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False  # a looping link: visit_link names the problem
        if rel in self.excluded or self.globs.match_entry(rel, name, is_dir):
            return
        if is_link:
            self.visit_link(entry.path, rel, ancestors)
            return
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self.issue(rel, f"cannot stat: {exc.strerror}")
            return
        if is_dir:
            self.walk(entry.path, rel + "/", ancestors | {(st.st_dev, st.st_ino)})
        else:
            self.visit_file(entry.path, rel, st, follow=False)

    def visit_link(self, path: str, rel: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.issue(rel, f"broken symlink (points to {os.readlink(path)!r}): fix or remove it")
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.issue(rel, "symlink loop: fix or remove the link")
            else:
                self.issue(rel, f"cannot follow symlink: {exc.strerror}")
            return
        target = os.path.realpath(path)
        if os.path.commonpath([target, self.real_source]) != self.real_source:
            self.issue(rel, f"symlink points outside the source folder ({target}); not followed")
            return
        if statmod.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                self.issue(rel, "symlink loop: it points to a folder that contains it")
                return
            self.walk(path, rel + "/", ancestors | {key})
        else:
            self.visit_file(path, rel, st, follow=True)

    def visit_file(self, path: str, rel: str, st: os.stat_result, *, follow: bool) -> None:
        if not statmod.S_ISREG(st.st_mode):
            self.issue(rel, "not a regular file (device, socket or pipe): add it to [ignore]")
            return
        cached = self.stats.get(rel)
        if (
            cached is not None
            and (cached.size, cached.mtime_ns, cached.ctime_ns, cached.inode) == _validator(st)
            and cached.mtime_ns < cached.hashed_at_ns - RACY_WINDOW_NS
            and cached.ctime_ns < cached.hashed_at_ns - RACY_WINDOW_NS
        ):
            self.files[rel] = _scanned(rel, *_validator(st), cached.digest)
            return
        self.hash_into(path, rel, follow=follow)

    def hash_into(self, path: str, rel: str, *, follow: bool) -> None:
        try:
            digest, st = _hash_stable(path, follow)
        except _Changed:
            self.issue(rel, "kept changing while being read; it will be retried next run")
            return
        except OSError as exc:
            self.issue(rel, f"cannot read: {exc.strerror or exc}")
            return
        self.hashed += 1
        self.bytes_hashed += st.st_size
        size, mtime_ns, ctime_ns, inode = _validator(st)
        self.files[rel] = _scanned(rel, size, mtime_ns, ctime_ns, inode, digest)
        self.put.append(StatEntry(rel, size, mtime_ns, ctime_ns, inode, digest, self.now_ns))

    def visit_path(self, rel: str) -> None:
        """Rescan one path (file, folder, or gone) given relative to the source folder."""
        path = os.path.join(self.source, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.issue(rel, f"cannot stat: {exc.strerror}")
            return
        is_dir = statmod.S_ISDIR(st.st_mode)
        if self.rules.is_ignored(rel, is_dir):
            return
        if statmod.S_ISLNK(st.st_mode):
            self.visit_link(path, rel, frozenset())
        elif is_dir:
            self.walk(path, rel + "/", frozenset({(st.st_dev, st.st_ino)}))
        else:
            self.visit_file(path, rel, st, follow=False)

    def snapshot(self, files: dict[str, ScannedFile], issues: list[ScanIssue]) -> Snapshot:
        return Snapshot(
            files={k: files[k] for k in sorted(files)},
            issues=tuple(sorted(issues, key=lambda i: (i.path, i.message))),
            hashed=self.hashed,
            bytes_hashed=self.bytes_hashed,
            reused=len(self.files) - self.hashed,
        )

    def done(self, snapshot: Snapshot, started: float) -> Snapshot:
        if self.on_event is not None:
            seconds = time.perf_counter() - started
            self.on_event(
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


def _check_source(source: Path) -> str:
    if not source.is_dir():
        what = "does not exist" if not source.exists() else "is not a folder"
        raise ScanError(
            f"source folder {source} {what}: fix [project] source", path=str(source)
        )
    return str(source)


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
        ScanError: the source folder itself is missing or not a folder. Problems with single
            files are `Snapshot.issues`; the scan goes on.
    """
    started = time.perf_counter()
    top = _check_source(source)
    scanner = _Scanner(top, rules, cache, time.time_ns() if now_ns is None else now_ns, on_event)
    root = os.stat(top)
    scanner.walk(top, "", frozenset({(root.st_dev, root.st_ino)}))
    if cache is not None:
        gone = [p for p in scanner.stats if p not in scanner.files]
        if scanner.put or gone:
            cache.update_stats(scanner.put, gone)
    return scanner.done(scanner.snapshot(scanner.files, scanner.issues), started)


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
    scanner = _Scanner(top, rules, cache, time.time_ns() if now_ns is None else now_ns, on_event)
    targets = sorted({_normalize(p) for p in rel_paths})
    if "" in targets:
        return scan_tree(source, rules=rules, cache=cache, now_ns=now_ns, on_event=on_event)

    def covered(rel: str) -> bool:
        return any(rel == t or rel.startswith(t + "/") for t in targets)

    files = {k: v for k, v in previous.files.items() if not covered(k)}
    issues = [i for i in previous.issues if not covered(i.path)]
    for rel in targets:
        scanner.visit_path(rel)
    files.update(scanner.files)
    if cache is not None:
        gone = [k for k in previous.files if covered(k) and k not in scanner.files]
        if scanner.put or gone:
            cache.update_stats(scanner.put, gone)
    return scanner.done(scanner.snapshot(files, issues + scanner.issues), started)
