"""Sharding end to end through `assetsync.sync.run.sync` on the emulator over a socket, at a tenth of
issue 7's scale with the per-build limits lowered to match (100 and 5): files stay where they are,
one change rebuilds one service, and a file that becomes private in a full service moves (and only
it). tests/sync/test_sharded_sync_e2e.py runs the full scale through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assetsync.results import SyncResult
from assetsync.sync.run import sync
from tests.sync_harness import count, load, uploads, writes

SHARD = """urls_file = "urls.json"
[shard]
public_protected_per_build = 100
private_per_build = 5
"""


def make_site(site: Path, public: int, private: int) -> None:
    for i in range(public):
        path = site / f"img{i % 5}" / f"p{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"public {i}\n", encoding="utf-8")
    for i in range(private):
        path = site / "keys" / f"k{i:03d}.private.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"private {i}\n", encoding="utf-8")


def homes(result: SyncResult) -> dict[str, str]:
    """Published path -> service, for every file each service uploaded."""
    return {p: r.service for r in result.services for p in r.uploaded}


def test_site_past_one_build_spreads_over_services_and_one_change_rebuilds_one(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator, extra=SHARD)
    make_site(config.source, public=250, private=12)

    first = sync(config)

    assert [r.service for r in first.services] == ["site", "site-2", "site-3"]
    assert uploads(emulator) == 262
    assert count(emulator, "POST", "/Builds") == 3
    assert count(emulator, "POST", "/Deployments") == 3
    home = homes(first)
    for r in first.services:  # every build within the (lowered) limits
        private = sum(1 for p in r.uploaded if p.startswith("/keys/"))
        assert len(r.uploaded) - private <= 100 and private <= 5
    url_map = json.loads((tmp_path / "urls.json").read_text(encoding="utf-8"))
    assert len(url_map) == 250  # private files have no URL
    domains = {r.service: r.domain_name for r in first.services}
    assert len(set(domains.values())) == 3
    for path, url in url_map.items():
        assert url == f"https://{domains[home[path]]}{path}"

    emulator.state.request_log.clear()
    (config.source / "img3" / "p0003.txt").write_text("changed\n", encoding="utf-8")
    second = sync(config)

    assert uploads(emulator) == 1
    assert count(emulator, "POST", "/Builds") == 1
    assert count(emulator, "POST", "/Deployments") == 1
    assert [r.service for r in second.services if not r.noop] == [home["/img3/p0003.txt"]]
    assert {u.path: u.service for u in second.urls} == {p: home[p] for p in url_map}

    emulator.state.request_log.clear()
    assert sync(config).noop and writes(emulator) == []

    # A public file of the first service becomes private; that service already holds 5 private
    # files, so exactly that file moves, to the service with private room; two builds change.
    assert home["/img0/p0000.txt"] == "site"
    assert sum(1 for p, s in home.items() if s == "site" and p.startswith("/keys/")) == 5
    emulator.state.request_log.clear()
    source = config.source / "img0" / "p0000.txt"
    source.rename(source.with_name("p0000.private.txt"))
    fourth = sync(config)

    moves = [n for n in fourth.notes if "->" in n]
    assert len(moves) == 1 and moves[0].startswith("/img0/p0000.txt: site -> site-3 (overflow")
    assert uploads(emulator) == 1
    assert count(emulator, "POST", "/Builds") == 2
    assert sorted(r.service for r in fourth.services if not r.noop) == ["site", "site-3"]
    assert "/img0/p0000.txt" in next(r for r in fourth.services if r.service == "site").dropped
    url_map = json.loads((tmp_path / "urls.json").read_text(encoding="utf-8"))
    assert "/img0/p0000.txt" not in url_map and len(url_map) == 249
