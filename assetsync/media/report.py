"""What one encode of the transform stage did, for `assetsync optimize --report` and `plan`."""

from __future__ import annotations

from assetsync.frozen import frozen

__all__ = ["FileReport"]


@frozen
class FileReport:
    """One encode, for `assetsync optimize --report`: sizes before and after, time, outcome.

    `outcome` is "optimized" (smaller output published), "kept" (original published),
    "variant" (derived copy), "failed" (see the issues).
    """

    path: str
    source: str
    variant: str | None
    before: int
    after: int
    seconds: float
    cached: bool
    outcome: str
    note: str
