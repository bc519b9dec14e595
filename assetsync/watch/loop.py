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

The loop's state and status are `watch/loop_state.py`'s; running a sync and taking its outcome,
`watch/loop_sync.py`'s.
"""

from __future__ import annotations

import queue
from pathlib import Path

from assetsync.errors import AssetsyncError
from assetsync.sync.budget import WINDOW_S
from assetsync.watch.events import WatchTarget, only_names, split_batch
from assetsync.watch.loop_state import one_line
from assetsync.watch.loop_sync import LoopSync
from assetsync.watch.mode import (
    ObserverChoice,
    choose_mode,
    inotify_watch_limit,
    start_observer,
    sysctl_advice,
)
from assetsync.watch.poll import TreePoller
from assetsync.watch.values import WatchSetup, WatchStatus

__all__ = ["WatchLoop", "coalesce_window"]

# Events folded per drain, so a flood (an archive unpacked into the folder) cannot keep the loop
# from noticing `stop`.
_DRAIN_MAX = 50_000


def coalesce_window(base_s: float, remaining: int, limit: int) -> float:
    """The quiet window to use with `remaining` of `limit` builds left this hour.

    Above half the budget it is `base_s`; below, it grows linearly towards the sustainable pace
    (an hour / limit, 36 s at 100) so bursts of edits coalesce into fewer builds.
    """
    half = limit / 2
    if remaining >= half:
        return base_s
    return max(base_s, (WINDOW_S / limit) * (1 - remaining / half))


class WatchLoop(LoopSync):
    """The state of one watch() call; `run()` runs it in the caller's thread."""

    # -- events -------------------------------------------------------------------------------

    def drain(self, timeout: float) -> None:
        """Fold queued events into the dirty set, waiting up to `timeout` for the first."""
        trust_close = self.choice.mode == "inotify"
        before = (len(self.dirty), self.dirty.last_seen())
        try:
            change, self.carry = self.carry, None
            if change is None:
                change = (
                    self.changes.get(timeout=timeout) if timeout > 0 else self.changes.get_nowait()
                )
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
                    ObserverChoice(
                        "polling",
                        "inotify ran out of watches",
                        sysctl_advice(inotify_watch_limit()),
                    )
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
            self.config_error = one_line(exc)
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
