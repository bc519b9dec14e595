"""Sync benchmark on the emulator (run as its own process over a socket); prints one JSON document.

    .venv/bin/python bench/bench_sync.py [--files 1000] [--size 10000] [--big-files 20]
                                         [--rounds 5] [--full-rounds 3]

1. One changed file in a 1,000-asset project: requests, bytes sent, wall time and time until the
   build is requested of `sync` next to `sync --full` (which re-uploads every file, like the
   official toolkit), with ratios of the medians (runs alternate; each starts from a collected
   heap). `carried` is 1 where the syncs used the last sync's outcome (`assetsync.state.last_outcome`:
   `sync` here always can, `--full` never does).
2. Cold publish of 1,000 files (10 MB): wall time and files/s.
3. Peak RSS of an `assetsync sync` process publishing twenty 20 MB files (uploads stream from
   disk; goal: under 150 MB).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assetsync.config import load_config
from assetsync.emulator.state import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from assetsync.results import SyncEvent
from assetsync.sync.run import sync

ENV = {"TWILIO_ACCOUNT_SID": LOCAL_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": LOCAL_AUTH_TOKEN}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assetsync", "emulator", "--port", str(port), "--data", str(data),
         "--build-delay", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the emulator did not start")


def project(root: Path, url: str, service: str) -> Path:
    (root / "site").mkdir(parents=True)
    (root / ".assetsync.toml").write_text(
        f'[project]\nsource = "site"\nservice = "{service}"\nenvironment = "dev"\n'
        f'[target]\napi = "{url}"\n[sync]\npoll_interval_s = 0.5\n'
    )
    return root / ".assetsync.toml"


def fill(site: Path, count: int, size: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = site / f"dir{i % 20:02d}" / f"asset{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        head = f"asset {i}\n".encode()
        path.write_bytes(head + os.urandom(max(0, size - len(head))))
        paths.append(path)
    # A file changed within ~2 s of being hashed is hashed again on the next scan (the "racy"
    # rule; ctime counts, so backdating mtime does not help): let the tree age first, as a real
    # project's has, or `sync` below would be charged for re-hashing 1,000 fresh files.
    time.sleep(2.5)
    return paths


def measured(config_path: Path, **kw: bool) -> dict[str, float | int]:
    config = load_config(config_path, environ=ENV)
    marks: dict[str, float] = {}

    def on_event(event: SyncEvent) -> None:
        marks.setdefault(event.kind, time.perf_counter())

    # Every measured run starts from a collected heap, so none pays for garbage an earlier run
    # (the cold publish above all) left behind; its own allocations still trigger collections.
    gc.collect()
    started = time.perf_counter()
    result = sync(config, on_event=on_event, **kw)
    wall = time.perf_counter() - started
    # The build itself takes as long either way (50 ms here, seconds on Twilio): time to the
    # build request is the part an incremental sync saves.
    until_build = marks.get("build_created", started + wall) - started
    return {"wall_s": round(wall, 3), "until_build_s": round(until_build, 3),
            "requests": result.requests, "write_requests": result.write_requests,
            "bytes_sent": result.bytes_sent, "uploads": len(result.uploaded),
            # Whether the last sync's outcome stood in for the unchanged files (assetsync.state.last_outcome).
            "carried": int("carried" in marks)}


def median_run(runs: list[dict[str, float | int]]) -> dict[str, float | int]:
    """Each figure's median over the runs (requests and bytes are the same in every run)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def ratio(a: float, b: float) -> float:
    return round(a / b, 1) if b else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10_000, help="bytes per file")
    parser.add_argument("--big-files", type=int, default=20)
    parser.add_argument("--big-size", type=int, default=20_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="incremental syncs measured")
    parser.add_argument("--full-rounds", type=int, default=3, help="full syncs measured")
    args = parser.parse_args()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        emulator, url = start_emulator(root / "emulator")
        try:
            cfg = project(root / "p1", url, "bench")
            files = fill(root / "p1" / "site", args.files, args.size)
            cold = measured(cfg)
            cold["files_per_s"] = round(args.files / cold["wall_s"], 1)
            cold["megabytes"] = round(args.files * args.size / 1e6, 1)
            out["cold_publish"] = cold

            # Alternating, each run after a change of one more file; medians of each mode.
            incremental_runs, full_runs = [], []
            for i in range(args.rounds):
                files[i * 7 % len(files)].write_bytes(f"changed {i}".encode())
                incremental_runs.append(measured(cfg))
                if i < args.full_rounds:
                    files[(i * 7 + 3) % len(files)].write_bytes(f"changed again {i}".encode())
                    full_runs.append(measured(cfg, full=True))
            incremental = median_run(incremental_runs)
            full = median_run(full_runs)
            out["one_change"] = {
                "files": args.files,
                "sync": incremental,
                "sync_full": full,
                "sync_wall_s_runs": [r["wall_s"] for r in incremental_runs],
                "sync_full_wall_s_runs": [r["wall_s"] for r in full_runs],
                "ratio_full_over_sync": {
                    "bytes_sent": ratio(full["bytes_sent"], incremental["bytes_sent"]),
                    "wall_s": ratio(full["wall_s"], incremental["wall_s"]),
                    "until_build_s": ratio(full["until_build_s"], incremental["until_build_s"]),
                    "requests": ratio(full["requests"], incremental["requests"]),
                },
                "goal": "bytes_sent >= 100x, wall_s >= 20x",
            }

            cfg_big = project(root / "p2", url, "bench-big")
            fill(root / "p2" / "site", args.big_files, args.big_size)
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "assetsync", "-c", str(cfg_big), "sync", "--quiet"],
                env={**os.environ, **ENV}, check=False,
            )
            wall = time.perf_counter() - started
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            out["big_files"] = {
                "files": args.big_files,
                "megabytes": round(args.big_files * args.big_size / 1e6, 1),
                "exit_code": proc.returncode,
                "wall_s": round(wall, 3),
                "peak_rss_mb": round(peak_kib / 1024, 1),
                "goal_peak_rss_mb": 150,
            }
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
