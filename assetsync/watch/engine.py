"""The sync `assetsync watch` runs: one engine sync per batch, under the config as last (re)loaded.

`EngineSync` is the `sync_fn` the CLI hands to `watch()` (tests use it too): it keeps the scan
memory between syncs (so a batch re-examines only its paths), holds back files still being
written and files that cannot be published (the rest of the site still goes), passes every
progress event to the watch loop and to the caller's display, and `reload()` re-reads the
config file when the loop saw it change.
"""

from __future__ import annotations

from collections.abc import Callable

from assetsync.config import Config
from assetsync.errors import ConfigError
from assetsync.results import EventCallback, SyncEvent, SyncResult

__all__ = ["EngineSync"]


class EngineSync:
    """A `SyncFn` over the real engine (`assetsync.sync.run.sync`).

    Args:
        config: the config the watch starts with.
        load: reads the config file again (the CLI's applies its flags too); raises
            `AssetsyncError` when the file is broken, and the last good config stays.
        on_event: also receives each sync's progress events (the CLI's upload counter).
    """

    def __init__(self, config: Config, *, load: Callable[[], Config] | None = None,
                 on_event: EventCallback | None = None) -> None:
        from assetsync.sync.run import ScanMemory  # the engine's imports: only when syncing

        self.config = config
        self._load = load
        self._on_event = on_event
        self._memory = ScanMemory()

    def __call__(self, paths: frozenset[str] | None, /, *, hold: frozenset[str] = frozenset(),
                 on_event: EventCallback | None = None) -> SyncResult:
        from assetsync.sync.run import sync

        def both(event: SyncEvent) -> None:
            if self._on_event is not None:
                self._on_event(event)
            if on_event is not None:
                on_event(event)

        # The watch loop keeps the account's build budget itself; watch is interactive, so a
        # file that cannot be published is held back rather than stopping every other edit.
        return sync(self.config, paths=paths, hold=hold, hold_blocked=True, on_event=both,
                    scan_memory=self._memory, spend_budget=False)

    def reload(self) -> Config:
        """Read the config file again and sync under it from now on (the last good config stays
        when this raises)."""
        # The scan memory stays: it is keyed by source and state folder, and watch runs a full
        # reconcile (a whole scan) after every reload.
        if self._load is not None:
            config = self._load()
            if not config.source.is_dir():  # as watch() checks at start
                raise ConfigError(f"{config.config_path}: source folder {config.source} does not "
                                  "exist; create it or fix [project] source",
                                  key="[project] source", file=str(config.config_path))
            self.config = config
        return self.config
