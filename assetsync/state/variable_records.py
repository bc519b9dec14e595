"""The state's record of an environment's Variables: keyed digests, never values, under a key
of the state's own (what the offline `plan` diffs the .env against).
"""

from __future__ import annotations

from collections.abc import Mapping

from assetsync.state.record_tables import RecordTables
from assetsync.state.schema import VARIABLE_KEY_META

__all__ = ["VariableRecords"]


class VariableRecords(RecordTables):
    """Mixin for `State`: the Variables' keyed digests per environment."""

    def variable_digest_key(self) -> bytes | None:
        """This state's own key for variable digests (None: a state that has none, which no
        migrated state is; a plan then has no digest to match)."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (VARIABLE_KEY_META,))
        try:
            return bytes.fromhex(str(row[0])) if row else None
        except ValueError:
            return None

    def variable_digests(
        self, target: str, service_sid: str, environment_sid: str
    ) -> dict[str, str | None]:
        """Key -> digest of the environment's Variables as the last sync left them (None: a
        key it kept without knowing the value); empty when no sync recorded them."""
        rows = self._read(
            "SELECT key, digest FROM variable_digests "
            "WHERE target = ? AND service_sid = ? AND environment_sid = ? ORDER BY key",
            (target, service_sid, environment_sid),
        )
        return {str(k): None if d is None else str(d) for k, d in rows}

    def record_variable_digests(
        self, target: str, service_sid: str, environment_sid: str,
        digests: Mapping[str, str | None],
    ) -> None:
        """Replace the environment's recorded variable digests, in one transaction."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM variable_digests "
                "WHERE target = ? AND service_sid = ? AND environment_sid = ?",
                (target, service_sid, environment_sid),
            )
            conn.executemany(
                "INSERT INTO variable_digests VALUES (?, ?, ?, ?, ?)",
                ((target, service_sid, environment_sid, key, digest)
                 for key, digest in sorted(digests.items())),
            )
