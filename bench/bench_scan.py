"""Scan, plan and hashing benchmarks; prints one JSON document.

    .venv/bin/python bench/bench_scan.py [--files 10000] [--rounds 15] [--hash-mib 256]

Measured side by side in one run, interleaved, medians (the machine is shared and noisy):

1. No-change scan of a generated tree (100 folders x 100 files of 512-8192 bytes, `git add`ed
   and committed, then left past both tools' racy windows: our stat cache's, and git's, whose
   index is written again after the files as `git status` would on a later run) against `git
   status --porcelain` on the same tree. "scan" is what a plan pays:
   open the state (lock, schema check), load the stat cache, walk + stat + compare. For
   context, two bare Python floors are timed too: list every folder and lstat every file
   (scandir + lstat), and lstat every file by its known name with no listing (what the scan's
   trusted folder listings leave: git, too, stats every file it knows); "floor_plus_state"
   adds the state's open and load to the first.
2. Whole-process `assetsync plan` (its summary) and `assetsync plan --json` on that tree (a
   fresh interpreter each time, the `assetsync` command as a user runs it, assetsync's bytecode
   compiled first as `pip install` does), against `git status --porcelain` as a process, next
   to `python -c pass` for the interpreter's own start-up. The tree spreads over 10 services
   and was never synced: no carried outcome covers it. An unchanged tree's plan is printed
   again from the output memo (`assetsync.sync.plan_memo`) after its scan; for context,
   `plan_human_planned_ms` times the same plan with that memo deleted before each run (what
   the first plan after any change pays: planned, the preparation memo `assetsync.prepare.memo`
   still in place), and `plan_human_without_memo_ms` with both memos deleted. Then
   `after_sync`: the same tree published once (`assetsync sync` to the embedded emulator, not
   timed) and planned again, every file now a recorded version found reused: the plan an
   unchanged, published site gets, again with and without its output memo.
3. Hash throughput of `hash_file` over a file in the page cache, against xxh3_128 over the same
   bytes: (a) a plain readinto loop with no stat protocol, (b) `hashlib.file_digest`, and
   (c) the bytes already in memory (no I/O at all: an upper bound no file reader reaches).
4. Peak RSS of a process hashing a 1 GiB sparse file, against the same process hashing 1 byte.

Trees and files live in a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import xxhash

from assetsync.scan.rules import IgnoreRules, hash_file, scan_tree
from assetsync.state.db import State

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def make_tree(root: Path, files: int) -> None:
    rnd = random.Random(2026)
    per_dir = 100
    for i in range(max(1, files // per_dir)):
        folder = root / f"d{i:03d}"
        folder.mkdir(parents=True)
        for j in range(min(per_dir, files - i * per_dir)):
            (folder / f"f{j:03d}.png").write_bytes(rnd.randbytes(rnd.randint(512, 8192)))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", *args], cwd=root, env=GIT_ENV, check=True)


def _python_floor(tree: Path) -> int:
    """The least any Python scan must do: list every folder and lstat every file (through a
    folder descriptor, as the scanner does: each stat is an fstatat, no path walk)."""
    count = 0
    stack = [str(tree)]
    while stack:
        top = stack.pop()
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != ".git":
                            stack.append(top + "/" + entry.name)
                    else:
                        entry.stat(follow_symlinks=False)
                        count += 1
        finally:
            os.close(fd)
    return count


def _stat_floor(folders: list[tuple[str, list[str]]]) -> None:
    """lstat every file by its known name through its folder's descriptor: no listing."""
    for top, names in folders:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in names:
                os.lstat(name, dir_fd=fd)
        finally:
            os.close(fd)


