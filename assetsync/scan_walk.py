"""The scanner's engine room: the folder walk with its stat-cache fast path, and hashing of
whatever the cache cannot vouch for, spread over a few threads. `assetsync.scan` is the public
face. Results are merged in the calling thread, so callbacks never run on a worker and the
outcome does not depend on scheduling.
"""

from __future__ import annotations

import errno
import io
import os
import stat as statmod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import xxhash

from assetsync.globs import GlobSet
from assetsync.models import DIGEST_PREFIX, ScannedFile

__all__ = [
    "CHUNK_SIZE",
    "RACY_WINDOW_NS",
    "StatRow",
    "WalkResult",
    "Walker",
    "hash_fd",
]

# 1 MiB: fewer syscalls than 64 KiB, still inside L2 (watch-hash-manifest.md §2.1: 7.42 GB/s).
CHUNK_SIZE = 1 << 20
# Coarse timestamps (FAT 2 s, HFS+/ext3 1 s): anything modified this close to its hashing is
# re-hashed next time (watch-hash-manifest.md §4, "Racy rule").
RACY_WINDOW_NS = 2_000_000_000
_HASH_ATTEMPTS = 3
# Hashing is spread over threads (read() and xxhash release the GIL) once there is enough of it;
# the walk itself stays on one thread: on a busy 2-core machine walker threads lost more to GIL
# hand-offs than they gained (bench/bench_scan.py, "scan_parts_ms").
_PARALLEL_HASH_MIN = 8

# (rel_path, size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns): `scan.StatEntry`'s shape.
StatRow = tuple[str, int, int, int, int, str, int]
Ancestors = frozenset[tuple[int, int]]


def hash_fd(fd: int) -> str:
    """The digest of everything readable from `fd`, in CHUNK_SIZE reads (flat memory)."""
    hasher = xxhash.xxh3_128()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    reader = io.FileIO(fd, closefd=False)
    while n := reader.readinto(buffer):
        hasher.update(view[:n])
    return DIGEST_PREFIX + hasher.hexdigest()


