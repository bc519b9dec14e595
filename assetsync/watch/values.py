"""The values watch mode hands out and takes in: the `SyncFn` it calls, the `WatchStatus` and
`WatchEvent` it reports, and the `WatchSetup` it watches (from one config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from assetsync.frozen import field, frozen
from assetsync.results import SyncEvent
from assetsync.watch.events import Ignored, ToolkitPaths
from assetsync.watch.options import WatchOptions

__all__ = ["SyncFn", "WatchEvent", "WatchSetup", "WatchStatus"]


class SyncFn(Protocol):
    """Runs one sync for watch(): `paths` None means a full reconcile, else the source-relative
    paths that changed; `hold` names source files still being written, which must stay at their
    live version; `on_event` takes the sync's progress events (`SyncEvent`), which tell watch
    whether the target answers. `assetsync.watch.engine.EngineSync` is the engine's."""

    def __call__(self, paths: frozenset[str] | None, /, *, hold: frozenset[str],
                 on_event: Callable[[SyncEvent], None]) -> object: ...



@frozen
class WatchStatus:
    """A snapshot of the watch loop for the status line. Times are the budget's wall clock.

    `state` is one of "starting", "idle", "pending", "syncing", "budget" (waiting for the build
    budget), "backoff" (waiting to retry a failed sync), "stopped". `events` counts filesystem
    events received (editor temp files and ignored paths included), `builds` builds made.
    `full_reconcile_reason` says why one is pending: "start", "overflow" (events were lost),
    "watch limit", "config" (the config file changed) or "interval" (the periodic check, no sign
    of a change). `held_back` counts files that cannot be published, kept at their live version;
    `reachable` is False while the target does not answer; `config_error` is the broken config
    file's error while the last good config stays in force.
    """

    state: str
    mode: str
    pending: int
    full_reconcile_pending: bool
    events: int
    syncs: int
    failures: int
    builds: int
    budget_remaining: int
    budget_limit: int
    last_deploy_at: float | None = None
    next_build_at: float | None = None
    last_error: str | None = None
    full_reconcile_reason: str | None = None
    held_back: int = 0
    reachable: bool = True
    config_error: str | None = None


@frozen
class WatchEvent:
    """Progress from watch(): `kind` is "started", "advice", "changes", "overflow",
    "sync-started", "synced", "sync-failed", "waiting" (the wait or the time of the next build
    changed: pending, budget or backoff), "config-reloaded", "config-error" (the config file
    is broken: the last good config stays), "held-back" (files newly held back because they
    cannot be published, one `path: problem` line each, joined by "; "), "unreachable" (the
    target stopped answering; `message` says how), "reachable" (it answers again) or "stopped".

    `paths` are the source-relative paths a sync covers (None: a full reconcile), `toolkit` the
    changed Toolkit files outside the source it also covers (absolute paths: functions,
    package.json, the env file)."""

    kind: str
    status: WatchStatus
    message: str = ""
    paths: frozenset[str] | None = None
    result: object = None
    toolkit: frozenset[str] = frozenset()


@frozen
class WatchSetup:
    """What the loop watches, from one config: the source folder, what to drop there, the
    Toolkit side, the `[watch]` options and the config file (absolute, normalized; None: it is
    not watched). Built by `assetsync.watch.run`, again after each reload of the config."""

    root: Path
    options: WatchOptions
    ignored: Ignored
    toolkit: ToolkitPaths = field(default_factory=ToolkitPaths)
    config_file: str | None = None
    # What the observer depends on: a reload that changes it restarts the observer.
    watch_key: tuple[object, ...] = ()