def bench_scan_vs_git(work: Path, files: int, rounds: int) -> dict[str, object]:
    tree = work / "site"
    state_dir = work / "state"
    make_tree(tree, files)
    # Let every file age past the racy window so the warm scan can trust the stat cache, and
    # give git the same: its index, written by the commit in the very second the files were,
    # holds them as "racily clean" and `git status` checks such entries again on every run
    # (16.6 vs 12.8 ms, measured) until an index written later says they are clean.
    time.sleep(2.2)
    subprocess.run(["git", "update-index", "-q", "--refresh"], cwd=tree, env=GIT_ENV,
                   check=False)
    with State.open(state_dir) as state:
        first = scan_tree(tree, rules=IgnoreRules(), cache=state)
    scan_s: list[float] = []
    git_s: list[float] = []
    open_s: list[float] = []
    load_s: list[float] = []
    walk_s: list[float] = []
    floor_s: list[float] = []
    stat_floor_s: list[float] = []
    known = [
        (str(folder), sorted(p.name for p in folder.iterdir()))
        for folder in sorted(tree.iterdir())
        if folder.name != ".git"
    ]
    hashed = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        state = State.open(state_dir)
        t1 = time.perf_counter()
        state.stat_table()
        t2 = time.perf_counter()
        snap = scan_tree(tree, rules=IgnoreRules(), cache=state)
        t3 = time.perf_counter()
        state.close()
        scan_s.append(time.perf_counter() - t0)
        open_s.append(t1 - t0)
        load_s.append(t2 - t1)
        walk_s.append(t3 - t2)
        hashed += snap.hashed
        t = time.perf_counter()
        subprocess.run(
            ["git", "status", "--porcelain"], cwd=tree, check=True, stdout=subprocess.DEVNULL
        )
        git_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        _python_floor(tree)
        floor_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        _stat_floor(known)
        stat_floor_s.append(time.perf_counter() - t)
    return {
        "files": len(first.files),
        "first_scan_hashed": first.hashed,
        "warm_scans_hashed": hashed,
        "scan_ms": _median_ms(scan_s),
        "scan_parts_ms": {
            "open_state": _median_ms(open_s),
            "load_stat_cache": _median_ms(load_s),
            "walk_stat_compare": _median_ms(walk_s),
        },
        "git_status_ms": _median_ms(git_s),
        "python_floor_scandir_lstat_ms": _median_ms(floor_s),
        "python_floor_lstat_known_names_ms": _median_ms(stat_floor_s),
        "ratio_scan_to_git_status": round(statistics.median(scan_s) / statistics.median(git_s), 2),
        "ratio_python_floor_to_git_status": round(
            statistics.median(floor_s) / statistics.median(git_s), 2
        ),
        "ratio_lstat_known_names_to_git_status": round(
            statistics.median(stat_floor_s) / statistics.median(git_s), 2
        ),
        "ratio_floor_plus_state_to_git_status": round(
            (statistics.median(floor_s) + statistics.median(open_s) + statistics.median(load_s))
            / statistics.median(git_s),
            2,
        ),
        "target_ratio_at_most": 2.0,
    }


def _assetsync_command() -> list[str]:
    """The `assetsync` command as installed beside this Python (else `python -m assetsync`),
    after writing assetsync's bytecode: an editable install under PYTHONDONTWRITEBYTECODE=1
    (set on this project's machines) never writes it itself, and would compile every edited
    module on every run."""
    import assetsync

    compileall.compile_dir(str(Path(assetsync.__file__).parent), quiet=1)
    script = Path(sys.executable).with_name("assetsync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "assetsync"]


def bench_plan_process(work: Path, rounds: int) -> dict[str, object]:
    config = work / ".assetsync.toml"
    config.write_text(
        '[project]\nsource = "site"\nservice = "bench"\nstate_dir = "state"\n', encoding="utf-8"
    )
    cmd = [*_assetsync_command(), "-c", str(config), "plan", "--json"]
    # 10,000 public files exceed the 1000-per-build limit: the plan spreads them over 10
    # services as `sync` would (exit 0); exit 1 (a file or the site cannot be published) is
    # still a finished plan. The first run fills the stat cache, the transform stage's type
    # cache and the preparation memo: what follows is the no-change plan a user sees on every
    # later run.
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
    human = cmd[:-1]  # `plan` as a user reads it: a summary, not a line per file
    git = ["git", "status", "--porcelain"]
    plan_s: list[float] = []
    human_s: list[float] = []
    git_s: list[float] = []
    python_s: list[float] = []
    cold_s: list[float] = []
    planned_s: list[float] = []
    memo = work / "state" / "prepared.bin"
    output_memo = work / "state" / "plan-output.bin"  # the human plan's (JSON's is apart)
    size = human_size = 0
    codes: set[int] = set()
    for _ in range(rounds):
        t = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, check=False)
        plan_s.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"assetsync plan failed with exit {proc.returncode}")
        codes.add(proc.returncode)
        size = len(proc.stdout)
        t = time.perf_counter()
        proc = subprocess.run(human, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=False)
        human_s.append(time.perf_counter() - t)
        human_size = len(proc.stdout)
        t = time.perf_counter()
        subprocess.run(git, cwd=work / "site", env=GIT_ENV, stdout=subprocess.DEVNULL,
                       check=True)
        git_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python_s.append(time.perf_counter() - t)
        if len(cold_s) < 3:  # for context: planned, then preparing and placing every file
            planned_s.append(_timed_without(human, [output_memo]))
            cold_s.append(_timed_without(human, [output_memo, memo]))
    synced = _bench_synced_plan(work, human, rounds)
    return {
        "plan_json_ms": _median_ms(plan_s),
        "plan_human_ms": _median_ms(human_s),
        "git_status_process_ms": _median_ms(git_s),
        "ratio_plan_human_over_git_status": round(
            statistics.median(human_s) / statistics.median(git_s), 1),
        "python_startup_ms": _median_ms(python_s),
        "plan_human_planned_ms": _median_ms(planned_s),
        "plan_human_without_memo_ms": _median_ms(cold_s),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "json_bytes": size,
        "human_bytes": human_size,
        "exit_codes": sorted(codes),
        "target_ms_at_most": 500,
        "goal_ratio_at_most": 8,
        "after_sync": synced,
    }


