"""An adaptive concurrency limit: halve on 429, creep back up on success (AIMD).

Twilio's 429 (error 20429) means too many *concurrent* requests for the account; its advice is
to back off and send fewer at once (twilio.com/docs/api/errors/20429). Backing off alone keeps
the same number of requests in flight; this limit also lowers that number, and restores it one
step per `limit` successes once the account has room again (peers.md §6.5).

Only a request sent since the last decrease is evidence about the lowered limit: the answers of
requests already in flight at the old, higher concurrency arrive in any order (a 429 after a
few successes, say), and counting their successes would raise the limit again before the
lowered one was ever tried. So each admission carries the limit's generation, and a success
counts towards an increase only when its request was admitted in the current generation, as
TCP's congestion avoidance grows its window only on acknowledgements of data sent after a loss
(RFC 5681 §3.1).
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

__all__ = ["AdaptiveLimit", "Admission"]


class Admission:
    """One request's place under the limit: the generation it was admitted in."""

    __slots__ = ("generation",)

    def __init__(self, generation: int) -> None:
        self.generation = generation


class AdaptiveLimit:
    """At most `limit` holders at once, `limit` in [1, maximum].

    `async with limit.admit() as admission:` holds a place; then `succeeded(admission)` or
    `throttled()`.

    A counter and a FIFO of waiters: a place is taken without suspending while one is free,
    and a place given up is handed to the oldest waiter directly (each admit and leave is
    O(1); a Condition's `wait_for` woke every waiter to re-test its predicate on every leave,
    and made every admit take a lock). Handing over keeps the order fair: a newcomer never
    overtakes a request that was already waiting.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.lowest = self.maximum
        self.in_flight = 0
        self.generation = 0  # bumped on every decrease
        self._successes = 0
        # Each waiter's future gets the generation its place was handed over in.
        self._waiters: deque[asyncio.Future[int]] = deque()

    def admit(self) -> _Place:
        """A place under the limit, remembering the generation it was admitted in."""
        return _Place(self)

    async def _enter(self) -> Admission:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return Admission(self.generation)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            generation = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._leave()  # handed a place just as it was cancelled: pass it on
            raise
        return Admission(generation)

    def _leave(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the free places to the oldest waiters (counted as in flight at once)."""
        waiters = self._waiters
        while waiters and self.in_flight < self.limit:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter has left already
                self.in_flight += 1
                waiter.set_result(self.generation)

    def throttled(self) -> None:
        """The server said too many: halve the limit (multiplicative decrease)."""
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self.generation += 1
        self._successes = 0

    def succeeded(self, admission: Admission | None = None) -> None:
        """One request went through: after `limit` of them, all admitted since the last
        decrease, allow one more (additive increase). `admission` None: admitted now."""
        if self.limit >= self.maximum:
            return
        if admission is not None and admission.generation != self.generation:
            return  # sent at the old concurrency: says nothing about the lowered limit
        self._successes += 1
        if self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
            self._hand_over()  # the new place is free now, not at the next leave


class _Place:
    """`AdaptiveLimit.admit()`'s context manager."""

    __slots__ = ("_admission", "_limit")

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._admission: Admission | None = None

    async def __aenter__(self) -> Admission:
        self._admission = await self._limit._enter()
        return self._admission

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limit._leave()
