"""The scanner's engine room: the folder walk with its stat-cache fast path, and hashing of
whatever the cache cannot vouch for, spread over a few threads. `assetsync.scan.rules` is the public
face. Results are merged in the calling thread, so callbacks never run on a worker and the
outcome does not depend on scheduling.
"""

from __future__ import annotations

import errno
import io
import os
import stat as statmod
from array import array
from collections.abc import Callable, Iterable
from operator import attrgetter

import xxhash

from assetsync.models import DIGEST_PREFIX, ScannedFile
from assetsync.scan.globs import GlobSet
from assetsync.scan.scan_files import Run, ScanFiles
from assetsync.scan.stat_table import RACY_WINDOW_NS, FolderRecord, Listing, StatRow, StatTable

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
_HASH_ATTEMPTS = 3
# Hashing is spread over threads (read() and xxhash release the GIL) once there is enough of it,
# in files big enough for a thread to run long between GIL hand-offs; the walk itself stays on
# one thread: on a busy 2-core machine walker threads lost more to GIL hand-offs than they
# gained (bench/bench_scan.py, "scan_parts_ms").
_PARALLEL_HASH_MIN = 8
_PARALLEL_HASH_MIN_BYTES = 4 << 20
# Measured on this 2-core machine, page cache warm: 1,000 files of 83 KB hashed in 38 ms on
# one thread, 68-73 ms on two or four; 64 files of 1 MiB 20-22 ms either way; files of 32 MiB
# 58 -> 34 ms on two. Below this average size threads only add hand-offs.
_PARALLEL_HASH_MIN_AVERAGE = 1 << 20

Ancestors = frozenset[tuple[int, int]]


def hash_fd(fd: int, size: int | None = None) -> str:
    """The digest of everything readable from `fd`, in CHUNK_SIZE reads (flat memory).

    `size`: what fstat said the file holds. A file under CHUNK_SIZE is then read in one call
    of exactly that much (and one byte more, to see it grew): allocating and zeroing a 1 MiB
    buffer per file had doubled the cost of hashing 1,000 files of 83 KB."""
    hasher = xxhash.xxh3_128()
    if size is not None and size < CHUNK_SIZE:
        data = os.read(fd, size + 1)
        hasher.update(data)
        if len(data) <= size:  # a regular file's read is short only at its end
            return DIGEST_PREFIX + hasher.hexdigest()
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
            digest = hash_fd(fd, before.st_size)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        named = os.stat(path, follow_symlinks=follow)
        if _validator(before) == _validator(after) and named.st_ino == before.st_ino:
            return digest, before
    raise _Changed


_SIZE = attrgetter("st_size")
_MTIME = attrgetter("st_mtime_ns")
_CTIME = attrgetter("st_ctime_ns")
_INODE = attrgetter("st_ino")


def _display(name: str) -> str:
    """A printable form of a name that may hold undecodable bytes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# A folder still to walk: (path, relative prefix "" or ending in "/", the (dev, inode) of every
# folder above it, for symlink loops).
Subdir = tuple[str, str, Ancestors]
# What a folder yields, in sorted order: runs of (rel, file) pairs (None while a file waits to
# be hashed) and, between them, its subfolders, so a depth-first walk emits sorted paths.
Item = Iterable[tuple[str, ScannedFile | None]] | Run | Subdir


def _sort_key(entry: os.DirEntry[str]) -> str:
    """A folder sorts as `name/`: where its files fall among sorted relative paths."""
    try:
        return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name
    except OSError:
        return entry.name


def _fits(row: StatRow) -> bool:
    """Whether a row fits the table's 64-bit columns (a timestamp past 2262 does not)."""
    return 0 <= row[1] < 1 << 64 and 0 <= row[4] < 1 << 64 and all(
        -(1 << 63) <= v < 1 << 63 for v in (row[2], row[3], row[6])
    )


def _vouches(old: FolderRecord, i: int, st: os.stat_result) -> bool:
    """Whether row `i`'s digest holds for a file with this stat: all four fields equal, and
    the digest taken more than RACY_WINDOW_NS after the file's last change (mtime and ctime),
    so a same-size rewrite within one timestamp tick is never missed."""
    mtime_ns, ctime_ns, hashed_at_ns = old.mtimes[i], old.ctimes[i], old.hashed_at[i]
    return (
        st.st_size == old.sizes[i]
        and st.st_mtime_ns == mtime_ns
        and st.st_ctime_ns == ctime_ns
        and st.st_ino == old.inodes[i]
        and mtime_ns < hashed_at_ns - RACY_WINDOW_NS
        and ctime_ns < hashed_at_ns - RACY_WINDOW_NS
    )


