"""Faults during a sync, and rollback / promote / prune / status, against the emulator's socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from assetsync.errors import AssetsyncError, DriftError
from assetsync.sync.operations import promote, prune, rollback, status
from assetsync.sync.run import sync
from tests.sync_harness import (
    api_get,
    assert_records_are_truthful,
    count,
    deploy_function_build,
    load,
    make_tree,
    quick_client,
    uploads,
    writes,
)


def live_build(emulator: Any, result: Any, env_sid: str | None = None) -> str:
    env = api_get(emulator, f"/v1/Services/{result.service_sid}/Environments/"
                            f"{env_sid or result.environment_sid}")
    return str(env["build_sid"])


def test_sync_completes_through_a_fifth_of_requests_failing(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 30)
    faults = [
        ("GET", "/v1/Services/site", "503", 1),
        # A cold sync lists no environments of the service it has just created: it creates one.
        ("POST", "/v1/Services/*/Environments", "503", 1),
        ("POST", "/v1/Services/*/Assets", "429", 2),
        ("POST", "/v1/Services/*/Assets", "503", 1),
        ("POST", "/v1/Services/*/Assets", "drop", 1),
        ("POST", "/v1/Services/*/Assets/*/Versions", "429", 3),
        ("POST", "/v1/Services/*/Assets/*/Versions", "503", 2),
        ("POST", "/v1/Services/*/Assets/*/Versions", "drop", 2),
        ("POST", "/v1/Services/*/Assets/*/Versions", "drop-after", 1),
        ("POST", "/v1/Services/*/Builds", "429", 1),
        ("GET", "/v1/Services/*/Builds/*/Status", "503", 1),
        ("POST", "/v1/Services/*/Environments/*/Deployments", "drop-after", 1),
    ]
    for method, pattern, action, n in faults:
        emulator.state.faults.add(method, pattern, action, count=n)

    result = sync(config, client=quick_client(config))

    injected = sum(n for *_rest, n in faults)
    total = len(emulator.state.request_log)
    # About a fifth of every request failed (a create whose answer may be lost looks for what
    # it made before it is sent again: those lookups are requests too).
    assert injected / total >= 0.16
    assert emulator.state.faults.pending == []
    assert result.retries == injected
    assert len(result.uploaded) == 30
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert len(build["asset_versions"]) == 30
    assert live_build(emulator, result) == result.build_sid
    assert assert_records_are_truthful(config, emulator) == 30
    emulator.state.request_log.clear()
    again = sync(config)
    assert again.noop and writes(emulator) == []


def test_rollback_redeploys_the_previous_build_and_walks_back(tmp_path: Path,
                                                              emulator: Any) -> None:
    config = load(tmp_path, emulator)
    target = config.source / "a.txt"
    builds = []
    for text in ("one", "two", "three"):
        target.write_text(text)
        builds.append(sync(config).build_sid)
    emulator.state.request_log.clear()

    back = rollback(config)
    assert back.build_sid == builds[1] and uploads(emulator) == 0
    assert count(emulator, "POST", "/Builds") == 0
    assert rollback(config).build_sid == builds[0]
    with pytest.raises(AssetsyncError, match="no earlier build"):
        rollback(config)
    assert rollback(config, to=builds[2]).build_sid == builds[2]
    # A sync after a rollback is not drift: the rollback was recorded.
    assert sync(config).noop


def test_rollback_rebuilds_a_build_twilio_deleted(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    target = config.source / "a.txt"
    target.write_text("one")
    first = sync(config)
    first_versions = {v["sid"] for v in api_get(
        emulator, f"/v1/Services/{first.service_sid}/Builds/{first.build_sid}")["asset_versions"]}
    target.write_text("two")
    sync(config)
    emulator.clock.advance(25 * 3600)  # undeployed builds are deleted after 24 h
    emulator.state.sweep(force=True)
    emulator.state.request_log.clear()

    back = rollback(config)

    assert back.build_sid != first.build_sid
    assert any("rebuilt" in note for note in back.notes)
    assert uploads(emulator) == 0
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        api_get(emulator, f"/v1/Services/{first.service_sid}/Builds/{first.build_sid}")
    build = api_get(emulator, f"/v1/Services/{back.service_sid}/Builds/{back.build_sid}")
    assert {v["sid"] for v in build["asset_versions"]} == first_versions
    assert live_build(emulator, back) == back.build_sid


def test_rollback_refuses_over_drift_unless_forced(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    (config.source / "a.txt").write_text("one")
    first = sync(config)
    (config.source / "a.txt").write_text("two")
    second = sync(config)
    assert second.service_sid and second.environment_sid
    deploy_function_build(emulator, second.service_sid, second.environment_sid, [])
    with pytest.raises(DriftError, match="rollback --force"):
        rollback(config)
    assert rollback(config, force=True).build_sid in (first.build_sid, second.build_sid)


def test_promote_deploys_the_same_build_elsewhere_without_uploading(tmp_path: Path,
                                                                    emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 4)
    dev = sync(config)
    emulator.state.request_log.clear()

    prod = promote(config, "dev", "prod")

    assert prod.build_sid == dev.build_sid and prod.environment_sid != dev.environment_sid
    assert uploads(emulator) == 0 and count(emulator, "POST", "/Builds") == 0
    assert live_build(emulator, prod, prod.environment_sid) == dev.build_sid
    assert prod.domain_name and prod.domain_name.endswith("-prod.twil.io")
    # The promoted environment is in sync for the next `sync --env prod`.
    assert sync(config, environment="prod").noop
    with pytest.raises(AssetsyncError, match="nothing to promote"):
        promote(config, "qa", "prod")


def test_prune_deletes_only_assets_no_live_build_uses(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 3)
    sync(config)
    (config.source / "d1" / "f0001.txt").unlink()
    sync(config)

    dry = prune(config)
    assert [name for _sid, name in dry.candidates] == ["/d1/f0001.txt"]
    assert dry.dry_run and dry.deleted == ()
    assert count(emulator, "DELETE", "") == 0

    done = prune(config, yes=True)
    assert done.deleted == tuple(sid for sid, _n in dry.candidates)
    assert count(emulator, "DELETE", "", status=204) == 1
    (config.source / "d1" / "f0001.txt").write_text("back again")
    again = sync(config)
    assert again.created_assets == ("/d1/f0001.txt",)
    assert prune(config).candidates == ()


def test_status_reports_live_recorded_pending_and_drift(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 2)
    before = status(config)
    assert before.environment_sid is None and len(before.pending_uploads) == 2
    assert writes(emulator) == []
    first = sync(config)
    clean = status(config)
    assert clean.drift is None and not clean.needs_build
    assert clean.live_build_sid == clean.recorded_build_sid == first.build_sid
    (config.source / "d0" / "f0000.txt").unlink()
    assert status(config).pending_drops == ("/d0/f0000.txt",)
    assert first.service_sid and first.environment_sid
    _fn, foreign = deploy_function_build(emulator, first.service_sid, first.environment_sid, [])
    drifted = status(config)
    assert drifted.drift is not None and foreign in drifted.drift
