"""Whether the target answers, as a watch session sees it through each sync's progress events.

The HTTP client retries a dropped connection or a gateway error for a while (17-20 s with the
default policy) inside one sync, so the sync's own failure comes late: its first `retry` event
is the earliest sign that the target stopped answering, and the next answered request the
earliest that it is back.
"""

from __future__ import annotations

from assetsync.errors import ApiConnectionError, ApiStatusError
from assetsync.results import SyncEvent

__all__ = ["Reachability"]

# Progress events that only come after the target answered a request.
_ANSWERED = frozenset({
    "connected", "planned", "asset_created", "function_created", "uploaded", "build_created",
    "build_status", "deployment_acknowledged", "deployed", "recorded",
})
# Gateway answers: the target itself did not answer (a proxy or load balancer said so).
_GATEWAY = frozenset({"502", "503", "504"})


class Reachability:
    """Tracks whether the target answers; each method returns "unreachable" or "reachable"
    when that changed (for watch to report once), else None."""

    def __init__(self) -> None:
        self.answering = True
        self.reason = ""

    def _set(self, answering: bool, reason: str = "") -> str | None:
        if answering == self.answering:
            return None
        self.answering, self.reason = answering, reason
        return "reachable" if answering else "unreachable"

    def on_sync_event(self, event: SyncEvent) -> str | None:
        """A progress event of the sync in flight."""
        if event.kind == "retry":
            # `sid` carries the HTTP status of a retried answer; empty: no answer at all.
            if not event.sid or event.sid in _GATEWAY:
                return self._set(False, event.message)
            return self._set(True)  # a 429 or 500 is an answer
        if event.kind in _ANSWERED:
            return self._set(True)
        return None

    def after_sync(self, error: BaseException | None) -> str | None:
        """A sync ended: with `error`, or (None) successfully."""
        if error is None:
            return self._set(True)
        if isinstance(error, ApiConnectionError) or (
                isinstance(error, ApiStatusError) and str(error.status_code) in _GATEWAY):
            return self._set(False, str(error))
        return None
