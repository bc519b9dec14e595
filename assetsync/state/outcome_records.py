"""The state's side of the carried last outcome (`assetsync.state.last_outcome`): the outcome
kept per environment, and what must still hold before it stands in for a sync's work.
"""

from __future__ import annotations

from typing import cast

from assetsync.state.record_tables import RecordTables

__all__ = ["OutcomeRecords"]


class OutcomeRecords(RecordTables):
    """Mixin for `State`: carried outcomes and the checks they stand on."""

    def versions_generation(self) -> int:
        """A count that moves whenever a recorded version is added, replaced or forgotten: kept
        by triggers on the table, so no writer can forget to move it."""
        row = self._one("SELECT n FROM versions_generation WHERE id = 1", ())
        return int(cast("int", row[0])) if row else 0

    def state_generation(self) -> int:
        """A value that changes, to a random one, whenever anything a plan reads is written
        (every table but the stat cache's): kept by triggers, as `versions_generation` is."""
        row = self._one("SELECT n FROM state_generation WHERE id = 1", ())
        return int(cast("int", row[0])) if row else 0

    def outcome_checks(
        self, target: str, service_sid: str, environment: str
    ) -> tuple[str | None, bool, int] | None:
        """What a carried outcome must know before it stands in, in one read: the environment's
        recorded build, whether a build is pending there or an upload journalled for the
        service, and `versions_generation()` (None: the environment is not recorded)."""
        row = self._one(
            "SELECT e.build_sid, "
            "EXISTS (SELECT 1 FROM pending p WHERE p.target = e.target "
            "AND p.service_sid = e.service_sid AND p.environment_sid = e.environment_sid) "
            "OR EXISTS (SELECT 1 FROM upload_intents i WHERE i.target = e.target "
            "AND i.service_sid = e.service_sid), "
            "(SELECT n FROM versions_generation WHERE id = 1) "
            "FROM environments e WHERE e.target = ? AND e.service_sid = ? AND e.unique_name = ?",
            (target, service_sid, environment),
        )
        if row is None:
            return None
        build_sid, busy, generation = row
        return (None if build_sid is None else str(build_sid), bool(busy),
                int(cast("int", generation or 0)))

    def carried_outcome(self, target: str, service: str, environment: str) -> bytes | None:
        """The last outcome remembered for an environment (by unique names), if any."""
        row = self._one(
            "SELECT data FROM carried WHERE target = ? AND service = ? AND environment = ?",
            (target, service, environment),
        )
        return bytes(cast("bytes", row[0])) if row else None

    def save_carried_outcome(
        self, target: str, service: str, environment: str, data: bytes
    ) -> None:
        """Remember an environment's outcome, replacing the last one."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO carried VALUES (?, ?, ?, ?)",
                (target, service, environment, data),
            )
