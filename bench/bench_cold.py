"""Cold publish: the official deploy library and assetsync, each publishing the same project to a
new service on one emulator subprocess; prints one JSON document.

    .venv/bin/python bench/bench_cold.py [--assets 1000] [--size 83000] [--rounds 3]
                                         [--latency-ms 0] [--jitter-ms 0]

The project is bench_functions.py's (one function, `--assets` files of `--size` bytes: ~83 MB by
default, package.json, .env). Each round, each tool deploys it from nothing: the official
library (`@twilio-labs/serverless-api` 5.7.0's `deployLocalProject`, as bench_functions.py
drives it) to a new service, and `assetsync sync` to another new service with no state (a CI
runner without a cache: it hashes every file too). Runs alternate (which tool goes first swaps
each round); each is a whole process (assetsync's bytecode compiled first, as `pip install`
does). Reported per tool: wall time, client CPU (user + system of the process and its
children, from `getrusage`), requests and bytes (the emulator's request log); medians, each
run's figures, and the ratios official / assetsync (wall and CPU: above 1 is assetsync faster or
cheaper). From the request log's times, each run also reports when its first request arrived
(`first_request_s`, from the process's launch), how many requests it kept in flight on average
until its last answer (`mean_in_flight`: at most the concurrency) and how long only one was in
flight (`one_in_flight_s`: requests sent one after another, the other slots idle). Both tools use 10 requests at once (each tool's default; api-contract.md §7.2)
unless `--concurrency` sets assetsync's.

`--latency-ms` delays every request in the emulator by that many milliseconds, plus a uniform
0..`--jitter-ms` (what `assetsync emulator --latency 80ms:20ms` does), as an internet round trip
would. The
machine's load average is printed beside the figures: they are only comparable at equal load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_functions as bf  # the sibling script: the project and the official deploy


class Emulator(bf.Emulator):
    """The emulator child process of this script (with its latency)."""

    def __init__(self, data: Path, latency_ms: float, jitter_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--emulator-child", str(data), "--latency-ms",
             str(latency_ms), "--jitter-ms", str(jitter_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit("the emulator did not start")

    def timeline(self, launched: float) -> dict[str, float]:
        """How the run kept its requests in flight, from the request log's arrival and answer
        times (the emulator's clock is this machine's wall clock): the first request's
        arrival after the process was launched, the mean number in flight from then to the
        last answer, and the time spent with a single request in flight (one after another,
        every other slot idle)."""
        entries = json.loads(self._ask("log"))
        if not entries:
            return {}
        edges = sorted([(e[5], 1) for e in entries] + [(e[6], -1) for e in entries])
        busy = alone = 0.0
        depth, last = 0, edges[0][0]
        for when, step in edges:
            busy += depth * (when - last)
            alone += (when - last) if depth == 1 else 0.0
            depth, last = depth + step, when
        span = edges[-1][0] - edges[0][0]
        return {"first_request_s": round(edges[0][0] - launched, 3),
                "mean_in_flight": round(busy / span, 2) if span > 0 else 0.0,
                "one_in_flight_s": round(alone, 2)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(emulator: Emulator, command: list[str], cwd: Path) -> dict[str, Any]:
    """One deploy as a process: wall, CPU (the emulator child is not reaped until the end, so
    the children's usage grows by this process and its own children only), traffic."""
    emulator.clear()
    cpu = _children_cpu()
    launched = time.time()
    wall, done = bf.timed(command, cwd)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {(done.stderr or done.stdout).strip()[-1500:]}")
    traffic = emulator.traffic()
    return {"wall_s": wall, "cpu_s": round(_children_cpu() - cpu, 3),
            "requests": traffic["requests"], "uploads": traffic["uploads"],
            "megabytes_sent": round(traffic["bytes_sent"] / 1e6, 1),
            **emulator.timeline(launched)}


def official(emulator: Emulator, script: Path, project: Path, n: int) -> dict[str, Any]:
    node = shutil.which("node") or "node"
    return _run(emulator, [node, str(script), emulator.url, str(project),
                           f"cold-official-{n}", ""], project)


def ours(emulator: Emulator, project: Path, n: int, concurrency: int) -> dict[str, Any]:
    shutil.rmtree(project / ".assetsync", ignore_errors=True)  # no state: nothing carried
    config = project / ".assetsync.toml"
    config.write_text(
        '[project]\nsource = "assets"\nfunctions = "functions"\n'
        f'service = "cold-assetsync-{n}"\nenvironment = "dev"\n'
        f'[target]\napi = "{emulator.url}"\n[sync]\nconcurrency = {concurrency}\npoll_interval_s = 0.5\n'
    )
    script = Path(sys.executable).with_name("assetsync")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "assetsync"]
    return _run(emulator, [*command, "-c", str(config), "sync", "--quiet"], project)


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--size", type=int, default=83_000, help="bytes per asset")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=10,
                        help="assetsync's [sync] concurrency (the official library's is 10)")
    parser.add_argument("--emulator-child", metavar="DATA", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulator_child:
        bf.emulator_child(args.emulator_child, args.latency_ms, args.jitter_ms)
        return
    script = bf.ensure_official()
    compiled = bf.compile_assetsync()
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"official": [], "assetsync": []}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        project = Path(tmp) / "project"
        bf.make_project(project, 1, args.assets, args.size)
        emulator = Emulator(Path(tmp) / "emulator", args.latency_ms, args.jitter_ms)
        try:
            for n in range(args.rounds):
                order = ("official", "assetsync") if n % 2 == 0 else ("assetsync", "official")
                for tool in order:
                    run = (official(emulator, script, project, n) if tool == "official"
                           else ours(emulator, project, n, args.concurrency))
                    runs[tool].append(run)
        finally:
            emulator.stop()
    theirs, mine = _medians(runs["official"]), _medians(runs["assetsync"])
    print(json.dumps({
        "assets": args.assets, "asset_bytes": args.size, "rounds": args.rounds,
        "latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms,
        "concurrency": {"official": 10, "assetsync": args.concurrency},
        "bytecode_compiled": compiled,
        "load_average": {"before": [round(x, 1) for x in load_before],
                         "after": [round(x, 1) for x in os.getloadavg()]},
        "official": {**theirs, "runs": runs["official"]},
        "assetsync": {**mine, "runs": runs["assetsync"]},
        "ratio_official_over_assetsync": {
            "wall_s": round(theirs["wall_s"] / mine["wall_s"], 2),
            "cpu_s": round(theirs["cpu_s"] / mine["cpu_s"], 2),
        },
        "goal": "wall_s >= 1.25 and cpu_s >= 1.25 (assetsync <= 0.8x the CPU) on loopback; "
                "wall_s >= 1.0 at 80 ms",
    }, indent=2))


if __name__ == "__main__":
    main()
