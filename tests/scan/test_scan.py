"""Scanning real trees: ignore and deny rules, stat cache reuse, the racy rule, symlinks and
bad entries (each one issue naming it, the rest of the scan going on), rescan_paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from assetsync.errors import ConfigError
from assetsync.results import SyncEvent
from assetsync.scan.globs import compile_glob_set
from assetsync.scan.rules import (
    CHUNK_SIZE,
    DENY_PATTERNS,
    IgnoreRules,
    NameFilter,
    StatEntry,
    hash_file,
    rescan_paths,
    scan_tree,
)
from assetsync.state.db import State
from tests.scan_helpers import LATER, MemoryCache, digest_of, make_tree


def test_files_digests_and_sorted_paths(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"b.png": b"bee", "a/z.mp3": b"zed", "a/b c.txt": b""})
    snap = scan_tree(src, rules=IgnoreRules(), cache=None)
    assert list(snap.files) == ["a/b c.txt", "a/z.mp3", "b.png"]
    assert snap.files["a/z.mp3"].digest == digest_of(b"zed")
    assert snap.files["a/z.mp3"].size == 3
    assert snap.issues == () and snap.hashed == 3


def test_deny_list_and_ignore_patterns(tmp_path: Path) -> None:
    src = make_tree(
        tmp_path / "src",
        {
            "keep.png": b"1",
            ".env": b"SECRET=1",
            ".env.production": b"SECRET=2",
            "certs/server.pem": b"k",
            "certs/server.key": b"k",
            "id_rsa.pub": b"k",
            ".git/config": b"x",
            "img/.DS_Store": b"x",
            "img/.logo.png.swp": b"x",
            "img/logo.png~": b"x",
            "drafts/a.png": b"x",
            "img/huge.psd": b"x",
            "img/ok.png": b"2",
        },
    )
    rules = IgnoreRules(patterns=("*.psd", "drafts/"))
    snap = scan_tree(src, rules=rules, cache=None)
    assert list(snap.files) == ["img/ok.png", "keep.png"]
    assert rules.is_ignored(".env") and rules.is_ignored("drafts/sub/x.png")
    assert not rules.is_ignored("img/ok.png")


def test_state_folder_inside_source_is_never_scanned(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"1"})
    with State.open(src / ".state") as state:
        snap = scan_tree(src, rules=IgnoreRules(excluded=(".state",)), cache=state)
    assert list(snap.files) == ["a.png"]


def test_stat_cache_reuses_digests_and_forgets_deleted_files(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"aaa", "b.png": b"bbb"})
    cache = MemoryCache()
    first = scan_tree(src, rules=IgnoreRules(), cache=cache)
    assert first.hashed == 2 and set(cache.entries) == {"a.png", "b.png"}
    # An hour later nothing is racy: both digests come from the cache, no read at all.
    second = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER)
    assert (second.hashed, second.reused) == (2, 0)  # entries were hashed "now": re-hashed once
    third = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER + 1)
    assert (third.hashed, third.reused) == (0, 2)
    assert third.files == second.files
    (src / "b.png").unlink()
    fourth = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER + 2)
    assert list(fourth.files) == ["a.png"] and set(cache.entries) == {"a.png"}


def test_racy_entries_are_rehashed(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"aaa"})
    cache = MemoryCache()
    scan_tree(src, rules=IgnoreRules(), cache=cache)
    # Same second: the file was modified within 2 s of hashing, so it cannot be trusted.
    again = scan_tree(src, rules=IgnoreRules(), cache=cache)
    assert again.hashed == 1 and again.reused == 0


def test_same_size_rewrite_with_restored_mtime_is_detected(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"aaa"})
    cache = MemoryCache()
    scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER)
    old = os.stat(src / "a.png")
    (src / "a.png").write_bytes(b"bbb")
    os.utime(src / "a.png", ns=(old.st_atime_ns, old.st_mtime_ns))  # ctime still moves
    snap = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER + 1)
    assert snap.files["a.png"].digest == digest_of(b"bbb")


def test_replaced_file_new_inode_is_rehashed(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"aaa", "tmp": b"ccc"})
    cache = MemoryCache()
    scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER)
    os.replace(src / "tmp", src / "a.png")
    snap = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER + 1)
    assert snap.files["a.png"].digest == digest_of(b"ccc")


def test_symlinks_inside_followed_outside_broken_and_loops_reported(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.txt": b"s"})
    src = make_tree(tmp_path / "src", {"real/a.png": b"aaa", "z.png": b"zzz"})
    os.symlink("real/a.png", src / "alias.png")
    os.symlink("real", src / "mirror")
    os.symlink(outside / "secret.txt", src / "leak.txt")
    os.symlink("nowhere.png", src / "broken.png")
    os.symlink("self", src / "self")
    os.symlink("..", src / "real" / "up")
    events: list[SyncEvent] = []
    snap = scan_tree(src, rules=IgnoreRules(), cache=None, on_event=events.append)
    assert list(snap.files) == ["alias.png", "mirror/a.png", "real/a.png", "z.png"]
    assert snap.files["alias.png"].digest == digest_of(b"aaa")
    messages = {i.path: i.message for i in snap.issues}
    assert "points outside the source folder" in messages["leak.txt"]
    assert "broken symlink" in messages["broken.png"]
    assert "symlink loop" in messages["self"]
    assert "symlink loop" in messages["real/up"]
    assert "symlink loop" in messages["mirror/up"]
    assert {e.path for e in events if e.kind == "scan_issue"} == set(messages)
    assert events[-1].kind == "scan_done" and events[-1].files == 4


def test_non_utf8_name_is_one_issue_and_the_rest_goes_on(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"ok.png": b"1"})
    fd = os.open(os.fsencode(str(src)) + b"/bad\xff.png", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    snap = scan_tree(src, rules=IgnoreRules(), cache=None)
    assert list(snap.files) == ["ok.png"]
    assert [(i.path, i.message) for i in snap.issues] == [
        ("bad\\xff.png", "name is not valid UTF-8: rename it")
    ]


def test_fifo_is_reported_not_opened(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"ok.png": b"1"})
    os.mkfifo(src / "pipe")
    snap = scan_tree(src, rules=IgnoreRules(), cache=None)
    assert list(snap.files) == ["ok.png"]
    assert snap.issues[0].path == "pipe" and "not a regular file" in snap.issues[0].message


def _scan_lines(src: Path) -> list[str]:
    snap = scan_tree(src, rules=IgnoreRules(), cache=None)
    return [str(sorted(snap.files))] + [f"{i.path} | {i.message}" for i in snap.issues]


def test_unreadable_file_and_folder_are_issues(tmp_path: Path) -> None:
    """As root (which reads anything) the scan runs in a forked child that drops to nobody."""
    base = Path(tempfile.mkdtemp(prefix="assetsync-perm-"))
    try:
        base.chmod(0o755)
        src = make_tree(base / "src", {"ok.png": b"1", "locked.png": b"2", "closed/x.png": b"3"})
        for p in (src, src / "ok.png", src / "closed/x.png"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        (src / "locked.png").chmod(0)
        (src / "closed").chmod(0)
        if os.geteuid() != 0:
            out = _scan_lines(src)
        else:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: drop privileges, scan, report, exit without cleanup
                try:
                    os.close(read_end)
                    os.setgid(65534)
                    os.setuid(65534)
                    os.write(write_end, "\n".join(_scan_lines(src)).encode())
                finally:
                    os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end) as pipe:
                out = pipe.read().splitlines()
            os.waitpid(pid, 0)
    finally:
        (base / "src" / "closed").chmod(0o755)
        subprocess.run(["rm", "-rf", str(base)], check=True)
    assert out[0] == "['ok.png']"
    assert out[1].startswith("closed | cannot read folder: Permission denied")
    assert out[2].startswith("locked.png | cannot read: Permission denied")


def test_missing_source_is_a_config_error(tmp_path: Path) -> None:
    # The folder `[project] source` names: a config problem, exit 2 like the others.
    with pytest.raises(ConfigError, match="does not exist: fix \\[project\\] source") as info:
        scan_tree(tmp_path / "nope", rules=IgnoreRules(), cache=None)
    assert info.value.exit_code == 2


def test_hash_file_streams_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    assert hash_file(tmp_path / "big.bin") == digest_of(data)
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty") == digest_of(b"")


def test_rescan_paths_equals_a_full_scan(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"a", "dir/b.png": b"b", "dir/sub/c.png": b"c", "d.png": b"d"})
    cache = MemoryCache()
    before = scan_tree(src, rules=IgnoreRules(), cache=cache)
    (src / "a.png").write_bytes(b"A2")
    (src / "dir/sub/c.png").unlink()
    (src / "dir/new.png").write_bytes(b"n")
    (src / "dir/.env").write_bytes(b"S=1")
    (src / "d.png").unlink()
    (src / "drafts").mkdir()
    (src / "drafts/x.png").write_bytes(b"x")
    rules = IgnoreRules(patterns=("drafts/",))
    after = rescan_paths(
        before,
        ["a.png", "dir", "d.png", "/not/there.png", "drafts", "drafts/x.png"],
        source=src,
        rules=rules,
        cache=cache,
    )
    full = scan_tree(src, rules=rules, cache=None)
    assert "drafts/x.png" not in full.files
    assert after.files == full.files
    assert set(cache.entries) == set(full.files)


def test_file_that_keeps_changing_while_read_is_one_issue(tmp_path: Path) -> None:
    """A writer appending throughout every read: each attempt sees fstat change."""
    src = make_tree(tmp_path, {"ok.png": b"1"})
    busy = src / "busy.bin"
    with open(busy, "wb") as f:
        f.truncate(128 << 20)  # sparse: long enough to read that many touches land inside
    stop = threading.Event()

    writing = threading.Event()

    def touch() -> None:  # appends: a size change shows even where timestamps are coarse
        with open(busy, "ab", buffering=0) as f:
            while not stop.is_set():
                f.write(b"x")
                writing.set()

    writer = threading.Thread(target=touch)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over often, so touches land inside every read
    writer.start()
    try:
        writing.wait()
        snap = scan_tree(src, rules=IgnoreRules(), cache=None)
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
    assert list(snap.files) == ["ok.png"]
    assert [(i.path, i.message) for i in snap.issues] == [
        ("busy.bin", "kept changing while being read; it will be retried next run")
    ]


@pytest.mark.parametrize("field", ["size", "mtime_ns", "ctime_ns", "inode"])
def test_each_stat_field_alone_invalidates_a_cached_digest(tmp_path: Path, field: str) -> None:
    # A cached entry equal to the file's stat in all four fields is trusted as is (its forged
    # digest comes back unread); one field off by one and the file is read again.
    src = make_tree(tmp_path, {"a.png": b"aaa"})
    st = os.stat(src / "a.png")
    fields = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
    }
    forged = "xxh3_128:" + "0" * 32
    cache = MemoryCache()
    cache.put(StatEntry("a.png", **fields, digest=forged, hashed_at_ns=LATER))
    trusted = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER + 1)
    assert (trusted.files["a.png"].digest, trusted.hashed) == (forged, 0)
    fields[field] += 1
    cache.put(StatEntry("a.png", **fields, digest=forged, hashed_at_ns=LATER))
    snap = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER + 1)
    assert (snap.files["a.png"].digest, snap.hashed) == (digest_of(b"aaa"), 1)
    assert snap.files["a.png"].size == 3
    stored = cache.entries["a.png"]
    assert (stored.size, stored.inode, stored.digest) == (3, st.st_ino, digest_of(b"aaa"))


def test_entry_hashed_within_two_seconds_of_its_ctime_is_not_trusted(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"a.png": b"aaa"})
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(src / "a.png", ns=(an_hour_ago, an_hour_ago))  # ctime moves to now
    st = os.stat(src / "a.png")
    forged = "xxh3_128:" + "0" * 32
    cache = MemoryCache()
    # mtime long before the hashing, ctime within the racy window of it: re-read.
    cache.put(
        StatEntry(
            "a.png",
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            forged,
            st.st_ctime_ns + 1_999_999_999,
        )
    )
    snap = scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER)
    assert snap.files["a.png"].digest == digest_of(b"aaa")
    # The same entry hashed 2 s after the ctime: trusted.
    cache.put(
        cache.entries["a.png"]._replace(digest=forged, hashed_at_ns=st.st_ctime_ns + 2_000_000_001)
    )
    assert (
        scan_tree(src, rules=IgnoreRules(), cache=cache, now_ns=LATER).files["a.png"].digest
        == forged
    )


def test_non_ascii_names_next_to_an_undecodable_one(tmp_path: Path) -> None:
    src = make_tree(tmp_path, {"café.png": b"1", "ok.png": b"2", "日本/語.svg": b"3"})
    fd = os.open(os.fsencode(str(src)) + b"/bad\xff.png", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    snap = scan_tree(src, rules=IgnoreRules(), cache=None)
    assert list(snap.files) == ["café.png", "ok.png", "日本/語.svg"]
    assert [i.path for i in snap.issues] == ["bad\\xff.png"]


def test_folder_wide_name_filter_agrees_with_the_glob_set() -> None:
    # The walk judges a folder's names in bulk; every answer must be GlobSet's own.
    extra = r"*.psd raw* [ab]?.tmp ?x* *.b[!a]k notes sub/anchored.png build/ x\*y **"
    patterns = DENY_PATTERNS + tuple(extra.split())
    names = [
        *[
            "a.png",
            ".env",
            ".env.local",
            "id_rsa.pub",
            ".x.swp",
            ".x.swq",
            ".x.swx",
            "4913",
            "f~",
            ".#f",
            "~$doc.docx",
        ],
        *[
            ".~lock.a.odt#",
            ".subl12.tmp",
            "k.kate-swp",
            "x.psd",
            "raw",
            "rawdata",
            "ab.tmp",
            "a1.tmp",
            "c1.tmp",
        ],
        *[
            "axe",
            "x.bok",
            "x.bak",
            "notes",
            "notes2",
            "anchored.png",
            "build",
            "x*y",
            "xzy",
            "café",
        ],
        *("bad\udcff.png", ""),
    ]
    for cut in (len(DENY_PATTERNS), len(patterns) - 1, len(patterns)):
        globs = compile_glob_set(patterns[:cut])
        expected = {n for n in names if n and globs.match_entry(n, n, False)}
        assert NameFilter(globs).hits(names) - {""} == expected
    assert not NameFilter(compile_glob_set(("a/b.png", "dist/")))
