"""The sync engine against the emulator over a socket: incremental uploads, no-op syncs, drops,
functions carried over, drift, build failures and expired versions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from assetsync.config import target_key
from assetsync.errors import AssetsyncError, BuildFailedError, DriftError, LimitError
from assetsync.results import SyncEvent, SyncResult
from assetsync.state.db import State
from assetsync.state.remote_manifest import MANIFEST_PATH
from assetsync.sync.run import sync
from tests.sync_harness import (
    api_get,
    assert_functions_kept,
    count,
    deploy_function_build,
    load,
    make_tree,
    published_beside_functions,
    quick_client,
    uploads,
    writes,
)


def test_first_sync_publishes_and_a_second_writes_nothing(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    site = config.source
    make_tree(site, 12)
    (site / "note.protected.txt").write_text("members only")
    (site / "key.private.txt").write_text("server side")
    events: list[SyncEvent] = []

    first = sync(config, on_event=events.append)

    assert len(first.uploaded) == 14 and uploads(emulator) == 14
    assert first.build_sid and first.deployment_sid and not first.noop
    assert count(emulator, "POST", "/Builds") == 1 and count(emulator, "POST", "/Deployments") == 1
    urls = {row.path: row.url for row in first.urls}
    assert urls["/note.txt"] == f"https://{first.domain_name}/note.txt"
    assert "/key.txt" not in urls  # private files have no URL
    kinds = [e.kind for e in events]
    assert kinds.index("planned") < kinds.index("uploaded") < kinds.index("build_created")
    assert kinds.index("build_created") < kinds.index("deployed")

    env = api_get(emulator,
                  f"/v1/Services/{first.service_sid}/Environments/{first.environment_sid}")
    assert env["build_sid"] == first.build_sid
    emulator.state.request_log.clear()

    second = sync(config)

    assert second.noop and second.uploaded == () and second.reused == 14
    assert writes(emulator) == []
    assert second.write_requests == 0 and second.build_sid == first.build_sid


def test_one_change_in_1000_assets_is_one_upload_one_build_one_deployment(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator)
    files = make_tree(config.source, 1000, size=32)
    sync(config, client=quick_client(config))
    emulator.state.request_log.clear()
    files[500].write_text("a new version of this one file")

    result = sync(config)

    assert result.uploaded == ("/d0/f0500.txt",) and result.reused == 999
    assert uploads(emulator) == 1
    assert count(emulator, "POST", "/Builds") == 1
    assert count(emulator, "POST", "/Deployments") == 1
    assert len(writes(emulator)) == 3 + 1  # + the build's service manifest (a Function Version)
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert len(build["asset_versions"]) == 1000
    # A summary, not 1,000 URLs: asyncio formats it when `asyncio.run` ends.
    assert len(repr(result)) < 300 and "reused=999" in repr(result)
    with State.open(config.state_dir) as state:  # recording the version settled its intent
        assert state.upload_intents(target_key(config), result.service_sid or "") == ()


def test_deleted_and_renamed_files_leave_the_build(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 3)
    sync(config)
    (config.source / "d0" / "f0000.txt").unlink()
    (config.source / "d1" / "f0001.txt").rename(config.source / "d1" / "moved.txt")
    emulator.state.request_log.clear()

    result = sync(config)

    assert result.dropped == ("/d0/f0000.txt", "/d1/f0001.txt")
    assert result.uploaded == ("/d1/moved.txt",)
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert sorted(v["path"] for v in build["asset_versions"]) == ["/d1/moved.txt", "/d2/f0002.txt"]


def test_functions_dependencies_and_runtime_of_the_live_build_survive(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator)
    fn_version, foreign_build = published_beside_functions(config, emulator, 2)

    result = sync(config, adopt=True)

    build = assert_functions_kept(emulator, result, fn_version)
    assert sorted(v["path"] for v in build["asset_versions"]) == [
        "/d0/f0000.txt", "/d1/f0001.txt", "/new.txt"]
    assert any(foreign_build in note for note in result.notes)


def test_drift_is_reported_before_any_write(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 2)
    first = sync(config)
    assert first.service_sid and first.environment_sid
    _fn, foreign = deploy_function_build(emulator, first.service_sid, first.environment_sid, [])
    (config.source / "new.txt").write_text("new")
    emulator.state.request_log.clear()

    with pytest.raises(DriftError) as info:
        sync(config)

    message = str(info.value)
    assert foreign in message and first.build_sid in message
    assert "2 path(s) removed" in message and "--adopt" in message
    assert writes(emulator) == []


def test_force_replaces_foreign_files_but_keeps_functions(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 1)
    first = sync(config)
    assert first.service_sid and first.environment_sid
    with emulator.client() as http:
        asset = http.post(f"/v1/Services/{first.service_sid}/Assets",
                          data={"FriendlyName": "/theirs.txt"}).json()
        theirs = http.post(f"/v1/Services/{first.service_sid}/Assets/{asset['sid']}/Versions",
                           data={"Path": "/theirs.txt", "Visibility": "public"},
                           files={"Content": ("theirs.txt", b"x", "text/plain")}).json()
    deploy_function_build(
        emulator, first.service_sid, first.environment_sid, [theirs["sid"]])

    adopted = sync(config, adopt=True)
    assert adopted.kept_foreign == ("/theirs.txt",) and adopted.noop is False

    _fn2, _ = deploy_function_build(emulator, first.service_sid, first.environment_sid,
                                     [theirs["sid"]])
    forced = sync(config, force=True)
    build = api_get(emulator, f"/v1/Services/{forced.service_sid}/Builds/{forced.build_sid}")
    assert [v["path"] for v in build["asset_versions"]] == ["/d0/f0000.txt"]
    assert len([v for v in build["function_versions"] if v["path"] != MANIFEST_PATH]) == 1


def test_a_failed_build_keeps_the_previous_deployment_and_the_uploads(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 3)
    first = sync(config)
    (config.source / "d0" / "f0000.txt").write_text("v2")
    emulator.state.fail_next_builds(1)

    with pytest.raises(BuildFailedError) as info:
        sync(config)

    env = api_get(emulator,
                  f"/v1/Services/{first.service_sid}/Environments/{first.environment_sid}")
    assert env["build_sid"] == first.build_sid
    assert info.value.build_sid in str(info.value) and info.value.build_sid != first.build_sid
    emulator.state.request_log.clear()

    retried = sync(config)

    assert retried.uploaded == () and retried.reused == 3 and uploads(emulator) == 0
    assert retried.build_sid not in (first.build_sid, info.value.build_sid)


def test_another_environments_full_sync_leaves_this_one_as_it_was(
    tmp_path: Path, emulator: Any
) -> None:
    """`--full` elsewhere records the same contents under new SIDs; this environment's build
    still holds the old ones, which stay its own: nothing to rebuild, nothing foreign."""
    config = load(tmp_path, emulator)
    make_tree(config.source, 5)
    first = sync(config)
    sync(config, environment="staging", full=True)
    emulator.state.request_log.clear()

    again = sync(config)

    assert again.noop and again.build_sid == first.build_sid and again.warnings == ()
    assert writes(emulator) == []


def test_expired_versions_are_uploaded_again(tmp_path: Path, emulator: Any) -> None:
    """Twilio deletes versions no build references after 7 days (api-contract.md §4)."""
    config = load(tmp_path, emulator)
    target = config.source / "a.txt"
    target.write_text("version one")
    sync(config)
    target.write_text("version two")
    sync(config)
    # The first build is undeployed (deleted after 24 h), then version one is unreferenced.
    emulator.clock.advance(8 * 24 * 3600)
    emulator.state.sweep(force=True)
    emulator.clock.advance(8 * 24 * 3600)
    emulator.state.sweep(force=True)
    target.write_text("version one")
    emulator.state.request_log.clear()

    result = sync(config)

    assert result.uploaded == ("/a.txt",)
    assert any("expired" in note for note in result.notes)
    assert count(emulator, "POST", "/Builds") == 2  # the failed one, then the good one


def test_a_file_that_cannot_be_published_stops_the_sync_before_any_write(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator)
    (config.source / "ok.txt").write_text("fine")
    (config.source / "big.private.bin").write_bytes(b"\0" * 10_000_001)

    with pytest.raises(LimitError) as info:
        sync(config)

    assert "big.private.bin" in str(info.value) and "nothing was uploaded" in str(info.value)
    assert writes(emulator) == []


def test_dry_run_plans_without_writing(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 4)

    result = sync(config, dry_run=True)

    assert result.dry_run and len(result.uploaded) == 4 and result.build_sid is None
    assert writes(emulator) == []
    with State.open(config.state_dir) as state:
        assert state.export_json()["tables"]["asset_versions"] == []  # type: ignore[index]


def test_full_reuploads_everything(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 5)
    sync(config)
    emulator.state.request_log.clear()

    result = sync(config, full=True)

    assert len(result.uploaded) == 5 and uploads(emulator) == 5
    assert count(emulator, "POST", "/Builds") == 1


def test_sync_can_run_inside_an_event_loop_only_through_sync_async(
    tmp_path: Path, emulator: Any
) -> None:
    from assetsync.sync.run import sync_async

    config = load(tmp_path, emulator)
    make_tree(config.source, 1)

    async def main() -> None:
        with pytest.raises(RuntimeError):
            sync(config)
        result = await sync_async(config)
        assert result.uploaded == ("/d0/f0000.txt",)

    asyncio.run(main())


def test_urls_file_is_written_and_published_without_churn(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, extra='urls_file = "site/urls.json"\n')
    make_tree(config.source, 2)
    (config.source / "a.private.txt").write_text("no url")

    first = sync(config)

    import json

    urls_file = config.source / "urls.json"
    written = json.loads(urls_file.read_text())
    assert written == {row.path: row.url for row in first.urls} and len(written) == 2
    second = sync(config)  # publishes urls.json itself; its own entry stays out of the map
    assert second.uploaded == ("/urls.json",)
    assert json.loads(urls_file.read_text()) == written
    assert sync(config).noop


def test_a_file_changed_while_uploading_is_recorded_as_what_was_sent(
    tmp_path: Path, emulator: Any
) -> None:
    """The netlify/cli #216 race: the bytes uploaded are not the bytes hashed."""
    from tests.sync_harness import assert_records_are_truthful

    config = load(tmp_path, emulator)
    target = config.source / "a.txt"
    target.write_text("as hashed")
    events: list[SyncEvent] = []

    def on_event(event: SyncEvent) -> None:
        events.append(event)
        if event.kind == "upload_started" and event.path == "/a.txt":
            target.write_text("rewritten while uploading")  # before the body is read

    first = sync(config, on_event=on_event)

    assert [e.path for e in events if e.kind == "changed_during_upload"] == ["/a.txt"]
    assert assert_records_are_truthful(config, emulator) == 1
    with State.open(config.state_dir) as state:  # its intent (the hashed bytes) was cleared
        assert state.upload_intents(target_key(config), first.service_sid or "") == ()
    # Its new bytes were never checked (DESIGN.md invariant 6): kept out of that build (a new
    # file waits), and the next sync checks them and publishes the version already sent.
    def built(result: SyncResult) -> list[str]:
        build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
        return [v["path"] for v in build["asset_versions"]]

    assert first.uploaded == () and built(first) == []
    emulator.state.request_log.clear()
    second = sync(config)
    assert second.reused == 1 and second.uploaded == () and uploads(emulator) == 0
    assert built(second) == ["/a.txt"]


