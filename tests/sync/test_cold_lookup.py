"""A cold sync looks each service up once: a service found absent is created, not looked up again
(issue 26), on a site of one service and on a sharded one; the emulator's request log counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assetsync.sync.run import sync
from tests.sync_harness import load, make_tree, quick_client


def _lookups(emulator: Any, name: str) -> int:
    """GETs of a service by its unique name (`/v1/Services/<name>`)."""
    return sum(1 for e in emulator.state.request_log
               if e.method == "GET" and e.path.rstrip("/") == f"/v1/Services/{name}")


def _posts(emulator: Any, suffix: str) -> int:
    return sum(1 for e in emulator.state.request_log
               if e.method == "POST" and e.path.rstrip("/").endswith(suffix))


def test_cold_sync_looks_the_service_up_once(tmp_path: Path, emulator: Any) -> None:
    make_tree(tmp_path / "site", 3)
    config = load(tmp_path, emulator, service="cold")
    emulator.state.request_log.clear()
    result = sync(config, client=quick_client(config))
    assert result.deployment_sid and len(result.uploaded) == 3
    assert _lookups(emulator, "cold") == 1
    assert _posts(emulator, "/v1/Services") == 1
    # A service this sync created has no environment to list before making one.
    assert sum(1 for e in emulator.state.request_log
               if e.method == "GET" and e.path.endswith("/Environments")) == 0
    assert _posts(emulator, "/Environments") == 1


def test_second_sync_uses_the_recorded_service(tmp_path: Path, emulator: Any) -> None:
    make_tree(tmp_path / "site", 2)
    config = load(tmp_path, emulator, service="warm")
    sync(config, client=quick_client(config))
    emulator.state.request_log.clear()
    (tmp_path / "site" / "d0" / "f0000.txt").write_text("changed")
    result = sync(config, client=quick_client(config))
    assert result.uploaded and _lookups(emulator, "warm") == 0
    assert _posts(emulator, "/v1/Services") == 0


def test_cold_sharded_sync_looks_each_service_up_once(tmp_path: Path, emulator: Any) -> None:
    make_tree(tmp_path / "site", 5)
    config = load(tmp_path, emulator, service="shards",
                  extra="[shard]\npublic_protected_per_build = 2\n")
    emulator.state.request_log.clear()
    result = sync(config, client=quick_client(config))
    assert len(result.uploaded) == 5
    names = ["shards", "shards-2", "shards-3"]
    assert [_lookups(emulator, n) for n in names] == [1, 1, 1]
    assert _posts(emulator, "/v1/Services") == 3


def test_service_another_tool_made_is_found_by_the_one_lookup(
    tmp_path: Path, emulator: Any
) -> None:
    """A service that exists but that the state does not know (made by the Console): one
    lookup finds it, nothing creates a second one."""
    make_tree(tmp_path / "site", 2)
    config = load(tmp_path, emulator, service="raced")
    with emulator.client() as http:
        made = http.post("/v1/Services", data={"UniqueName": "raced", "FriendlyName": "raced"})
        assert made.status_code == 201
    emulator.state.request_log.clear()
    result = sync(config, client=quick_client(config))
    assert result.service_sid == made.json()["sid"] and result.deployment_sid
    assert _lookups(emulator, "raced") == 1
    assert _posts(emulator, "/v1/Services") == 0
