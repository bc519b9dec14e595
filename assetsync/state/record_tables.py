"""The base of the state's record mixins: the two SQLite primitives `State` provides (`_write`,
a committed transaction; `_read`, rows) and the single-row read every mixin uses.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable

__all__ = ["RecordTables"]


class RecordTables:
    """Mixin base for `State`: needs `_write()` (a committed transaction) and `_read(sql, args)`."""

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, args: Iterable[object] = ()) -> list[tuple[object, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, args: Iterable[object]) -> tuple[object, ...] | None:
        rows = self._read(sql, args)
        return rows[0] if rows else None