def test_an_asset_deleted_behind_assetsyncs_back_is_recreated(tmp_path: Path,
                                                              emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 2)
    first = sync(config)
    assets = api_get(emulator, f"/v1/Services/{first.service_sid}/Assets")["assets"]
    gone = next(a for a in assets if a["friendly_name"] == "/d0/f0000.txt")
    with emulator.client() as http:  # someone prunes it in the Console
        http.delete(f"/v1/Services/{first.service_sid}/Assets/{gone['sid']}").raise_for_status()
    (config.source / "d0" / "f0000.txt").write_text("changed")

    result = sync(config)

    assert result.uploaded == ("/d0/f0000.txt",)
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert sorted(v["path"] for v in build["asset_versions"]) == ["/d0/f0000.txt",
                                                                  "/d1/f0001.txt"]
    assert gone["sid"] not in {v["asset_sid"] for v in build["asset_versions"]}


def test_a_new_runtime_alone_triggers_a_build(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 2)
    first = sync(config)
    (tmp_path / ".assetsync.toml").write_text(
        (tmp_path / ".assetsync.toml").read_text() + 'runtime = "node20"\n')
    config = load(tmp_path, emulator)
    emulator.state.request_log.clear()

    result = sync(config)

    assert not result.noop and result.uploaded == () and result.build_sid != first.build_sid
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert build["runtime"] == "node20"
    assert sync(config).noop