def _timed_without(cmd: list[str], caches: list[Path]) -> float:
    """One run of `cmd` with these cache files deleted first (seconds)."""
    for path in caches:
        path.unlink(missing_ok=True)
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def _bench_synced_plan(work: Path, human: list[str], rounds: int) -> dict[str, object]:
    """The same plan once the tree is published (`assetsync sync` to the embedded emulator,
    once, not timed): every file is then a recorded version in one of the ten services, so
    the plan also reads what the state recorded of each service and finds every file reused.
    Timed interleaved with `git status` again."""
    proc = subprocess.run([*human[:-1], "sync"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"assetsync sync failed: {proc.stderr.decode()[-400:]}")
    subprocess.run(human, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    plan_s: list[float] = []
    git_s: list[float] = []
    planned_s: list[float] = []
    out = b""
    for _ in range(rounds):
        t = time.perf_counter()
        out = subprocess.run(human, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             check=False).stdout
        plan_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(["git", "status", "--porcelain"], cwd=work / "site", env=GIT_ENV,
                       stdout=subprocess.DEVNULL, check=True)
        git_s.append(time.perf_counter() - t)
        if len(planned_s) < 3:
            planned_s.append(_timed_without(human, [work / "state" / "plan-output.bin"]))
    if b"nothing to do" not in out:
        raise SystemExit("the plan after the sync is not a no-op")
    return {
        "plan_human_ms": _median_ms(plan_s),
        "git_status_process_ms": _median_ms(git_s),
        "ratio_plan_human_over_git_status": round(
            statistics.median(plan_s) / statistics.median(git_s), 1),
        "plan_human_planned_ms": _median_ms(planned_s),
    }


def _raw_loop(path: Path) -> str:
    hasher = xxhash.xxh3_128()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        reader: io.RawIOBase = f  # type: ignore[assignment]
        while n := reader.readinto(buffer):
            hasher.update(view[:n])
    return hasher.hexdigest()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, xxhash.xxh3_128).hexdigest()  # type: ignore[arg-type]


def bench_hash(work: Path, mib: int, rounds: int) -> dict[str, object]:
    path = work / "big.bin"
    rnd = random.Random(7)
    with open(path, "wb") as f:
        f.writelines(rnd.randbytes(1 << 20) for _ in range(mib))
    data = path.read_bytes()
    in_memory_hash: Callable[[], object] = lambda: xxhash.xxh3_128(data).hexdigest()
    cases: dict[str, Callable[[], object]] = {
        "hash_file": lambda: hash_file(path),
        "raw_readinto_loop": lambda: _raw_loop(path),
        "hashlib_file_digest": lambda: _file_digest(path),
        "in_memory": in_memory_hash,
    }
    assert hash_file(path) == "xxh3_128:" + xxhash.xxh3_128(data).hexdigest()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)
    gbps = {k: round(mib / 1024 / statistics.median(v), 2) for k, v in samples.items()}
    path.unlink()
    return {
        "file_mib": mib,
        "GiB_per_s": gbps,
        "ratio_to_raw_readinto_loop": round(gbps["hash_file"] / gbps["raw_readinto_loop"], 2),
        "ratio_to_hashlib_file_digest": round(gbps["hash_file"] / gbps["hashlib_file_digest"], 2),
        "ratio_to_in_memory": round(gbps["hash_file"] / gbps["in_memory"], 2),
        "target_ratio_at_least": 0.8,
    }


def bench_peak_rss(work: Path) -> dict[str, object]:
    big = work / "sparse.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    small = work / "one.bin"
    small.write_bytes(b"x")
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of this (large) process
    # would report the parent's peak instead of its own.
    code = textwrap.dedent(
        """
        import sys
        from assetsync.scan.rules import hash_file
        hash_file(sys.argv[1])
        with open("/proc/self/status") as f:
            print(next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")))
        """
    )

    def peak_kib(path: Path) -> int:
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
        )
        return int(out.stdout.strip())

    big_kib, small_kib = peak_kib(big), peak_kib(small)
    big.unlink()
    return {
        "file_bytes": 1 << 30,
        "peak_rss_kib_hashing_1GiB": big_kib,
        "peak_rss_kib_hashing_1B": small_kib,
        "difference_kib": big_kib - small_kib,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--hash-mib", type=int, default=256)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assetsync-bench-"))
    try:
        result = {
            "benchmark": "bench_scan",
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "scan_vs_git_status": bench_scan_vs_git(work, args.files, args.rounds),
            "plan_whole_process": bench_plan_process(work, args.rounds),
            "hash_throughput": bench_hash(work, args.hash_mib, max(5, args.rounds // 2)),
            "hash_peak_memory": bench_peak_rss(work),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
