"""The stat cache in memory: per folder, its cached files as columns, and what its last listing
was, so a no-change scan stats every file but lists no folder.

A folder's record holds its regular files (sorted names; size, mtime_ns, ctime_ns, inode and
hashed_at_ns as int64 arrays; digests) and its subfolders. `listing` is the folder's own
(size, mtime_ns, ctime_ns, inode) when it was listed, and when: creating, deleting or renaming an
entry changes a folder's mtime (POSIX), so while those match, and the listing was not taken
within the racy window of the folder's last change, the names are still the folder's names and
the scanner stats them without listing it (git's untracked cache, Mercurial's dirstate-v2 do the
same). A listing is only kept for a folder whose every entry was a file, a subfolder or
ignored, under the same ignore rules (`StatTable.rules`).

Columns make a whole folder's comparison a few C-level array compares, and load from one
marshal blob in well under a millisecond for 10,000 files (bench/bench_scan.py). Pure: no I/O.
"""

from __future__ import annotations

import marshal
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import NamedTuple

__all__ = [
    "BLOB_TAG",
    "RACY_WINDOW_NS",
    "FolderRecord",
    "Listing",
    "StatRow",
    "StatTable",
    "split_rel",
]

# (rel_path, size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns): `scan.StatEntry`'s shape.
StatRow = tuple[str, int, int, int, int, str, int]
# A folder's (size, mtime_ns, ctime_ns, inode) when it was listed, and the listing's time.
Listing = tuple[int, int, int, int, int]

# Coarse timestamps (FAT 2 s, HFS+/ext3 1 s): anything modified this close to its hashing (or
# a folder to its listing) is taken again next time (watch-hash-manifest.md §4, "Racy rule").
RACY_WINDOW_NS = 2_000_000_000

BLOB_TAG = "assetsync-stat-table-1"
_MARSHAL_VERSION = 4
# Sizes and inodes are unsigned 64-bit; times are signed (before 1970 is possible).
_UNSIGNED, _SIGNED = "Q", "q"


def split_rel(rel: str) -> tuple[str, str]:
    """`"a/b/c.png"` -> `("a/b/", "c.png")`: a file's folder prefix and its name."""
    cut = rel.rfind("/") + 1
    return rel[:cut], rel[cut:]


class FolderRecord(NamedTuple):
    """One folder's cached files (sorted by name, as columns) and its last trusted listing."""

    listing: Listing | None
    names: tuple[str, ...]
    sizes: array[int]
    mtimes: array[int]
    ctimes: array[int]
    inodes: array[int]
    digests: tuple[str, ...]
    hashed_at: array[int]
    subdirs: tuple[str, ...]
    # Every row's digest was taken more than the racy window after the file's last change.
    clean: bool

    @classmethod
    def build(
        cls,
        rows: Iterable[StatRow],
        *,
        listing: Listing | None = None,
        subdirs: Iterable[str] = (),
        racy_ns: int,
    ) -> FolderRecord:
        """A record from full rows (any order; the rows' folder part is ignored)."""
        ordered = sorted(((split_rel(r[0])[1], r) for r in rows), key=lambda pair: pair[0])
        names = tuple(name for name, _row in ordered)
        cols = [r for _name, r in ordered]
        mtimes = array(_SIGNED, [r[2] for r in cols])
        ctimes = array(_SIGNED, [r[3] for r in cols])
        hashed_at = array(_SIGNED, [r[6] for r in cols])
        clean = all(
            m < h - racy_ns and c < h - racy_ns
            for m, c, h in zip(mtimes, ctimes, hashed_at, strict=True)
        )
        return cls(
            listing=listing,
            names=names,
            sizes=array(_UNSIGNED, [r[1] for r in cols]),
            mtimes=mtimes,
            ctimes=ctimes,
            inodes=array(_UNSIGNED, [r[4] for r in cols]),
            digests=tuple(r[5] for r in cols),
            hashed_at=hashed_at,
            subdirs=tuple(sorted(set(subdirs), key=lambda d: d + "/")),
            clean=clean,
        )

    def row(self, index: int, prefix: str) -> StatRow:
        """The full row of the file at `index`."""
        return (
            prefix + self.names[index],
            self.sizes[index],
            self.mtimes[index],
            self.ctimes[index],
            self.inodes[index],
            self.digests[index],
            self.hashed_at[index],
        )

    def rows(self, prefix: str) -> list[StatRow]:
        """Every file's full row, with `prefix` (the folder's relative path) on the names."""
        return list(
            zip(
                [prefix + n for n in self.names],
                self.sizes.tolist(),
                self.mtimes.tolist(),
                self.ctimes.tolist(),
                self.inodes.tolist(),
                self.digests,
                self.hashed_at.tolist(),
                strict=True,
            )
        )

    def find(self, name: str) -> int:
        """The position of file `name`, or -1."""
        i = bisect_left(self.names, name)
        return i if i < len(self.names) and self.names[i] == name else -1

    def subdir_positions(self) -> list[int]:
        """Where each subfolder sorts among the file names (a folder `d` sorts as `d/`, which
        is where its files fall in the sorted list of relative paths)."""
        return [bisect_left(self.names, d + "/") for d in self.subdirs]

    def to_marshal(self) -> tuple[object, ...]:
        return (
            self.listing,
            self.names,
            self.sizes.tobytes(),
            self.mtimes.tobytes(),
            self.ctimes.tobytes(),
            self.inodes.tobytes(),
            self.digests,
            self.hashed_at.tobytes(),
            self.subdirs,
            self.clean,
        )

    @classmethod
    def from_marshal(cls, value: object) -> FolderRecord:
        if not isinstance(value, tuple) or len(value) != len(cls._fields):
            raise ValueError("folder record has the wrong shape")
        listing, names, sizes, mtimes, ctimes, inodes, digests, hashed_at, subdirs, clean = value
        record = cls(
            listing=tuple(listing) if listing is not None else None,
            names=names,
            sizes=array(_UNSIGNED, sizes),
            mtimes=array(_SIGNED, mtimes),
            ctimes=array(_SIGNED, ctimes),
            inodes=array(_UNSIGNED, inodes),
            digests=digests,
            hashed_at=array(_SIGNED, hashed_at),
            subdirs=subdirs,
            clean=bool(clean),
        )
        count = len(names)
        if not (
            isinstance(names, tuple)
            and isinstance(digests, tuple)
            and isinstance(subdirs, tuple)
            and len(digests) == count
            and all(len(a) == count for a in (record.sizes, record.mtimes, record.ctimes,
                                              record.inodes, record.hashed_at))
        ):
            raise ValueError("folder record columns disagree")
        return record


