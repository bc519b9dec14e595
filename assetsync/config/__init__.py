"""Configuration: `.assetsync.toml` + environment + flags -> a typed `Config`, read once.

`sections` holds the value types and key checks, `env` every environment variable assetsync
reads, `load` finding and parsing the file. Precedence: flag > environment > file > default.
"""

from __future__ import annotations

from assetsync.config.load import (
    CONFIG_FILENAME,
    find_config,
    load_config,
    parse_config,
    target_key,
)
from assetsync.config.sections import Config, Credentials, SyncOptions, TargetConfig

__all__ = [
    "CONFIG_FILENAME",
    "Config",
    "Credentials",
    "SyncOptions",
    "TargetConfig",
    "find_config",
    "load_config",
    "parse_config",
    "target_key",
]
