"""Service manifest benchmark (issue 27): a second checkout with no state; prints one JSON document.

    .venv/bin/python bench/bench_remote_manifest.py [--files 60] [--size 20000]

For each case (`[sync] remote_manifest` on, then off), against its own emulator process over a
socket: machine A publishes a `--files`-file site; machine B, a second copy of the project with
no `.assetsync/` (a fresh CI runner, a teammate's checkout), changes one file and syncs. Printed
per case: B's Asset Version uploads, bytes sent (the whole request bodies assetsync sent, as the
client counts them), requests, wall time, and the manifest's size (the private Function's code,
compressed; 0 when off). Excluded: starting the emulator and A's publish.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_sync's emulator helpers

from bench_sync import ENV, start_emulator

from assetsync.config import load_config
from assetsync.results import SyncEvent
from assetsync.state.remote_manifest import MANIFEST_PATH
from assetsync.sync.run import sync


def project(root: Path, url: str, *, manifest: bool) -> Path:
    (root / "site").mkdir(parents=True, exist_ok=True)
    (root / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "site"\nenvironment = "dev"\n'
        f'[target]\napi = "{url}"\n[sync]\npoll_interval_s = 0.05\n'
        f"remote_manifest = {'true' if manifest else 'false'}\n")
    return root / ".assetsync.toml"


def fill(site: Path, count: int, size: int) -> None:
    for i in range(count):
        path = site / f"dir{i % 6}" / f"asset{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        head = f"asset {i}\n".encode()
        path.write_bytes(head + os.urandom(max(0, size - len(head))))


def one_case(work: Path, *, manifest: bool, files: int, size: int) -> dict[str, object]:
    proc, url = start_emulator(work / "emulator")
    try:
        first = project(work / "a", url, manifest=manifest)
        fill(work / "a" / "site", files, size)
        published = sync(load_config(first, environ=ENV))
        shutil.copytree(work / "a" / "site", work / "b" / "site")
        second = project(work / "b", url, manifest=manifest)
        (work / "b" / "site" / "dir3" / "asset0003.bin").write_bytes(os.urandom(size))
        uploads: list[str] = []

        def on_event(event: SyncEvent) -> None:
            if event.kind == "uploaded" and event.path:
                uploads.append(event.path)

        started = time.perf_counter()
        result = sync(load_config(second, environ=ENV), on_event=on_event)
        wall = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)
    manifest_bytes = 0  # the manifest Function Version B's build holds, as recorded
    if manifest:
        from assetsync.state.db import State
        from assetsync.state.ledger import StateLedger

        with State.open(work / "b" / ".assetsync") as state:
            target = next(iter(state.export_json()["tables"]["services"]))["target"]
            ledger = StateLedger(state, str(target), result.service_sid or "",
                                 result.environment_sid or "", kind="function")
            mine = [v for v in ledger.versions() if v.path == MANIFEST_PATH]
            manifest_bytes = max((v.size for v in mine), default=0)
    return {
        "asset_uploads": len(uploads),
        "bytes_sent": result.bytes_sent,
        "upload_bytes": result.upload_bytes,
        "requests": result.requests,
        "wall_s": round(wall, 3),
        "manifest_bytes": manifest_bytes,
        "first_publish_uploads": len(published.uploaded),
        "notes": list(result.notes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--size", type=int, default=20_000)
    args = parser.parse_args()
    out: dict[str, object] = {"files": args.files, "size": args.size}
    for name, on in (("remote_manifest_on", True), ("remote_manifest_off", False)):
        with tempfile.TemporaryDirectory(prefix="assetsync-bench-") as tmp:
            out[name] = one_case(Path(tmp), manifest=on, files=args.files, size=args.size)
    on, off = out["remote_manifest_on"], out["remote_manifest_off"]
    assert isinstance(on, dict) and isinstance(off, dict)
    out["bytes_ratio_off_over_on"] = round(off["bytes_sent"] / max(1, on["bytes_sent"]), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
