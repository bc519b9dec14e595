"""The emulator's persistence: resource metadata in SQLite, uploaded content as files by digest.

One folder holds `emulator.sqlite3` (WAL) and `content/<sha256 hex>`. Every call is its own short
transaction, so two processes on one folder (an embedded sync and `assetsync emulator --data`)
each see the other's writes on their next request. Two memories spare a build of 1,000 versions
most of its reads, and neither can go stale: decoded JSON keyed by its stored text, and version
records (never changed once created) dropped whenever another connection has committed anything
(`PRAGMA data_version`) or this one deletes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from assetsync.frozen import frozen

__all__ = ["VERSION_KINDS", "ContentWriter", "Record", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    parent_sid TEXT,
    created REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_by_parent ON resources (kind, parent_sid, seq);
-- No longer written (a build's versions are read from its data, which costs a build of 1,000
-- versions ~4 ms less); kept so folders written by earlier versions still open and clear.
CREATE TABLE IF NOT EXISTS build_members (
    build_sid TEXT NOT NULL,
    version_sid TEXT NOT NULL,
    PRIMARY KEY (build_sid, version_sid)
);
CREATE INDEX IF NOT EXISTS build_members_by_version ON build_members (version_sid);
CREATE TABLE IF NOT EXISTS build_events (time REAL NOT NULL);
"""


_DECODED_MAX = 20_000  # decoded resources kept (a few MB)
_VERSIONS_MAX = 20_000  # version records kept (~20 MB at most; a build names up to 1,100)
VERSION_KINDS = ("asset_version", "function_version")  # the kinds never changed once stored


@frozen
class Record:
    """One stored resource: its SID, kind, parent SID, creation time and JSON fields."""

    seq: int
    sid: str
    kind: str
    parent_sid: str | None
    created: float
    data: dict[str, Any]


