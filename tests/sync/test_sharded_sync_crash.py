"""A sharded `assetsync sync` SIGKILLed mid-way (in a real subprocess, through the CLI's
`ASSETSYNC_DEBUG_KILL_AFTER` switch, as tests/sync/test_crash.py does) converges on rerun like a single
service: every file is live in exactly one service, within the limits, and no content was
uploaded twice, in any service.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.sync.test_crash import KILLED, assert_state_opens, run_sync
from tests.sync_harness import api_get, make_tree, write_config

SMALL = "[shard]\npublic_protected_per_build = 5\nprivate_per_build = 2\n"


def stored_versions(emulator: Any) -> Counter[tuple[str, str]]:
    """(path, digest) of every version stored in the account, over every service."""
    return Counter(
        (rec.data["path"], rec.data["digest"])
        for svc in emulator.state.store.children("service", emulator.state.account_sid)
        for asset in emulator.state.store.children("asset", svc.sid)
        for rec in emulator.state.store.children("asset_version", asset.sid)
    )


def converge(root: Path, emulator: Any) -> dict[str, Any]:
    final = run_sync(root, emulator)
    assert final.returncode == 0, final.stderr
    result = json.loads(final.stdout)
    live: list[str] = []
    for part in result["services"]:
        build = api_get(emulator, f"/v1/Services/{part['service_sid']}/Builds/{part['build_sid']}")
        paths = [v["path"] for v in build["asset_versions"]]
        assert len(paths) <= 5
        live += paths
    expected = sorted("/" + p.relative_to(root / "site").as_posix()
                      for p in (root / "site").rglob("*") if p.is_file())
    assert sorted(live) == expected  # each file live once
    twice = {k: n for k, n in stored_versions(emulator).items() if n > 1}
    assert twice == {}, twice
    return result


def test_a_sharded_sync_killed_between_and_inside_services_converges(
    tmp_path: Path, emulator: Any
) -> None:
    write_config(tmp_path, emulator, service="crash-s", extra="concurrency = 1\n" + SMALL)
    make_tree(tmp_path / "site", 13)
    # After the first service deployed; inside the second's uploads; between a build and its
    # deployment in the third.
    for point in ("deployed:1", "uploaded:3", "build_created:1"):
        killed = run_sync(tmp_path, emulator, kill=point)
        assert killed.returncode == KILLED, (point, killed.stderr)
        assert_state_opens(tmp_path)

    result = converge(tmp_path, emulator)

    assert [s["service"] for s in result["services"]] == ["crash-s", "crash-s-2", "crash-s-3"]


def test_an_incremental_sharded_sync_killed_mid_way_converges(
    tmp_path: Path, emulator: Any
) -> None:
    write_config(tmp_path, emulator, service="crash-t", extra="concurrency = 1\n" + SMALL)
    site = tmp_path / "site"
    files = make_tree(site, 12)
    assert run_sync(tmp_path, emulator).returncode == 0
    for path in files[::3]:  # one edit in every service
        path.write_text(path.read_text() + " edited")
    files[1].unlink()
    for i in range(5):  # more than the free room (4): a new service opens
        (site / f"new{i}.txt").write_text(f"new {i}")

    for point in ("uploaded:2", "deployed:1"):
        killed = run_sync(tmp_path, emulator, kill=point)
        assert killed.returncode == KILLED, (point, killed.stderr)

    result = converge(tmp_path, emulator)

    assert len(result["services"]) == 4
