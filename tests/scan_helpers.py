"""Shared by the scan tests: real trees in temporary folders and an in-memory stat cache."""

from __future__ import annotations

import time
from pathlib import Path

import xxhash

from assetsync.scan.rules import StatEntry
from assetsync.scan.stat_table import RACY_WINDOW_NS, StatTable

LATER = time.time_ns() + 3600 * 10**9  # a scan "an hour later": nothing is racy any more


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def digest_of(data: bytes) -> str:
    return "xxh3_128:" + xxhash.xxh3_128(data).hexdigest()


class MemoryCache:
    """A StatCache in memory, to observe what the scanner stores and drops."""

    def __init__(self) -> None:
        self.table = StatTable()
        self.saves = 0

    @property
    def entries(self) -> dict[str, StatEntry]:
        return {k: StatEntry._make(v) for k, v in self.table.rows().items()}

    def put(self, entry: StatEntry) -> None:
        self.table = self.table.with_changes([entry], [], racy_ns=RACY_WINDOW_NS)

    def stat_table(self) -> StatTable:
        return self.table

    def save_stat_table(self, table: StatTable) -> None:
        self.saves += 1
        self.table = table
