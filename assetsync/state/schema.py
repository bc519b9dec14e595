"""The state database's schema, its forward migrations, and JSON export/import (validated).

Each column is declared once here; the migrations, the export and the import's validation all
come from that one table.

The stat cache is the exception in storage, not in shape: it is one blob, because a plan loads
all of it every time: rows (schema 1), then a marshal'd dict of rows (2), now a
`assetsync.scan.stat_table.StatTable` of per-folder columns (5), which loads ~10x faster than the
dict (bench/bench_scan.py, "load_stat_cache"). Exports still show it as rows.

Carried outcomes (`assetsync.state.last_outcome`) are a cache as well: one blob per environment,
never exported, forgotten by an import; triggers on `asset_versions` move `versions_generation` on
every write, so an outcome can tell whether the record changed since it was kept.

Variable digests (schema 9) are kept per environment for the offline `plan`: a keyed BLAKE2b of each
variable (`assetsync.functions.variables.variable_digests`), never a value, under a random key that
each state makes for itself (in `meta`). Neither is exported, and an import forgets the digests.
"""

from __future__ import annotations

import marshal
import sqlite3
from collections.abc import Callable, Mapping

from assetsync.errors import StateError
from assetsync.scan.stat_table import RACY_WINDOW_NS, StatRow, StatTable

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "VARIABLE_KEY_META",
    "dump_stat_table",
    "export_state",
    "import_state",
    "load_stat_table",
]

SCHEMA_VERSION = 10
EXPORT_FORMAT = "assetsync-state"
EXPORT_VERSION = 1  # the JSON shape; independent of how the database stores it
_MARSHAL_VERSION = 4


# table -> ((column, type, nullable), ...), primary key columns first. `stat_cache` is the
# logical shape of the stat blob.
TABLES: dict[str, tuple[tuple[str, type, bool], ...]] = {
    "stat_cache": (
        ("rel_path", str, False),
        ("size", int, False),
        ("mtime_ns", int, False),
        ("ctime_ns", int, False),
        ("inode", int, False),
        ("digest", str, False),
        ("hashed_at_ns", int, False),
    ),
    "services": (
        ("target", str, False),
        ("unique_name", str, False),
        ("service_sid", str, False),
        ("domain_base", str, True),
    ),
    "environments": (
        ("target", str, False),
        ("service_sid", str, False),
        ("unique_name", str, False),
        ("environment_sid", str, False),
        ("domain_name", str, True),
        ("build_sid", str, True),
        ("deployment_sid", str, True),
    ),
    "assets": (
        ("target", str, False),
        ("service_sid", str, False),
        ("path", str, False),
        ("asset_sid", str, False),
    ),
    "asset_versions": (
        ("target", str, False),
        ("service_sid", str, False),
        ("digest", str, False),
        ("path", str, False),
        ("visibility", str, False),
        ("version_sid", str, False),
        ("size", int, False),
        ("created_at", str, True),
    ),
    "builds": (
        ("target", str, False),
        ("service_sid", str, False),
        ("build_sid", str, False),
        ("environment_sid", str, True),
        ("status", str, False),
        ("version_sids", str, False),  # JSON array of version SIDs
        ("created_at", str, True),
    ),
    "pending": (
        ("target", str, False),
        ("service_sid", str, False),
        ("environment_sid", str, False),
        ("build_sid", str, False),
        ("created_at", str, True),
    ),
    "build_manifests": (  # the API's JSON of each build assetsync created or adopted
        ("target", str, False),
        ("service_sid", str, False),
        ("build_sid", str, False),
        ("manifest", str, False),
    ),
    "upload_intents": (
        ("target", str, False),
        ("service_sid", str, False),
        ("path", str, False),
        ("digest", str, False),
        ("visibility", str, False),
        ("size", int, False),
        ("asset_sid", str, False),
        ("created_at", str, True),
    ),
    # Functions (schema 8) have the assets' three tables: the same journal, keyed the same way.
    "functions": (
        ("target", str, False),
        ("service_sid", str, False),
        ("path", str, False),
        ("function_sid", str, False),
    ),
    "function_versions": (
        ("target", str, False),
        ("service_sid", str, False),
        ("digest", str, False),
        ("path", str, False),
        ("visibility", str, False),
        ("version_sid", str, False),
        ("size", int, False),
        ("created_at", str, True),
    ),
    "function_intents": (
        ("target", str, False),
        ("service_sid", str, False),
        ("path", str, False),
        ("digest", str, False),
        ("visibility", str, False),
        ("size", int, False),
        ("function_sid", str, False),
        ("created_at", str, True),
    ),
}
_PRIMARY_KEYS = {
    "stat_cache": 1,
    "services": 2,
    "environments": 3,
    "assets": 3,
    "asset_versions": 6,  # its SID too: `sync --full` records the same content again
    "builds": 3,
    "pending": 3,
    "upload_intents": 5,
    "build_manifests": 3,
    "functions": 3,
    "function_versions": 6,
    "function_intents": 5,
}


