"""Benchmark watch mode; prints one JSON document.

    .venv/bin/python bench/bench_watch.py [--edits 20] [--burst 999] [--tree 10000] [--idle-s 10]

1. Save-to-live latency over N single-file edits (p50, p95), against the goal of the quiet window
   + 250 ms. With the sync engine present, each edit is published to an emulator over a socket and
   "live" is the moment engine.sync() returns (the deployment is made before it returns); without
   it, the figure is save-to-sync_fn-call and the JSON says so.
2. Events-to-builds for a burst of N new files (goal: one build), builds counted from the
   emulator's request log (or sync calls without the engine).
3. CPU use and RSS of a watching process while idle on a 10,000-file tree, inotify and polling
   side by side, against a bare Python process importing assetsync.watch.run (the baseline); and the
   real `assetsync watch` process (engine, embedded emulator) on the same tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from assetsync.sync.budget import BuildBudget
from assetsync.watch.run import WatchEvent, WatchOptions, watch

SyncFn = Callable[..., object]  # (paths, /, *, hold, on_event), as watch() calls it


@dataclass(frozen=True, slots=True)
class _NoBuild:
    build_sid: str | None = None


@dataclass(frozen=True, slots=True)
class _Cfg:
    source: Path
    state_dir: Path
    watch: WatchOptions
    ignore: tuple[str, ...] = ()


class Timeline:
    """Wraps a sync_fn: when each call started and finished, and with which paths."""

    def __init__(self, inner: SyncFn) -> None:
        self.inner = inner
        self.calls: list[tuple[frozenset[str] | None, float, float]] = []
        self.cond = threading.Condition()

    def __call__(self, paths: frozenset[str] | None, /, **kw: Any) -> object:
        started = time.perf_counter()
        result = self.inner(paths, **kw)
        with self.cond:
            self.calls.append((paths, started, time.perf_counter()))
            self.cond.notify_all()
        return result

    def wait_for(self, rel: str, timeout: float = 60.0) -> tuple[float, float]:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(p and rel in p for p, _, _ in self.calls), timeout)
            if not ok:
                raise RuntimeError(f"{rel} was never synced")
            return next((s, e) for p, s, e in self.calls if p and rel in p)

    def wait_count(self, count: int, timeout: float = 60.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.calls) >= count, timeout):
                raise RuntimeError(f"only {len(self.calls)} syncs")


class Engine:
    """The real engine against an emulator over a socket, if the engine is importable."""

    def __init__(self, work: Path) -> None:
        from assetsync.config import parse_config
        from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, EmulatorState
        from assetsync.emulator.serve import start_in_thread
        from assetsync.sync.run import sync

        self.state = EmulatorState(work / "emulator", build_delay_s=0.0)
        self.server = start_in_thread(self.state)
        self.source = work / "site"
        self.source.mkdir()
        # Twilio refuses an empty build, so `sync` refuses an empty folder: seed one file.
        (self.source / "keep.txt").write_text("keep\n")
        text = (
            f'[project]\nsource = "site"\nservice = "bench-watch"\nenvironment = "dev"\n'
            f'state_dir = "state"\n[target]\napi = "{self.server.url}"\n'
        )
        env = {"TWILIO_ACCOUNT_SID": LOCAL_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": LOCAL_AUTH_TOKEN}
        self.config = parse_config(text, file=str(work / ".assetsync.toml"), environ=env)
        self._sync = sync

    def sync_fn(self, paths: frozenset[str] | None, /, **kw: Any) -> object:
        if paths is None:
            return self._sync(self.config)
        return self._sync(self.config, paths=paths)

    def builds(self) -> int:
        return len(self.state.request_log.matching("POST", "api", "/v1/Services/*/Builds"))

    def close(self) -> None:
        self.server.stop()
        self.state.close()


class Recording:
    """No engine: a sync_fn that only records, so the figures are save-to-sync_fn-call."""

    def __init__(self, work: Path) -> None:
        self.source = work / "site"
        self.source.mkdir()
        self.calls = 0

    def sync_fn(self, paths: frozenset[str] | None, /, **kw: Any) -> object:
        self.calls += 1
        return _NoBuild("ZB-recorded" if paths else None)

    def builds(self) -> int:
        return self.calls

    def close(self) -> None:
        pass


def _target(work: Path) -> Engine | Recording:
    try:
        import assetsync.sync.run  # noqa: F401
    except ImportError:
        return Recording(work)
    return Engine(work)


def _run_watch(source: Path, work: Path, fn: SyncFn, options: WatchOptions) -> tuple[threading.Event, threading.Thread, list[WatchEvent]]:
    stop = threading.Event()
    events: list[WatchEvent] = []
    budget = BuildBudget("bench", ledger_dir=work / "budget")
    cfg = _Cfg(source, work / "state", options)
    thread = threading.Thread(
        target=watch, args=(cfg,), kwargs={"stop": stop, "sync_fn": fn, "budget": budget, "on_event": events.append}
    )
    thread.start()
    return stop, thread, events


@contextmanager
def _watching_target(options: WatchOptions) -> Iterator[tuple[Engine | Recording, Timeline, list[WatchEvent]]]:
    """watch() on a fresh folder with the engine (or the recorder), after its reconcile at start."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        target = _target(work)
        timeline = Timeline(target.sync_fn)
        stop, thread, events = _run_watch(target.source, work, timeline, options)
        try:
            timeline.wait_count(1)
            yield target, timeline, events
        finally:
            stop.set()
            thread.join()
            target.close()


