"""Start-up: whole-process wall times of commands that should cost what Python costs; prints one
JSON document.

    .venv/bin/python bench/bench_startup.py [--rounds 15] [--files 1000]

Side by side, alternating, medians (assetsync's bytecode compiled first, as `pip install` does):
the floor `python -c "import httpx"`, `assetsync --help`, `assetsync plan --help`, and a no-op
`assetsync sync` of `--files` files (10 KB each; synced once before, so nothing is sent but the
lookups) against an emulator subprocess over a socket. Ratios are against the floor (goals:
`--help` <= 1.0x, no-op sync <= 2.0x; issue 26). The machine's load average is printed beside.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_functions as bf  # the sibling scripts: bytecode compilation, the emulator
import bench_sync as bs


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-800:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    compiled = bf.compile_assetsync()
    script = Path(sys.executable).with_name("assetsync")
    assetsync = [str(script)] if script.exists() else [sys.executable, "-m", "assetsync"]
    env = {**os.environ, **bs.ENV}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        emulator, url = bs.start_emulator(root / "emulator")
        try:
            config = bs.project(root / "p", url, "startup")
            bs.fill(root / "p" / "site", args.files, 10_000)
            _wall([*assetsync, "-c", str(config), "sync", "--quiet"], env)  # the first publish
            commands = {
                "import_httpx": [sys.executable, "-c", "import httpx"],
                "help": [*assetsync, "--help"],
                "plan_help": [*assetsync, "plan", "--help"],
                "noop_sync": [*assetsync, "-c", str(config), "sync", "--quiet"],
            }
            runs: dict[str, list[float]] = {name: [] for name in commands}
            for n in range(args.rounds):
                names = list(commands) if n % 2 == 0 else list(reversed(commands))
                for name in names:
                    runs[name].append(_wall(commands[name], env))
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)
    ms = {name: round(statistics.median(walls) * 1000, 1) for name, walls in runs.items()}
    floor = ms["import_httpx"]
    print(json.dumps({
        "rounds": args.rounds, "files": args.files, "bytecode_compiled": compiled,
        "load_average": {"before": [round(x, 1) for x in load_before],
                         "after": [round(x, 1) for x in os.getloadavg()]},
        "median_ms": ms,
        "ratio_to_import_httpx": {name: round(value / floor, 2) for name, value in ms.items()},
        "spread_ms": {name: [round(min(w) * 1000, 1), round(max(w) * 1000, 1)]
                      for name, w in runs.items()},
        "goal": "help <= 1.0x, noop_sync <= 2.0x",
    }, indent=2))


if __name__ == "__main__":
    main()