def _validator(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class _Changed(Exception):
    """The file kept changing while being hashed."""


def _hash_stable(path: str, follow: bool) -> tuple[str, os.stat_result]:
    """Hash through one descriptor; accept only if nothing changed during the read
    (fstat before and after, and the name still pointing at the same inode)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    for _attempt in range(_HASH_ATTEMPTS):
        fd = os.open(path, flags)
        try:
            before = os.fstat(fd)
            if not statmod.S_ISREG(before.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file")
            digest = hash_fd(fd)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        named = os.stat(path, follow_symlinks=follow)
        if _validator(before) == _validator(after) and named.st_ino == before.st_ino:
            return digest, before
    raise _Changed


# ScannedFile is a frozen slotted dataclass whose __init__ costs ~1.1 us (one
# object.__setattr__ per field); setting the slots directly costs ~0.35 us. The scan builds one
# per file, so this is a large share of its Python work on a no-change run.
_SLOTS = tuple(
    getattr(ScannedFile, name).__set__
    for name in ("rel_path", "size", "mtime_ns", "ctime_ns", "inode", "digest")
)


def _scanned(rel: str, size: int, mtime: int, ctime: int, inode: int, digest: str) -> ScannedFile:
    obj = object.__new__(ScannedFile)
    s_rel, s_size, s_mtime, s_ctime, s_inode, s_digest = _SLOTS
    s_rel(obj, rel)
    s_size(obj, size)
    s_mtime(obj, mtime)
    s_ctime(obj, ctime)
    s_inode(obj, inode)
    s_digest(obj, digest)
    return obj


def _display(name: str) -> str:
    """A printable form of a name that may hold undecodable bytes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(slots=True)
class _Part:
    """What one folder (or one single path) contributed."""

    files: dict[str, ScannedFile] = field(default_factory=dict)
    misses: list[tuple[str, str, bool]] = field(default_factory=list)  # (path, rel, follow)
    dirs: list[tuple[str, str, Ancestors]] = field(default_factory=list)
    issues: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class WalkResult:
    """Everything a walk found, merged in the calling thread."""

    files: dict[str, ScannedFile] = field(default_factory=dict)
    issues: list[tuple[str, str]] = field(default_factory=list)
    put: list[StatRow] = field(default_factory=list)
    hashed: int = 0
    bytes_hashed: int = 0


class Walker:
    """One scan's walk: ignore rules, the cached stat rows, the racy cut-off, hashing threads."""

    def __init__(
        self,
        source: str,
        globs: GlobSet,
        names: Callable[[list[str]], set[str]] | None,
        excluded: Iterable[str],
        stats: Mapping[str, StatRow],
        now_ns: int,
        workers: int | None = None,
    ) -> None:
        self.source = source
        self.real_source = os.path.realpath(source)
        self.globs = globs
        self.names = names  # a folder's names -> those a name-only glob ignores
        self.excluded = frozenset(excluded)
        self.stats = stats
        self.now_ns = now_ns
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)

    # --- per folder ---------------------------------------------------------------------------

    def scan_dir(
        self,
        top: str,
        prefix: str,
        ancestors: Ancestors,
        into: dict[str, ScannedFile] | None = None,
    ) -> _Part:
        """Scan one folder whose relative path is `prefix` ("" or ending in '/'); its files go
        into `into` when given (the walk's own dict: no second insert per file on merging)."""
        part = _Part() if into is None else _Part(files=into)
        try:
            # Listing through a descriptor makes each entry.stat() an fstatat() on it: no
            # path walk per file (~13% off the stat cost, bench/bench_scan.py floor).
            fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            part.issues.append((prefix.rstrip("/") or ".", f"cannot read folder: {exc.strerror}"))
            return part
        try:
            self._scan_entries(fd, top + "/", prefix, ancestors, part)
        finally:
            os.close(fd)
        return part

    def _scan_entries(
        self, fd: int, base: str, prefix: str, ancestors: Ancestors, part: _Part
    ) -> None:
        """The entries of one open folder; `base` is its path with a trailing '/'."""
        try:
            with os.scandir(fd) as it:
                entries = list(it)
        except OSError as exc:
            part.issues.append((prefix.rstrip("/") or ".", f"cannot read folder: {exc.strerror}"))
            return
        names = [entry.name for entry in entries]
        if self.names is not None:
            hidden = self.names(names)
            if hidden:
                entries = [entry for entry in entries if entry.name not in hidden]
        # One check per folder: undecodable names arrive as lone surrogates (non-ASCII).
        all_ascii = "".join(names).isascii()
        by_path = self.globs.file_matchers()[1]
        stats, files, misses = self.stats, part.files, part.misses
        new = object.__new__
        s_rel, s_size, s_mtime, s_ctime, s_inode, s_digest = _SLOTS
        # A cached digest counts only if it was taken more than RACY_WINDOW_NS after the
        # file's last change (mtime and ctime): a same-size rewrite within one timestamp tick
        # is never missed.
        window = RACY_WINDOW_NS
        for entry in entries:
            name = entry.name
            rel = prefix + name
            if not all_ascii and not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    part.issues.append((_display(rel), "name is not valid UTF-8: rename it"))
                    continue
            try:
                is_file = entry.is_file(follow_symlinks=False)
            except OSError as exc:
                part.issues.append((rel, f"cannot stat: {exc.strerror}"))
                continue
            if not is_file:
                self._other(entry, base + name, rel, name, ancestors, part)
                continue
            # The common case, inline: a regular file, usually unchanged.
            if by_path is not None and by_path(rel):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                part.issues.append((rel, f"cannot stat: {exc.strerror}"))
                continue
            row = stats.get(rel)
            if row is not None:
                # Unpacked once: locals are cheaper than six row[i] lookups, twice over.
                _, size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns = row
                if (
                    size == st.st_size
                    and mtime_ns == st.st_mtime_ns
                    and ctime_ns == st.st_ctime_ns
                    and inode == st.st_ino
                    and mtime_ns < hashed_at_ns - window
                    and ctime_ns < hashed_at_ns - window
                ):
                    obj = new(ScannedFile)  # _scanned(), inlined: this line runs per file
                    s_rel(obj, rel)
                    s_size(obj, size)
                    s_mtime(obj, mtime_ns)
                    s_ctime(obj, ctime_ns)
                    s_inode(obj, inode)
                    s_digest(obj, digest)
                    files[rel] = obj
                    continue
            misses.append((base + name, rel, False))

    def _other(
        self,
        entry: os.DirEntry[str],
        path: str,
        rel: str,
        name: str,
        ancestors: Ancestors,
        part: _Part,
    ) -> None:
        """Folders, symlinks and special files."""
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_link:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False  # a looping link: self.link names the problem
        except OSError as exc:
            part.issues.append((rel, f"cannot stat: {exc.strerror}"))
            return
        if rel in self.excluded or self.globs.match_entry(rel, name, is_dir):
            return
        if is_link:
            self.link(path, rel, ancestors, part)
            return
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            part.issues.append((rel, f"cannot stat: {exc.strerror}"))
            return
        if is_dir:
            part.dirs.append((path, rel + "/", ancestors | {(st.st_dev, st.st_ino)}))
        else:
            self.file(path, rel, st, False, part)

    def link(self, path: str, rel: str, ancestors: Ancestors, part: _Part) -> None:
        """Follow a symlink only when its target stays inside the source folder."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            target = os.readlink(path)
            part.issues.append((rel, f"broken symlink (points to {target!r}): fix or remove it"))
            return
        except OSError as exc:
            message = (
                "symlink loop: fix or remove the link"
                if exc.errno == errno.ELOOP
                else f"cannot follow symlink: {exc.strerror}"
            )
            part.issues.append((rel, message))
            return
        target = os.path.realpath(path)
        if os.path.commonpath([target, self.real_source]) != self.real_source:
            part.issues.append(
                (rel, f"symlink points outside the source folder ({target}); not followed")
            )
        elif statmod.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                part.issues.append((rel, "symlink loop: it points to a folder that contains it"))
            else:
                part.dirs.append((path, rel + "/", ancestors | {key}))
        else:
            self.file(path, rel, st, True, part)

    def file(self, path: str, rel: str, st: os.stat_result, follow: bool, part: _Part) -> None:
        """A file reached other than by the inline fast path (symlinks, single paths)."""
        if not statmod.S_ISREG(st.st_mode):
            part.issues.append(
                (rel, "not a regular file (device, socket or pipe): add it to [ignore]")
            )
            return
        row = self.stats.get(rel)
        if (
            row is not None
            and tuple(row[1:5]) == _validator(st)
            and row[2] < row[6] - RACY_WINDOW_NS
            and row[3] < row[6] - RACY_WINDOW_NS
        ):
            part.files[rel] = _scanned(rel, *_validator(st), row[5])
        else:
            part.misses.append((path, rel, follow))

    def single(self, rel: str, is_ignored: Callable[[str, bool], bool]) -> _Part:
        """One path given by name (watch mode): a file, a folder, a link, or gone.

        `is_ignored(rel, is_dir)` judges the path and the folders above it.
        """
        part = _Part()
        path = os.path.join(self.source, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return part
        except OSError as exc:
            part.issues.append((rel, f"cannot stat: {exc.strerror}"))
            return part
        is_dir = statmod.S_ISDIR(st.st_mode)
        if statmod.S_ISLNK(st.st_mode):
            try:
                is_dir = os.path.isdir(path)
            except OSError:
                is_dir = False
        if is_ignored(rel, is_dir):
            return part
        if statmod.S_ISLNK(st.st_mode):
            self.link(path, rel, frozenset(), part)
        elif statmod.S_ISDIR(st.st_mode):
            part.dirs.append((path, rel + "/", frozenset({(st.st_dev, st.st_ino)})))
        else:
            self.file(path, rel, st, False, part)
        return part

    # --- the whole walk ------------------------------------------------------------------------

    @staticmethod
    def _hash(miss: tuple[str, str, bool]) -> tuple[str, os.stat_result] | str:
        path, _rel, follow = miss
        try:
            return _hash_stable(path, follow)
        except _Changed:
            return "kept changing while being read; it will be retried next run"
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"

    def run(self, parts: Iterable[_Part]) -> WalkResult:
        """Walk every folder the starting parts point to, then hash the misses."""
        result = WalkResult()
        misses: list[tuple[str, str, bool]] = []

        def merge(part: _Part) -> list[tuple[str, str, Ancestors]]:
            result.files.update(part.files)
            misses.extend(part.misses)
            result.issues.extend(part.issues)
            return part.dirs

        todo = [d for part in parts for d in merge(part)]
        while todo:
            todo.extend(merge(self.scan_dir(*todo.pop(), result.files)))
        if self.workers > 1 and len(misses) >= _PARALLEL_HASH_MIN:
            # Imported here: a no-change scan (the common one) hashes nothing.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers, thread_name_prefix="assetsync-hash") as pool:
                hashed = list(pool.map(self._hash, misses))
        else:
            hashed = [self._hash(m) for m in misses]
        for (_path, rel, _follow), outcome in zip(misses, hashed, strict=True):
            if isinstance(outcome, str):
                result.issues.append((rel, outcome))
                continue
            digest, st = outcome
            size, mtime_ns, ctime_ns, inode = _validator(st)
            result.files[rel] = _scanned(rel, size, mtime_ns, ctime_ns, inode, digest)
            result.put.append((rel, size, mtime_ns, ctime_ns, inode, digest, self.now_ns))
            result.hashed += 1
            result.bytes_hashed += size
        return result