def _create_table(name: str) -> str:
    cols = TABLES[name]
    defs = [
        f"{col} {'INTEGER' if typ is int else 'TEXT'}{'' if nullable else ' NOT NULL'}"
        for col, typ, nullable in cols
    ]
    key = ", ".join(col for col, _t, _n in cols[: _PRIMARY_KEYS[name]])
    return f"CREATE TABLE {name} ({', '.join(defs)}, PRIMARY KEY ({key})) WITHOUT ROWID"


def load_stat_table(conn: sqlite3.Connection) -> StatTable:
    """The stat cache (an empty table when there is none)."""
    row = conn.execute("SELECT data FROM stat_blob WHERE id = 1").fetchone()
    if row is None:
        return StatTable()
    try:
        return StatTable.from_blob(row[0])
    except ValueError as exc:
        raise sqlite3.DatabaseError(str(exc)) from None


def dump_stat_table(conn: sqlite3.Connection, table: StatTable) -> None:
    """Replace the stat cache (inside the caller's transaction)."""
    conn.execute(
        "INSERT OR REPLACE INTO stat_blob (id, data) VALUES (1, ?)", (table.to_blob(),)
    )


def _dump_row_blob(conn: sqlite3.Connection, stats: Mapping[str, StatRow]) -> None:
    """Schema 2's blob: a marshal'd dict of rows."""
    blob = marshal.dumps({k: tuple(v) for k, v in stats.items()}, _MARSHAL_VERSION)
    conn.execute("INSERT OR REPLACE INTO stat_blob (id, data) VALUES (1, ?)", (blob,))


def _stat_rows_to_blob(conn: sqlite3.Connection) -> None:
    rows = conn.execute(
        "SELECT rel_path, size, mtime_ns, ctime_ns, inode, digest, hashed_at_ns FROM stat_cache"
    ).fetchall()
    _dump_row_blob(conn, {r[0]: r for r in rows})


def _row_blob_to_table(conn: sqlite3.Connection) -> None:
    row = conn.execute("SELECT data FROM stat_blob WHERE id = 1").fetchone()
    if row is None:
        return
    try:
        stats = marshal.loads(row[0])
    except (EOFError, ValueError, TypeError) as exc:
        raise sqlite3.DatabaseError(f"stat cache blob unreadable: {exc}") from None
    if not isinstance(stats, dict):
        raise sqlite3.DatabaseError("stat cache blob is not a mapping")
    dump_stat_table(conn, StatTable.from_rows(stats.values(), racy_ns=RACY_WINDOW_NS))


_SINCE_8 = ("functions", "function_versions", "function_intents")

# `meta` row holding the state's own key for variable digests (64 hex digits: 32 random bytes).
VARIABLE_KEY_META = "variable_digest_key"


def _new_variable_key(conn: sqlite3.Connection) -> None:
    """A key of this state's own, so a digest cannot be tested against guessed values by
    anyone who does not hold the state database itself (BLAKE2b keyed: a MAC, not a hash)."""
    import secrets  # only when a state is created or migrated: it loads `random` (~1.5 ms)

    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                 (VARIABLE_KEY_META, secrets.token_bytes(32).hex()))

Step = str | Callable[[sqlite3.Connection], None]

_VERSIONS_BY_SID = (
    "CREATE INDEX asset_versions_by_sid ON asset_versions (target, service_sid, version_sid)")
