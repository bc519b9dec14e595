"""The watch loop's syncs (`LoopSync`, a part of `WatchLoop`): one in flight at a time, its
budget reservation settled with the builds it made, the slots the next one needs, backoff after
a failure, and whether the target still answers.
"""

from __future__ import annotations

import logging

from assetsync.errors import AuthenticationError, ConfigError, RateLimitError, SyncError
from assetsync.results import SyncEvent
from assetsync.sync.budget import Reservation, builds_made, builds_on_error, services_spanned
from assetsync.watch.events import split_batch
from assetsync.watch.loop_state import LoopState, one_line

__all__ = ["LoopSync"]

# The loop's logger still: the name a log line shows did not change when this part moved here.
log = logging.getLogger("assetsync.watch.loop")

# Backoff after consecutive failed syncs: 1, 2, 4 … seconds, at most a minute, so a broken network
# or a bad file is retried soon but never hammered.
_BACKOFF_MAX_S = 60.0
# Errors no retry can fix while this process runs: the user must edit config or credentials.
_FATAL = (ConfigError, AuthenticationError)


class LoopSync(LoopState):
    """Mixin for `WatchLoop`: running one sync and taking its outcome."""

    def on_sync_event(self, event: SyncEvent) -> None:
        """A progress event of the sync in flight (it runs in this thread)."""
        self._reached(self.reach.on_sync_event(event))

    def _reached(self, change: str | None) -> None:
        if change == "unreachable":
            self.emit(change, f"the target stopped answering ({self.reach.reason}); retrying")
        elif change == "reachable":
            self.emit(change, "the target answers again")

    def run_sync(self, batch: frozenset[str] | None, reservation: Reservation,
                 hold: frozenset[str] = frozenset()) -> None:
        # The engine's `paths` hint covers the source folder only, and every engine sync re-reads
        # the Toolkit side (functions, package.json, .env) whatever the hint says. So a batch's
        # Toolkit files need no hint of their own: the sync gets the batch's source paths, which
        # are exactly what changed in the source (an empty set when only the Toolkit side did:
        # the source scan then re-stats nothing, rightly, and the functions are re-read).
        paths, toolkit = (None, frozenset[str]()) if batch is None else split_batch(batch)
        self.state, self.next_build_at = "syncing", None
        self.emit("sync-started", paths=paths, toolkit=toolkit)
        self.syncs += 1
        try:
            result = self.sync_fn(paths, hold=hold, on_event=self.on_sync_event)
        except _FATAL:
            self.budget.settle(reservation, 0)
            raise
        except Exception as exc:  # noqa: BLE001 - watch outlives every recoverable failure
            self.budget.settle(reservation, builds_on_error(exc))
            if isinstance(exc, SyncError) and exc.result is not None:
                self.slots = services_spanned(exc.result, self.budget.limit)
            self._reached(self.reach.after_sync(exc))
            self._failed(batch, exc)
            return
        except BaseException:
            # Interrupted mid-sync: as many builds as it reserved may have started.
            self.budget.settle(reservation, reservation.slots)
            raise
        self._reached(self.reach.after_sync(None))
        self._succeeded(paths, toolkit, result, reservation)

    def _succeeded(self, paths: frozenset[str] | None, toolkit: frozenset[str], result: object,
                   reservation: Reservation) -> None:
        made = builds_made(result)
        self.budget.settle(reservation, made)
        self.slots = services_spanned(result, self.budget.limit)
        self.remaining = self.budget.remaining()
        self.consecutive_failures, self.retry_at, self.last_error = 0, None, None
        if paths is None:
            self.full_pending = False
            self.next_full_at = self.clock() + self.options.reconcile_interval_s
        if made:
            self.builds += made
            self.last_deploy_at = self.budget.clock()
        # Files that cannot be published are held back at their live version, every sync: each
        # problem is shown when it first appears, not on every sync after.
        held_back = frozenset(getattr(result, "held_back", ()) or ())
        new = held_back - self.held_back
        self.held_back = held_back
        self.state = "pending" if len(self.dirty) else "idle"
        if new:
            self.emit("held-back", "; ".join(sorted(new)))
        self.emit("synced", paths=paths, result=result, toolkit=toolkit)

    def _failed(self, batch: frozenset[str] | None, exc: Exception) -> None:
        now = self.clock()
        self.failures += 1
        self.consecutive_failures += 1
        delay = min(_BACKOFF_MAX_S, 2.0 ** (self.consecutive_failures - 1))
        if isinstance(exc, RateLimitError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        self.retry_at, self.changed_since_failure = now + delay, False
        if batch is None:
            self._full(now, self.full_reason)
        else:
            self.dirty.restore(batch, now)
        self.last_error = one_line(exc)
        self.remaining = self.budget.remaining()
        self.state, self.next_build_at = "backoff", self.wall(self.retry_at)
        # Shown once, by whoever displays the event; the log keeps it for --verbose and files.
        log.info("sync failed (retrying in %.0f s): %s", delay, self.last_error)
        log.debug("sync failure detail", exc_info=exc)
        paths, toolkit = (None, frozenset[str]()) if batch is None else split_batch(batch)
        self.emit("sync-failed", self.last_error, paths=paths, toolkit=toolkit)
