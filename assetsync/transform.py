"""The transform stage: pure image recipes (bytes -> bytes) and the stage's entry points.

Lossless optimization of JPEG, PNG and GIF, channel variants within a byte budget, and the
never-larger rule. Options and profiles live in `assetsync.media`; caching and the process
pool in `assetsync.transform_cache`.
"""

from __future__ import annotations

from assetsync.media import Issue, OptimizeOptions, Profile, channel_warnings, parse_optimize_section

__all__ = [
    "Issue",
    "OptimizeOptions",
    "Profile",
    "channel_warnings",
    "parse_optimize_section",
]