class _Builder:
    """A folder whose record is rebuilt: the rows it keeps and the files it waits on."""

    # A plain slotted class, not a dataclass: `dataclasses` costs every process ~7 ms to import.
    __slots__ = ("listing", "misses", "prefix", "rows", "subdirs")

    def __init__(self, prefix: str, listing: Listing | None,
                 subdirs: list[str] | None = None) -> None:
        self.prefix = prefix
        self.listing = listing
        self.rows: list[StatRow] = []
        self.misses: list[str] = []
        self.subdirs: list[str] = [] if subdirs is None else subdirs


class _Folder:
    """Collects one folder's items in order (or one path's, given by name: no builder)."""

    __slots__ = ("builder", "irregular", "items", "run")

    def __init__(self, builder: _Builder | None) -> None:
        self.builder = builder
        self.items: list[Item] = []
        self.run: dict[str, ScannedFile | None] = {}
        self.irregular = False  # a link, special file or problem: its listing is not kept

    def reuse(self, rel: str, obj: ScannedFile, row: StatRow) -> None:
        self.run[rel] = obj
        if self.builder is not None:
            self.builder.rows.append(row)

    def subdir(self, path: str, prefix: str, ancestors: Ancestors, name: str | None) -> None:
        if self.run:
            self.items.append(self.run.items())
            self.run = {}
        self.items.append((path, prefix, ancestors))
        if self.builder is not None and name is not None:
            self.builder.subdirs.append(name)

    def done(self) -> list[Item]:
        if self.run:
            self.items.append(self.run.items())
        return self.items


class WalkResult:
    """Everything a walk found, merged in the calling thread."""

    __slots__ = ("bytes_hashed", "files", "folders", "hashed", "issues", "ordered", "put",
                 "rebuilt")

    def __init__(self) -> None:
        self.files = ScanFiles()
        self.issues: list[tuple[str, str]] = []
        self.put: list[StatRow] = []
        self.hashed = 0
        self.bytes_hashed = 0
        # Every folder walked, by prefix: its cached record as it was, or rebuilt.
        self.folders: dict[str, FolderRecord] = {}
        self.rebuilt = 0
        # `files` is in sorted order (false once a symlinked folder was walked).
        self.ordered = True


