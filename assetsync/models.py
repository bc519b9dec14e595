"""Frozen value types shared by every stage: visibility, digests, scanned and published files."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "DIGEST_PREFIX",
    "PublishedFile",
    "ScannedFile",
    "Visibility",
]

# Digests always carry their algorithm so a future change of hash can never be mistaken
# for a content change (or worse, a match).
DIGEST_PREFIX = "xxh3_128:"


class Visibility(StrEnum):
    """Twilio's asset visibility; the values are the API's strings."""

    PUBLIC = "public"
    PROTECTED = "protected"
    PRIVATE = "private"


class ScannedFile(NamedTuple):
    """One regular file found under the source folder, with its content digest.

    `rel_path` is POSIX-style and relative to the source folder (no leading slash). A
    NamedTuple, not a dataclass: a no-change scan builds 10,000s of these from the stat cache's
    columns in one C-level `map` (bench/bench_scan.py); it is immutable all the same. The stat
    fields the digest was validated under live in the stat cache, not here.
    """

    rel_path: str
    size: int
    digest: str


class PublishedFile(NamedTuple):
    """One asset to publish: the bytes at `content_path` under the published `path`.

    `path` starts with `/`. `source` is the scanned file it came from (its `rel_path`);
    `content_path` is that file, or a transform-cache file for optimized output and variants:
    a `str`, since every sync makes one per file and a `Path` costs ~1 µs more each.
    `variant` names the optimize profile that produced it (None for the file itself). A
    NamedTuple like `ScannedFile`: every sync classifies every file into one of these.
    """

    path: str
    visibility: Visibility
    digest: str
    size: int
    source: str
    content_path: str
    content_type: str
    variant: str | None = None
