"""Watch mode: watchdog events mark paths dirty; a debounced loop reconciles them via the engine.

This module is the public face: `watch()` and its types, and the `[watch]` section parser that
`config.parse_config` uses. The pieces: `options` (settings), `events` (events → dirty paths),
`mode` (inotify or polling), `loop` (debounce, budget, retries, config reloads; its state in
`loop_state`, its syncs in `loop_sync`), `reach` (does the target answer), `engine` (the
engine's sync_fn). In a Serverless Toolkit project it also watches what a sync deploys beside
the source folder (the functions folder, package.json, the env file): see `toolkit_paths`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from assetsync.config import Config
from assetsync.errors import ConfigError
from assetsync.functions.local import functions_folder
from assetsync.scan.rules import IgnoreRules
from assetsync.sync.budget import BuildBudget, builds_made
from assetsync.watch.events import ToolkitPaths, ignored_by
from assetsync.watch.loop import WatchLoop, coalesce_window
from assetsync.watch.options import WatchOptions, parse_watch_section
from assetsync.watch.values import SyncFn, WatchEvent, WatchSetup, WatchStatus

__all__ = [
    "SyncFn",
    "ToolkitPaths",
    "WatchEvent",
    "WatchOptions",
    "WatchSetup",
    "WatchStatus",
    "builds_made",
    "coalesce_window",
    "parse_watch_section",
    "toolkit_paths",
    "watch",
    "watch_setup",
]


class WatchConfig(Protocol):
    """What watch() reads from `assetsync.config.Config`."""

    @property
    def source(self) -> Path: ...

    @property
    def state_dir(self) -> Path: ...

    @property
    def watch(self) -> WatchOptions: ...

    @property
    def ignore(self) -> tuple[str, ...]: ...


def toolkit_paths(config: WatchConfig) -> ToolkitPaths:
    """The Toolkit files a sync of `config` deploys besides the source folder, as
    `functions_local.load_functions` finds them: the functions folder, and package.json and the
    env file (read only when there is a functions folder). Empty for a config that is not a
    loaded `Config` (it names no functions folder).

    Raises:
        ConfigError: `[project] functions` names a folder that does not exist.
    """
    if not isinstance(config, Config):
        return ToolkitPaths()
    folder = functions_folder(config)
    if folder is None:
        return ToolkitPaths()
    env_file = Path(config.env_file) if config.env_file is not None else folder.parent / ".env"
    # Resolved as the events will name them (a symlinked folder is watched where it points).
    files = tuple(f.parent.resolve() / f.name for f in (folder.parent / "package.json", env_file))
    return ToolkitPaths(folder.resolve(), tuple(dict.fromkeys(files)))


def watch_setup(config: WatchConfig, options: WatchOptions | None = None) -> WatchSetup:
    """What watch() watches for `config` (`options` overrides its `[watch]` section).

    Raises:
        ConfigError: the source folder, or the functions folder, does not exist.
    """
    root = Path(config.source).resolve()
    if not root.is_dir():
        raise ConfigError(f"source folder {root} does not exist; create it or fix [project] source",
                          key="[project] source")
    state_dir = Path(config.state_dir).resolve()
    excluded = (state_dir.relative_to(root).as_posix(),) if state_dir.is_relative_to(root) else ()
    chosen = options or config.watch
    toolkit = toolkit_paths(config)
    config_file = (os.path.normpath(Path(config.config_path).resolve())
                   if isinstance(config, Config) else None)
    return WatchSetup(
        root, chosen, ignored_by(IgnoreRules(patterns=tuple(config.ignore), excluded=excluded)),
        toolkit, config_file,
        watch_key=(root, tuple(config.ignore), excluded, toolkit, chosen.polling,
                   chosen.poll_interval_s, config_file),
    )


def watch(
    config: WatchConfig,
    *,
    stop: threading.Event,
    sync_fn: SyncFn,
    budget: BuildBudget,
    clock: Callable[[], float] = time.monotonic,
    on_event: Callable[[WatchEvent], None] | None = None,
    options: WatchOptions | None = None,
    tick_s: float = 0.25,
    services: int = 1,
    reload: Callable[[], WatchConfig] | None = None,
) -> WatchStatus:
    """Watch `config.source` and keep it published until `stop` is set.

    With a functions folder (`toolkit_paths`), changes to it, to package.json and to the env
    file trigger a sync too: its `paths` then hold only the batch's source paths (possibly none),
    since every sync re-reads the Toolkit side anyway.

    Args:
        config: the loaded config (source folder, state folder, `[watch]` options).
        stop: set it (from a signal handler or another thread) to stop after the current sync.
        sync_fn: runs one sync (`SyncFn`); `paths` None means a full reconcile, a frozenset of
            relative POSIX paths (files or folders; a folder means everything under it) a
            reconcile of those and of the Toolkit side (an empty set: only the Toolkit side
            changed); `hold` names files still being written (their live version stays);
            `on_event` takes the sync's progress events. It runs in this thread, so only one
            sync is ever in flight.
        budget: the shared build budget; every sync reserves a slot first and settles it with
            the number of builds the result reports (`build_sid`/`build_sids`).
        clock: monotonic seconds for debouncing.
        on_event: receives a `WatchEvent` on every state change.
        options: overrides `config.watch` (until a reload: the reloaded config's `watch` then).
        tick_s: longest wait between checks of `stop`, the budget and overflow signals.
        services: how many services the site spans now (a sharded site's sync makes one build
            per service): the first sync reserves that many build slots; later ones learn it
            from each result.
        reload: reads the config file (`config.config_path`) again after it changed, and makes
            `sync_fn` use it from then on (`EngineSync.reload`); raises `AssetsyncError` when
            the file is broken, and the last good config stays. None: the file is not watched.

    Returns:
        The final status; `pending` > 0 means changes were left unsynced.

    Raises:
        ConfigError: the source folder does not exist.
        ConfigError, AuthenticationError: from `sync_fn`; nothing a retry could fix.
    """
    loop = WatchLoop(
        watch_setup(config, options),
        stop=stop,
        sync_fn=sync_fn,
        budget=budget,
        clock=clock,
        on_event=on_event,
        tick_s=tick_s,
        services=services,
        reload=(lambda: watch_setup(reload())) if reload is not None else None,
    )
    return loop.run()
