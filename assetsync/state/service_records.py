"""The remote half of the state: what assetsync created on a target, per service.

Records are filed under a target key (`assetsync.config.target_key`: API endpoint + account SID,
never a secret). Each `record_*` call is its own committed transaction, so whatever it records
survives a crash the moment it returns. Reads return frozen dataclasses.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import cast

from assetsync.plan.assets import RecordedService
from assetsync.state.records import (
    BuildRecord,
    EnvironmentRecord,
    PendingOperation,
    ServiceRecord,
    UploadIntent,
    VersionRecord,
)
from assetsync.state.schema import VARIABLE_KEY_META

__all__ = [
    "KEPT_BUILDS_PER_ENVIRONMENT",
    "AssetSidsOnFirstUse",
    "BuildRecord",
    "EnvironmentRecord",
    "PendingOperation",
    "RemoteRecords",
    "ServiceRecord",
    "UploadIntent",
    "VersionRecord",
]


# Builds remembered per environment besides the live and pending ones. An older one could
# rarely be rebuilt anyway: Twilio deletes an undeployed build after 24 hours and a version 7
# days after no build uses it (reference/api-contract.md, "Retention").
KEPT_BUILDS_PER_ENVIRONMENT = 10

# Marks the digest of a version whose Asset was deleted (`RemoteRecords.retire_asset`).
GONE = "gone:"

# Assets and functions are recorded alike (a resource per path, its versions, an upload
# journal), each in tables of its own: kind -> (resources, their SID column, versions, intents).
_KINDS = {
    "asset": ("assets", "asset_sid", "asset_versions", "upload_intents"),
    "function": ("functions", "function_sid", "function_versions", "function_intents"),
}


class AssetSidsOnFirstUse(Mapping[str, str]):
    """A service's path -> Asset SID, read from the state when first looked into.

    A sync plans with it only for paths that have no recorded version (new files), so the
    usual incremental sync never reads the service's Asset SIDs (1,000 rows: ~0.5 ms).
    """

    __slots__ = ("_load", "_read")

    def __init__(self, load: Callable[[], dict[str, str]]) -> None:
        self._load = load
        self._read: dict[str, str] | None = None

    @property
    def loaded(self) -> bool:
        """Whether the map has been read."""
        return self._read is not None

    def _map(self) -> dict[str, str]:
        if self._read is None:
            self._read = self._load()
        return self._read

    def __getitem__(self, path: str) -> str:
        return self._map()[path]

    def __contains__(self, path: object) -> bool:
        return path in self._map()

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())


class RemoteRecords:
    """Mixin for `State`: needs `_write()` (a committed transaction) and `_read(sql, args)`."""

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _read(self, sql: str, args: Iterable[object] = ()) -> list[tuple[object, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, args: Iterable[object]) -> tuple[object, ...] | None:
        rows = self._read(sql, args)
        return rows[0] if rows else None

    # --- services and environments -----------------------------------------------------------

    def record_service(
        self, target: str, unique_name: str, service_sid: str, domain_base: str | None = None
    ) -> None:
        """Remember a service's SID (and domain base) by unique name."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO services VALUES (?, ?, ?, ?)",
                (target, unique_name, service_sid, domain_base),
            )

    def get_service(self, target: str, unique_name: str) -> ServiceRecord | None:
        """The recorded service with this unique name, or None."""
        row = self._one(
            "SELECT unique_name, service_sid, domain_base FROM services "
            "WHERE target = ? AND unique_name = ?",
            (target, unique_name),
        )
        return ServiceRecord(*row) if row else None  # type: ignore[arg-type]

    def services(self, target: str) -> dict[str, ServiceRecord]:
        """Every recorded service of a target, by unique name (one query for a site's names)."""
        rows = self._read(
            "SELECT unique_name, service_sid, domain_base FROM services WHERE target = ?",
            (target,),
        )
        return {str(r[0]): ServiceRecord(*r) for r in rows}  # type: ignore[arg-type]

    def record_environment(
        self,
        target: str,
        service_sid: str,
        unique_name: str,
        environment_sid: str,
        domain_name: str | None,
    ) -> None:
        """Remember an environment; keeps its recorded deployment if the SID is unchanged."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO environments VALUES (?, ?, ?, ?, ?, NULL, NULL) "
                "ON CONFLICT (target, service_sid, unique_name) DO UPDATE SET "
                "domain_name = excluded.domain_name, "
                "build_sid = CASE WHEN environment_sid = excluded.environment_sid "
                "THEN build_sid END, "
                "deployment_sid = CASE WHEN environment_sid = excluded.environment_sid "
                "THEN deployment_sid END, "
                "environment_sid = excluded.environment_sid",
                (target, service_sid, unique_name, environment_sid, domain_name),
            )

    def get_environment(
        self, target: str, service_sid: str, unique_name: str
    ) -> EnvironmentRecord | None:
        """The recorded environment, with the build and deployment assetsync last made."""
        row = self._one(
            "SELECT service_sid, unique_name, environment_sid, domain_name, build_sid, "
            "deployment_sid FROM environments "
            "WHERE target = ? AND service_sid = ? AND unique_name = ?",
            (target, service_sid, unique_name),
        )
        return EnvironmentRecord(*row) if row else None  # type: ignore[arg-type]

    def environments(self, target: str, service_sid: str) -> tuple[EnvironmentRecord, ...]:
        """Every recorded environment of a service (sync and promote record theirs)."""
        rows = self._read(
            "SELECT service_sid, unique_name, environment_sid, domain_name, build_sid, "
            "deployment_sid FROM environments WHERE target = ? AND service_sid = ? "
            "ORDER BY unique_name",
            (target, service_sid),
        )
        return tuple(EnvironmentRecord(*r) for r in rows)  # type: ignore[arg-type]

    def forget_environment(self, target: str, service_sid: str, environment_sid: str) -> None:
        """Forget an environment that was deleted remotely, with its pending build and its
        Variables' digests (the builds and versions belong to the service and stay)."""
        with self._write() as conn:
            for table in ("environments", "pending", "variable_digests"):
                conn.execute(f"DELETE FROM {table} WHERE target = ? AND service_sid = ? "
                             "AND environment_sid = ?", (target, service_sid, environment_sid))

    def forget_service(self, target: str, unique_name: str, service_sid: str,
                       *, resources: bool = True) -> None:
        """Forget a service that was deleted remotely and everything recorded under it; with
        `resources=False` (a service the site left, which lives on), only that it is the site's:
        its Assets and versions stay recorded by SID, found again if the site comes back."""
        with self._write() as conn:
            for table in ("environments", "assets", "asset_versions", "builds", "pending",
                          "build_manifests", "upload_intents", "functions",
                          "function_versions", "function_intents", "variable_digests"):
                if resources or table in ("environments", "pending", "variable_digests"):
                    conn.execute(f"DELETE FROM {table} WHERE target = ? AND service_sid = ?",
                                 (target, service_sid))
            conn.execute("DELETE FROM carried WHERE target = ? AND service = ?",
                         (target, unique_name))
            conn.execute("DELETE FROM services WHERE target = ? AND unique_name = ?",
                         (target, unique_name))

    def record_deployment(
        self,
        target: str,
        service_sid: str,
        environment_sid: str,
        build_sid: str,
        deployment_sid: str,
    ) -> None:
        """Mark `build_sid` as deployed to the environment (and so completed) and clear its
        pending row, in one transaction."""
        with self._write() as conn:
            conn.execute(
                "UPDATE environments SET build_sid = ?, deployment_sid = ? "
                "WHERE target = ? AND service_sid = ? AND environment_sid = ?",
                (build_sid, deployment_sid, target, service_sid, environment_sid),
            )
            conn.execute(
                "UPDATE builds SET status = 'completed' "
                "WHERE target = ? AND service_sid = ? AND build_sid = ?",
                (target, service_sid, build_sid),
            )
            conn.execute(
                "DELETE FROM pending WHERE target = ? AND service_sid = ? AND environment_sid = ?",
                (target, service_sid, environment_sid),
            )

    # --- assets and versions -----------------------------------------------------------------

    def record_asset(self, target: str, service_sid: str, path: str, asset_sid: str) -> None:
        """Remember the Asset SID for a published path."""
        self.record_assets(target, service_sid, {path: asset_sid})

    def record_assets(self, target: str, service_sid: str, assets: Mapping[str, str],
                      *, kind: str = "asset") -> None:
        """Remember path -> Asset (or, `kind="function"`, Function) SID for several paths in
        one transaction."""
        with self._write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO {_KINDS[kind][0]} VALUES (?, ?, ?, ?)",
                ((target, service_sid, path, sid) for path, sid in assets.items()),
            )

    def asset_sids(self, target: str, service_sid: str, *, kind: str = "asset") -> dict[str, str]:
        """Published path -> Asset (or Function) SID for one service."""
        table, column = _KINDS[kind][:2]
        rows = self._read(
            f"SELECT path, {column} FROM {table} WHERE target = ? AND service_sid = ?",
            (target, service_sid),
        )
        return dict(cast("list[tuple[str, str]]", rows))

    def asset_sid(self, target: str, service_sid: str, path: str,
                  *, kind: str = "asset") -> str | None:
        """One published path's Asset (or Function) SID, if recorded."""
        table, column = _KINDS[kind][:2]
        row = self._one(
            f"SELECT {column} FROM {table} WHERE target = ? AND service_sid = ? AND path = ?",
            (target, service_sid, path),
        )
        return str(row[0]) if row else None

    def version_sid(
        self, target: str, service_sid: str, digest: str, path: str, visibility: str
    ) -> str | None:
        """The recorded version of this content at this path and visibility, if any (the
        newest-named of several, as `recorded_service` picks outside the deployed build)."""
        row = self._one(
            "SELECT max(version_sid) FROM asset_versions WHERE target = ? AND service_sid = ? "
            "AND digest = ? AND path = ? AND visibility = ?",
            (target, service_sid, digest, path, str(visibility)),
        )
        return str(row[0]) if row and row[0] is not None else None

    def forget_asset(self, target: str, service_sid: str, path: str,
                     *, kind: str = "asset") -> None:
        """Forget a path's Asset (or Function) SID, versions and intents (the resource was
        deleted remotely)."""
        resources, _column, versions, intents = _KINDS[kind]
        with self._write() as conn:
            args = (target, service_sid, path)
            for table in (resources, versions, intents):
                conn.execute(
                    f"DELETE FROM {table} WHERE target = ? AND service_sid = ? AND path = ?", args
                )

    def retire_asset(self, target: str, service_sid: str, path: str) -> None:
        """Forget a deleted Asset's SID and intents (`prune`) but keep its versions as gone
        (`GONE` before the digest): a build that still holds one (a rollback target) is then
        known as assetsync's, so the next plan drops the path, and none is ever reused."""
        with self._write() as conn:
            args = (target, service_sid, path)
            for table in ("assets", "upload_intents"):
                conn.execute(
                    f"DELETE FROM {table} WHERE target = ? AND service_sid = ? AND path = ?", args
                )
            conn.execute(
                "UPDATE asset_versions SET digest = ? || digest WHERE target = ? "
                "AND service_sid = ? AND path = ? AND digest NOT LIKE ?",
                (GONE, *args, GONE + "%"),
            )

    def record_version(
        self,
        target: str,
        service_sid: str,
        *,
        digest: str,
        path: str,
        visibility: str,
        version_sid: str,
        size: int,
        created_at: str | None = None,
    ) -> None:
        """Remember an acknowledged upload; durable when this returns."""
        self.record_versions(
            target,
            service_sid,
            [
                VersionRecord(
                    service_sid, digest, path, str(visibility), version_sid, size, created_at
                )
            ],
        )

    def record_versions(
        self, target: str, service_sid: str, versions: Sequence[VersionRecord],
        *, kind: str = "asset",
    ) -> None:
        """Remember several acknowledged uploads in one transaction (a group commit).

        Each settles the upload intent with the same (path, digest, visibility), if any.
        """
        _resources, _column, table, intents = _KINDS[kind]
        rows = [
            (
                target,
                service_sid,
                v.digest,
                v.path,
                str(v.visibility),
                v.version_sid,
                v.size,
                v.created_at,
            )
            for v in versions
        ]
        with self._write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            conn.executemany(
                f"DELETE FROM {intents} WHERE target = ? AND service_sid = ? "
                "AND path = ? AND digest = ? AND visibility = ?",
                ((r[0], r[1], r[3], r[2], r[4]) for r in rows),
            )

    def record_upload_intents(
        self, target: str, service_sid: str, intents: Sequence[UploadIntent],
        *, kind: str = "asset",
    ) -> None:
        """Journal uploads about to be sent, all in one transaction."""
        with self._write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO {_KINDS[kind][3]} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        target,
                        service_sid,
                        i.path,
                        i.digest,
                        str(i.visibility),
                        i.size,
                        i.asset_sid,
                        i.created_at,
                    )
                    for i in intents
                ),
            )

    def upload_intents(self, target: str, service_sid: str,
                       *, kind: str = "asset") -> tuple[UploadIntent, ...]:
        """Journalled uploads not yet settled, sorted by path."""
        _resources, column, _versions, table = _KINDS[kind]
        rows = self._read(
            f"SELECT path, digest, visibility, size, {column}, created_at FROM {table} "
            "WHERE target = ? AND service_sid = ? ORDER BY path, digest, visibility",
            (target, service_sid),
        )
        return tuple(UploadIntent(*r) for r in rows)  # type: ignore[arg-type]

    def clear_upload_intents(self, target: str, service_sid: str, *, kind: str = "asset") -> None:
        """Forget every journalled upload of a service (all settled)."""
        with self._write() as conn:
            conn.execute(
                f"DELETE FROM {_KINDS[kind][3]} WHERE target = ? AND service_sid = ?",
                (target, service_sid),
            )

    def versions(self, target: str, service_sid: str,
                 *, kind: str = "asset") -> tuple[VersionRecord, ...]:
        """Every recorded version of one service, sorted by path."""
        rows = self._read(
            "SELECT service_sid, digest, path, visibility, version_sid, size, created_at "
            f"FROM {_KINDS[kind][2]} WHERE target = ? AND service_sid = ? "
            "AND digest NOT LIKE ? ORDER BY path, version_sid",
            (target, service_sid, GONE + "%"),
        )
        return tuple(VersionRecord(*r) for r in rows)  # type: ignore[arg-type]

    def forget_versions(self, target: str, service_sid: str, version_sids: Iterable[str],
                        *, kind: str = "asset") -> None:
        """Forget versions the API no longer has (expired after 7 days unreferenced)."""
        with self._write() as conn:
            conn.executemany(
                f"DELETE FROM {_KINDS[kind][2]} "
                "WHERE target = ? AND service_sid = ? AND version_sid = ?",
                ((target, service_sid, sid) for sid in version_sids),
            )

    # --- builds and the pending journal ------------------------------------------------------

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

    # --- carried outcomes (assetsync.state.last_outcome) --------------------------------------------------

    def versions_generation(self) -> int:
        """A count that moves whenever a recorded version is added, replaced or forgotten: kept
        by triggers on the table, so no writer can forget to move it."""
        row = self._one("SELECT n FROM versions_generation WHERE id = 1", ())
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

    # --- variables: keyed digests, never values ---------------------------------------------

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

    # --- the plan's view ---------------------------------------------------------------------

    def recorded_service(
        self, target: str, service_sid: str, environment: str, *, assets_on_first_use: bool = False
    ) -> RecordedService:
        """What `build_plan` needs about one service and environment (by unique name).

        `assets_on_first_use`: read the Asset SIDs only if they are looked into, while this
        state is still open (a sync, which plans before it closes); by default they are read
        now, so the record stays usable after the state closes.
        """
        # Plain rows, not `versions()`' records: a sync reads this for every file it holds,
        # and a record per row showed in its time. In key order (the table's own: no sort), so
        # where `sync --full` uploaded the same content again the newest-named SID comes last.
        rows = cast("list[tuple[str, str, str, str]]", self._read(
            "SELECT digest, path, visibility, version_sid FROM asset_versions "
            "WHERE target = ? AND service_sid = ? ORDER BY digest, path, visibility, version_sid",
            (target, service_sid),
        ))
        env = self.get_environment(target, service_sid, environment)
        build = (
            self.get_build(target, service_sid, env.build_sid)
            if env is not None and env.build_sid
            else None
        )
        in_build = set(build.version_sids) if build is not None else set()
        ours = [row for row in rows if row[3] in in_build]
        # A retired Asset's versions (`retire_asset`) say which paths the build holds, and
        # are never reused.
        rows = [row for row in rows if not row[0].startswith(GONE)]
        versions = {(d, p, v): sid for d, p, v, sid in rows}
        # Content recorded twice (another environment's `sync --full`): the environment keeps
        # the version its build holds, so an unchanged file needs no new build.
        versions.update(((d, p, v), sid) for d, p, v, sid in ours if not d.startswith(GONE))
        return RecordedService(
            asset_sids=(AssetSidsOnFirstUse(lambda: self.asset_sids(target, service_sid))
                        if assets_on_first_use
                        else MappingProxyType(self.asset_sids(target, service_sid))),
            versions=MappingProxyType(versions),
            owned_paths=frozenset(row[1] for row in ours),
            deployed_version_sids=frozenset(row[3] for row in ours),
            last_build_sid=env.build_sid if env is not None else None,
        )