def test_removing_every_file_is_a_clear_error(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    files = make_tree(config.source, 2)
    sync(config)
    for path in files:
        path.unlink()
    emulator.state.request_log.clear()

    with pytest.raises(AssetsyncError, match="nothing left to publish"):
        sync(config)
    assert writes(emulator) == []


def test_a_no_op_sync_on_its_own_live_build_is_one_request(tmp_path: Path, emulator: Any) -> None:
    """The live build is assetsync's own: its kept manifest stands in for fetching it."""
    config = load(tmp_path, emulator)
    make_tree(config.source, 20)
    sync(config)
    emulator.state.request_log.clear()

    result = sync(config)

    assert result.noop and result.requests == 1
    assert [(e.method, e.path.split("/")[-2]) for e in emulator.state.request_log] == [
        ("GET", "Environments")]
    (config.source / "d0" / "f0000.txt").write_text("changed")
    changed = sync(config)  # the manifest also carries what the next build must keep
    build = api_get(emulator, f"/v1/Services/{changed.service_sid}/Builds/{changed.build_sid}")
    assert len(build["asset_versions"]) == 20


def test_a_recorded_snapshot_is_reused_only_while_the_state_is_unchanged(
    tmp_path: Path, emulator: Any
) -> None:
    # A sharded sync hands sync_service what it already read of the service's record. An empty
    # record would make it upload every file again: it must be ignored once anything was
    # committed since it was read, and when it is of another service.
    from assetsync.config import target_key
    from assetsync.plan.assets import RecordedService
    from assetsync.sync.phase_values import RecordedSnapshot
    from assetsync.sync.run import apply_options, open_client, prepare_files, sync_service

    config = load(tmp_path, emulator)
    make_tree(config.source, 6)
    first = sync(config)
    assert first.service_sid

    async def again(sid: str, writes_before: int) -> tuple[int, int]:
        with State.open(config.state_dir) as state:
            files = prepare_files(config, state).files
            snapshot = RecordedSnapshot(sid, state.writes - writes_before, RecordedService())
            async with open_client(config, None, None) as api:
                result = await sync_service(
                    api, state, target_key(config), service=config.service,
                    environment=config.environment, files=files,
                    options=apply_options(config), snapshot=snapshot,
                )
        return len(result.uploaded), result.reused

    assert asyncio.run(again(first.service_sid, 1)) == (0, 6)  # a write since: read again
    assert asyncio.run(again("ZS" + "0" * 32, 0)) == (0, 6)  # another service's: read again
    assert uploads(emulator) == 6
    # Valid (this service, nothing written since): reused, so its empty record is believed.
    assert asyncio.run(again(first.service_sid, 0)) == (6, 0)


def test_a_sync_runs_with_fewer_garbage_collections_and_restores_the_setting(
    tmp_path: Path, emulator: Any
) -> None:
    import gc

    config = load(tmp_path, emulator)
    make_tree(config.source, 3)
    before = gc.get_threshold()
    seen: list[int] = []

    sync(config, on_event=lambda event: seen.append(gc.get_threshold()[0]))

    assert seen and min(seen) >= 50_000 > before[0]
    assert gc.get_threshold() == before