# Every write to the recorded versions moves a counter (`State.versions_generation`).
_VERSION_TRIGGERS = tuple(
    f"CREATE TRIGGER asset_versions_{event.lower()} AFTER {event} ON asset_versions "
    "BEGIN UPDATE versions_generation SET n = n + 1; END"
    for event in ("INSERT", "UPDATE", "DELETE"))

# Every write to a table `plan` reads gives a state-wide value a new random one
# (`State.state_generation`), which keys `plan`'s output memo (`assetsync.sync.plan_memo`). Random,
# not a count: a state restored from a backup and written again never comes back to a value that
# stood for other contents. Not the stat cache's blob: the scan's rows are in that key
# themselves. A table added later needs its own triggers in its own step.
_PLANNED_TABLES = ("meta", "services", "environments", "assets", "asset_versions", "builds",
                   "pending", "build_manifests", "upload_intents", "functions",
                   "function_versions", "function_intents", "carried", "variable_digests")
_STATE_TRIGGERS = tuple(
    f"CREATE TRIGGER {table}_generation_{event.lower()} AFTER {event} ON {table} "
    "BEGIN UPDATE state_generation SET n = random(); END"
    for table in _PLANNED_TABLES for event in ("INSERT", "UPDATE", "DELETE"))

# MIGRATIONS[n] takes schema n to n + 1. Never edit a released step; append a new one.
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (  # 0 -> 1: everything, the stat cache as rows
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        *(_create_table(name) for name in TABLES
          if name not in ("upload_intents", "build_manifests", *_SINCE_8)),
        _VERSIONS_BY_SID,
    ),
    (  # 1 -> 2: the stat cache as one blob
        "CREATE TABLE stat_blob (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL)",
        _stat_rows_to_blob,
        "DROP TABLE stat_cache",
    ),
    (  # 2 -> 3: the upload-intent journal
        _create_table("upload_intents"),
    ),
    (  # 3 -> 4: build manifests (a sync whose live build is its own need not fetch it)
        _create_table("build_manifests"),
    ),
    (  # 4 -> 5: the stat cache as per-folder columns with the folders' listings
        _row_blob_to_table,
    ),
    (  # 5 -> 6: carried outcomes, and a counter of changes to the recorded versions
        ("CREATE TABLE carried (target TEXT NOT NULL, service TEXT NOT NULL, "
         "environment TEXT NOT NULL, data BLOB NOT NULL, "
         "PRIMARY KEY (target, service, environment)) WITHOUT ROWID"),
        ("CREATE TABLE versions_generation (id INTEGER PRIMARY KEY CHECK (id = 1), "
         "n INTEGER NOT NULL)"),
        "INSERT INTO versions_generation VALUES (1, 0)",
        *_VERSION_TRIGGERS,
    ),
    (  # 6 -> 7: a version's SID joins its key, so content uploaded twice keeps both records
        "ALTER TABLE asset_versions RENAME TO asset_versions_6",
        _create_table("asset_versions"),
        "INSERT INTO asset_versions SELECT * FROM asset_versions_6",
        "DROP TABLE asset_versions_6",  # with its index and triggers
        _VERSIONS_BY_SID,
        *_VERSION_TRIGGERS,
    ),
    (  # 7 -> 8: functions, their versions and their upload journal
        *(_create_table(name) for name in _SINCE_8),
    ),
    (  # 8 -> 9: per environment, a keyed digest of each variable (NULL: a key whose value no
        # .env gave, kept live), and the state's key for them
        ("CREATE TABLE variable_digests (target TEXT NOT NULL, service_sid TEXT NOT NULL, "
         "environment_sid TEXT NOT NULL, key TEXT NOT NULL, digest TEXT, "
         "PRIMARY KEY (target, service_sid, environment_sid, key)) WITHOUT ROWID"),
        _new_variable_key,
    ),
    (  # 9 -> 10: a value every change to what `plan` reads renews (its output memo's key)
        ("CREATE TABLE state_generation (id INTEGER PRIMARY KEY CHECK (id = 1), "
         "n INTEGER NOT NULL)"),
        "INSERT INTO state_generation VALUES (1, 0)",
        *_STATE_TRIGGERS,
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def export_state(conn: sqlite3.Connection) -> dict[str, object]:
    """Every table as a list of row objects, in primary-key order."""
    tables: dict[str, list[dict[str, object]]] = {}
    for name, cols in TABLES.items():
        names = [c for c, _t, _n in cols]
        if name == "stat_cache":
            rows = [tuple(v) for _k, v in sorted(load_stat_table(conn).rows().items())]
        else:
            order = ", ".join(names[: _PRIMARY_KEYS[name]])
            rows = conn.execute(
                f"SELECT {', '.join(names)} FROM {name} ORDER BY {order}"
            ).fetchall()
        tables[name] = [dict(zip(names, row, strict=True)) for row in rows]
    return {"format": EXPORT_FORMAT, "schema_version": EXPORT_VERSION, "tables": tables}


def _validated_rows(data: object) -> dict[str, list[tuple[object, ...]]]:
    if not isinstance(data, Mapping):
        raise StateError("state import: expected a JSON object from `assetsync state export`")
    if data.get("format") != EXPORT_FORMAT:
        raise StateError(f"state import: 'format' must be {EXPORT_FORMAT!r}")
    version = data.get("schema_version")
    if version != EXPORT_VERSION:
        raise StateError(
            f"state import: schema_version {version!r} is not {EXPORT_VERSION}; "
            "export it again with this assetsync version"
        )
    tables = data.get("tables")
    if not isinstance(tables, Mapping):
        raise StateError("state import: 'tables' must be an object")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise StateError(f"state import: unknown table {unknown[0]!r}")
    out: dict[str, list[tuple[object, ...]]] = {}
    for name, cols in TABLES.items():
        rows = tables.get(name, [])
        if not isinstance(rows, list):
            raise StateError(f"state import: tables.{name} must be a list")
        names = {c for c, _t, _n in cols}
        checked: list[tuple[object, ...]] = []
        for index, row in enumerate(rows):
            where = f"tables.{name}[{index}]"
            if not isinstance(row, Mapping):
                raise StateError(f"state import: {where} must be an object")
            extra = sorted(set(row) - names)
            if extra:
                raise StateError(f"state import: {where} has unknown field {extra[0]!r}")
            values = []
            for col, typ, nullable in cols:
                value = row.get(col)
                ok = (value is None and nullable) or (
                    isinstance(value, typ) and not isinstance(value, bool)
                )
                if not ok:
                    kind = "a whole number" if typ is int else "a string"
                    raise StateError(
                        f"state import: {where}.{col} must be {kind}"
                        + (" or null" if nullable else "")
                    )
                values.append(value)
            checked.append(tuple(values))
        out[name] = checked
    return out


def import_state(conn: sqlite3.Connection, data: object) -> None:
    """Replace every table's rows with `data`'s, inside the caller's transaction.

    Raises:
        StateError: `data` is not a valid export; the caller's transaction rolls back.
    """
    rows = _validated_rows(data)
    conn.execute("DELETE FROM carried")  # outcomes of syncs the imported state may not know
    # Variable digests are not exported (not in TABLES): each is keyed with the key of the
    # state that made it, so in another state it could never match. Exporting the key with
    # them would make them plain hashes that anyone holding the export (a CI cache) could test
    # guessed values against; they are only a convenience for the offline `plan`, which shows
    # the keys as "to set" until the next sync records them again.
    conn.execute("DELETE FROM variable_digests")
    for name, cols in TABLES.items():
        if name == "stat_cache":
            stats = {str(r[0]): r for r in rows[name]}
            if len(stats) != len(rows[name]):
                raise StateError("state import: tables.stat_cache has duplicate rows")
            table = StatTable.from_rows(stats.values(), racy_ns=RACY_WINDOW_NS)  # type: ignore[arg-type]
            dump_stat_table(conn, table)
            continue
        conn.execute(f"DELETE FROM {name}")
        marks = ", ".join("?" for _ in cols)
        try:
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows[name])
        except sqlite3.IntegrityError as exc:
            raise StateError(f"state import: tables.{name} has duplicate rows ({exc})") from None
