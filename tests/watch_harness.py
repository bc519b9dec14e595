"""Test harness for watch mode: watch() on a real folder in a thread, with a recording sync_fn.

The recording sync_fn is the `sync_fn` seam of watch(), a parameter: it notes each batch and
the bytes each batch's files held at that moment, which is what an engine would have deployed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from assetsync.results import SyncEvent
from assetsync.sync.budget import BuildBudget
from assetsync.watch.run import SyncFn, WatchEvent, WatchOptions, WatchStatus, watch

BOUND_S = 20.0  # an upper bound for things that take milliseconds; never a timing assertion


@dataclass(frozen=True, slots=True)
class FakeResult:
    """The shape of the engine's SyncResult that watch() reads."""

    build_sid: str | None


@dataclass(frozen=True, slots=True)
class Cfg:
    """The part of assetsync.config.Config that watch() reads."""

    source: Path
    state_dir: Path
    watch: WatchOptions
    ignore: tuple[str, ...] = ()


class FakeWallClock:
    """The budget's wall clock, moved by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """A sync_fn that records batches; `fail` maps call number (1-based) → exception to raise.

    With `inner` (e.g. the real engine) each call is passed on and its result or error kept.
    `holds` keeps each call's `hold` (files still being written).
    """

    root: Path
    builds: bool = True
    fail: dict[int, BaseException] = field(default_factory=dict)
    inner: SyncFn | None = None
    calls: list[frozenset[str] | None] = field(default_factory=list)
    holds: list[frozenset[str]] = field(default_factory=list)
    seen: list[dict[str, bytes | None]] = field(default_factory=list)
    outcomes: list[object] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, paths: frozenset[str] | None, /, *, hold: frozenset[str] = frozenset(),
                 on_event: Callable[[SyncEvent], None] | None = None) -> object:
        if self.inner is not None:
            return self._pass_on(paths, self.inner, hold, on_event or (lambda _e: None))
        return self._record(paths, hold)

    def _pass_on(self, paths: frozenset[str] | None, inner: SyncFn, hold: frozenset[str],
                 on_event: Callable[[SyncEvent], None]) -> object:
        self._record(paths, hold)
        try:
            outcome = inner(paths, hold=hold, on_event=on_event)
        except Exception as exc:
            outcome = exc
            raise
        finally:
            with self.cond:
                self.outcomes.append(outcome)
                self.cond.notify_all()
        return outcome

    def wait_outcomes(self, count: int) -> list[object]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.outcomes) >= count, timeout=BOUND_S), self.outcomes
            return list(self.outcomes)

    def _record(self, paths: frozenset[str] | None, hold: frozenset[str] = frozenset()) -> FakeResult:
        snapshot: dict[str, bytes | None] = {}
        for rel in sorted(paths or ()):
            target = self.root / rel
            snapshot[rel] = target.read_bytes() if target.is_file() else None
        with self.cond:
            self.calls.append(paths)
            self.holds.append(hold)
            self.seen.append(snapshot)
            number = len(self.calls)
            self.cond.notify_all()
        if number in self.fail:
            raise self.fail[number]
        # a path batch deploys a build; a full reconcile of an unchanged tree does not
        return FakeResult(f"ZB{number:032x}" if self.builds and paths else None)

    def wait_calls(self, count: int) -> list[frozenset[str] | None]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= count, timeout=BOUND_S), self.calls
            return list(self.calls)

    def wait_for_path(self, rel: str) -> int:
        """Index of the first call (after those already checked) whose batch includes `rel`."""
        with self.cond:
            found = self.cond.wait_for(
                lambda: any(c is not None and rel in c for c in self.calls), timeout=BOUND_S
            )
            assert found, f"{rel} never synced; calls: {self.calls}"
            return next(i for i, c in enumerate(self.calls) if c is not None and rel in c)

    def all_paths(self) -> set[str]:
        with self.cond:
            return {p for c in self.calls if c is not None for p in c}

    def last_seen_content(self, rel: str) -> bytes | None:
        with self.cond:
            return [s[rel] for s in self.seen if rel in s][-1]


@dataclass
class Running:
    """A watch() running in a thread; `events` collects what it reported."""

    thread: threading.Thread
    stop: threading.Event
    events: list[WatchEvent] = field(default_factory=list)
    result: WatchStatus | None = None
    error: BaseException | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on_event(self, event: WatchEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_event(self, test: Callable[[WatchEvent], bool]) -> WatchEvent:
        with self.cond:
            assert self.cond.wait_for(lambda: any(test(e) for e in self.events), timeout=BOUND_S)
            return next(e for e in self.events if test(e))


@contextmanager
def watching(
    root: Path,
    recorder: Recorder,
    budget: BuildBudget,
    options: WatchOptions = WatchOptions(),
    *,
    state_dir: Path | None = None,
    ignore: tuple[str, ...] = (),
) -> Iterator[Running]:
    """Run watch() until the block ends; the block starts after the first full reconcile."""
    cfg = Cfg(root, state_dir or root.parent / "state", options, ignore)
    with run_watch(cfg, recorder, budget) as running:
        yield running


@contextmanager
def run_watch(config: object, recorder: Recorder, budget: BuildBudget,
              **watch_kw: object) -> Iterator[Running]:
    """watch(config, ...) in a thread until the block ends (a `Cfg`, or a real `Config` with
    `options=` among `watch_kw`); the block starts once the first full reconcile was asked."""
    stop = threading.Event()
    running = Running(threading.Thread(target=lambda: None), stop)

    def target() -> None:
        try:
            running.result = watch(
                config, stop=stop, sync_fn=recorder, budget=budget,  # type: ignore[arg-type]
                on_event=running.on_event, tick_s=0.05, **watch_kw,  # type: ignore[arg-type]
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            running.error = exc
            for cond in (running.cond, recorder.cond):  # wake whoever waits
                with cond:
                    cond.notify_all()

    running.thread = threading.Thread(target=target, daemon=True)
    running.thread.start()
    try:
        with recorder.cond:
            recorder.cond.wait_for(lambda: bool(recorder.calls) or running.error is not None, timeout=BOUND_S)
        assert running.error is None, running.error
        assert recorder.calls[:1] == [None], "a watch starts with a full reconcile"
        yield running
    finally:
        stop.set()
        running.thread.join(BOUND_S)
        assert not running.thread.is_alive()


def pause(seconds: float) -> None:
    """Let time pass on purpose (writers that stall mid-save), never to wait for a result."""
    time.sleep(seconds)
