"""The watch loop: debounce, coalescing, one sync in flight, full reconciles, budget, backoff.

Files still being written are held back; a batch syncs after a quiet window, capped by a maximum
wait (a busy file counts on its own, so it never holds the others back); changes made during a
sync form the next batch. Full reconciles run at start, after an event-queue overflow, after the
config file changed (it is read again; a broken one leaves the last good config in force) and
every `reconcile_interval_s`; they never wait for writers, whose files keep their live version.
Every sync first reserves build budget, one slot per service the site spanned at its last sync
(a sharded site builds once per service; the quiet window grows as the budget runs low) and a
failed sync is retried with backoff. The sync's progress tells when the target stops answering
and when it is back. Public entry point: `assetsync.watch.run.watch`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from assetsync.errors import (
    AssetsyncError,
    AuthenticationError,
    ConfigError,
    RateLimitError,
    SyncError,
)
from assetsync.results import SyncEvent
from assetsync.sync.budget import (
    WINDOW_S,
    BuildBudget,
    Reservation,
    builds_made,
    builds_on_error,
    services_spanned,
)
from assetsync.watch.events import (
    Change,
    DirtySet,
    OverflowHook,
    WatchTarget,
    only_names,
    split_batch,
)
from assetsync.watch.mode import (
    ObserverChoice,
    Watcher,
    choose_mode,
    inotify_watch_limit,
    start_observer,
    sysctl_advice,
)
from assetsync.watch.poll import TreePoller
from assetsync.watch.reach import Reachability
from assetsync.watch.values import SyncFn, WatchEvent, WatchSetup, WatchStatus

__all__ = [
    "SyncFn",
    "WatchEvent",
    "WatchLoop",
    "WatchSetup",
    "WatchStatus",
    "builds_made",
    "coalesce_window",
    "services_spanned",
]

log = logging.getLogger(__name__)

# Backoff after consecutive failed syncs: 1, 2, 4 … seconds, at most a minute, so a broken network
# or a bad file is retried soon but never hammered.
_BACKOFF_MAX_S = 60.0
# Errors no retry can fix while this process runs: the user must edit config or credentials.
_FATAL = (ConfigError, AuthenticationError)
# Events folded per drain, so a flood (an archive unpacked into the folder) cannot keep the loop
# from noticing `stop`.
_DRAIN_MAX = 50_000
# Why a full reconcile is pending (WatchStatus.full_reconcile_reason): only "interval" is no sign
# that anything changed.
FullReason = str


def coalesce_window(base_s: float, remaining: int, limit: int) -> float:
    """The quiet window to use with `remaining` of `limit` builds left this hour.

    Above half the budget it is `base_s`; below, it grows linearly towards the sustainable pace
    (an hour / limit, 36 s at 100) so bursts of edits coalesce into fewer builds.
    """
    half = limit / 2
    if remaining >= half:
        return base_s
    return max(base_s, (WINDOW_S / limit) * (1 - remaining / half))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class WatchLoop:
    """The state of one watch() call; `run()` runs it in the caller's thread."""

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

    # -- status -------------------------------------------------------------------------------

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

    # -- events -------------------------------------------------------------------------------

    def drain(self, timeout: float) -> None:
        """Fold queued events into the dirty set, waiting up to `timeout` for the first."""
        trust_close = self.choice.mode == "inotify"
        before = (len(self.dirty), self.dirty.last_seen())
        try:
            change, self.carry = self.carry, None
            if change is None:
                change = self.changes.get(timeout=timeout) if timeout > 0 else self.changes.get_nowait()
            for _ in range(_DRAIN_MAX):
                self.events += 1
                self.dirty.add(change, trust_close=trust_close)
                change = self.changes.get_nowait()
            self.carry = change  # first in line for the next drain, after a look at `stop`
        except queue.Empty:
            pass
        if len(self.dirty) and (len(self.dirty), self.dirty.last_seen()) != before:
            if self.retry_at is not None:
                self.changed_since_failure = True
            if self.state in ("idle", "starting"):
                self.state = "pending"
            self.emit("changes")

    def check_signals(self, now: float) -> None:
        if self.hook.overflowed.is_set():
            self.hook.overflowed.clear()
            self._full(now, "overflow")
            self.emit("overflow", "the kernel dropped file events; running a full reconcile")
        if self.hook.watch_limit_hit.is_set():
            self.hook.watch_limit_hit.clear()
            if self.choice.mode == "inotify":
                # Folders without a watch would go unseen: poll the whole tree from now on.
                self._start_observer(
                    ObserverChoice("polling", "inotify ran out of watches", sysctl_advice(inotify_watch_limit()))
                )
                self._full(now, "watch limit")
        if now >= self.next_full_at and not self.full_pending:
            self._full(now, "interval")

    # -- the config file ----------------------------------------------------------------------

    def check_config(self, now: float) -> float | None:
        """Read the config file again once it has been quiet for the quiet window; returns how
        long to wait for that, or None."""
        seen = self.dirty.config_seen
        if seen is None or self.reload is None:
            return None
        due = seen + self.options.quiet_window_s
        if now < due:
            return due - now
        self.dirty.config_seen = None
        name = Path(self.setup.config_file or "config").name
        try:
            setup = self.reload()
        except AssetsyncError as exc:
            self.config_error = _one_line(exc)
            self.emit("config-error", f"{self.config_error}; keeping the last good config until "
                      f"{name} is fixed")
            return None
        self.config_error = None
        self._apply(setup, now)
        self.emit("config-reloaded", f"{name} changed: config reloaded; running a full reconcile")
        return None

    def _apply(self, setup: WatchSetup, now: float) -> None:
        """Watch under a reloaded config. Pending paths stay pending (files still being written
        stay held); a full reconcile publishes what the new config changes."""
        restart = setup.watch_key != self.setup.watch_key
        self.setup, self.options = setup, setup.options
        self.dirty.root, self.dirty.ignored = setup.root, setup.ignored
        self.dirty.toolkit, self.dirty.config_file = setup.toolkit, setup.config_file
        if restart:
            self._start_observer(choose_mode(setup.root, setup.options.polling), announce=False)
        self._full(now, "config")

    # -- deciding when to sync ----------------------------------------------------------------

    def windows(self) -> tuple[float, float]:
        quiet = self.options.quiet_window_s
        if isinstance(self.observer, TreePoller):
            # A file counts as quiet once a whole poll went by without it changing (the poller
            # stretches its interval on big or slow trees).
            quiet = max(quiet, self.observer.interval_s * 1.5)
        quiet = coalesce_window(quiet, self.remaining, self.budget.limit)
        return quiet, max(self.options.max_wait_s, quiet)

    def _read_budget(self, now: float) -> None:
        self.remaining = self.budget.remaining()
        self.budget_read_at = now

    def _ready_at(self, now: float) -> float:
        """When the pending batch (or full reconcile) is due."""
        quiet, max_wait = self.windows()
        due = self.dirty.due_at(quiet, max_wait)
        times = [t for t in (due, self.full_since + quiet if self.full_pending else None)
                 if t is not None]
        return min(times) if times else now

    def wall(self, at: float) -> float:
        """Convert a loop-clock time to the budget's wall clock, for display."""
        return self.budget.clock() + (at - self.clock())

    def step(self) -> float:
        """Sync if a batch is ready; return how long to wait for the next decision."""
        self.drain(0)
        now = self.clock()
        self.check_signals(now)
        config_wait = self.check_config(now)
        wait = self._decide(now)
        return wait if config_wait is None else min(wait, config_wait)

    def _decide(self, now: float) -> float:
        if not self.full_pending and not len(self.dirty):
            self.state, self.next_build_at = "idle", None
            return self.next_full_at - now
        if self.retry_at is not None and now < self.retry_at and not self.changed_since_failure:
            self._set_state("backoff", self.wall(self.retry_at))
            return self.retry_at - now
        # The shared ledger is read about once a second and when a batch is due, not after every
        # event of a burst: other processes spend the budget, and the hour gives slots back.
        if self.remaining < self.slots or now - self.budget_read_at >= 1.0:
            self._read_budget(now)
        if self.remaining < self.slots:
            return self._wait_for_budget()
        ready = self._ready_at(now)
        if now >= ready and self.budget_read_at < now:
            self._read_budget(now)
            if self.remaining < self.slots:
                return self._wait_for_budget()
            ready = self._ready_at(now)  # pacing may ask for a longer wait now
        if now < ready:
            self._set_state("pending", self.wall(ready))
            return ready - now
        held = self.dirty.held(now, self.options.settle_s)
        # Files still being written wait for the next batch. A full reconcile does not wait for
        # them (one written forever would hold every other change back): the engine keeps them
        # at their live version (`hold`), and they stay pending.
        if held and not self.full_pending and len(held) == len(self.dirty):
            self.state = "pending"
            return min(held.values()) - now
        reservation = self.budget.reserve(self.slots)
        if reservation is None:  # another process took the last slots
            self.remaining = 0
            return self._wait_for_budget()
        batch = self.dirty.take(held)
        self.run_sync(None if self.full_pending else batch, reservation, split_batch(held)[0])
        return 0.0

    def _wait_for_budget(self) -> float:
        next_at = self.budget.next_available_at(self.slots)
        self._set_state("budget", next_at)
        return max(0.05, next_at - self.budget.clock())

    # -- syncing ------------------------------------------------------------------------------

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
        self.last_error = _one_line(exc)
        self.remaining = self.budget.remaining()
        self.state, self.next_build_at = "backoff", self.wall(self.retry_at)
        # Shown once, by whoever displays the event; the log keeps it for --verbose and files.
        log.info("sync failed (retrying in %.0f s): %s", delay, self.last_error)
        log.debug("sync failure detail", exc_info=exc)
        paths, toolkit = (None, frozenset[str]()) if batch is None else split_batch(batch)
        self.emit("sync-failed", self.last_error, paths=paths, toolkit=toolkit)

    # -- the loop -----------------------------------------------------------------------------

    def _start_observer(self, choice: ObserverChoice, *, announce: bool = True) -> None:
        self._stop_observer()
        self.observer, self.choice = start_observer(
            choice,
            self.changes.put,
            self.setup.root,
            ignored=self.setup.ignored,
            poll_interval_s=self.options.poll_interval_s,
            clock=self.clock,
            extra=self.setup.toolkit.targets() + self._config_target(),
        )
        if announce:
            self.emit("started", self.choice.reason)
        if self.choice.advice:
            self.emit("advice", self.choice.advice)

    def _config_target(self) -> tuple[WatchTarget, ...]:
        """The config file's folder, for that file only (not when it is not watched)."""
        file = self.setup.config_file
        if file is None or self.reload is None:
            return ()
        path = Path(file)
        return (WatchTarget(path.parent, False, only_names(frozenset({path.name}))),)

    def _stop_observer(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=10)
            self.observer = None

    def run(self) -> WatchStatus:
        self.hook.install()
        try:
            self._start_observer(choose_mode(self.setup.root, self.options.polling))
            while not self.stop.is_set():
                wait = self.step()
                if wait > 0:
                    self.drain(min(wait, self.tick_s))
        finally:
            self._stop_observer()
            self.hook.uninstall()
        self.drain(0)
        self.state, self.next_build_at = "stopped", None
        self.emit("stopped")
        return self.status()