class ContentWriter:
    """Receives one upload's bytes into a temporary file while hashing them (never in memory)."""

    def __init__(self, tmp_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self.path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append one chunk."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def close(self) -> str:
        """Close the file and return the content's sha256 hex digest."""
        self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Drop the temporary file (oversize or aborted upload)."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class Store:
    """SQLite metadata and digest-named content files in one folder."""

    def __init__(self, root: Path) -> None:
        # Absolute: content paths are handed to other processes (Node runs a function from its
        # file, with that file's folder as its working directory), which would read a relative
        # one against another folder, or as a package name.
        root = Path(root).absolute()
        self.root = root
        self.content_dir = root / "content"
        self.tmp_dir = root / "tmp"
        self.content_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._depth = 0
        # A resource's JSON text -> its decoded fields. Keyed by the stored text itself, so it
        # can never be stale (another process's write changes the text); it spares a build of
        # 1,000 versions 1,000 json.loads (~2.5 ms). Bounded by clearing it when full.
        self._decoded: dict[str, dict[str, Any]] = {}
        # Version SID -> its record. Valid only while no other connection has committed since
        # `_data_version` was read; this connection's own deletes drop their entries.
        self._versions: dict[str, Record] = {}
        self._data_version: int | None = None
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        # (Re)opened on demand, so a closed store (an embedded transport whose client was
        # closed) simply reconnects when used again.
        with self._lock:
            if self._db is None:
                # isolation_level=None: we issue BEGIN ourselves, so reads outside a transaction
                # always see the latest commit of any other process on the same folder.
                db = sqlite3.connect(
                    self.root / "emulator.sqlite3",
                    timeout=30.0,
                    isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                self._db = db
            return self._db

    def close(self) -> None:
        """Close the database connection (it reopens if the store is used again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            # data_version counts per connection: a new one cannot vouch for the old memory.
            self._versions.clear()
            self._data_version = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (re-entrant); BEGIN IMMEDIATE so limit checks cannot race."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn().execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._conn().execute("ROLLBACK")
                raise
            else:
                self._conn().execute("COMMIT")
            finally:
                self._depth = 0

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[Record]:
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    f"SELECT seq, sid, kind, parent_sid, created, data FROM resources {sql}", args
                )
                .fetchall()
            )
        decoded = self._decode_all([r[5] for r in rows])
        return [Record(r[0], r[1], r[2], r[3], r[4], d) for r, d in zip(rows, decoded, strict=True)]

    def _decode_all(self, texts: list[str]) -> list[dict[str, Any]]:
        memo = self._decoded
        known = {text: d for text in texts if (d := memo.get(text)) is not None}
        unknown = [text for text in dict.fromkeys(texts) if text not in known]
        if unknown:
            # One parse of them all as a JSON array: ~40% cheaper than a json.loads each
            # (1,000 versions read by a new process's first build).
            for text, d in zip(unknown, json.loads(f"[{','.join(unknown)}]"), strict=True):
                known[text] = self._remember(text, d)
        return [dict(known[text]) for text in texts]  # a copy per record: callers may build on it

    def _encode(self, data: dict[str, Any]) -> str:
        # What is written is read back soon (a new build by its status poll): remember it.
        text = json.dumps(data)
        self._remember(text, dict(data))
        return text

    def _remember(self, text: str, decoded: dict[str, Any]) -> dict[str, Any]:
        if len(self._decoded) >= _DECODED_MAX:
            self._decoded.clear()
        self._decoded[text] = decoded
        return decoded

    def _known_versions(self) -> dict[str, Record]:
        """The version memory, emptied first if another connection has committed since."""
        seen = self._conn().execute("PRAGMA data_version").fetchone()[0]
        if seen != self._data_version:
            self._versions.clear()
            self._data_version = seen
        return self._versions

    def _keep_version(self, rec: Record) -> None:
        # Only what is committed: a record read or written inside a transaction that may still
        # roll back is not remembered.
        if rec.kind in VERSION_KINDS and not self._depth:
            if len(self._versions) >= _VERSIONS_MAX:
                self._versions.clear()
            self._versions[rec.sid] = rec

    def _scalar(self, sql: str, args: Sequence[object] = ()) -> Any:
        with self._lock:
            row = self._conn().execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _exec(self, sql: str, args: Sequence[object] = ()) -> None:
        with self.transaction():
            self._conn().execute(sql, args)

    # resources -------------------------------------------------------------------------------

    def insert(
        self, sid: str, kind: str, parent_sid: str | None, created: float, data: dict[str, Any]
    ) -> Record:
        """Store a new resource and return it."""
        with self._lock:
            with self.transaction():
                cur = self._conn().execute(
                    "INSERT INTO resources (sid, kind, parent_sid, created, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (sid, kind, parent_sid, created, self._encode(data)),
                )
                seq = int(cur.lastrowid or 0)
            rec = Record(seq, sid, kind, parent_sid, created, data)
            if kind in VERSION_KINDS:
                self._known_versions()  # first, so a stale memory is emptied, not extended
                self._keep_version(rec)
        return rec

    def update(self, record: Record, changes: dict[str, Any]) -> Record:
        """Replace some fields of a resource; returns the updated record."""
        data = {**record.data, **changes}
        self._exec("UPDATE resources SET data = ? WHERE sid = ?", (self._encode(data), record.sid))
        return Record(record.seq, record.sid, record.kind, record.parent_sid, record.created, data)

    def delete(self, sids: Sequence[str]) -> None:
        """Delete resources (and their build memberships) by SID."""
        with self.transaction():
            for sid in sids:
                self._versions.pop(sid, None)
                self._conn().execute("DELETE FROM resources WHERE sid = ?", (sid,))
                self._conn().execute("DELETE FROM build_members WHERE build_sid = ?", (sid,))

    def get(self, sid: str, kind: str) -> Record | None:
        """The resource with this SID and kind, if any."""
        rows = self._rows("WHERE sid = ? AND kind = ?", (sid, kind))
        return rows[0] if rows else None

    def get_many(self, sids: Sequence[str]) -> dict[str, Record]:
        """Resources by SID (missing ones are absent from the result)."""
        with self._lock:
            known = self._known_versions()
            found = {sid: rec for sid in sids if (rec := known.get(sid)) is not None}
            unknown = [sid for sid in sids if sid not in found]
            for start in range(0, len(unknown), 500):
                chunk = unknown[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for rec in self._rows(f"WHERE sid IN ({marks})", chunk):
                    found[rec.sid] = rec
                    self._keep_version(rec)
        return found

    def find(self, kind: str, parent_sid: str | None, field: str, value: object) -> Record | None:
        """The first resource of a kind (under a parent, if given) whose `field` equals value."""
        where = "WHERE kind = ? AND json_extract(data, ?) = ?"
        args: list[object] = [kind, f"$.{field}", value]
        if parent_sid is not None:
            where += " AND parent_sid = ?"
            args.append(parent_sid)
        rows = self._rows(where + " ORDER BY seq LIMIT 1", args)
        return rows[0] if rows else None

    def children(self, kind: str, parent_sid: str | None) -> list[Record]:
        """Every resource of a kind under a parent (None: account level), oldest first."""
        if parent_sid is None:
            return self._rows("WHERE kind = ? ORDER BY seq", (kind,))
        return self._rows("WHERE kind = ? AND parent_sid = ? ORDER BY seq", (kind, parent_sid))

    def page(
        self,
        kind: str,
        parent_sid: str | None,
        *,
        after: int | None,
        before: int | None,
        limit: int,
        offset: int,
    ) -> list[Record]:
        """One page of a kind under a parent, by sequence: after/before a seq, or at an offset."""
        where, args = "WHERE kind = ?", [kind]
        if parent_sid is not None:
            where += " AND parent_sid = ?"
            args.append(parent_sid)
        if before is not None:
            rows = self._rows(
                f"{where} AND seq < ? ORDER BY seq DESC LIMIT ?", [*args, before, limit]
            )
            return rows[::-1]
        if after is not None:
            return self._rows(f"{where} AND seq > ? ORDER BY seq LIMIT ?", [*args, after, limit])
        return self._rows(f"{where} ORDER BY seq LIMIT ? OFFSET ?", [*args, limit, offset])

    def count(self, kind: str, parent_sid: str | None = None) -> int:
        """How many resources of a kind exist (under a parent, if given)."""
        if parent_sid is None:
            return int(self._scalar("SELECT COUNT(*) FROM resources WHERE kind = ?", (kind,)))
        return int(
            self._scalar(
                "SELECT COUNT(*) FROM resources WHERE kind = ? AND parent_sid = ?",
                (kind, parent_sid),
            )
        )

    def by_service(self, service_sid: str) -> list[Record]:
        """Every resource that belongs to a service (its `service_sid` field)."""
        return self._rows(
            "WHERE json_extract(data, '$.service_sid') = ? ORDER BY seq", (service_sid,)
        )

    def older_than(self, kind: str, cutoff: float) -> list[Record]:
        """Resources of a kind created before `cutoff`."""
        return self._rows("WHERE kind = ? AND created < ? ORDER BY seq", (kind, cutoff))

    def sids_older_than(self, kind: str, cutoff: float) -> list[str]:
        """The SIDs of `older_than` (no record decoded: a sweep may find thousands)."""
        with self._lock:
            rows = self._conn().execute(
                "SELECT sid FROM resources WHERE kind = ? AND created < ? ORDER BY seq",
                (kind, cutoff),
            )
            return [row[0] for row in rows]

    # builds ----------------------------------------------------------------------------------

    def unreferenced(self, version_sids: Iterable[str]) -> set[str]:
        """Those of `version_sids` that no existing build names (for retention).

        Builds are read newest first and only until every given SID has been found in one: old
        versions still in use are nearly always in the latest builds, so a sweep reads one or
        two builds rather than all of a busy day's (reading them all took 33 ms for 100).
        """
        left = set(version_sids)
        if not left:
            return left
        with self._lock:
            db = self._conn()
            # Sequence numbers first (from the index), each build's 40 KB of data only if needed.
            newest_first = db.execute(
                "SELECT seq FROM resources WHERE kind = 'build' ORDER BY seq DESC"
            ).fetchall()
            for (seq,) in newest_first:
                (text,) = db.execute("SELECT data FROM resources WHERE seq = ?", (seq,)).fetchone()
                named = json.loads(text)
                left.difference_update(named["asset_versions"], named["function_versions"])
                if not left:
                    break
        return left

    def record_build_event(self, when: float) -> None:
        """Count one build creation toward the rolling-hour limit."""
        self._exec("INSERT INTO build_events (time) VALUES (?)", (when,))

    def build_events_since(self, since: float) -> list[float]:
        """Creation times of builds at or after `since`, oldest first."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT time FROM build_events WHERE time >= ? ORDER BY time", (since,))
                .fetchall()
            )
        return [float(r[0]) for r in rows]

    def clear(self) -> None:
        """Delete every resource (content files stay: they are shared by digest)."""
        with self.transaction():
            self._versions.clear()
            for table in ("resources", "build_members", "build_events"):
                self._conn().execute(f"DELETE FROM {table}")

    # content ---------------------------------------------------------------------------------

    def new_content(self) -> ContentWriter:
        """Start receiving one upload's bytes."""
        return ContentWriter(self.tmp_dir)

    def keep_content(self, writer: ContentWriter, digest: str) -> Path:
        """Move a finished upload to its digest name (identical content is stored once)."""
        final = self.content_dir / digest
        if final.exists():
            writer.path.unlink(missing_ok=True)
        else:
            os.replace(writer.path, final)
        return final

    def content_path(self, digest: str) -> Path:
        """Where the content with this sha256 digest lives."""
        return self.content_dir / digest
