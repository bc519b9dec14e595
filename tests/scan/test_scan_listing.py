"""The stat table's folder listings: a no-change scan stats every file but lists no folder, and
still sees every addition, removal, rename, rule change and racy folder a full listing would.

Scans run "an hour later" (`LATER`) so nothing is racy by the clock; where a test changes a
folder right after a scan, it first waits out one coarse kernel timestamp tick, as any real
edit after a scan is (a change within the same tick is what the racy rule is for).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetsync.scan.rules import IgnoreRules, StatEntry, rescan_paths, scan_tree
from assetsync.scan.stat_table import RACY_WINDOW_NS, FolderRecord, StatTable
from assetsync.state.db import State
from tests.scan_helpers import LATER, MemoryCache, digest_of, make_tree

TICK_S = 0.02  # longer than a coarse kernel timestamp tick (1-10 ms)


def _scan(src: Path, cache: MemoryCache | State, now: int, rules: IgnoreRules | None = None):
    return scan_tree(src, rules=rules or IgnoreRules(), cache=cache, now_ns=now)


def test_output_is_sorted_like_sorted_paths_from_listing_and_from_cache(tmp_path: Path) -> None:
    # '-' and '.' sort before '/', '0' after it: a folder's files fall where "name/" sorts.
    names = ["a.txt", "a/b.png", "a-b/c.png", "a0.png", "a/z/y.png", "a/z.png", "b", "a b/x.svg"]
    src = make_tree(tmp_path / "src", {n: n.encode() for n in names})
    cache = MemoryCache()
    listed = _scan(src, cache, LATER)
    cached = _scan(src, cache, LATER + 1)
    assert list(listed.files) == sorted(names)
    assert list(cached.files) == sorted(names)
    assert cached.files == listed.files and cached.hashed == 0


def test_no_change_scan_reuses_every_record_and_saves_nothing(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.png": b"a", "d/b.png": b"b", "d/e/c.png": b"c"})
    cache = MemoryCache()
    _scan(src, cache, LATER)
    table, saves = cache.table, cache.saves
    again = _scan(src, cache, LATER + 1)
    assert (again.hashed, again.reused, cache.saves) == (0, 3, saves)
    assert cache.table is table
    assert set(table.folders) == {"", "d/", "d/e/"}
    assert all(record.listing is not None for record in table.folders.values())


def test_a_trusted_listing_is_not_taken_again_but_a_racy_one_is(tmp_path: Path) -> None:
    """Proof the cached listing is what the scan used: a forged record that leaves out a file
    hides it while trusted; the same record taken within the racy window is listed again."""
    src = make_tree(tmp_path / "src", {"a.png": b"a", "hidden.png": b"h"})
    st_dir = os.stat(src)
    st_a = os.stat(src / "a.png")
    row = ("a.png", st_a.st_size, st_a.st_mtime_ns, st_a.st_ctime_ns, st_a.st_ino,
           digest_of(b"a"), LATER)
    key = (st_dir.st_size, st_dir.st_mtime_ns, st_dir.st_ctime_ns, st_dir.st_ino)
    rules = IgnoreRules()

    def table(listed_at: int) -> StatTable:
        record = FolderRecord.build([row], listing=(*key, listed_at), racy_ns=RACY_WINDOW_NS)
        return StatTable({"": record}, rules.key)

    cache = MemoryCache()
    cache.table = table(LATER)
    trusted = _scan(src, cache, LATER + 1)
    assert list(trusted.files) == ["a.png"] and trusted.hashed == 0
    # The folder last changed 1 s before its listing: within the window, so listed again.
    cache.table = table(max(st_dir.st_mtime_ns, st_dir.st_ctime_ns) + RACY_WINDOW_NS // 2)
    racy = _scan(src, cache, LATER + 1)
    assert list(racy.files) == ["a.png", "hidden.png"] and racy.hashed == 1
    # Other ignore rules than the listing's: listed again too.
    cache.table = StatTable(table(LATER).folders, rules=(("*.tmp",), ()))
    assert list(_scan(src, cache, LATER + 1).files) == ["a.png", "hidden.png"]


def test_added_removed_and_renamed_entries_are_seen(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.png": b"a", "d/b.png": b"b", "d/e/c.png": b"c"})
    cache = MemoryCache()
    _scan(src, cache, LATER)
    time.sleep(TICK_S)
    (src / "d/new.png").write_bytes(b"n")
    (src / "d/e/c.png").rename(src / "d/e/c2.png")
    (src / "a.png").unlink()
    (src / "f").mkdir()
    (src / "f/g.png").write_bytes(b"g")
    snap = _scan(src, cache, LATER + 1)
    assert list(snap.files) == ["d/b.png", "d/e/c2.png", "d/new.png", "f/g.png"]
    assert snap.files["d/e/c2.png"].digest == digest_of(b"c")
    assert snap.hashed == 3  # the renamed file is a new path: hashed like any new file
    assert set(cache.entries) == set(snap.files)
    time.sleep(TICK_S)
    (src / "f/g.png").unlink()
    (src / "f").rmdir()
    later = _scan(src, cache, LATER + 2)
    assert "f/g.png" not in later.files and "f/" not in cache.table.folders


def test_a_folder_replaced_by_a_file_and_back(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"x/inner.png": b"i", "y.png": b"y"})
    cache = MemoryCache()
    _scan(src, cache, LATER)
    time.sleep(TICK_S)
    (src / "x/inner.png").unlink()
    (src / "x").rmdir()
    (src / "x").write_bytes(b"now a file")
    assert list(_scan(src, cache, LATER + 1).files) == ["x", "y.png"]
    time.sleep(TICK_S)
    (src / "x").unlink()
    make_tree(src, {"x/again.png": b"a"})
    assert list(_scan(src, cache, LATER + 2).files) == ["x/again.png", "y.png"]


def test_changed_ignore_rules_apply_to_unchanged_folders(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.png": b"a", "d/b.psd": b"b", "d/c.png": b"c"})
    cache = MemoryCache()
    everything = _scan(src, cache, LATER)
    assert "d/b.psd" in everything.files
    no_psd = IgnoreRules(patterns=("*.psd",))
    assert list(_scan(src, cache, LATER + 1, no_psd).files) == ["a.png", "d/c.png"]
    assert list(_scan(src, cache, LATER + 2).files) == ["a.png", "d/b.psd", "d/c.png"]


def test_a_symlinked_file_keeps_its_folder_listed_every_time(tmp_path: Path) -> None:
    """A link's target can change without its folder changing: such a folder is not cached."""
    src = make_tree(tmp_path / "src", {"real/one.png": b"1", "real/two.png": b"2"})
    (src / "link.png").symlink_to("real/one.png")
    cache = MemoryCache()
    first = _scan(src, cache, LATER)
    assert first.files["link.png"].digest == digest_of(b"1")
    assert cache.table.folders[""].listing is None
    assert cache.table.folders["real/"].listing is not None
    (src / "link.png").unlink()
    (src / "link.png").symlink_to("real/two.png")
    assert _scan(src, cache, LATER + 1).files["link.png"].digest == digest_of(b"2")


