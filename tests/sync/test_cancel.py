"""Cancelled before its work starts (a Ctrl-C cancels the CLI's main task wherever it is), the
sync's side-by-side sending makes nothing it would leave unstarted: Python warns of a coroutine
collected without ever being awaited ("RuntimeWarning: coroutine '_send_functions' was never
awaited" was printed under "assetsync: interrupted"). `filterwarnings = error` and pytest's
unraisable-exception hook make such a warning fail the test that caused it."""

from __future__ import annotations

import asyncio
import gc

import pytest

from assetsync.sync.apply import _side_by_side


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
