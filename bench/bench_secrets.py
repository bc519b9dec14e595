"""Secret check benchmark: what the preparation's credential scan costs; prints one JSON document.

    .venv/bin/python bench/bench_secrets.py [--files 1000] [--size 10000] [--rounds 5]

On bench/bench_sync.py's project (1,000 files of 10 KB: a text line, then random bytes) and on
the same number of text files (JS-like source of the same size), each measured as:
- `cold`: no verdict cached: every file is read and scanned (what a first sync pays, once per
  content);
- `noop`: every verdict cached: what every later sync of unchanged files pays (the cache file
  is loaded, no file is read);
- `one_changed`: one file's content is new.
Times are the medians of `--rounds` runs of `check_secrets` itself (the stage's whole check),
with the account's auth token among the secrets looked for. `scan_mb_per_s` is the cold
throughput; `read_and_hash_ms`, reading and hashing the same files (xxh3_128, what the scan
step pays for new files), gives the scale on the machine at hand. The files are in the page
cache (written just before), as a sync's are after its scan hashed them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import xxhash

from assetsync.config import parse_config
from assetsync.models import DIGEST_PREFIX, PublishedFile, Visibility
from assetsync.prepare.secret_check import CACHE_NAME, check_secrets
from assetsync.results import SyncEvent

TOKEN = "0123456789abcdef0123456789abcdef"
ENV = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": TOKEN}

_JS = """export function handler{i}(context, event, callback) {{
  const twiml = new Twilio.twiml.VoiceResponse(); // answer call {i}
  twiml.say({{ voice: 'alice' }}, 'Thanks for calling, caller number {i}.');
  const url = `https://${{context.DOMAIN_NAME}}/audio/prompt-{i}.mp3`;
  if (event.Digits === '{d}') {{ twiml.play(url); }} else {{ twiml.redirect('/menu'); }}
  return callback(null, twiml);
}}
"""


def random_files(site: Path, count: int, size: int) -> list[Path]:
    """bench_sync.py's files: `asset N` and a newline, then random bytes."""
    paths = []
    for i in range(count):
        path = site / f"dir{i % 20:02d}" / f"asset{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        head = f"asset {i}\n".encode()
        path.write_bytes(head + os.urandom(max(0, size - len(head))))
        paths.append(path)
    return paths


def text_files(site: Path, count: int, size: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = site / f"dir{i % 20:02d}" / f"page{i:05d}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(_JS.format(i=i * 100 + j, d=j % 10) for j in range(size // 300 + 1))
        path.write_text(body[:size])
        paths.append(path)
    return paths


def published(paths: list[Path], site: Path) -> list[PublishedFile]:
    """The files as the preparation hands them over (digest: any value unique per content)."""
    files = []
    for n, path in enumerate(paths):
        rel = path.relative_to(site).as_posix()
        files.append(PublishedFile(f"/{rel}", Visibility.PUBLIC,
                                   f"{DIGEST_PREFIX}{n:032x}-{path.stat().st_mtime_ns}",
                                   path.stat().st_size, rel, str(path), "text/plain"))
    return files


def timed(files: list[PublishedFile], config: object) -> tuple[float, SyncEvent]:
    events: list[SyncEvent] = []
    gc.collect()
    started = time.perf_counter()
    issues = check_secrets(files, config, on_event=events.append)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert issues == (), issues
    return elapsed, events[-1]


def measure(root: Path, kind: str, count: int, size: int, rounds: int) -> dict[str, object]:
    site = root / "site"
    paths = (random_files if kind == "random" else text_files)(site, count, size)
    (root / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "bench"\n[target]\napi = "http://127.0.0.1:9"\n')
    config = parse_config((root / ".assetsync.toml").read_text(),
                          file=str(root / ".assetsync.toml"), environ=ENV)
    config.state_dir.mkdir(exist_ok=True)
    files = published(paths, site)
    cold, noop, one = [], [], []
    event = None
    for _ in range(rounds):
        (config.state_dir / CACHE_NAME).unlink(missing_ok=True)
        seconds, event = timed(files, config)
        cold.append(seconds)
        seconds, quiet = timed(files, config)
        assert quiet.files == 0  # nothing read
        noop.append(seconds)
        changed = files[:-1] + [files[-1]._replace(digest=files[-1].digest + f"-{len(one)}")]
        seconds, _e = timed(changed, config)
        one.append(seconds)
    assert event is not None
    cold_s = statistics.median(cold)
    # For scale, measured beside it: what the scan step pays to hash the same files cold.
    hashing = []
    for _ in range(rounds):
        started = time.perf_counter()
        for path in paths:
            xxhash.xxh3_128(path.read_bytes()).hexdigest()
        hashing.append(time.perf_counter() - started)
    return {
        "files": count, "megabytes": round(count * size / 1e6, 1),
        "cold_ms": round(cold_s * 1000, 1), "files_read_cold": event.files,
        "bytes_read_cold": event.bytes,
        "scan_mb_per_s": round(event.bytes / 1e6 / cold_s),
        "read_and_hash_ms": round(statistics.median(hashing) * 1000, 1),
        "noop_ms": round(statistics.median(noop) * 1000, 2),
        "one_changed_ms": round(statistics.median(one) * 1000, 2),
        "cache_file_bytes": (config.state_dir / CACHE_NAME).stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10_000, help="bytes per file")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, object] = {}
    for kind in ("random", "text"):
        root = Path(tempfile.mkdtemp(prefix=f"bench-secrets-{kind}-"))
        try:
            out[f"bench_sync_files_{kind}"] = measure(root, kind, args.files, args.size,
                                                      args.rounds)
        finally:
            shutil.rmtree(root)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