def test_a_file_that_cannot_be_read_is_reported_on_every_scan(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"ok.png": b"1", "secret.png": b"2"})
    (src / "secret.png").chmod(0)
    try:
        if os.access(src / "secret.png", os.R_OK):
            return  # running as root: nothing is unreadable
        cache = MemoryCache()
        for now in (LATER, LATER + 1):
            snap = _scan(src, cache, now)
            assert list(snap.files) == ["ok.png"]
            assert [i.path for i in snap.issues] == ["secret.png"]
    finally:
        (src / "secret.png").chmod(0o644)


def test_state_round_trip_keeps_listings_and_exports_rows(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.png": b"a", "d/b.png": b"b"})
    with State.open(tmp_path / "state") as state:
        _scan(src, state, LATER)
    with State.open(tmp_path / "state") as state:
        table = state.stat_table()
        assert table.folders["d/"].listing is not None and table.rules == IgnoreRules().key
        assert _scan(src, state, LATER + 1).hashed == 0
        exported = state.export_json()["tables"]["stat_cache"]  # type: ignore[index]
    assert [row["rel_path"] for row in exported] == ["a.png", "d/b.png"]
    assert exported[1]["digest"] == digest_of(b"b")


def test_watch_style_row_updates_keep_listings_until_the_folder_changes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"d/a.png": b"a"})
    cache = MemoryCache()
    _scan(src, cache, LATER)
    listing = cache.table.folders["d/"].listing
    st_a = os.stat(src / "d/a.png")
    cache.put(StatEntry("d/a.png", st_a.st_size, st_a.st_mtime_ns, st_a.st_ctime_ns,
                        st_a.st_ino, digest_of(b"a"), LATER + 5))
    assert cache.table.folders["d/"].listing == listing
    assert _scan(src, cache, LATER + 6).hashed == 0


