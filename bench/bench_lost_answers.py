"""Lost answers: a Toolkit project synced while 20% of every POST loses its answer; prints JSON.

    .venv/bin/python bench/bench_lost_answers.py [--files 240] [--seed 1] [--rate 0.2]
                                                 [--modes fin,rst,timeout]

For each fault mode (`fin`: the connection is closed after the request was processed, `rst`: it
is reset, `timeout`: no answer until the client's read timeout) a fresh emulator serves over a
socket with `POST /v1/* <action> rate=R seed=S` armed (main host and upload host alike), after
rules that make the first Service, Environment, Function, Build, Deployment and Variable create
lose its answer too (as tests/sync/test_exactly_once.py does; `--no-singles` leaves them out), and
`sync` publishes the project of tests/lost_answer_harness.py. Then, with the faults off, a
second `sync`. Reported per mode: whether each sync succeeded (else its error), the duplicate
Assets/Functions (beyond the first of a name), the versions holding content another version of
the same Asset/Function already holds and their bytes (re-uploaded bytes), the builds, the
files not served byte for byte, and the rerun's write requests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.lost_answer_harness

from assetsync.emulator.serve import start_in_thread
from assetsync.emulator.state import EmulatorState
from assetsync.errors import AssetsyncError
from assetsync.sync.run import sync
from tests.lost_answer_harness import (
    LOST_MODES,
    SINGLE_CREATES,
    holdings,
    load,
    lossy_client,
    served_mismatches,
    write_project,
)


def _sync(config: Any) -> tuple[Any, str | None]:
    try:
        return sync(config, client=lossy_client(config, 2.0)), None
    except AssetsyncError as exc:
        return None, str(exc).splitlines()[0][:300]


def run_mode(mode: str, *, files: int, rate: float, seed: int, singles: bool) -> dict[str, Any]:
    """One fault mode on a fresh emulator and project."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = EmulatorState(root / "emulator", build_delay_s=0.05)
        running = start_in_thread(state)
        try:
            config = load(write_project(root / "project", running.url, files=files), state)
            if singles:
                for path in SINGLE_CREATES:
                    state.faults.add("POST", path, LOST_MODES[mode], count=1, delay_s=30.0)
            state.faults.add("POST", "/v1/*", LOST_MODES[mode], count=None, delay_s=30.0,
                             rate=rate, seed=seed)
            started = time.perf_counter()
            first, error = _sync(config)
            seconds = time.perf_counter() - started
            lost = sum(1 for e in state.request_log if e.method == "POST" and e.status == 0)
            state.faults.clear()
            state.request_log.clear()
            second, rerun_error = _sync(config)
            rerun_writes = len(state.request_log.writes)
            held = holdings(state)
            result = second or first
            wrong = (served_mismatches(running.url, result.domain_name, root / "project" / "site")
                     if result is not None and result.domain_name else ["(nothing deployed)"])
        finally:
            running.stop()
            state.close()
    return {
        "mode": mode,
        "answers_lost": lost,
        "first_sync_ok": error is None,
        "first_sync_error": error,
        "first_sync_s": round(seconds, 2),
        **held.as_json(),
        "not_served_as_in_folder": len(wrong),
        "rerun_ok": rerun_error is None,
        "rerun_error": rerun_error,
        "rerun_writes": rerun_writes,
    }


def main() -> None:
    """Parse the options, run every mode, print the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=240)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", default=",".join(LOST_MODES))
    parser.add_argument("--no-singles", action="store_true")
    args = parser.parse_args()
    results = [run_mode(m, files=args.files, rate=args.rate, seed=args.seed,
                        singles=not args.no_singles)
               for m in args.modes.split(",")]
    print(json.dumps({"files": args.files, "rate": args.rate, "seed": args.seed,
                      "singles": not args.no_singles, "modes": results}, indent=2))


if __name__ == "__main__":
    main()