def bench_latency(edits: int, options: WatchOptions) -> dict[str, object]:
    latencies: list[float] = []
    to_call: list[float] = []
    with _watching_target(options) as (target, timeline, _events):
        for i in range(edits):
            name = f"page-{i:02}.html"
            saved = time.perf_counter()
            (target.source / name).write_bytes(b"<h1>edit %d</h1>\n" % i * 50)
            started, done = timeline.wait_for(name)
            latencies.append((done - saved) * 1000)
            to_call.append((started - saved) * 1000)
            time.sleep(0.05)
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    goal = options.quiet_window_s * 1000 + 250
    p50 = statistics.median(ordered)
    return {
        "measured": "save-to-live (engine.sync returned, deployment made)"
        if isinstance(target, Engine)
        else "save-to-sync_fn-call (sync engine not available)",
        "edits": edits,
        "quiet_window_ms": options.quiet_window_s * 1000,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "save_to_sync_start_p50_ms": round(statistics.median(to_call), 1),
        "goal_p50_ms": goal,
        "p50_over_goal": round(p50 / goal, 3),
    }


def bench_burst(files: int, options: WatchOptions) -> dict[str, object]:
    with _watching_target(options) as (target, timeline, events):
        builds_before = target.builds()
        for i in range(files):
            (target.source / f"img-{i:04}.png").write_bytes(b"\x89PNG %d" % i)
        timeline.wait_for(f"img-{files - 1:04}.png")
        time.sleep(options.max_wait_s + 0.5)  # let any straggler batch show up
        builds = target.builds() - builds_before
        received = events[-1].status.events
    return {
        "files": files,
        "events": received,
        "syncs": len(timeline.calls) - 1,
        "builds": builds,
        "events_per_build": round(received / builds, 1) if builds else None,
    }


