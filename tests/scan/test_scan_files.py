"""`ScanFiles` (the walk's files, kept as columns until read) is the dict of the same files in
the same order: every `Mapping` operation, its columns before and after the records are made,
and the places the walk fills in or drops (hypothesis drives random walks of runs and pairs)."""

from __future__ import annotations

from array import array
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from assetsync.models import ScannedFile
from assetsync.scan.scan_files import Run, ScanFiles

_NAMES = st.lists(st.text("abcé/", min_size=1, max_size=3), min_size=0, max_size=5, unique=True)
# One walk: segments of (is a run, folder number, names), then what happens to each waiting file.
_WALKS = st.lists(st.tuples(st.booleans(), st.integers(0, 3), _NAMES), max_size=6)


def _file(rel: str) -> ScannedFile:
    return ScannedFile(rel, len(rel) * 7, f"xxh3_128:{abs(hash(rel)) % 10**6:032d}")


def _build(walk: list[tuple[bool, int, list[str]]], fates: list[bool]
           ) -> tuple[ScanFiles, dict[str, ScannedFile]]:
    """The walk's `ScanFiles` and the plain dict a walk would have made (each file once: a
    later segment naming a path again is skipped, as a walk never repeats one)."""
    made, plain = ScanFiles(), {}
    seen: set[str] = set()
    waiting: list[str] = []
    for i, (is_run, folder, names) in enumerate(walk):
        prefix = f"d{folder}-{i}/"
        fresh = [n for n in names if prefix + n not in seen]
        seen.update(prefix + n for n in fresh)
        if is_run:
            files = [_file(prefix + n) for n in fresh]
            made.add_run(Run(prefix, tuple(fresh), array("Q", [f.size for f in files]),
                             tuple(f.digest for f in files)))
            plain.update((f.rel_path, f) for f in files)
        else:
            pairs = [(prefix + n, None if k % 2 else _file(prefix + n))
                     for k, n in enumerate(fresh)]
            made.add_pairs(pairs)
            waiting += [rel for rel, f in pairs if f is None]
            plain.update((rel, f or _file(rel)) for rel, f in pairs)
    for rel, keep in zip(waiting, fates + [True] * len(waiting)):
        if keep:
            made.fill(rel, _file(rel))
        else:
            made.drop(rel)
            del plain[rel]
    return made, plain


def _columns(made: ScanFiles) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in made.columns())


@given(_WALKS, st.lists(st.booleans(), max_size=12))
def test_it_is_the_dict_of_the_same_files_in_the_same_order(
        walk: list[tuple[bool, int, list[str]]], fates: list[bool]) -> None:
    made, plain = _build(walk, fates)
    expected = (list(plain), [f.size for f in plain.values()], [f.digest for f in plain.values()])
    assert len(made) == len(plain)  # counted from the columns: nothing made yet
    assert _columns(made) == expected
    assert list(made.items()) == list(plain.items())  # in order
    assert made == plain and plain == made and made == _build(walk, fates)[0]
    assert all(made[rel] is made.get(rel) for rel in plain)
    assert list(made) == list(plain) and list(made.values()) == list(plain.values())
    assert ("missing/x" in made) is False and made.get("missing/x", 1) == 1
    assert len(made) == len(plain) and _columns(made) == expected  # after the records
    assert dict(made) == plain and repr(made) == f"ScanFiles({plain!r})"


def test_a_run_makes_each_record_once_and_the_records_are_scanned_files() -> None:
    made = ScanFiles()
    made.add_run(Run("d/", ("a", "b"), array("Q", [1, 2]), ("xxh3_128:1", "xxh3_128:2")))
    made.add_pairs([("e", ScannedFile("e", 3, "xxh3_128:3"))])
    first = made["d/a"]
    assert type(first) is ScannedFile and first == ScannedFile("d/a", 1, "xxh3_128:1")
    assert made["d/a"] is first  # made once, then kept
    assert list(made) == ["d/a", "d/b", "e"]
