"""The state folder: one SQLite database (WAL, synchronous=FULL) under a single-writer lock.

It holds the stat cache (implementing `assetsync.scan.rules.StatCache`) and, per target and service,
the remote objects assetsync created: services, environments, assets, asset versions, builds,
and a pending-operation journal. Every `record_*` commits at once, so a version SID is durable
the moment `record_version` returns (DESIGN.md invariant 1). Schema changes are forward
migrations; a corrupt, empty (0 bytes, or no tables) or newer state is an error, never a silent
reset: a new database is made under a temporary name and renamed into place whole.

Remote records live in `assetsync.state.service_records` (`RemoteRecords`, a mixin gathering one
mixin per kind of record) to keep each file to one concern.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from assetsync.errors import LockHeldError, StateError
from assetsync.scan.stat_table import RACY_WINDOW_NS, StatRow, StatTable
from assetsync.state.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    dump_stat_table,
    export_state,
    import_state,
    load_stat_table,
)
from assetsync.state.service_records import RemoteRecords

__all__ = ["DB_NAME", "LOCK_NAME", "SCHEMA_VERSION", "State"]

log = logging.getLogger(__name__)

DB_NAME = "state.db"
LOCK_NAME = "lock"
# The database file's (inode, size, mtime, ctime) as a clean close left it. `PRAGMA
# quick_check` reads every page (1.3 ms for a 1.7 MB state, more as a site grows), so it runs
# only when the file is not as assetsync last closed it: copied in from a CI cache, changed by
# another program, or left with a write-ahead log by a run that did not close.
CHECKED_NAME = "state.db.checked"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _acquire_lock(state_dir: Path) -> int:
    """Take the single-writer lock; flock is released by the kernel if the holder dies."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StateError(
            f"cannot open the lock file in state folder {state_dir}: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        who = f"pid {pid}" if pid else "pid unknown"
        raise LockHeldError(
            f"another assetsync is running ({who}) on state folder {state_dir}: "
            "wait for it to finish, or stop it",
            pid=pid,
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StateError(f"cannot lock state folder {state_dir}: {exc.strerror}") from None
    previous = _read_pid(fd)
    if previous and previous != os.getpid() and not _pid_alive(previous):
        log.info("taking over the state lock of pid %d, which is no longer running", previous)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


class State(RemoteRecords):
    """An open state folder. Use `State.open(dir)` as a context manager.

    Thread-safe: one connection guarded by a lock, so the engine's worker threads can
    record as uploads finish.
    """

    def __init__(
        self, state_dir: Path, conn: sqlite3.Connection, lock_fd: int, *, readonly: bool = False
    ) -> None:
        self.state_dir = state_dir
        self.db_path = state_dir / DB_NAME
        self.readonly = readonly
        self._conn = conn
        self._lock_fd = lock_fd
        self._closed = False
        self._mutex = threading.RLock()
        self._table: StatTable | None = None
        self._table_unsaved = False
        self._writes = 0
        # Whether opening ran `PRAGMA quick_check` (see CHECKED_NAME).
        self.checked_whole_file = False

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path, *, readonly: bool = False) -> State:
        """Create the folder if needed, take the lock, open and migrate the database.

        With `readonly=True` no lock is taken and nothing is ever written (WAL lets this
        reader run beside the writer, e.g. `plan` while `watch` runs): stat cache updates stay
        in memory and `record_*` raise StateError.

        Raises:
            LockHeldError: another process holds the lock.
            StateError: the database is corrupt or from a newer assetsync.
        """
        state_dir = Path(state_dir)
        if readonly:
            return cls(state_dir, _connect_readonly(state_dir / DB_NAME), -1, readonly=True)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state folder {state_dir}: {exc.strerror}") from None
        lock_fd = _acquire_lock(state_dir)
        try:
            conn, checked = _connect(state_dir / DB_NAME)
        except BaseException:
            _release_lock(lock_fd)
            raise
        state = cls(state_dir, conn, lock_fd)
        state.checked_whole_file = checked
        return state

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        with self._mutex:
            if self._closed:
                return
            try:
                self.flush_stat_table()
            except StateError as exc:  # a cache: the next scan re-hashes what it would have saved
                log.warning("stat cache not saved: %s", exc)
            finally:
                self._closed = True
                self._conn.close()
                if not self.readonly:
                    _mark_checked(self.db_path)
                if self._lock_fd >= 0:
                    _release_lock(self._lock_fd)
                    self._lock_fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One immediate transaction, committed (fsync'd: synchronous=FULL) on exit."""
        if self.readonly:
            raise StateError(
                f"state folder {self.state_dir} is open read-only (another assetsync holds it)"
            )
        with self._mutex:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                self._writes += 1
            except sqlite3.DatabaseError as exc:
                raise _db_error(self.db_path, exc, closed=self._closed) from None

    @property
    def writes(self) -> int:
        """Transactions this handle has committed. The lock keeps every other writer out, so
        an unchanged count means what a caller read since is still what the state holds."""
        return self._writes

    def _read(self, sql: str, args: Iterable[object] = ()) -> list[tuple[object, ...]]:
        with self._mutex:
            try:
                return self._conn.execute(sql, tuple(args)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise _db_error(self.db_path, exc, closed=self._closed) from None

    # --- stat cache (scan.StatCache) ---------------------------------------------------------

    def stat_table(self) -> StatTable:
        """The stat cache, loaded once (a scan never changes it in place)."""
        if self._table is None:
            with self._mutex:
                try:
                    self._table = load_stat_table(self._conn)
                except sqlite3.DatabaseError as exc:
                    raise _db_error(self.db_path, exc, closed=self._closed) from None
        return self._table

    def save_stat_table(self, table: StatTable) -> None:
        """Replace the stat cache. It is written by `flush_stat_table` or `close`, not now: it
        is a cache (lost, it costs a re-hash, never a wrong digest), and a sync flushes it while
        its build builds instead of before its first upload. Read-only: memory only."""
        self._table = table
        self._table_unsaved = not self.readonly

    def settle(self) -> None:
        """Write the stat cache if it is unsaved, forget builds beyond the kept history
        (`prune_history`) and checkpoint the write-ahead log: work for a moment when nothing
        waits on it (a sync calls this while its build builds, so closing the state afterwards
        has little left to copy). Never raises: none of it is needed for anything the sync
        records (a failure is logged)."""
        if self.readonly:
            return
        with self._mutex:
            try:
                self.flush_stat_table()
                self.prune_history()
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (StateError, sqlite3.DatabaseError) as exc:
                log.warning("state not settled early (closing will): %s", exc)

    def flush_stat_table(self) -> None:
        """Write a stat cache saved since the last flush, in one transaction."""
        with self._mutex:
            if self._table_unsaved and self._table is not None:
                with self._write() as conn:
                    dump_stat_table(conn, self._table)
                self._table_unsaved = False

    def stat_entries(self) -> Mapping[str, StatRow]:
        """Every cached entry by relative path (`StatEntry`-shaped tuples)."""
        return self.stat_table().rows()

    def update_stats(self, put: Iterable[StatRow], drop: Iterable[str] = ()) -> None:
        """Store and forget stat cache entries in one transaction, now."""
        self.save_stat_table(
            self.stat_table().with_changes(put, drop, racy_ns=RACY_WINDOW_NS)
        )
        self.flush_stat_table()

    # --- export / import ---------------------------------------------------------------------

    def export_json(self) -> dict[str, object]:
        """Everything in the state as a JSON-ready dict (for CI caches and inspection)."""
        with self._mutex:
            try:
                return export_state(self._conn)
            except sqlite3.DatabaseError as exc:
                raise _db_error(self.db_path, exc, closed=self._closed) from None

    def import_json(self, data: object) -> None:
        """Replace the whole state with an export. Validated first: bad input changes nothing.

        Raises:
            StateError: naming what is wrong with `data`.
        """
        with self._write() as conn:
            import_state(conn, data)
        self._table, self._table_unsaved = None, False


def _release_lock(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the descriptor releases the flock


def _db_error(db_path: Path, exc: sqlite3.DatabaseError, *, closed: bool = False) -> StateError:
    if closed:  # a caller's use of a closed handle: the file is fine, say so
        return StateError(f"state database {db_path} was used after it was closed; "
                          "open the state folder again")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StateError(f"state database {db_path} is busy: {exc}; retry in a moment")
    return StateError(
        f"state database {db_path} is corrupt or unreadable ({exc}): restore it from a backup "
        "or with `assetsync state import`, or move the file aside to start over"
    )


def _connect(db_path: Path) -> tuple[sqlite3.Connection, bool]:
    """Open, check and migrate the database (making it first if there is none); never resets
    anything. Also says whether the whole file was checked."""
    if not os.path.lexists(db_path):
        _create(db_path)
    _refuse_empty_file(db_path)
    # Before connecting: WAL mode makes the log file at once.
    check_whole = not _as_closed(db_path)
    try:
        conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state database {db_path}: {exc}") from None
    with _closed_on_error(conn, db_path):
        conn.execute("PRAGMA busy_timeout=5000")
        if check_whole:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        # Before anything writes (WAL mode rewrites the header): a refused file stays as it is.
        if _schema_version(conn, db_path) == 0:
            raise _empty_error(db_path, "holds no assetsync state (an SQLite file without tables)")
        _set_wal(conn, db_path)
        _migrate(conn, db_path)
    return conn, check_whole


def _set_wal(conn: sqlite3.Connection, db_path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StateError(
            f"state database {db_path} cannot use WAL mode (got {mode}); "
            "put state_dir on a local disk"
        )
    conn.execute("PRAGMA synchronous=FULL")


def _create(db_path: Path) -> None:
    """A new state database, made under a temporary name and renamed into place once its
    schema is committed. So a `state.db` that exists was made whole by assetsync, and one that
    is empty was damaged since (truncated, a copy cut short, a full disk), never a first run
    that had only begun: it is refused (`_refuse_empty_file`), not taken for a new state."""
    new = db_path.with_name(db_path.name + ".new")
    for leftover in (new, Path(f"{new}-wal"), Path(f"{new}-shm")):
        leftover.unlink(missing_ok=True)  # a creation that died before its rename held nothing
    try:
        conn = sqlite3.connect(new, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateError(f"cannot create state database {db_path}: {exc}") from None
    with _closed_on_error(conn, db_path):
        _set_wal(conn, db_path)  # kept in the file's header
        _migrate(conn, db_path)
    conn.close()  # the last connection's close checkpoints the log into the file
    try:
        fd = os.open(new, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(new, db_path)
        fd = os.open(db_path.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)  # the rename itself
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateError(f"cannot create state database {db_path}: {exc.strerror}") from None
    _mark_checked(db_path)


def _empty_error(db_path: Path, what: str) -> StateError:
    return StateError(
        f"state database {db_path} {what}: what assetsync recorded is lost, and taking it for "
        "a new state would upload every file again; delete it, then restore the state with "
        "`assetsync state import FILE` (an export) or from a backup, or sync to start over"
    )


def _refuse_empty_file(db_path: Path) -> None:
    try:
        size = os.stat(db_path).st_size
    except OSError:
        return  # connecting says what is wrong
    if size == 0:
        raise _empty_error(db_path, "is empty (0 bytes)")


def _file_key(db_path: Path) -> str | None:
    try:
        st = os.stat(db_path)
    except OSError:
        return None
    return f"{st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _as_closed(db_path: Path) -> bool:
    """The database file is exactly as a clean close of assetsync's left it (see CHECKED_NAME)."""
    if os.path.exists(f"{db_path}-wal"):
        return False
    try:
        # Bytes decoded: a text file object would import the ascii codec's module first.
        marker = (db_path.parent / CHECKED_NAME).read_bytes().decode("ascii")
    except (OSError, ValueError):
        return False
    return marker == _file_key(db_path)


def _mark_checked(db_path: Path) -> None:
    """After a clean close: remember the file as it is (not when a reader kept the log)."""
    marker = db_path.parent / CHECKED_NAME
    key = None if os.path.exists(f"{db_path}-wal") else _file_key(db_path)
    try:
        if key is None:
            marker.unlink(missing_ok=True)
        else:  # not fsync'd: a torn marker matches nothing, and the next open checks
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, key.encode("ascii"))
            finally:
                os.close(fd)
    except OSError as exc:
        log.debug("state check marker not written: %s", exc)


@contextlib.contextmanager
def _closed_on_error(conn: sqlite3.Connection, db_path: Path) -> Iterator[None]:
    """Close `conn` if the block fails; database errors become one StateError."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _db_error(db_path, exc) from None
    except BaseException:
        conn.close()
        raise


def _connect_readonly(db_path: Path) -> sqlite3.Connection:
    """A query-only connection to an existing state, or to an empty one if there is none."""
    try:
        if not db_path.exists():
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _migrate(conn, db_path)
            return conn
        _refuse_empty_file(db_path)
        conn = sqlite3.connect(
            f"{db_path.absolute().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state database {db_path}: {exc}") from None
    with _closed_on_error(conn, db_path):
        conn.execute("PRAGMA query_only=ON")
        version = _schema_version(conn, db_path)
        if version == 0:
            raise _empty_error(db_path, "holds no assetsync state (an SQLite file without tables)")
        if version != SCHEMA_VERSION:
            newer = version > SCHEMA_VERSION
            raise StateError(
                f"state database {db_path} has schema {version}, this assetsync reads "
                f"{SCHEMA_VERSION}: "
                + ("upgrade assetsync" if newer else "run assetsync once without another running")
            )
    return conn


def _schema_version(conn: sqlite3.Connection, db_path: Path) -> int:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        if tables:
            raise StateError(
                f"{db_path} is an SQLite database but not an assetsync state: "
                "point state_dir somewhere else"
            )
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise sqlite3.DatabaseError("meta.schema_version is missing or not a number") from None


def _migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    version = _schema_version(conn, db_path)
    if version > SCHEMA_VERSION:
        raise StateError(
            f"state database {db_path} was written by a newer assetsync (schema {version}; "
            f"this one reads up to {SCHEMA_VERSION}): upgrade assetsync"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for step in MIGRATIONS[version]:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
            version += 1
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(version),),
            )
            conn.execute(f"PRAGMA user_version={version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.debug("state %s migrated to schema %d", db_path, version)
