"""The `[watch]` section parser: defaults, every key, and one clear error per bad value."""

from __future__ import annotations

import pytest

from assetsync.errors import ConfigError
from assetsync.watch.run import WatchOptions, parse_watch_section

FILE = "/proj/.assetsync.toml"


def test_empty_table_gives_documented_defaults() -> None:
    options = parse_watch_section({}, file=FILE)
    assert options == WatchOptions()
    assert (options.quiet_window_s, options.max_wait_s, options.builds_per_hour) == (0.3, 2.0, 100)
    assert options.polling == "auto"


def test_every_key_is_read() -> None:
    options = parse_watch_section(
        {
            "quiet_window_s": 0.5,
            "max_wait_s": 3,
            "settle_s": 1,
            "builds_per_hour": 60,
            "reconcile_interval_s": 120,
            "polling": "on",
            "poll_interval_s": 5,
        },
        file=FILE,
    )
    assert options == WatchOptions(
        quiet_window_s=0.5,
        max_wait_s=3.0,
        settle_s=1.0,
        builds_per_hour=60,
        reconcile_interval_s=120.0,
        polling="on",
        poll_interval_s=5.0,
    )
    assert isinstance(options.max_wait_s, float)


@pytest.mark.parametrize(("value", "expected"), [(True, "on"), (False, "off"), ("auto", "auto")])
def test_polling_accepts_booleans_and_names(value: object, expected: str) -> None:
    assert parse_watch_section({"polling": value}, file=FILE).polling == expected


@pytest.mark.parametrize(
    ("table", "key", "hint"),
    [
        ({"quiet_ms": 300}, "quiet_ms", "quiet_window_s"),
        ({"quiet_window_s": "300ms"}, "quiet_window_s", "number of seconds"),
        ({"quiet_window_s": True}, "quiet_window_s", "number of seconds"),
        ({"quiet_window_s": 0}, "quiet_window_s", "0.01 to 60"),
        ({"max_wait_s": float("nan")}, "max_wait_s", "number of seconds"),
        ({"builds_per_hour": 101}, "builds_per_hour", "1 to 100"),
        ({"builds_per_hour": 0}, "builds_per_hour", "1 to 100"),
        ({"builds_per_hour": 50.5}, "builds_per_hour", "whole number"),
        ({"polling": "sometimes"}, "polling", '"auto", "on" or "off"'),
        ({"reconcile_interval_s": 1}, "reconcile_interval_s", "10 to 86400"),
        ({"quiet_window_s": 3, "max_wait_s": 2}, "max_wait_s", "at least as long"),
    ],
)
def test_bad_values_name_the_key_and_the_file(table: dict[str, object], key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_watch_section(table, file=FILE)
    message = str(info.value)
    assert f"[watch] {key}" in message
    assert FILE in message
    assert hint in message
    assert info.value.file == FILE
    assert info.value.key == f"watch.{key}"
