"""The state's records of builds: each build and the version SIDs it holds, its manifest, the
pending-operation journal (a build still to deploy), and how much of that history is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from assetsync.state.record_tables import RecordTables
from assetsync.state.records import BuildRecord, PendingOperation

__all__ = ["KEPT_BUILDS_PER_ENVIRONMENT", "BuildRecords"]

# Builds remembered per environment besides the live and pending ones. An older one could
# rarely be rebuilt anyway: Twilio deletes an undeployed build after 24 hours and a version 7
# days after no build uses it (reference/api-contract.md, "Retention").
KEPT_BUILDS_PER_ENVIRONMENT = 10


class BuildRecords(RecordTables):
    """Mixin for `State`: builds, their manifests and the pending journal."""

    def record_build(
        self,
        target: str,
        service_sid: str,
        *,
        build_sid: str,
        environment_sid: str | None,
        status: str,
        version_sids: Sequence[str],
        created_at: str | None = None,
        manifest: str | None = None,
        pending: bool = False,
    ) -> None:
        """Remember a build and the version SIDs it holds (or update its status).

        In the same transaction: its `manifest` (the API's JSON of it), if given, and with
        `pending` the journal row that makes a rerun deploy it to `environment_sid`.
        """
        import json  # here: `plan`, which records no build, need not load it (~1 ms)

        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO builds VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    target,
                    service_sid,
                    build_sid,
                    environment_sid,
                    status,
                    json.dumps(sorted(version_sids)),
                    created_at,
                ),
            )
            if manifest is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO build_manifests VALUES (?, ?, ?, ?)",
                    (target, service_sid, build_sid, manifest),
                )
            if pending and environment_sid is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
                    (target, service_sid, environment_sid, build_sid, created_at),
                )

    def prune_history(self, keep: int = KEPT_BUILDS_PER_ENVIRONMENT) -> None:
        """Bound what each deployment adds (~40 KB of SIDs and a manifest per 1,000 files),
        in one transaction: keep the builds an environment or the pending journal names, and
        the newest `keep` builds of each environment besides those (rollback's candidates),
        each with its manifest. A live build's manifest stands in for fetching it; a
        candidate's gives a rollback the functions, dependencies and runtime of that build
        when Twilio has deleted it (undeployed builds go after 24 h)."""
        named = ("SELECT target, service_sid, build_sid FROM environments "
                 "WHERE build_sid IS NOT NULL "
                 "UNION SELECT target, service_sid, build_sid FROM pending")
        with self._write() as conn:
            conn.execute(
                f"DELETE FROM builds WHERE (target, service_sid, build_sid) NOT IN ({named}) "
                "AND (target, service_sid, build_sid) NOT IN ("
                "SELECT target, service_sid, build_sid FROM (SELECT target, service_sid, "
                "build_sid, row_number() OVER (PARTITION BY target, service_sid, environment_sid "
                "ORDER BY created_at DESC, build_sid DESC) AS newest FROM builds) "
                "WHERE newest <= ?)",
                (keep,),
            )
            conn.execute(
                f"DELETE FROM build_manifests WHERE (target, service_sid, build_sid) "
                f"NOT IN ({named} UNION SELECT target, service_sid, build_sid FROM builds)"
            )

    def set_build_status(self, target: str, service_sid: str, build_sid: str, status: str) -> None:
        """Update a recorded build's status (building, completed, failed)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE builds SET status = ? "
                "WHERE target = ? AND service_sid = ? AND build_sid = ?",
                (status, target, service_sid, build_sid),
            )

    def build_manifest(self, target: str, service_sid: str, build_sid: str) -> str | None:
        """A kept build manifest, or None."""
        row = self._one(
            "SELECT manifest FROM build_manifests "
            "WHERE target = ? AND service_sid = ? AND build_sid = ?",
            (target, service_sid, build_sid),
        )
        return str(row[0]) if row else None

    def get_build(self, target: str, service_sid: str, build_sid: str) -> BuildRecord | None:
        """A recorded build, or None."""
        row = self._one(
            "SELECT service_sid, build_sid, environment_sid, status, version_sids, created_at "
            "FROM builds WHERE target = ? AND service_sid = ? AND build_sid = ?",
            (target, service_sid, build_sid),
        )
        if row is None:
            return None
        import json  # see `record_build`

        sids = tuple(json.loads(str(row[4])))
        return BuildRecord(row[0], row[1], row[2], row[3], sids, row[5])  # type: ignore[arg-type]

    def builds(self, target: str, service_sid: str) -> tuple[BuildRecord, ...]:
        """Every recorded build of a service, oldest first."""
        rows = self._read(
            "SELECT build_sid FROM builds WHERE target = ? AND service_sid = ? "
            "ORDER BY created_at, build_sid",
            (target, service_sid),
        )
        found = (self.get_build(target, service_sid, str(r[0])) for r in rows)
        return tuple(b for b in found if b is not None)

    def record_pending(
        self,
        target: str,
        service_sid: str,
        environment_sid: str,
        build_sid: str,
        created_at: str | None = None,
    ) -> None:
        """Journal a build that must still be deployed to the environment."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
                (target, service_sid, environment_sid, build_sid, created_at),
            )

    def get_pending(
        self, target: str, service_sid: str, environment_sid: str
    ) -> PendingOperation | None:
        """The journalled undeployed build for an environment, or None."""
        row = self._one(
            "SELECT service_sid, environment_sid, build_sid, created_at FROM pending "
            "WHERE target = ? AND service_sid = ? AND environment_sid = ?",
            (target, service_sid, environment_sid),
        )
        return PendingOperation(*row) if row else None  # type: ignore[arg-type]

    def clear_pending(self, target: str, service_sid: str, environment_sid: str) -> None:
        """Drop the journal row (the build was deployed or abandoned)."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM pending WHERE target = ? AND service_sid = ? AND environment_sid = ?",
                (target, service_sid, environment_sid),
            )
