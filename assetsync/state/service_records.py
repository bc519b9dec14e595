"""The remote half of the state: what assetsync created on a target, per service.

Records are filed under a target key (`assetsync.config.target_key`: API endpoint + account SID,
never a secret). Each `record_*` call is its own committed transaction, so whatever it records
survives a crash the moment it returns. Reads return frozen dataclasses.

`RemoteRecords` holds services and environments and the plan's view of a service, and gathers
the mixins of the rest: `asset_records` (assets, functions, versions, the upload journal),
`build_records` (builds, the pending journal), `outcome_records` (carried outcomes) and
`variable_records` (the Variables' keyed digests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import compress
from operator import itemgetter, methodcaller, not_
from types import MappingProxyType
from typing import TYPE_CHECKING, cast

from assetsync.state.asset_records import GONE, AssetRecords
from assetsync.state.build_records import BuildRecords
from assetsync.state.outcome_records import OutcomeRecords
from assetsync.state.records import EnvironmentRecord, ServiceRecord
from assetsync.state.variable_records import VariableRecords

if TYPE_CHECKING:  # built by `recorded_service` only: a state opened for a scan loads no plan
    from assetsync.plan.assets import RecordedService

__all__ = ["AssetSidsOnFirstUse", "RemoteRecords"]

# A recorded version row: (digest, path, visibility, version_sid).
_DIGEST, _PATH, _SID = itemgetter(0), itemgetter(1), itemgetter(3)
_KEY = itemgetter(0, 1, 2)  # the key `build_plan` looks a file up by
_is_gone = methodcaller("startswith", GONE)


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


class RemoteRecords(AssetRecords, BuildRecords, OutcomeRecords, VariableRecords):
    """Mixin for `State`: needs `_write()` (a committed transaction) and `_read(sql, args)`."""

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

    # --- the plan's view ---------------------------------------------------------------------

    def environment_build(
        self, target: str, service_sid: str, environment: str
    ) -> tuple[str | None, str | None] | None:
        """The environment's recorded build SID and that build's version SIDs as stored (one
        text; None when the build is not recorded), or None when the environment is not: with
        the recorded versions, all that `recorded_service` is made of."""
        row = self._one(
            "SELECT e.build_sid, b.version_sids FROM environments e LEFT JOIN builds b "
            "ON b.target = e.target AND b.service_sid = e.service_sid "
            "AND b.build_sid = e.build_sid "
            "WHERE e.target = ? AND e.service_sid = ? AND e.unique_name = ?",
            (target, service_sid, environment),
        )
        if row is None:
            return None
        build_sid, sids = row
        return (None if build_sid is None else str(build_sid),
                None if sids is None else str(sids))

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
        in_build = frozenset(build.version_sids) if build is not None else frozenset()
        # Row by row in C (maps, `compress`): a 10,000-file site reads 10,000 rows here on
        # every plan and sync, and a Python loop per row cost ~1 ms per thousand (measured).
        ours = list(compress(rows, map(in_build.__contains__, map(_SID, rows))))
        # A retired Asset's versions (`retire_asset`) say which paths the build holds, and
        # are never reused.
        live = list(compress(rows, map(not_, map(_is_gone, map(_DIGEST, rows)))))
        versions = dict(zip(map(_KEY, live), map(_SID, live)))
        # Content recorded twice (another environment's `sync --full`): the environment keeps
        # the version its build holds, so an unchanged file needs no new build.
        held = list(compress(ours, map(not_, map(_is_gone, map(_DIGEST, ours)))))
        versions.update(zip(map(_KEY, held), map(_SID, held)))
        from assetsync.plan.assets import RecordedService

        return RecordedService(
            asset_sids=(AssetSidsOnFirstUse(lambda: self.asset_sids(target, service_sid))
                        if assets_on_first_use
                        else MappingProxyType(self.asset_sids(target, service_sid))),
            versions=MappingProxyType(versions),
            owned_paths=frozenset(map(_PATH, ours)),
            deployed_version_sids=frozenset(map(_SID, ours)),
            last_build_sid=env.build_sid if env is not None else None,
        )
