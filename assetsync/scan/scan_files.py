"""The scan's files by relative path, kept as the walk found them: runs of a folder the stat cache
vouches for as its columns (names, sizes, digests), everything else as (path, file) pairs. The
`ScannedFile` of each file, and the dict of them all, are made on first use, in one pass.

Why: on an unchanged 10,000-file tree, making a `ScannedFile` and a dict entry per file was ~6 ms
of a ~32 ms scan (bench/bench_scan.py), and `plan` printed from its output memo
(`assetsync.sync.plan_memo`) needs none of them: it digests the columns (`columns`). Everything
else reads a `Mapping` as before, in the walk's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from assetsync.models import ScannedFile

__all__ = ["Run", "ScanFiles"]

_new = tuple.__new__
_REL, _SIZE, _DIGEST = itemgetter(0), itemgetter(1), itemgetter(2)


class Run:
    """Consecutive files of one folder, as the stat cache holds them: names (under `prefix`,
    "" or ending in "/"), sizes and digests, in the same order."""

    __slots__ = ("digests", "names", "prefix", "sizes")

    def __init__(self, prefix: str, names: Sequence[str], sizes: Sequence[int],
                 digests: Sequence[str]) -> None:
        self.prefix, self.names, self.sizes, self.digests = prefix, names, sizes, digests

    def rels(self) -> Iterator[str]:
        return map(self.prefix.__add__, self.names)


class ScanFiles(Mapping[str, ScannedFile]):
    """A walk's files (see the module doc). The walk adds runs and pairs in sorted order, then
    fills in (or drops) the files it had to hash; readers see a read-only mapping."""

    __slots__ = ("_dict", "_segments", "_where")

    def __init__(self) -> None:
        # Runs, and dicts of pairs (None: a file still to hash), in the walk's order.
        self._segments: list[Run | dict[str, ScannedFile | None]] = []
        self._dict: dict[str, ScannedFile] | None = None  # made on first use
        self._where: dict[str, dict[str, ScannedFile | None]] | None = None

    # --- the walk's side ------------------------------------------------------------------------

    def add_run(self, run: Run) -> None:
        self._segments.append(run)

    def add_pairs(self, pairs: Iterable[tuple[str, ScannedFile | None]]) -> None:
        last = self._segments[-1] if self._segments else None
        if not isinstance(last, dict):
            last = {}
            self._segments.append(last)
        last.update(pairs)

    def _segment_of(self, rel: str) -> dict[str, ScannedFile | None]:
        if self._where is None:  # only pairs wait on a hash: runs are vouched for
            self._where = {r: seg for seg in self._segments if isinstance(seg, dict)
                           for r in seg}
        return self._where[rel]

    def fill(self, rel: str, file: ScannedFile) -> None:
        """A hashed file in the place the walk kept for it."""
        self._segment_of(rel)[rel] = file

    def drop(self, rel: str) -> None:
        """A file the walk kept a place for but could not hash."""
        del self._segment_of(rel)[rel]

    # --- the reader's side ----------------------------------------------------------------------

    def _made(self) -> dict[str, ScannedFile]:
        made = self._dict
        if made is None:
            made = {}
            for seg in self._segments:
                if isinstance(seg, Run):
                    rels = list(seg.rels())
                    made.update(zip(rels, map(_new, repeat(ScannedFile),
                                              zip(rels, seg.sizes, seg.digests))))
                else:
                    made.update(seg)  # type: ignore[arg-type]  # every file hashed by now
            self._dict = made
            self._segments = [made]  # type: ignore[list-item]
            self._where = None
        return made

    def columns(self) -> tuple[Iterable[str], Iterable[int], Iterable[str]]:
        """Every file's relative path, size and digest, in order, as three iterables (each to
        be read once), without making a `ScannedFile` per file when none was made yet."""
        if self._dict is not None:
            made = list(self._dict.values())
            return map(_REL, made), map(_SIZE, made), map(_DIGEST, made)
        rels: list[Iterable[str]] = []
        sizes: list[Iterable[int]] = []
        digests: list[Iterable[str]] = []
        for seg in self._segments:
            if isinstance(seg, Run):
                rels.append(seg.rels())
                sizes.append(seg.sizes)
                digests.append(seg.digests)
            else:
                rows: list[Any] = list(seg.values())  # every file hashed by now
                rels.append(map(_REL, rows))
                sizes.append(map(_SIZE, rows))
                digests.append(map(_DIGEST, rows))
        return chain.from_iterable(rels), chain.from_iterable(sizes), chain.from_iterable(digests)

    def __len__(self) -> int:
        if self._dict is not None:
            return len(self._dict)
        return sum(len(seg.names) if isinstance(seg, Run) else len(seg) for seg in self._segments)

    def __getitem__(self, rel: str) -> ScannedFile:
        return self._made()[rel]

    def __iter__(self) -> Iterator[str]:
        return iter(self._made())

    def __contains__(self, rel: object) -> bool:
        return rel in self._made()

    def keys(self) -> Any:
        return self._made().keys()

    def values(self) -> Any:
        return self._made().values()

    def items(self) -> Any:
        return self._made().items()

    def get(self, rel: str, default: Any = None) -> Any:
        return self._made().get(rel, default)

    def __eq__(self, other: object) -> bool:
        return self._made() == (other._made() if isinstance(other, ScanFiles) else other)

    __hash__ = None  # type: ignore[assignment]  # as a dict's

    def __repr__(self) -> str:
        return f"ScanFiles({self._made()!r})"
