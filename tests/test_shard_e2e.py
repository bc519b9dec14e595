"""Sharding end to end on the emulator over a socket: a site bigger than one build is published over
several services, one change rebuilds one service, the URL map points at every service's domain,
and groups that cannot fit fail before any request.

`sync_sharded` below is the reference composition of shard + the engine's per-service unit
(`engine.sync_service`) + the URL map: the wiring the engine adopts (see docs/sharding.md).
The site is issue 7's 2,500 public + 120 private files at a tenth of the scale, with the per-build
limits lowered to match (100 and 5), so the test takes seconds.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.apply import ApplyOptions
from assetsync.config import Config, target_key
from assetsync.engine import make_client, prepare_files, sync_service
from assetsync.errors import LimitError
from assetsync.shard import ShardOptions, ShardResult, service_name, shard
from assetsync.state import State
from assetsync.sync_types import SyncResult
from assetsync.urlmap import build_url_map, write_url_map
from tests.sync_harness import count, load, uploads, writes

SHARD = """[shard]
public_protected_per_build = 100
private_per_build = 5
urls_file = "urls.json"
"""


def sync_sharded(config: Config) -> tuple[ShardResult, list[SyncResult]]:
    """One sharded sync: previous placement from state, shard, sync each service, URL map."""
    options = config.shard if isinstance(config.shard, ShardOptions) else ShardOptions()
    target = target_key(config)
    with State.open(config.state_dir) as state:
        prepared = prepare_files(config, state)
        prepared.raise_errors()
        previous: dict[str, str] = {}
        recorded_keys: set[tuple[str, str, str]] = set()
        for i in range(1, options.max_services + 1):
            name = service_name(config.service, i)
            service = state.get_service(target, name)
            if service is None:
                continue
            recorded = state.recorded_service(target, service.service_sid, config.environment)
            previous.update(dict.fromkeys(recorded.owned_paths, name))
            recorded_keys |= set(recorded.versions)
        changed = {
            f.path
            for f in prepared.files
            if (f.digest, f.path, f.visibility.value) not in recorded_keys
        }
        result = shard(
            prepared.files, previous, options, base_service=config.service, changed=changed
        )
        by_path = {f.path: f for f in prepared.files}
        by_service = result.paths_by_service()
        apply = ApplyOptions(poll_interval_s=config.sync.poll_interval_s)

        async def run() -> list[SyncResult]:
            async with make_client(config) as client:
                return [
                    await sync_service(
                        client,
                        state,
                        target,
                        service=name,
                        environment=config.environment,
                        files=[by_path[p] for p in by_service[name]],
                        options=apply,
                    )
                    for name in result.sync_order()
                    if name in by_service  # retired services: left as they are here
                ]

        results = asyncio.run(run())
    domains = {r.service: r.domain_name or "" for r in results}
    entries = build_url_map(
        ((f.path, f.visibility, result.assignment[f.path]) for f in prepared.files),
        domains,
        exclude={"/urls.json"},
    )
    if options.urls_file:
        write_url_map(config.root / options.urls_file, entries)
    return result, results


def make_site(site: Path, public: int, private: int) -> None:
    for i in range(public):
        path = site / f"img{i % 5}" / f"p{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"public {i}\n", encoding="utf-8")
    for i in range(private):
        path = site / "keys" / f"k{i:03d}.private.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"private {i}\n", encoding="utf-8")


def test_site_past_one_build_spreads_over_services_and_one_change_rebuilds_one(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator, extra=SHARD)
    make_site(config.source, public=250, private=12)

    result, synced = sync_sharded(config)

    assert result.services == ("site", "site-2", "site-3")
    assert [r.service for r in synced] == ["site", "site-2", "site-3"]
    assert uploads(emulator) == 262
    assert count(emulator, "POST", "/Builds") == 3
    assert count(emulator, "POST", "/Deployments") == 3
    for r in synced:  # every build within the (lowered) limits, as the emulator saw it
        counts = result.counts[r.service]
        assert counts.public_protected <= 100 and counts.private <= 5
        assert len(r.uploaded) == counts.public_protected + counts.private
    url_map = json.loads((tmp_path / "urls.json").read_text(encoding="utf-8"))
    assert len(url_map) == 250  # private files have no URL
    domains = {r.service: r.domain_name for r in synced}
    assert len(set(domains.values())) == 3
    for path, url in url_map.items():
        assert url == f"https://{domains[result.assignment[path]]}{path}"

    emulator.state.request_log.clear()
    changed = config.source / "img3" / "p0003.txt"
    changed.write_text("changed\n", encoding="utf-8")
    second, synced_again = sync_sharded(config)

    assert second.moves == ()
    assert dict(second.assignment) == dict(result.assignment)
    assert uploads(emulator) == 1
    assert count(emulator, "POST", "/Builds") == 1
    assert count(emulator, "POST", "/Deployments") == 1
    rebuilt = [r.service for r in synced_again if not r.noop]
    assert rebuilt == [result.assignment["/img3/p0003.txt"]]

    emulator.state.request_log.clear()
    third, _ = sync_sharded(config)
    assert writes(emulator) == []
    assert third.assignment == second.assignment

    # A public file of the first service becomes private; that service already holds 5 private
    # files, so exactly that file moves, to the service with private room; two builds change.
    assert second.assignment["/img0/p0000.txt"] == "site"
    assert second.counts["site"].private == 5
    emulator.state.request_log.clear()
    source = config.source / "img0" / "p0000.txt"
    source.rename(source.with_name("p0000.private.txt"))
    fourth, synced_fourth = sync_sharded(config)

    assert [(m.path, m.from_service, m.to_service) for m in fourth.moves] == [
        ("/img0/p0000.txt", "site", "site-3")
    ]
    assert uploads(emulator) == 1
    assert count(emulator, "POST", "/Builds") == 2
    assert sorted(r.service for r in synced_fourth if not r.noop) == ["site", "site-3"]
    assert "/img0/p0000.txt" in next(r for r in synced_fourth if r.service == "site").dropped
    url_map = json.loads((tmp_path / "urls.json").read_text(encoding="utf-8"))
    assert "/img0/p0000.txt" not in url_map and len(url_map) == 249


def test_groups_that_cannot_fit_fail_before_any_request(tmp_path: Path, emulator: Any) -> None:
    extra = SHARD + "[shard.groups]\nkeys = ['/keys/**']\n"
    config = load(tmp_path, emulator, extra=extra)
    make_site(config.source, public=3, private=6)

    with pytest.raises(LimitError, match=r"group 'keys'.*6 private.*at most 100 and 5"):
        sync_sharded(config)

    assert emulator.state.request_log == []