# --- a property: whatever happens between scans, the cached scan equals an uncached one -------

NAMES = st.sampled_from(["a.png", "b.svg", "c", "a-b.png", "a0.png", "sub", "sub2", ".env"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
OPS = st.lists(
    st.tuples(st.sampled_from(["write", "delete", "mkdir", "rmtree", "rename"]), PATHS, PATHS),
    max_size=6,
)


def _apply(src: Path, op: str, rel: str, other: str) -> None:
    path, target = src / rel, src / other
    try:
        if op == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(4))
        elif op == "delete":
            path.unlink()
        elif op == "mkdir":
            path.mkdir(parents=True)
        elif op == "rmtree":
            for root, dirs, files in os.walk(path, topdown=False):
                for name in files:
                    os.unlink(os.path.join(root, name))
                for name in dirs:
                    os.rmdir(os.path.join(root, name))
            path.rmdir()
        elif op == "rename":
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    except OSError:
        pass  # the op made no sense for this tree (not there, not empty, a file in the way)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(OPS, min_size=1, max_size=4))
def test_cached_scans_equal_uncached_scans(tmp_path: Path, rounds: list) -> None:
    src = Path(os.path.join(tmp_path, f"src{time.monotonic_ns()}"))
    make_tree(src, {"a.png": b"1", "sub/b.svg": b"2", "sub/sub/c": b"3"})
    cache = MemoryCache()
    now = LATER
    _scan(src, cache, now)
    for ops in rounds:
        time.sleep(TICK_S)
        for op, rel, other in ops:
            _apply(src, op, rel, other)
        now += 1
        cached = _scan(src, cache, now)
        fresh = scan_tree(src, rules=IgnoreRules(), cache=None)
        assert cached.files == fresh.files
        assert list(cached.files) == sorted(fresh.files)
        assert set(cache.entries) == set(fresh.files)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(OPS, min_size=1, max_size=3))
def test_watch_rescans_then_full_scans_equal_uncached_scans(tmp_path: Path, rounds: list) -> None:
    """Watch mode: the paths events named are rescanned (rows stored one by one, listings
    kept), and a later full scan must still see everything a full listing would."""
    src = Path(os.path.join(tmp_path, f"src{time.monotonic_ns()}"))
    make_tree(src, {"a.png": b"1", "sub/b.svg": b"2", "sub/sub/c": b"3"})
    cache = MemoryCache()
    now = LATER
    previous = _scan(src, cache, now)
    for ops in rounds:
        time.sleep(TICK_S)
        touched: set[str] = set()
        for op, rel, other in ops:
            _apply(src, op, rel, other)
            touched |= {rel, other}  # what a watcher would report (the rename's both ends)
        now += 1
        rescanned = rescan_paths(previous, sorted(touched), source=src, rules=IgnoreRules(),
                                 cache=cache, now_ns=now)
        fresh = scan_tree(src, rules=IgnoreRules(), cache=None)
        assert rescanned.files == fresh.files
        now += 1
        previous = _scan(src, cache, now)
        assert previous.files == fresh.files and list(previous.files) == sorted(fresh.files)
