"""Watch mode: watchdog events mark paths dirty, a debounced loop reconciles them through the engine.

The watch loop itself is being written; the `[watch]` config section lives in
`assetsync.watch_options` and is re-exported here, where `config.parse_config` looks for it.
"""

from __future__ import annotations

from assetsync.watch_options import WatchOptions, parse_watch_section

__all__ = ["WatchOptions", "parse_watch_section"]
