"""The adaptive concurrency limit's admission: never over the limit, no place idle while a
request waits, first come first served, cancellation leaves nothing behind."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from assetsync.remote.limiter import AdaptiveLimit, Admission


async def _settle() -> None:
    """Let every task that can run do so (admission hands over through futures)."""
    for _ in range(5):
        await asyncio.sleep(0)


class _Model:
    """Tasks that admit and then hold their place until released."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.arrived: list[int] = []  # task ids in arrival order
        self.admitted: list[int] = []  # task ids in admission order
        self.holding: dict[int, Admission] = {}
        self.waiting: dict[int, asyncio.Task[None]] = {}
        self.release: dict[int, asyncio.Event] = {}

    def arrive(self, n: int) -> None:
        event = asyncio.Event()

        async def hold() -> None:
            async with self.limit.admit() as admission:
                self.waiting.pop(n, None)
                self.admitted.append(n)
                self.holding[n] = admission
                await event.wait()
                del self.holding[n]

        self.arrived.append(n)
        self.release[n] = event
        self.waiting[n] = asyncio.get_running_loop().create_task(hold())

    def check(self) -> None:
        lim = self.limit
        assert lim.in_flight == len(self.holding)
        assert 1 <= lim.limit <= lim.maximum
        if self.waiting:  # no place stays free while a request waits
            assert lim.in_flight >= lim.limit
        # First come, first served: admissions follow arrivals (cancelled ones left out).
        order = [n for n in self.arrived if n in set(self.admitted)]
        assert self.admitted == order


_OPS = st.lists(st.tuples(st.sampled_from(["arrive", "release", "throttle", "succeed",
                                           "cancel"]), st.integers(0, 1000)),
                max_size=60)


@settings(max_examples=150, deadline=None)
@given(maximum=st.integers(1, 6), ops=_OPS)
def test_admission_is_bounded_fair_and_never_idle_while_requests_wait(
    maximum: int, ops: list[tuple[str, int]]
) -> None:
    async def main() -> None:
        model = _Model(AdaptiveLimit(maximum))
        for n, (op, pick) in enumerate(ops):
            if op == "arrive":
                model.arrive(n)
            elif op == "release" and model.holding:
                held = sorted(model.holding)
                model.release[held[pick % len(held)]].set()
            elif op == "throttle":
                model.limit.throttled()
            elif op == "succeed" and model.holding:
                held = sorted(model.holding)
                model.limit.succeeded(model.holding[held[pick % len(held)]])
            elif op == "cancel" and model.waiting:
                waiting = sorted(model.waiting)
                victim = waiting[pick % len(waiting)]
                model.waiting.pop(victim).cancel()
                model.arrived.remove(victim)
            await _settle()
            model.check()
        for event in model.release.values():  # everyone leaves: every place is given back
            event.set()
        await _settle()
        for task in [*model.waiting.values()]:
            await task
        await _settle()
        assert model.limit.in_flight == 0 and not model.holding

    asyncio.run(main())


def test_a_waiter_cancelled_as_it_is_handed_a_place_gives_it_back() -> None:
    async def main() -> tuple[int, int, bool]:
        limit = AdaptiveLimit(1)
        entered: list[int] = []

        async def wait_for_a_place() -> None:
            async with limit.admit():
                entered.append(1)  # never: cancelled before it runs again

        first = limit.admit()
        await first.__aenter__()
        waiter = asyncio.get_running_loop().create_task(wait_for_a_place())
        await _settle()
        await first.__aexit__(None, None, None)  # the place goes to the waiter ...
        waiter.cancel()  # ... which is cancelled before it runs again
        await _settle()
        assert waiter.cancelled()
        after_cancel = limit.in_flight
        place = limit.admit()
        await asyncio.wait_for(place.__aenter__(), 30)  # free again, not lost (30 s: a hang)
        during = limit.in_flight
        await place.__aexit__(None, None, None)
        return after_cancel, during, bool(entered)

    assert asyncio.run(main()) == (0, 1, False)


def test_a_raised_limit_admits_a_waiter_at_once() -> None:
    """The additive increase frees a place now, not at the next request's end."""

    async def main() -> bool:
        limit = AdaptiveLimit(2)
        limit.throttled()  # 2 -> 1
        admitted = asyncio.Event()
        release = asyncio.Event()

        async def wait_for_a_place() -> None:
            async with limit.admit():
                admitted.set()
                await release.wait()

        async with limit.admit() as admission:
            waiter = asyncio.get_running_loop().create_task(wait_for_a_place())
            await _settle()
            assert not admitted.is_set()
            limit.succeeded(admission)  # one success at limit 1: back to 2
            await _settle()
            seen = admitted.is_set()  # while the first place is still held
        release.set()
        await waiter
        return seen

    assert asyncio.run(main())
