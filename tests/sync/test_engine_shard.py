"""A site larger than one build, spread over several services by `[shard]`, on the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assetsync.sync.operations import published_urls
from assetsync.sync.run import sync
from tests.sync_harness import api_get, count, load, make_tree, uploads, writes

SMALL_BUILDS = "[shard]\npublic_protected_per_build = 5\nprivate_per_build = 2\n"


def build_paths(emulator: Any, service_sid: str | None, build_sid: str | None) -> list[str]:
    build = api_get(emulator, f"/v1/Services/{service_sid}/Builds/{build_sid}")
    return sorted(v["path"] for v in build["asset_versions"])


def test_a_site_over_the_build_limit_spreads_over_services(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, extra=SMALL_BUILDS)
    make_tree(config.source, 12)

    result = sync(config)

    assert [r.service for r in result.services] == ["site", "site-2", "site-3"]
    assert len(result.uploaded) == 12 and uploads(emulator) == 12
    seen: list[str] = []
    for part in result.services:
        paths = build_paths(emulator, part.service_sid, part.build_sid)
        assert len(paths) <= 5
        seen += paths
    assert sorted(seen) == sorted(result.uploaded)
    domains = {u.path: u.environment_domain for u in result.urls}
    assert len(domains) == 12 and len(set(domains.values())) == 3
    assert json.loads(json.dumps(result.to_json()))["services"][1]["service"] == "site-2"
    assert {u.path: u.url for u in published_urls(config)} == {u.path: u.url for u in result.urls}
    emulator.state.request_log.clear()

    again = sync(config)

    assert again.noop and writes(emulator) == []


def test_files_stay_in_their_service_and_new_ones_fill_the_gaps(tmp_path: Path,
                                                                emulator: Any) -> None:
    config = load(tmp_path, emulator, extra=SMALL_BUILDS)
    files = make_tree(config.source, 10)
    first = sync(config)
    where = {u.path: u.service for u in first.urls}
    files[0].unlink()
    (config.source / "new.txt").write_text("new")
    emulator.state.request_log.clear()

    second = sync(config)

    after = {u.path: u.service for u in second.urls}
    assert all(after[p] == where[p] for p in after if p in where)  # nobody moved
    assert after["/new.txt"] == where["/d0/f0000.txt"]  # the freed slot is reused
    assert second.uploaded == ("/new.txt",)
    assert count(emulator, "POST", "/Builds") == 1  # only the service that changed builds


def test_private_files_have_their_own_limit(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, extra=SMALL_BUILDS)
    for i in range(3):
        (config.source / f"key{i}.private.txt").write_text(f"secret {i}")

    result = sync(config)

    assert len(result.services) == 2 and result.urls == ()
    assert sorted(len(build_paths(emulator, r.service_sid, r.build_sid))
                  for r in result.services) == [1, 2]


def test_status_covers_every_service_of_a_sharded_site(tmp_path: Path, emulator: Any) -> None:
    from assetsync.sync.operations import status

    config = load(tmp_path, emulator, extra=SMALL_BUILDS)
    make_tree(config.source, 12)
    result = sync(config)
    clean = status(config)
    assert [s.service for s in clean.services] == ["site", "site-2", "site-3"]
    assert not clean.needs_build and clean.drift is None and clean.counts["files"] == 12
    moved = next(u.path for u in result.urls if u.service == "site-2")
    (config.source / moved.lstrip("/")).write_text("edited")
    (config.source / "new.txt").write_text("new")

    changed = status(config)

    assert changed.pending_uploads == tuple(sorted((moved, "/new.txt")))
    by_service = {s.service: s for s in changed.services}
    assert by_service["site-2"].pending_uploads == (moved,) and by_service["site-2"].needs_build
    assert not by_service["site-3"].needs_build
