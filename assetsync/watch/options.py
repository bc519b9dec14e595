"""The `[watch]` config section: `WatchOptions` and its pure parser (no I/O, no clock)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from assetsync.errors import ConfigError
from assetsync.frozen import frozen
from assetsync.limits import BUILDS_PER_HOUR

__all__ = ["PollingMode", "WatchOptions", "parse_watch_section"]

PollingMode = Literal["auto", "on", "off"]


@frozen
class WatchOptions:
    """How `assetsync watch` debounces changes and spends builds.

    Attributes:
        quiet_window_s: deploy once no change has been seen for this long.
        max_wait_s: never hold a batch longer than this after its first change, even while
            changes keep coming (a pure trailing debounce starves; watchdog bug #998).
        settle_s: a file written in place with no close event yet counts as still being
            written until it has been quiet this long.
        builds_per_hour: this machine's share of the account's rolling-hour build budget
            (Twilio allows 100 per account; set lower so other tools keep a share).
        reconcile_interval_s: a full reconcile runs this often even without events, to catch
            what inotify never reports (mmap writes, changes made by other hosts).
        polling: "auto" polls on network/FUSE mounts or when the inotify watch limit is hit,
            "on" always polls, "off" never does.
        poll_interval_s: how often the tree is re-stated in polling mode.
    """

    quiet_window_s: float = 0.3
    max_wait_s: float = 2.0
    settle_s: float = 2.0
    builds_per_hour: int = BUILDS_PER_HOUR
    reconcile_interval_s: float = 300.0
    polling: PollingMode = "auto"
    poll_interval_s: float = 2.0


DEFAULT_WATCH_OPTIONS = WatchOptions()

# key -> (lowest allowed, highest allowed) for the numeric keys, in the key's unit.
_SECONDS_KEYS: dict[str, tuple[float, float]] = {
    "quiet_window_s": (0.01, 60.0),
    "max_wait_s": (0.01, 600.0),
    "settle_s": (0.0, 600.0),
    "reconcile_interval_s": (10.0, 86_400.0),
    "poll_interval_s": (0.1, 3600.0),
}
_KNOWN_KEYS = (*_SECONDS_KEYS, "builds_per_hour", "polling")


def _fail(file: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{file}: [watch] {key} {problem}", key=f"watch.{key}", file=file)


def _seconds(file: str, key: str, value: object) -> float:
    low, high = _SECONDS_KEYS[key]
    # bool is an int subclass: `quiet_window_s = true` is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(file, key, f"must be a number of seconds, e.g. {key} = {low:g}")
    if not low <= value <= high:
        raise _fail(file, key, f"is {value:g}; use a value from {low:g} to {high:g} seconds")
    return float(value)


def _builds(file: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(file, "builds_per_hour", "must be a whole number, e.g. builds_per_hour = 60")
    if not 1 <= value <= BUILDS_PER_HOUR:
        raise _fail(
            file,
            "builds_per_hour",
            f"is {value}; Twilio allows {BUILDS_PER_HOUR} builds per hour per account, "
            f"so use 1 to {BUILDS_PER_HOUR}",
        )
    return value


def _polling(file: str, value: object) -> PollingMode:
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value in ("auto", "on", "off"):
        return value
    raise _fail(file, "polling", f'is {value!r}; use "auto", "on" or "off"')


def parse_watch_section(table: Mapping[str, object], *, file: str) -> WatchOptions:
    """Validate a `[watch]` table from `file` into `WatchOptions` (missing keys take defaults).

    Raises:
        ConfigError: an unknown key, a value of the wrong type or out of range; the message
            names `[watch] <key>` and the file.
    """
    for key in table:
        if key not in _KNOWN_KEYS:
            raise _fail(
                file, key, f"is not a known key; use one of: {', '.join(sorted(_KNOWN_KEYS))}"
            )
    values: dict[str, object] = {}
    for key, value in table.items():
        if key in _SECONDS_KEYS:
            values[key] = _seconds(file, key, value)
        elif key == "builds_per_hour":
            values[key] = _builds(file, value)
        else:
            values[key] = _polling(file, value)
    options = WatchOptions(**values)  # type: ignore[arg-type]
    if options.max_wait_s < options.quiet_window_s:
        raise _fail(
            file,
            "max_wait_s",
            f"({options.max_wait_s:g}) is shorter than "
            f"quiet_window_s ({options.quiet_window_s:g}); "
            "make it at least as long",
        )
    return options
