"""A sync cancelled wherever it is (Ctrl-C: asyncio's SIGINT handler cancels the CLI's main
task): the cancellation is raised, nothing is left unstarted (Python warns of a coroutine
collected without ever being awaited: "RuntimeWarning: coroutine '_send_functions' was never
awaited" was printed under "assetsync: interrupted"; `filterwarnings = error` and pytest's
unraisable-exception hook make such a warning fail the test that caused it), the state opens,
and the next sync converges without sending any content twice."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assetsync.config import Config
from assetsync.results import SyncEvent
from assetsync.state.db import State
from assetsync.sync.apply import _side_by_side
from assetsync.sync.run import sync, sync_async
from tests.sync_harness import api_get, load, make_tree


def test_sides_cancelled_before_they_start_are_never_made() -> None:
    made: list[str] = []

    async def side(name: str) -> str:
        made.append(name)
        await asyncio.sleep(0)
        return name

    async def main() -> None:
        task = asyncio.ensure_future(_side_by_side([], lambda: side("a"), lambda: side("b")))
        await asyncio.sleep(0)  # the task ran up to its gather: both sides are scheduled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    gc.collect()
    assert made == []


def test_sides_run_side_by_side_and_the_first_failure_is_raised_after_both() -> None:
    order: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(0.01)
        order.append("slow done")
        return "slow"

    async def failing() -> str:
        order.append("failing")
        raise ValueError("no")

    async def main() -> None:
        assert await _side_by_side([], slow, slow) == ("slow", "slow")
        failures: list[Exception] = []
        with pytest.raises(ValueError, match="no"):
            await _side_by_side(failures, slow, failing)
        assert len(failures) == 1 and isinstance(failures[0], ValueError)

    asyncio.run(main())
    assert order == ["slow done", "slow done", "failing", "slow done"]


def _sync_cancelled_at(config: Config, kind: str, nth: int) -> bool:
    """Run a sync in-process and cancel its task from inside its own `nth` `kind` event, as
    asyncio's SIGINT handler cancels the CLI's main task wherever it is running. True when
    the cancellation was raised (False: the sync ended before that event)."""

    async def main() -> bool:
        seen = [0]
        task: asyncio.Task[object] | None = None

        def on_event(event: SyncEvent) -> None:
            if event.kind == kind:
                seen[0] += 1
                if seen[0] == nth and task is not None:
                    task.cancel()

        task = asyncio.ensure_future(sync_async(config, on_event=on_event))
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    cancelled = asyncio.run(main())
    gc.collect()  # a coroutine left unstarted warns when collected: now, inside this test
    return cancelled


def test_a_sync_cancelled_at_every_stage_converges_without_sending_anything_twice(
        tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, service="cancel-b")
    site = tmp_path / "site"
    files = make_tree(site, 24)
    assert sync(config).build_sid
    fresh = iter(files)
    points = ("planned:1", "asset_created:1", "upload_started:1", "upload_started:3",
              "uploaded:1", "uploaded:4", "build_created:1", "build_status:1", "deployed:1")
    for point in points:
        kind, _, nth = point.partition(":")
        # Fresh work for this run at every stage: edits (at least `nth` uploads: the last run
        # may have sent everything before it was cancelled) and an asset to create.
        for path in [next(fresh) for _ in range(max(2, int(nth)))]:
            path.write_text(path.read_text() + " edited")
        (site / f"new-{kind}-{nth}.txt").write_text(point)
        assert _sync_cancelled_at(config, kind, int(nth)), point
        with State.open(config.state_dir) as state:
            state.export_json()  # opens, and reads whole

    result = sync(config)
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert sorted(v["path"] for v in build["asset_versions"]) == sorted(
        "/" + p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    versions = Counter(
        (rec.data["path"], rec.data["digest"])
        for asset in emulator.state.store.children("asset", result.service_sid)
        for rec in emulator.state.store.children("asset_version", asset.sid))
    assert {key: n for key, n in versions.items() if n > 1} == {}  # nothing uploaded twice