class StatTable:
    """Every folder's record by relative prefix (`""` for the source folder, else `"a/b/"`),
    and the ignore rules its listings were taken under."""

    __slots__ = ("_rows", "folders", "rules")

    def __init__(
        self, folders: Mapping[str, FolderRecord] | None = None, rules: object = None
    ) -> None:
        self.folders: dict[str, FolderRecord] = dict(folders or {})
        self.rules = rules
        self._rows: dict[str, StatRow] | None = None

    # --- storage ------------------------------------------------------------------------------

    def to_blob(self) -> bytes:
        folders = {k: v.to_marshal() for k, v in self.folders.items()}
        value: tuple[object, ...] = (BLOB_TAG, self.rules, folders)
        return marshal.dumps(value, _MARSHAL_VERSION)  # type: ignore[arg-type]

    @classmethod
    def from_blob(cls, blob: bytes) -> StatTable:
        """Raises ValueError when the blob is not a stat table of this format."""
        try:
            value = marshal.loads(blob)
        except (EOFError, TypeError) as exc:
            raise ValueError(f"stat cache blob unreadable: {exc}") from None
        if not (isinstance(value, tuple) and len(value) == 3 and value[0] == BLOB_TAG):
            raise ValueError("stat cache blob is not a stat table")
        _tag, rules, folders = value
        if not isinstance(folders, dict):
            raise ValueError("stat cache blob has no folder map")
        return cls({k: FolderRecord.from_marshal(v) for k, v in folders.items()}, rules)

    @classmethod
    def from_rows(cls, rows: Iterable[StatRow], *, racy_ns: int) -> StatTable:
        """A table of rows alone (imports, migrations): no listing is trusted until a scan
        lists each folder once."""
        by_folder: dict[str, list[StatRow]] = {}
        for row in rows:
            by_folder.setdefault(split_rel(row[0])[0], []).append(tuple(row))  # type: ignore[arg-type]
        return cls({k: FolderRecord.build(v, racy_ns=racy_ns) for k, v in by_folder.items()})

    # --- per file -----------------------------------------------------------------------------

    def rows(self) -> dict[str, StatRow]:
        """Every cached file's row by relative path (built on first use)."""
        if self._rows is None:
            rows: dict[str, StatRow] = {}
            for prefix, record in self.folders.items():
                rows.update((r[0], r) for r in record.rows(prefix))
            self._rows = rows
        return self._rows

    def row(self, rel: str) -> StatRow | None:
        """One file's row, or None."""
        prefix, name = split_rel(rel)
        record = self.folders.get(prefix)
        if record is None:
            return None
        i = record.find(name)
        return record.row(i, prefix) if i >= 0 else None

    def with_changes(
        self, put: Iterable[StatRow], drop: Iterable[str], *, racy_ns: int
    ) -> StatTable:
        """A new table with rows stored and forgotten. Touched folders keep their listing: a
        file added or removed changed the folder's mtime, so the next scan lists it anyway."""
        touched: dict[str, dict[str, StatRow]] = {}

        def rows_of(prefix: str) -> dict[str, StatRow]:
            if prefix not in touched:
                record = self.folders.get(prefix)
                touched[prefix] = {r[0]: r for r in record.rows(prefix)} if record else {}
            return touched[prefix]

        for rel in drop:
            rows_of(split_rel(rel)[0]).pop(rel, None)
        for row in put:
            rows_of(split_rel(row[0])[0])[row[0]] = tuple(row)  # type: ignore[assignment]
        folders = dict(self.folders)
        for prefix, rows in touched.items():
            old = folders.get(prefix)
            if not rows and (old is None or not old.subdirs):
                folders.pop(prefix, None)
                continue
            folders[prefix] = FolderRecord.build(
                rows.values(),
                listing=old.listing if old else None,
                subdirs=old.subdirs if old else (),
                racy_ns=racy_ns,
            )
        return StatTable(folders, self.rules)
