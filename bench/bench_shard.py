"""Benchmark: shard + plan of 10,000 files (issue 7 asks for under 1 s). Prints JSON.

    .venv/bin/python bench/bench_shard.py [--files 10000] [--repeat 5]

Scenarios, each the median of --repeat runs, side by side with a baseline measured in the same
run: `build_plan` of all the files as if they fitted one service (what a sync without sharding
would plan), so `ratio` is the cost of sharding + per-service planning against plain planning.

- fresh: nothing published yet; shard every file and plan every service.
- steady: everything published and recorded; the common sync that finds nothing to do.
- change: 1% modified, 0.5% added, 0.5% removed since the last sync.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.shard import ShardGroup, ShardOptions, ShardResult, shard

try:
    from assetsync.plan.assets import RecordedService, build_plan

    HAVE_PLAN = True
except ImportError:  # shard alone, and the JSON says so
    HAVE_PLAN = False

BASE = "media"
OPTIONS = ShardOptions(
    groups=(ShardGroup("ivr", ("/ivr/**",)), ShardGroup("site", ("/site/**",))),
)


def make_files(count: int, *, salt: str = "") -> list[PublishedFile]:
    """A site shaped like a real one: mostly public media, some protected, ~4.5% private."""
    files = []
    for i in range(count):
        if i % 22 == 0:
            visibility, folder = Visibility.PRIVATE, "private"
        elif i % 10 == 0:
            visibility, folder = Visibility.PROTECTED, "calls"
        elif i < 300:
            visibility, folder = Visibility.PUBLIC, "ivr" if i < 150 else "site"
        else:
            visibility, folder = Visibility.PUBLIC, f"img/{i % 40:02d}"
        path = f"/{folder}/file-{i:05d}.png"
        files.append(
            PublishedFile(
                path=path,
                visibility=visibility,
                digest=f"xxh3_128:{i:032x}" if not salt else f"xxh3_128:{salt}{i:031x}",
                size=10_000 + i,
                source=path[1:],
                content_path="/bench/" + path[1:],
                content_type="image/png",
            )
        )
    return files


def recorded_for(files: Sequence[PublishedFile], result: ShardResult) -> dict[str, Recorded]:
    """What state would hold after syncing `files` as `result` placed them."""
    per: dict[str, tuple[dict[str, str], dict[tuple[str, str, str], str]]] = {
        s: ({}, {}) for s in result.services
    }
    for n, f in enumerate(files):
        assets, versions = per[result.assignment[f.path]]
        assets[f.path] = f"ZH{n:032x}"
        versions[(f.digest, f.path, f.visibility.value)] = f"ZN{n:032x}"
    return {s: Recorded(assets, versions) for s, (assets, versions) in per.items()}


@dataclass(frozen=True, slots=True)
class Recorded:
    """Recorded objects of one service (turned into plan's RecordedService when plan exists)."""

    asset_sids: dict[str, str]
    versions: dict[tuple[str, str, str], str]

    def for_plan(self) -> RecordedService:
        return RecordedService(
            asset_sids=self.asset_sids,
            versions=self.versions,
            owned_paths=frozenset(self.asset_sids),
        )


def shard_and_plan(
    files: Sequence[PublishedFile], previous: Mapping[str, str], recorded: Mapping[str, Recorded]
) -> ShardResult:
    """One sync's pure part: shard, then plan each service."""
    result = shard(files, previous, OPTIONS, base_service=BASE)
    if HAVE_PLAN:
        by_service: dict[str, list[PublishedFile]] = {s: [] for s in result.services}
        for f in files:
            by_service[result.assignment[f.path]].append(f)
        empty = Recorded({}, {})
        for service, mine in by_service.items():
            build_plan(mine, recorded.get(service, empty).for_plan(), None, limits=OPTIONS.limits)
    return result


def merged(recorded: Mapping[str, Recorded]) -> Recorded:
    """Every service's records as one service's (the baseline's recorded state)."""
    assets: dict[str, str] = {}
    versions: dict[tuple[str, str, str], str] = {}
    for rec in recorded.values():
        assets.update(rec.asset_sids)
        versions.update(rec.versions)
    return Recorded(assets, versions)


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    files: Sequence[PublishedFile],
    previous: Mapping[str, str],
    recorded: Mapping[str, Recorded],
    repeat: int,
) -> dict[str, object]:
    """One scenario, side by side with its baseline."""
    seconds = median_seconds(lambda: shard_and_plan(files, previous, recorded), repeat)
    outcome = shard_and_plan(files, previous, recorded)
    baseline = 0.0
    if HAVE_PLAN:  # plan every file as one service with no limits: planning without sharding
        one = merged(recorded).for_plan()
        unlimited = BuildLimits(public_protected=10**9, private=10**9, functions=10**9)
        baseline = median_seconds(lambda: build_plan(files, one, None, limits=unlimited), repeat)
    return {
        "files": len(files),
        "services": len(outcome.services),
        "moves": len(outcome.moves),
        "seconds": round(seconds, 4),
        "baseline_plan_one_service_seconds": round(baseline, 4) if HAVE_PLAN else None,
        "ratio": round(seconds / baseline, 2) if baseline else None,
        "under_1s": seconds < 1.0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    files = make_files(args.files)
    first = shard(files, {}, OPTIONS, base_service=BASE)
    recorded = recorded_for(files, first)
    previous = dict(first.assignment)

    step = 100  # 1% modified, 0.5% removed, 0.5% added
    modified = make_files(args.files, salt="f")
    changed = [modified[i] if i % step == 0 else f for i, f in enumerate(files)]
    changed = [f for i, f in enumerate(changed) if i % (2 * step) != 1]
    changed += [
        PublishedFile(
            f"/img/new/{i:05d}.png",
            Visibility.PUBLIC,
            f"xxh3_128:{i:032x}",
            1,
            f"img/new/{i:05d}.png",
            Path("/bench/new"),
            "image/png",
        )
        for i in range(args.files // (2 * step))
    ]

    scenarios: dict[str, tuple[Sequence[PublishedFile], dict[str, str], dict[str, Recorded]]] = {
        "fresh": (files, {}, {}),
        "steady": (files, previous, recorded),
        "change": (changed, previous, recorded),
    }
    results = {}
    for name, (these, prev, rec) in scenarios.items():
        results[name] = measure(these, prev, rec, args.repeat)
    shard_only = median_seconds(
        lambda: shard(files, previous, OPTIONS, base_service=BASE), args.repeat
    )
    report = {
        "benchmark": "shard + plan",
        "includes_plan": HAVE_PLAN,
        "note": None if HAVE_PLAN else "assetsync.plan.assets.build_plan missing: shard alone",
        "python": platform.python_version(),
        "repeat": args.repeat,
        "shard_only_steady_seconds": round(shard_only, 4),
        "scenarios": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
