"""The watch loop's state (`LoopState`: what one watch() call keeps) and how it is shown: the
status, the events a caller receives, a pending full reconcile and its reason, and times on the
budget's wall clock.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable

from assetsync.sync.budget import BuildBudget
from assetsync.watch.events import Change, DirtySet, OverflowHook
from assetsync.watch.mode import ObserverChoice, Watcher
from assetsync.watch.reach import Reachability
from assetsync.watch.values import SyncFn, WatchEvent, WatchSetup, WatchStatus

__all__ = ["FullReason", "LoopState", "one_line"]

# Why a full reconcile is pending (WatchStatus.full_reconcile_reason): only "interval" is no sign
# that anything changed.
FullReason = str


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class LoopState:
    """The state of one watch() call, its status and its events; `WatchLoop` runs it."""

    def __init__(
        self,
        setup: WatchSetup,
        *,
        stop: threading.Event,
        sync_fn: SyncFn,
        budget: BuildBudget,
        clock: Callable[[], float],
        on_event: Callable[[WatchEvent], None] | None,
        tick_s: float,
        services: int = 1,
        reload: Callable[[], WatchSetup] | None = None,
    ) -> None:
        self.setup, self.options, self.stop, self.reload = setup, setup.options, stop, reload
        self.sync_fn, self.budget, self.clock, self.on_event = sync_fn, budget, clock, on_event
        self.tick_s = tick_s
        self.changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self.carry: Change | None = None
        self.dirty = DirtySet(setup.root, setup.ignored, setup.toolkit, setup.config_file)
        self.hook = OverflowHook()
        self.observer: Watcher | None = None
        self.choice = ObserverChoice("inotify", "")
        self.state = "starting"
        # the reconcile at start, run after the observer is up
        self.full_pending, self.full_since, self.full_reason = True, clock(), "start"
        self.next_full_at = math.inf
        self.events = self.syncs = self.failures = self.builds = self.consecutive_failures = 0
        self.retry_at: float | None = None
        self.changed_since_failure = False
        self.last_deploy_at: float | None = None
        self.next_build_at: float | None = None
        self.last_error: str | None = None
        self.config_error: str | None = None
        self.held_back: frozenset[str] = frozenset()
        self.reach = Reachability()
        self.remaining = budget.remaining()
        self.budget_read_at = clock()
        # Builds the next sync may make: one per service of the site, given at start (from the
        # state) and learnt from each result after that.
        self.slots = max(1, services)

    def status(self) -> WatchStatus:
        return WatchStatus(
            state=self.state,
            mode=self.choice.mode,
            pending=len(self.dirty),
            full_reconcile_pending=self.full_pending,
            events=self.events,
            syncs=self.syncs,
            failures=self.failures,
            builds=self.builds,
            budget_remaining=self.remaining,
            budget_limit=self.budget.limit,
            last_deploy_at=self.last_deploy_at,
            next_build_at=self.next_build_at,
            last_error=self.last_error,
            full_reconcile_reason=self.full_reason if self.full_pending else None,
            held_back=len(self.held_back),
            reachable=self.reach.answering,
            config_error=self.config_error,
        )

    def emit(self, kind: str, message: str = "", **extra: object) -> None:
        if self.on_event is not None:
            self.on_event(WatchEvent(kind, self.status(), message, **extra))  # type: ignore[arg-type]

    def _set_state(self, state: str, next_build_at: float | None = None) -> None:
        # wall() of a fixed loop time drifts by microseconds from call to call: not a change
        moved = (next_build_at is None) != (self.next_build_at is None) or (
            next_build_at is not None
            and self.next_build_at is not None
            and abs(next_build_at - self.next_build_at) > 0.5
        )
        changed = state != self.state or moved
        self.state, self.next_build_at = state, next_build_at
        if changed:
            self.emit("waiting")

    def _full(self, now: float, reason: FullReason) -> None:
        """Ask for a full reconcile; a pending one keeps its time, and its reason unless that
        was only the periodic check."""
        if not self.full_pending:
            self.full_since = now
        if not self.full_pending or self.full_reason == "interval":
            self.full_reason = reason
        self.full_pending = True

    def wall(self, at: float) -> float:
        """Convert a loop-clock time to the budget's wall clock, for display."""
        return self.budget.clock() + (at - self.clock())
