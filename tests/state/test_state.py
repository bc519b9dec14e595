"""State folder: lock, schema, stat cache, remote records, export/import, corruption."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assetsync.errors import LockHeldError, StateError
from assetsync.frozen import replace
from assetsync.remote.resources import Build, VersionRef
from assetsync.scan.rules import StatEntry
from assetsync.state.db import DB_NAME, LOCK_NAME, SCHEMA_VERSION, State
from assetsync.state.ledger import StateLedger, recorded_build
from assetsync.state.records import UploadIntent, VersionRecord
from assetsync.state.schema import MIGRATIONS, load_stat_table

TARGET = "local"
ZS = "ZS" + "1" * 32
ZE = "ZE" + "2" * 32


def _entry(rel: str, digest: str = "xxh3_128:" + "0" * 32) -> StatEntry:
    return StatEntry(rel, 3, 10, 11, 12, digest, 99)


def test_open_creates_folder_wal_full_and_schema(tmp_path: Path) -> None:
    with State.open(tmp_path / "st") as state:
        assert (tmp_path / "st" / DB_NAME).exists()
        conn = state._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_stat_cache_round_trip_survives_reopen(tmp_path: Path) -> None:
    with State.open(tmp_path) as state:
        state.update_stats([_entry("a.png"), _entry("b/c.mp3")])
        state.update_stats([], drop=["a.png"])
        assert set(state.stat_entries()) == {"b/c.mp3"}
    with State.open(tmp_path) as state:
        assert dict(state.stat_entries()) == {"b/c.mp3": _entry("b/c.mp3")}


def test_second_open_in_another_process_names_the_holder_pid(tmp_path: Path) -> None:
    with State.open(tmp_path):
        code = textwrap.dedent(
            f"""
            from pathlib import Path
            from assetsync.state.db import State
            from assetsync.errors import LockHeldError
            try:
                State.open(Path({str(tmp_path)!r}))
            except LockHeldError as exc:
                print(exc.pid, exc)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    assert out.startswith(f"{os.getpid()} another assetsync is running (pid {os.getpid()})")


