"""The state's records of Assets and Functions alike: the resource per published path, its
acknowledged versions and the upload journal (intents written before an upload is sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from assetsync.state.record_tables import RecordTables
from assetsync.state.records import UploadIntent, VersionRecord

__all__ = ["GONE", "AssetRecords"]

# Marks the digest of a version whose Asset was deleted (`AssetRecords.retire_asset`).
GONE = "gone:"

# Assets and functions are recorded alike (a resource per path, its versions, an upload
# journal), each in tables of its own: kind -> (resources, their SID column, versions, intents).
_KINDS = {
    "asset": ("assets", "asset_sid", "asset_versions", "upload_intents"),
    "function": ("functions", "function_sid", "function_versions", "function_intents"),
}


class AssetRecords(RecordTables):
    """Mixin for `State`: assets (and functions), their versions and the upload journal."""

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