def _make_tree(root: Path, files: int) -> None:
    per_dir = 100
    for d in range(max(1, files // per_dir)):
        folder = root / f"d{d:03}"
        folder.mkdir(parents=True)
        for f in range(per_dir):
            (folder / f"f{f:03}.txt").write_bytes(b"x" * (512 + 37 * f))


def _idle_child(root: Path, mode: str, seconds: float) -> None:
    """Runs in a subprocess: watch (or only import, for the baseline), then measure idle cost."""
    stop = threading.Event()
    thread = None
    if mode != "baseline":
        work = Path(tempfile.mkdtemp())
        options = WatchOptions(polling="on" if mode == "polling" else "off")
        stop, thread, events = _run_watch(root, work, lambda _p, **_kw: _NoBuild(), options)
        deadline = time.monotonic() + 120
        while not any(e.kind == "synced" for e in list(events)):
            failed = [e for e in list(events) if e.kind == "sync-failed"]
            if failed or time.monotonic() > deadline:  # never wait forever on a broken watch
                stop.set()
                raise SystemExit(f"watch did not sync: {failed[0].message if failed else 'timeout'}")
            time.sleep(0.05)
    time.sleep(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    time.sleep(seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.perf_counter() - wall
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = psutil.Process().memory_info().rss
    stop.set()
    if thread is not None:
        thread.join()
    print(json.dumps({"cpu_pct_of_one_core": round(100 * cpu / elapsed, 3), "rss_mib": round(rss / 2**20, 1)}))


def _idle_cli(project: Path, seconds: float) -> dict[str, object]:
    """The real `assetsync watch` (engine, embedded emulator) idle after its first reconcile.

    A build holds at most 1,000 files, so all but the first 1,000 files are ignored: the process
    still watches and filters the whole 10,000-file tree.
    """
    (project / ".assetsync.toml").write_text(
        '[project]\nsource = "tree"\nservice = "bench-idle"\nenvironment = "dev"\n'
        '[ignore]\npatterns = ["d0[1-9]?/"]\n'
    )
    env = {**os.environ, "ASSETSYNC_BUDGET_DIR": str(project / "budget")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assetsync", "watch", "--plain"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "full reconcile deployed" in line:
                break
        else:
            raise RuntimeError("assetsync watch ended before its first deploy")
        time.sleep(1.0)
        child = psutil.Process(proc.pid)
        before, wall = child.cpu_times(), time.perf_counter()
        time.sleep(seconds)
        after, elapsed = child.cpu_times(), time.perf_counter() - wall
        cpu = (after.user - before.user) + (after.system - before.system)
        rss = child.memory_info().rss
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    return {"cpu_pct_of_one_core": round(100 * cpu / elapsed, 3), "rss_mib": round(rss / 2**20, 1)}


def bench_idle(files: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        _make_tree(root, files)
        out: dict[str, object] = {"files": files, "seconds": seconds}
        for mode in ("baseline", "inotify", "polling"):
            proc = subprocess.run(
                [sys.executable, __file__, "--idle-child", str(root), mode, str(seconds)],
                capture_output=True, text=True, check=True,
            )
            out[mode] = json.loads(proc.stdout)
        out["cli_inotify"] = _idle_cli(Path(tmp), seconds)
    base_rss = out["baseline"]["rss_mib"]  # type: ignore[index]
    out["inotify_rss_over_baseline"] = round(out["inotify"]["rss_mib"] / base_rss, 2)  # type: ignore[index]
    out["polling_cpu_over_inotify"] = round(
        out["polling"]["cpu_pct_of_one_core"] / max(out["inotify"]["cpu_pct_of_one_core"], 0.001), 1  # type: ignore[index]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=20)
    # 999 new files beside the seed file: the 1,000 a build holds. One more and `sync` spreads
    # the site over two services (two builds in the one sync; docs/sharding.md).
    parser.add_argument("--burst", type=int, default=999)
    parser.add_argument("--tree", type=int, default=10_000)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--idle-child", nargs=3, metavar=("ROOT", "MODE", "SECONDS"))
    args = parser.parse_args()
    if args.idle_child:
        root, mode, seconds = args.idle_child
        _idle_child(Path(root), mode, float(seconds))
        return
    defaults = WatchOptions()
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "latency": bench_latency(args.edits, defaults),
        "burst": bench_burst(args.burst, defaults),
        "idle": bench_idle(args.tree, args.idle_s),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