def test_same_process_second_open_is_refused_too(tmp_path: Path) -> None:
    with State.open(tmp_path), pytest.raises(LockHeldError, match="another assetsync is running"):
        State.open(tmp_path)
    with State.open(tmp_path):  # released on close
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{dead.pid}\n")
    with State.open(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_corrupt_database_is_an_error_and_is_left_alone(tmp_path: Path) -> None:
    garbage = b"this is not sqlite at all" * 100
    (tmp_path / DB_NAME).write_bytes(garbage)
    with pytest.raises(StateError, match="corrupt or unreadable.*state import"):
        State.open(tmp_path)
    assert (tmp_path / DB_NAME).read_bytes() == garbage
    # the lock was released: a fixed database opens
    (tmp_path / DB_NAME).unlink()
    with State.open(tmp_path):
        pass


def test_newer_schema_is_refused_without_changes(tmp_path: Path) -> None:
    with State.open(tmp_path) as state:
        state.update_stats([_entry("keep.png")])
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer assetsync"):
        State.open(tmp_path)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert "keep.png" in load_stat_table(conn).rows()
    conn.close()


def test_schema_1_database_is_migrated_forward_keeping_its_data(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for step in MIGRATIONS[0]:
        conn.execute(step)  # type: ignore[arg-type]
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO stat_cache VALUES ('old.png', 3, 10, 11, 12, 'xxh3_128:ab', 99)")
    conn.execute("INSERT INTO assets VALUES ('local', 'ZS1', '/old.png', 'ZH1')")
    conn.commit()
    conn.close()
    with State.open(tmp_path) as state:
        assert dict(state.stat_entries()) == {
            "old.png": ("old.png", 3, 10, 11, 12, "xxh3_128:ab", 99)
        }
        assert state.asset_sids("local", "ZS1") == {"/old.png": "ZH1"}
        version = state._conn.execute("SELECT value FROM meta WHERE key='schema_version'")
        assert int(version.fetchone()[0]) == SCHEMA_VERSION


def _database_of_schema(folder: Path, version: int) -> sqlite3.Connection:
    """A state database as schema `version` left it (its migrations applied), still open."""
    conn = sqlite3.connect(folder / DB_NAME)
    for steps in MIGRATIONS[:version]:
        for step in steps:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    return conn


def test_schema_6_versions_keep_their_rows_and_may_hold_content_twice(tmp_path: Path) -> None:
    conn = _database_of_schema(tmp_path, 6)
    conn.execute("INSERT INTO asset_versions VALUES ('t', 'ZS1', 'd', '/a', 'public', 'ZN1', 1, "
                 "NULL)")
    conn.commit()
    conn.close()
    with State.open(tmp_path) as state:
        generation = state.versions_generation()
        # The same content again (what `sync --full` uploads): both versions stay recorded.
        state.record_version("t", "ZS1", digest="d", path="/a", visibility="public",
                             version_sid="ZN2", size=1)
        assert sorted(v.version_sid for v in state.versions("t", "ZS1")) == ["ZN1", "ZN2"]
        assert state.version_sid("t", "ZS1", "d", "/a", "public") == "ZN2"
        assert state.versions_generation() > generation  # the triggers came along
        exported = state.export_json()
        state.import_json(exported)  # two SIDs of one content are no duplicate row
        assert len(state.versions("t", "ZS1")) == 2


def test_schema_8_gains_variable_digests_and_a_key_of_its_own(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        conn = _database_of_schema(tmp_path / name, 8)
        conn.execute("INSERT INTO function_versions VALUES ('t', 'ZS1', 'd', '/hello', 'public', "
                     "'ZN1', 1, NULL)")
        conn.commit()
        conn.close()
    keys = []
    for name in ("one", "two"):
        with State.open(tmp_path / name) as state:
            assert [v.version_sid for v in state.versions("t", "ZS1", kind="function")] == ["ZN1"]
            assert state.variable_digests("t", "ZS1", "ZE1") == {}  # no sync recorded any yet
            key = state.variable_digest_key()
            assert key is not None and len(key) == 32
            state.record_variable_digests("t", "ZS1", "ZE1", {"A": "blake2b:aa", "KEPT": None})
            exported = state.export_json()
            tables = exported["tables"]
            assert isinstance(tables, dict)
            assert "variable_digests" not in tables  # hashes under a local key only
            keys.append(key)
        with State.open(tmp_path / name) as state:  # the key stays with its state
            assert state.variable_digest_key() == key
            assert state.variable_digests("t", "ZS1", "ZE1") == {"A": "blake2b:aa", "KEPT": None}
            state.import_json(exported)  # an export carries none: an import forgets them
            assert state.variable_digests("t", "ZS1", "ZE1") == {}
            assert state.variable_digest_key() == key
    assert keys[0] != keys[1]  # random per state


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="not an assetsync state"):
        State.open(tmp_path)


def _record_deployed(state: State) -> None:
    state.record_service(TARGET, "demo", ZS, "demo-1234")
    state.record_environment(TARGET, ZS, "dev", ZE, "demo-1234-dev.twil.io")
    state.record_asset(TARGET, ZS, "/a.png", "ZH" + "a" * 32)
    state.record_asset(TARGET, ZS, "/b.png", "ZH" + "b" * 32)
    state.record_version(
        TARGET, ZS, digest="d1", path="/a.png", visibility="public", version_sid="ZN1", size=5
    )
    state.record_version(
        TARGET, ZS, digest="d2", path="/b.png", visibility="private", version_sid="ZN2", size=6
    )
    state.record_build(
        TARGET,
        ZS,
        build_sid="ZB1",
        environment_sid=ZE,
        status="completed",
        version_sids=["ZN1", "ZNforeign"],
        created_at="2026-01-01T00:00:00Z",
    )
    state.record_pending(TARGET, ZS, ZE, "ZB1")
    state.record_deployment(TARGET, ZS, ZE, "ZB1", "ZD1")


def test_remote_records_and_the_plan_view(tmp_path: Path) -> None:
    with State.open(tmp_path) as state:
        _record_deployed(state)
        assert state.get_service(TARGET, "demo").service_sid == ZS  # type: ignore[union-attr]
        assert state.get_service("other-target", "demo") is None
        env = state.get_environment(TARGET, ZS, "dev")
        assert env is not None and (env.build_sid, env.deployment_sid) == ("ZB1", "ZD1")
        assert state.get_pending(TARGET, ZS, ZE) is None  # cleared by the deployment
        recorded = state.recorded_service(TARGET, ZS, "dev")
    assert recorded.asset_sids["/b.png"] == "ZH" + "b" * 32
    assert recorded.versions[("d2", "/b.png", "private")] == "ZN2"
    assert recorded.owned_paths == frozenset({"/a.png"})  # /b.png is not in the deployed build
    assert recorded.deployed_version_sids == frozenset({"ZN1"})
    assert recorded.last_build_sid == "ZB1"


def test_asset_sids_on_first_use_are_read_when_looked_into(tmp_path: Path) -> None:
    """A sync's record reads the Asset SIDs when first looked into, not when it is made."""
    with State.open(tmp_path) as state:
        _record_deployed(state)
        recorded = state.recorded_service(TARGET, ZS, "dev", assets_on_first_use=True)
        state.record_asset(TARGET, ZS, "/later.png", "ZH" + "c" * 32)
        assert recorded.asset_sids["/later.png"] == "ZH" + "c" * 32
        assert recorded.asset_sids == state.asset_sids(TARGET, ZS)
        assert state.asset_sid(TARGET, ZS, "/b.png") == "ZH" + "b" * 32
        assert state.asset_sid(TARGET, ZS, "/none.png") is None


def test_the_ledger_answers_asset_sids_alike_one_by_one_and_all_at_once(tmp_path: Path) -> None:
    """A few paths are looked up a row each, many with one read of the whole map: the answers,
    and what recording and forgetting change, are the same either way."""
    sids = {f"/f{i}.png": f"ZH{i:032d}" for i in range(20)}
    with State.open(tmp_path) as state:
        state.record_assets(TARGET, ZS, sids)
        ledger = StateLedger(state, TARGET, ZS, ZE)
        assert ledger.asset_sid("/f1.png") == sids["/f1.png"]
        assert ledger.asset_sid("/new.png") is None
        assert ledger.asset_sid("/f2.png") == sids["/f2.png"]
        ledger.record_assets({"/new.png": "ZH" + "e" * 32})
        ledger.forget_asset("/f2.png")
        assert ledger.asset_sid("/new.png") == "ZH" + "e" * 32
        assert ledger.asset_sid("/f2.png") is None
        for path, sid in sids.items():  # past the single lookups: the whole map
            assert ledger.asset_sid(path) == (None if path == "/f2.png" else sid)
        assert ledger.asset_sid("/new.png") == "ZH" + "e" * 32
        assert ledger.asset_sid("/newer.png") is None
        ledger.record_asset("/newer.png", "ZH" + "f" * 32)
        ledger.forget_asset("/f3.png")
        assert ledger.asset_sid("/newer.png") == "ZH" + "f" * 32
        assert ledger.asset_sid("/f3.png") is None
        fresh = StateLedger(state, TARGET, ZS, ZE)
        for path in [*sids, "/new.png", "/newer.png"]:
            assert fresh.asset_sid(path) == ledger.asset_sid(path)


def test_a_closed_state_says_it_is_closed_not_corrupt(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    _record_deployed(state)
    recorded = state.recorded_service(TARGET, ZS, "dev", assets_on_first_use=True)
    state.close()
    for use in (lambda: state.get_environment(TARGET, ZS, "dev"),
                lambda: state.record_asset(TARGET, ZS, "/c.png", "ZH" + "c" * 32),
                lambda: recorded.asset_sids["/b.png"]):
        with pytest.raises(StateError, match="used after it was closed") as caught:
            use()
        assert "corrupt" not in str(caught.value)
    with State.open(tmp_path) as again:  # the file itself is fine
        assert again.asset_sids(TARGET, ZS)["/b.png"] == "ZH" + "b" * 32


def test_environment_recreated_with_new_sid_forgets_old_deployment(tmp_path: Path) -> None:
    with State.open(tmp_path) as state:
        _record_deployed(state)
        state.record_environment(TARGET, ZS, "dev", "ZE" + "9" * 32, "new.twil.io")
        env = state.get_environment(TARGET, ZS, "dev")
    assert env is not None and env.build_sid is None and env.domain_name == "new.twil.io"


def test_a_recorded_version_is_durable_before_close(tmp_path: Path) -> None:
    """A crash right after record_version returns must not lose it (invariant 1)."""
    code = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from assetsync.state.db import State
        s = State.open(Path({str(tmp_path)!r}))
        s.record_version("local", "ZS", digest="d", path="/x", visibility="public",
                         version_sid="ZNdurable", size=1)
        os._exit(9)  # no close, no cleanup
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == 9
    with State.open(tmp_path) as state:
        assert [v.version_sid for v in state.versions("local", "ZS")] == ["ZNdurable"]


def test_export_import_round_trip(tmp_path: Path) -> None:
    with State.open(tmp_path / "one") as state:
        _record_deployed(state)
        state.update_stats([_entry("a.png")])
        exported = state.export_json()
    text = json.dumps(exported)
    with State.open(tmp_path / "two") as state:
        state.update_stats([_entry("stale.png")])
        state.import_json(json.loads(text))
        assert state.export_json() == exported
        assert set(state.stat_entries()) == {"a.png"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "'format' must be"),
        (lambda d: d.update(schema_version=99), "schema_version 99"),
        (lambda d: d["tables"].update(bogus=[]), "unknown table 'bogus'"),
        (lambda d: d["tables"]["asset_versions"][0].update(size="5"), r"asset_versions\[0\]\.size"),
        (lambda d: d["tables"]["assets"][0].update(extra=1), "unknown field 'extra'"),
        (lambda d: d["tables"]["assets"].append(dict(d["tables"]["assets"][0])), "duplicate rows"),
    ],
)
def test_bad_import_names_the_problem_and_changes_nothing(
    tmp_path: Path, mutate: object, message: str
) -> None:
    with State.open(tmp_path) as state:
        _record_deployed(state)
        before = state.export_json()
        bad = json.loads(json.dumps(before))
        mutate(bad)  # type: ignore[operator]
        with pytest.raises(StateError, match=message):
            state.import_json(bad)
        assert state.export_json() == before


def test_read_only_view_beside_the_writer_sees_data_and_writes_nothing(tmp_path: Path) -> None:
    with State.open(tmp_path) as writer:
        _record_deployed(writer)
        writer.update_stats([_entry("a.png")])
        with State.open(tmp_path, readonly=True) as reader:
            assert reader.get_service(TARGET, "demo") is not None
            assert set(reader.stat_entries()) == {"a.png"}
            reader.update_stats([_entry("b.png")])  # kept in memory only
            assert set(reader.stat_entries()) == {"a.png", "b.png"}
            with pytest.raises(StateError, match="read-only"):
                reader.record_asset(TARGET, ZS, "/x.png", "ZHx")
        assert set(writer.stat_entries()) == {"a.png"}
    with State.open(tmp_path) as again:
        assert set(again.stat_entries()) == {"a.png"}
        assert "/x.png" not in again.asset_sids(TARGET, ZS)


def test_read_only_view_of_a_missing_state_is_empty(tmp_path: Path) -> None:
    with State.open(tmp_path / "none", readonly=True) as reader:
        assert dict(reader.stat_entries()) == {}
    assert not (tmp_path / "none").exists()


def test_upload_intents_journal_and_settle(tmp_path: Path) -> None:
    intents = [
        UploadIntent("/b.png", "d2", "public", 6, "ZHb", "2026-01-01T00:00:00.000001Z"),
        UploadIntent("/a.png", "d1", "private", 5, "ZHa", "2026-01-01T00:00:00.000001Z"),
    ]
    with State.open(tmp_path) as state:
        state.record_upload_intents(TARGET, ZS, intents)
        assert state.upload_intents("other", ZS) == ()
    with State.open(tmp_path) as state:  # durable across a reopen
        assert [i.path for i in state.upload_intents(TARGET, ZS)] == ["/a.png", "/b.png"]
        state.record_versions(
            TARGET, ZS, [VersionRecord(ZS, "d1", "/a.png", "private", "ZNa", 5, None)]
        )
        assert state.upload_intents(TARGET, ZS) == (intents[0],)  # /a.png settled by its SID
        assert [v.version_sid for v in state.versions(TARGET, ZS)] == ["ZNa"]
        exported = state.export_json()
        assert [r["path"] for r in exported["tables"]["upload_intents"]] == ["/b.png"]
        state.clear_upload_intents(TARGET, ZS)
        assert state.upload_intents(TARGET, ZS) == ()


def _build(sid: str) -> Build:
    return Build(
        sid=sid, service_sid=ZS, status="building",
        asset_versions=(VersionRef("ZN1", "ZH1", "/a b.png", "public"),
                        VersionRef("ZN2", "ZH2", "/é\"q.txt", "protected")),
        function_versions=(VersionRef("ZN3", "ZH3", "/fn", "protected"),),
        dependencies=(("twilio", "^4"), ("left-pad", "*")), runtime="node18",
        date_created="2026-11-01T00:00:00Z",
    )


def test_a_kept_manifest_reads_back_as_the_build_and_an_older_api_json_one_too(
    tmp_path: Path,
) -> None:
    with State.open(tmp_path) as state:
        _record_deployed(state)
        StateLedger(state, TARGET, ZS, ZE).record_pending_build(_build("ZB2"))
        kept = recorded_build(state, TARGET, ZS, "ZB2")
        assert kept == replace(_build("ZB2"), status="completed")
        compact = state.build_manifest(TARGET, ZS, "ZB2") or ""
        # What states kept before the compact form: the API's JSON of the build.
        api_json = {
            "sid": "ZB3", "service_sid": ZS, "status": "completed", "runtime": "node18",
            "asset_versions": [{"sid": "ZN1", "asset_sid": "ZH1", "path": "/a b.png",
                                "visibility": "PUBLIC"}],
            "function_versions": [], "dependencies": '[{"name":"twilio","version":"^4"}]',
        }
        state.record_build(TARGET, ZS, build_sid="ZB3", environment_sid=ZE, status="completed",
                           version_sids=["ZN1"], manifest=json.dumps(api_json))
        older = recorded_build(state, TARGET, ZS, "ZB3")
        for n, damaged in enumerate(('{"format": 2, "sid": "ZB4"}', compact.replace(
                '"ZN1","ZH1",', '"ZN1",'))):
            state.record_build(TARGET, ZS, build_sid=f"ZB5{n}", environment_sid=ZE,
                               status="completed", version_sids=["ZN1"], manifest=damaged)
            assert recorded_build(state, TARGET, ZS, f"ZB5{n}") is None  # fetched instead
    assert older is not None and older.asset_versions == (
        VersionRef("ZN1", "ZH1", "/a b.png", "public"),)
    assert older.dependencies == (("twilio", "^4"),)
    # Kept compact: each version an array of its fields, not the API's object.
    assert json.loads(compact)["asset_versions"][0] == ["ZN1", "ZH1", "/a b.png", "public"]


def test_settle_keeps_the_named_builds_and_ten_more_per_environment_with_their_manifests(
    tmp_path: Path,
) -> None:
    """Each deployment adds a build's SIDs and manifest: the history stays bounded. A kept
    build keeps its manifest, so a rollback to it after Twilio deleted it gets its functions."""
    other_env = "ZE" + "3" * 32
    with State.open(tmp_path) as state:
        _record_deployed(state)  # ZB1, deployed on ZE
        state.record_environment(TARGET, ZS, "prod", other_env, "demo-1234-prod.twil.io")
        ledger = StateLedger(state, TARGET, ZS, ZE)
        for n in range(2, 16):  # ZB2..ZB15, each deployed on ZE in turn
            ledger.record_pending_build(_build(f"ZB{n:02d}"))
            ledger.record_deployment(f"ZB{n:02d}", f"ZD{n}")
        state.record_deployment(TARGET, ZS, other_env, "ZB03", "ZDprod")  # promoted
        ledger.record_pending_build(_build("ZB16"))  # building now
        before = state.builds(TARGET, ZS)
        state.settle()
        kept = {b.build_sid for b in state.builds(TARGET, ZS)}
        manifests = {sid for sid in kept if state.build_manifest(TARGET, ZS, sid)}
        dropped = [sid for sid in (f"ZB{n:02d}" for n in range(1, 7))
                   if sid != "ZB03" and state.build_manifest(TARGET, ZS, sid)]
        live = recorded_build(state, TARGET, ZS, "ZB15")
        candidate = recorded_build(state, TARGET, ZS, "ZB08")
    assert len(before) == 16
    # The ten newest of ZE (ZB07..ZB16), and ZB03, which prod has deployed.
    assert kept == {f"ZB{n:02d}" for n in range(7, 17)} | {"ZB03"}
    assert manifests == kept and dropped == []
    assert live is not None and live.function_versions == _build("x").function_versions
    assert candidate is not None and candidate.function_versions == live.function_versions


def test_a_database_changed_since_the_last_clean_close_is_checked_whole_at_open(
    tmp_path: Path,
) -> None:
    """Opening skips the whole-file check only while the file is as a clean close left it."""
    with State.open(tmp_path) as state:
        state.record_versions(TARGET, ZS, [
            VersionRecord(ZS, f"d{i}", f"/f{i:05d}.txt", "public", f"ZN{i:032d}", i, None)
            for i in range(3000)])
    db = tmp_path / DB_NAME
    with State.open(tmp_path) as state:  # opens clean; nothing read touches the versions
        pass
    pages = db.stat().st_size // 4096
    with db.open("r+b") as handle:  # damage a page of the versions table, in place
        handle.seek((pages // 2) * 4096)
        handle.write(os.urandom(4096))
    with pytest.raises(StateError, match="corrupt or unreadable"):
        State.open(tmp_path)


def test_the_whole_file_is_checked_only_when_not_as_the_last_clean_close_left_it(
    tmp_path: Path,
) -> None:
    with State.open(tmp_path) as state:
        assert not state.checked_whole_file  # nothing to check yet
        state.update_stats([_entry("a.png")])
    with State.open(tmp_path) as state:
        assert not state.checked_whole_file  # as closed: skipped
    # A run that dies leaves its write-ahead log: the next open checks.
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from assetsync.state.db import State
        s = State.open(Path({str(tmp_path)!r}))
        s.record_pending("t", "ZS", "ZE", "ZB1")
        os._exit(9)
        """)
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    with State.open(tmp_path) as state:
        assert state.checked_whole_file
        assert state.get_pending("t", "ZS", "ZE") is not None
    with State.open(tmp_path) as state:
        assert not state.checked_whole_file
    os.utime(tmp_path / DB_NAME)  # another program touched the file
    with State.open(tmp_path) as state:
        assert state.checked_whole_file


@pytest.mark.parametrize("damage", ["zero bytes", "no tables"])
def test_an_empty_state_database_is_refused_never_taken_for_a_new_state(
    tmp_path: Path, damage: str
) -> None:
    """A state truncated to 0 bytes (or an SQLite file without tables) has lost what was
    recorded: opening it says so in one line and what to do, and changes nothing."""
    with State.open(tmp_path) as state:
        state.record_service(TARGET, "demo", ZS, "demo-1234")
    db = tmp_path / DB_NAME
    if damage == "zero bytes":
        db.write_bytes(b"")
    else:
        db.unlink()
        sqlite3.connect(db).execute("PRAGMA user_version=0").connection.close()
        sqlite3.connect(db).execute("VACUUM").connection.close()  # a valid file, no tables
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StateError) as raised:
            State.open(tmp_path, readonly=readonly)
        message = str(raised.value)
        assert "\n" not in message and str(db) in message
        assert ("is empty (0 bytes)" if damage == "zero bytes" else "holds no assetsync state") \
            in message
        assert "assetsync state import" in message and "delete it" in message
    assert db.read_bytes() == before
    db.unlink()  # what the message offers: start over
    with State.open(tmp_path) as state:
        assert state.export_json()["tables"]["services"] == []  # type: ignore[index]


def test_a_new_state_database_appears_whole(tmp_path: Path) -> None:
    """Made under a temporary name and renamed: no run that dies while making it can leave an
    empty `state.db`, so an empty one is always damage."""
    (tmp_path / "state.db.new").write_bytes(b"left by a run that died making it")
    with State.open(tmp_path) as state:
        assert not state.checked_whole_file
        conn = sqlite3.connect(tmp_path / DB_NAME)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] \
            == str(SCHEMA_VERSION)
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(DB_NAME)) == [
        DB_NAME, f"{DB_NAME}.checked"]


def test_the_cli_says_an_empty_state_is_damaged_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from assetsync.cli import main

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("a")
    (tmp_path / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "demo"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["sync"]) == 0
    assert main(["state", "export", "-o", "saved.json"]) == 0
    db = tmp_path / ".assetsync" / DB_NAME
    db.write_bytes(b"")
    capsys.readouterr()
    for argv in (["sync"], ["plan"], ["status"], ["state", "import", "saved.json"]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1
        assert "is empty (0 bytes)" in err and "assetsync state import" in err
    assert db.stat().st_size == 0
    # What the line says to do: delete it, import the export; the sync then has nothing to do.
    db.unlink()
    assert main(["state", "import", "saved.json"]) == 0
    capsys.readouterr()
    assert main(["sync"]) == 0
    assert capsys.readouterr().out.startswith("Up to date")