class Walker:
    """One scan's walk: ignore rules, the stat table, the racy cut-off, hashing threads."""

    def __init__(
        self,
        source: str,
        globs: GlobSet,
        names: Callable[[list[str]], set[str]] | None,
        excluded: Iterable[str],
        table: StatTable,
        rules_key: object,
        now_ns: int,
        workers: int | None = None,
    ) -> None:
        self.source = source
        self.real_source = os.path.realpath(source)
        self.globs = globs
        self.names = names  # a folder's names -> those a name-only glob ignores
        self.excluded = frozenset(excluded)
        self.table = table
        self.rules_key = rules_key
        # A listing taken under other ignore rules may hold names now ignored, or miss some.
        self.trust_listings = table.rules == rules_key
        self.now_ns = now_ns
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        self.result = WalkResult()
        self._misses: list[tuple[str, str, bool]] = []  # (path, rel, follow)
        self._miss_bytes = 0  # their sizes as last stat'ed
        self._builders: list[_Builder] = []

    def _issue(self, rel: str, message: str) -> None:
        self.result.issues.append((rel, message))

    # --- per folder ---------------------------------------------------------------------------

    def folder(self, path: str, prefix: str, above: Ancestors) -> list[Item]:
        """One folder's items: from its cached listing when the folder is unchanged since it
        was taken (stat its files, list nothing), else from listing it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            self._issue(prefix.rstrip("/") or ".", f"cannot read folder: {exc.strerror}")
            return []
        try:
            st = os.fstat(fd)
            ancestors = above | {(st.st_dev, st.st_ino)}
            key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            old = self.table.folders.get(prefix)
            if old is not None and self._listing_holds(old.listing, key):
                items = self._known(fd, path + "/", prefix, ancestors, old)
                if items is not None:
                    return items
            return self._list(fd, path + "/", prefix, ancestors, old, key)
        finally:
            os.close(fd)

    def _listing_holds(self, listing: Listing | None, key: tuple[int, int, int, int]) -> bool:
        if listing is None or not self.trust_listings:
            return False
        size, mtime_ns, ctime_ns, inode, listed_at_ns = listing
        # Racy like a file: a change within the window after the listing might not have
        # moved a coarse mtime, so such a listing is taken again.
        return (
            (size, mtime_ns, ctime_ns, inode) == key
            and mtime_ns < listed_at_ns - RACY_WINDOW_NS
            and ctime_ns < listed_at_ns - RACY_WINDOW_NS
        )

    def _known(
        self, fd: int, base: str, prefix: str, ancestors: Ancestors, old: FolderRecord
    ) -> list[Item] | None:
        """The fast path: the folder's names are the cached ones; stat each through the folder's
        descriptor and compare whole columns at once. None: something is off, list it."""
        names = old.names
        lstat = os.lstat
        try:
            sts = [lstat(name, dir_fd=fd) for name in names]
            sizes = array("Q", map(_SIZE, sts))
            mtimes = array("q", map(_MTIME, sts))
            ctimes = array("q", map(_CTIME, sts))
            inodes = array("Q", map(_INODE, sts))
        except (OSError, OverflowError):
            return None  # changed since the folder was stat'ed: list it
        if (
            old.clean
            and sizes == old.sizes
            and mtimes == old.mtimes
            and ctimes == old.ctimes
            and inodes == old.inodes
        ):
            # The cache vouches for every file: its columns are the files (`ScanFiles` makes
            # a record of each only when one is read).
            self.result.folders[prefix] = old
            digests = old.digests
            return self._between_subdirs(
                base, prefix, ancestors, old,
                lambda start, end: Run(prefix, names[start:end], sizes[start:end],
                                       digests[start:end]))
        rels = list(map(prefix.__add__, names))
        files = self._compare_each(base, prefix, old, rels, sts)
        if files is None:
            return None
        return self._between_subdirs(base, prefix, ancestors, old,
                                     lambda start, end: zip(rels[start:end], files[start:end]))

    @staticmethod
    def _between_subdirs(base: str, prefix: str, ancestors: Ancestors, old: FolderRecord,
                         run: Callable[[int, int], Item]) -> list[Item]:
        """A known folder's items in sorted order: `run(start, end)` of its files between
        its subfolders, each subfolder where it sorts."""
        count = len(old.names)
        subdirs = old.subdirs
        if not subdirs:
            return [run(0, count)]
        items: list[Item] = []
        start = 0
        for pos, name in zip(old.subdir_positions(), subdirs, strict=True):
            if pos > start:
                items.append(run(start, pos))
            items.append((base + name, prefix + name + "/", ancestors))
            start = pos
        if start < count:
            items.append(run(start, count))
        return items

    def _compare_each(
        self,
        base: str,
        prefix: str,
        old: FolderRecord,
        rels: list[str],
        sts: list[os.stat_result],
    ) -> list[ScannedFile | None] | None:
        """A known folder where something changed: file by file."""
        builder = _Builder(prefix, old.listing, subdirs=list(old.subdirs))
        files: list[ScannedFile | None] = []
        misses: list[tuple[str, str, bool]] = []
        for i, (rel, st) in enumerate(zip(rels, sts, strict=True)):
            if _vouches(old, i, st):
                files.append(ScannedFile(rel, st.st_size, old.digests[i]))
                builder.rows.append(old.row(i, prefix))
            elif statmod.S_ISREG(st.st_mode):
                files.append(None)
                builder.misses.append(rel)
                misses.append((base + old.names[i], rel, False))
                self._miss_bytes += st.st_size
            else:
                return None  # no longer a regular file: list the folder
        self._misses.extend(misses)
        self._builders.append(builder)
        return files

    def _list(
        self,
        fd: int,
        base: str,
        prefix: str,
        ancestors: Ancestors,
        old: FolderRecord | None,
        key: tuple[int, int, int, int],
    ) -> list[Item]:
        """List the open folder (`base` is its path with a trailing '/') and take each entry."""
        listed = self._entries(fd, prefix)
        if listed is None:
            return []
        entries, all_ascii = listed
        by_path = self.globs.file_matchers()[1]
        builder = _Builder(prefix, (*key, self.now_ns))
        folder = _Folder(builder)
        issues_before = len(self.result.issues)
        for entry in entries:
            name = entry.name
            if not all_ascii and not name.isascii() and not self._utf8(prefix + name):
                continue
            self._take(entry, base, prefix, ancestors, old, folder, by_path)
        if folder.irregular or len(self.result.issues) > issues_before:
            builder.listing = None
        self._builders.append(builder)
        return folder.done()

    def _entries(self, fd: int, prefix: str) -> tuple[list[os.DirEntry[str]], bool] | None:
        """The folder's entries that the name rules keep, sorted, and whether every name is
        ASCII; None (after an issue) when it cannot be read."""
        try:
            # Listing through a descriptor makes each entry.stat() an fstatat() on it: no
            # path walk per file (~13% off the stat cost, bench/bench_scan.py floor).
            with os.scandir(fd) as it:
                entries = list(it)
        except OSError as exc:
            self._issue(prefix.rstrip("/") or ".", f"cannot read folder: {exc.strerror}")
            return None
        names = [entry.name for entry in entries]
        if self.names is not None:
            hidden = self.names(names)
            if hidden:
                entries = [entry for entry in entries if entry.name not in hidden]
        entries.sort(key=_sort_key)
        # One check per folder: undecodable names arrive as lone surrogates (non-ASCII).
        return entries, "".join(names).isascii()

    def _utf8(self, rel: str) -> bool:
        """False (after an issue) for a name the file system gave as undecodable bytes."""
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            self._issue(_display(rel), "name is not valid UTF-8: rename it")
            return False
        return True

    def _take(
        self,
        entry: os.DirEntry[str],
        base: str,
        prefix: str,
        ancestors: Ancestors,
        old: FolderRecord | None,
        folder: _Folder,
        by_path: Callable[[str], object] | None,
    ) -> None:
        """One listed entry: a regular file is reused from `old` when its stat vouches for the
        cached digest, else queued to hash; anything else goes to `_other`."""
        name = entry.name
        rel = prefix + name
        try:
            is_file = entry.is_file(follow_symlinks=False)
        except OSError as exc:
            self._issue(rel, f"cannot stat: {exc.strerror}")
            return
        if not is_file:
            self._other(entry, base + name, rel, name, ancestors, folder)
            return
        if by_path is not None and by_path(rel):
            return
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self._issue(rel, f"cannot stat: {exc.strerror}")
            return
        i = old.find(name) if old is not None else -1
        if old is not None and i >= 0 and _vouches(old, i, st):
            folder.reuse(rel, ScannedFile(rel, st.st_size, old.digests[i]), old.row(i, prefix))
            return
        self._miss(base + name, rel, False, folder, st.st_size)

    def _miss(self, path: str, rel: str, follow: bool, folder: _Folder, size: int) -> None:
        """A file to hash: a placeholder keeps its place in the sorted output."""
        folder.run[rel] = None
        self._misses.append((path, rel, follow))
        self._miss_bytes += size
        if folder.builder is not None:
            folder.builder.misses.append(rel)

    def _other(
        self,
        entry: os.DirEntry[str],
        path: str,
        rel: str,
        name: str,
        ancestors: Ancestors,
        folder: _Folder,
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
            self._issue(rel, f"cannot stat: {exc.strerror}")
            return
        if rel in self.excluded or self.globs.match_entry(rel, name, is_dir):
            return
        if is_link:
            folder.irregular = True  # a link's target can change without the folder changing
            self.link(path, rel, ancestors, folder)
            return
        if is_dir:
            folder.subdir(path, rel + "/", ancestors, name)
            return
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self._issue(rel, f"cannot stat: {exc.strerror}")
            return
        folder.irregular = True
        self.file(path, rel, st, False, folder)

    def link(self, path: str, rel: str, ancestors: Ancestors, folder: _Folder) -> None:
        """Follow a symlink only when its target stays inside the source folder."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            target = os.readlink(path)
            self._issue(rel, f"broken symlink (points to {target!r}): fix or remove it")
            return
        except OSError as exc:
            message = (
                "symlink loop: fix or remove the link"
                if exc.errno == errno.ELOOP
                else f"cannot follow symlink: {exc.strerror}"
            )
            self._issue(rel, message)
            return
        target = os.path.realpath(path)
        if os.path.commonpath([target, self.real_source]) != self.real_source:
            self._issue(rel, f"symlink points outside the source folder ({target}); not followed")
        elif statmod.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in ancestors:
                self._issue(rel, "symlink loop: it points to a folder that contains it")
            else:
                # A linked folder's files sort under the link's name, not where it was listed.
                self.result.ordered = False
                folder.subdir(path, rel + "/", ancestors, None)
        else:
            self.file(path, rel, st, True, folder)

    def file(
        self, path: str, rel: str, st: os.stat_result, follow: bool, folder: _Folder
    ) -> None:
        """A file reached other than by a folder's listing loop (symlinks, single paths)."""
        if not statmod.S_ISREG(st.st_mode):
            self._issue(rel, "not a regular file (device, socket or pipe): add it to [ignore]")
            return
        row = self.table.row(rel)
        if (
            row is not None
            and tuple(row[1:5]) == _validator(st)
            and row[2] < row[6] - RACY_WINDOW_NS
            and row[3] < row[6] - RACY_WINDOW_NS
        ):
            folder.reuse(rel, ScannedFile(rel, st.st_size, row[5]), row)
        else:
            self._miss(path, rel, follow, folder, st.st_size)

    def single(self, rel: str, is_ignored: Callable[[str, bool], bool]) -> list[Item]:
        """One path given by name (watch mode): a file, a folder, a link, or gone.

        `is_ignored(rel, is_dir)` judges the path and the folders above it.
        """
        folder = _Folder(None)
        path = os.path.join(self.source, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._issue(rel, f"cannot stat: {exc.strerror}")
            return []
        is_dir = statmod.S_ISDIR(st.st_mode)
        if statmod.S_ISLNK(st.st_mode):
            try:
                is_dir = os.path.isdir(path)
            except OSError:
                is_dir = False
        if is_ignored(rel, is_dir):
            return []
        if statmod.S_ISLNK(st.st_mode):
            self.link(path, rel, frozenset(), folder)
        elif statmod.S_ISDIR(st.st_mode):
            folder.subdir(path, rel + "/", frozenset(), None)
        else:
            self.file(path, rel, st, False, folder)
        return folder.done()

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

    def walk(self, items: list[Item]) -> WalkResult:
        """Walk `items` depth first (each folder's items where the folder sorts), hash what
        the cache could not vouch for, and rebuild the records of folders that changed."""
        result = self.result
        files = result.files
        stack = items[::-1]
        while stack:
            item = stack.pop()
            kind = type(item)
            if kind is tuple:
                stack.extend(reversed(self.folder(*item)))  # type: ignore[misc]
            elif kind is Run:
                files.add_run(item)  # type: ignore[arg-type]
            else:
                files.add_pairs(item)  # type: ignore[arg-type]
        self._hash_misses(files)
        self._rebuild()
        return result

    def _hash_misses(self, files: ScanFiles) -> None:
        misses, result = self._misses, self.result
        if (self.workers > 1 and len(misses) >= _PARALLEL_HASH_MIN
                and self._miss_bytes >= _PARALLEL_HASH_MIN_BYTES
                and self._miss_bytes >= len(misses) * _PARALLEL_HASH_MIN_AVERAGE):
            # Imported here: a no-change scan (the common one) hashes nothing.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers, thread_name_prefix="assetsync-hash") as pool:
                hashed = list(pool.map(self._hash, misses))
        else:
            hashed = [self._hash(m) for m in misses]
        for (_path, rel, _follow), outcome in zip(misses, hashed, strict=True):
            if isinstance(outcome, str):
                files.drop(rel)
                result.issues.append((rel, outcome))
                continue
            digest, st = outcome
            size, mtime_ns, ctime_ns, inode = _validator(st)
            files.fill(rel, ScannedFile(rel, size, digest))
            result.put.append((rel, size, mtime_ns, ctime_ns, inode, digest, self.now_ns))
            result.hashed += 1
            result.bytes_hashed += size

    def _rebuild(self) -> None:
        """Records for the folders that changed, now that their new files are hashed."""
        result = self.result
        put = {row[0]: row for row in result.put}
        for builder in self._builders:
            rows = builder.rows + [put[rel] for rel in builder.misses if rel in put]
            listing = builder.listing
            if len(rows) < len(builder.rows) + len(builder.misses):
                listing = None  # a file failed: list the folder again to report it again
            kept = [row for row in rows if _fits(row)]
            if len(kept) < len(rows):
                listing = None
            result.folders[builder.prefix] = FolderRecord.build(
                kept, listing=listing, subdirs=builder.subdirs, racy_ns=RACY_WINDOW_NS
            )
            result.rebuilt += 1
