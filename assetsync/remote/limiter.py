"""An adaptive concurrency limit: halve on 429, creep back up on success (AIMD).

Twilio's 429 (error 20429) means too many *concurrent* requests for the account; its advice is
to back off and send fewer at once (twilio.com/docs/api/errors/20429). Backing off alone keeps
the same number of requests in flight; this limit also lowers that number, and restores it one
step per `limit` successes once the account has room again (peers.md §6.5).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    """An async context manager admitting at most `limit` holders, `limit` in [1, maximum]."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.lowest = self.maximum
        self.in_flight = 0
        self._successes = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Self:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def throttled(self) -> None:
        """The server said too many: halve the limit (multiplicative decrease)."""
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._successes = 0

    def succeeded(self) -> None:
        """One request went through: after `limit` of them, allow one more (additive increase)."""
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
