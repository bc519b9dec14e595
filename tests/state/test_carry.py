"""Carried outcomes (`assetsync.state.last_outcome`): a sync whose last outcome still holds prepares and plans
only the changed files, and publishes exactly what the general path publishes."""

from __future__ import annotations

import io
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from assetsync.config import Config, target_key
from assetsync.errors import DriftError
from assetsync.frozen import replace
from assetsync.media.cache import SniffCache
from assetsync.plan.assets import build_plan
from assetsync.prepare.stage import prepare_files
from assetsync.results import SyncEvent, SyncResult
from assetsync.state import last_outcome as carry
from assetsync.state.db import State
from assetsync.state.records import VersionRecord
from assetsync.sync.locate import to_live_build
from assetsync.sync.run import sync
from tests.sync_harness import (
    api_get,
    assert_functions_kept,
    deploy_function_build,
    load,
    make_tree,
    published_beside_functions,
    writes,
)

# Both kinds of visibility rule, and image optimization with a variant profile.
EXTRA = ('[visibility]\nprotected = ["d1/**"]\n'
         '[optimize]\neffort = 1\n[optimize.profiles.mms]\nglobs = ["img/**"]\n')


def _png(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (40, 30), (rng.randrange(256), rng.randrange(256), 90))
    image.putpixel((rng.randrange(40), rng.randrange(30)), (0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _site(config: Config) -> None:
    make_tree(config.source, 24)
    (config.source / "key.private.txt").write_text("server side")
    (config.source / "img").mkdir()
    (config.source / "img" / "logo.png").write_bytes(_png(0))


def _forget_carried(config: Config) -> None:
    """What losing the outcome looks like (a new machine, a cleared cache): the next sync takes
    the general path."""
    with sqlite3.connect(config.state_dir / "state.db") as conn:
        conn.execute("DELETE FROM carried")
    conn.close()


def _summary(result: SyncResult) -> tuple[object, ...]:
    return (result.uploaded, result.reused, result.created_assets, result.dropped,
            result.kept_foreign, result.noop, result.warnings, result.write_requests,
            result.requests, sorted((u.path, u.visibility) for u in result.urls))


def _published(emulator: Any, result: SyncResult) -> set[tuple[str, str, str]]:
    """(path, visibility, stored content digest) of every asset in the live build."""
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    return {(v["path"], v["visibility"],
             emulator.state.store.get(v["sid"], "asset_version").data["digest"])
            for v in build["asset_versions"]}


KINDS = ("contents", "add", "remove", "rename", "revert")


def _edit(rng: random.Random, roots: list[Path], step: int, kind: str = "") -> tuple[str, int]:
    """The same random edit in every tree: contents (and how many files' bytes changed), or
    the file set."""
    site = roots[0]
    files = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    kind = kind or rng.choice(["contents", "contents", *KINDS])
    if kind == "add":
        for root in roots:
            (root / f"new{step}.txt").write_text(f"new {step}")
        return kind, 0
    if kind in ("remove", "rename"):  # a rename keeps the count of files
        victim = rng.choice([f for f in files if f.suffix == ".txt"])
        for root in roots:
            if kind == "rename":
                (root / victim).rename(root / victim.with_name(f"renamed{step}.txt"))
            else:
                (root / victim).unlink()
        return kind, 0
    changed = 0
    for rel in rng.sample(files, rng.randint(1, 3)):
        if rel.suffix == ".png":
            body = _png(step if kind == "contents" else 0)
        else:  # a revert brings back content an earlier step may have had
            body = (f"step {step}" if kind == "contents" else "reverted").encode()
        changed += (site / rel).read_bytes() != body
        for root in roots:
            (root / rel).write_bytes(body)
    return kind, changed


@pytest.mark.parametrize("seed", range(3))
def test_carried_syncs_publish_what_general_syncs_publish(
    tmp_path: Path, emulator: Any, seed: int
) -> None:
    rng = random.Random(seed)
    fast = load(tmp_path / "fast", emulator, service="fast", extra=EXTRA)
    slow = load(tmp_path / "slow", emulator, service="slow", extra=EXTRA)
    for config in (fast, slow):
        _site(config)
    assert not any(e.kind == "carried" for e in _events(fast))  # a first sync has nothing to carry
    sync(slow)
    for step in range(1, 9):
        kind, changed = _edit(rng, [fast.source, slow.source], step)
        _forget_carried(slow)
        events: list[SyncEvent] = []

        a = sync(fast, on_event=events.append)
        b = sync(slow)

        assert _summary(a) == _summary(b), (step, kind)
        assert _published(emulator, a) == _published(emulator, b)
        carried = [e.files for e in events if e.kind == "carried"]
        # Contents only: the last outcome stood in for every file but the changed ones.
        assert carried == ([changed] if kind in ("contents", "revert") else []), (step, kind)


def _events(config: Config, **kw: Any) -> list[SyncEvent]:
    events: list[SyncEvent] = []
    sync(config, on_event=events.append, **kw)
    return events


def test_the_carried_view_plans_exactly_as_the_record(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, extra=EXTRA)
    _site(config)
    first = sync(config)
    target = config.source / "d3" / "f0003.txt"
    old = target.read_bytes()
    for content in (b"changed once", old, b"changed twice"):  # new, a revert, new again
        target.write_bytes(content)
        (config.source / "img" / "logo.png").write_bytes(_png(len(content)))
        key = target_key(config)
        with State.open(config.state_dir) as state:
            outcome = carry.load(state, key, config.service, "dev", carry.settings_of(config))
            assert outcome is not None and outcome.build.sid == state.get_environment(
                key, first.service_sid or "", "dev").build_sid  # type: ignore[union-attr]
            prepared = prepare_files(config, state, carried=outcome)
            general = prepare_files(config, state)
            assert prepared.changed == 2
            assert (prepared.files, prepared.warnings) == (general.files, general.warnings)
            view = carry.recorded_view(state, key, first.service_sid or "", "dev", outcome,
                                       prepared.files, live_build_sid=outcome.build.sid)
            assert carry.recorded_view(state, key, first.service_sid or "", "dev", outcome,
                                       prepared.files, live_build_sid="ZB-another") is None
            record = state.recorded_service(key, first.service_sid or "", "dev")
            assert view is not None
            live = to_live_build(outcome.build)
            assert build_plan(prepared.files, view, live) == build_plan(
                prepared.files, record, live)
            assert view.owned_paths == record.owned_paths
            assert view.deployed_version_sids == record.deployed_version_sids
        sync(config)


def test_spliced_files_equal_prepared_files_whatever_changes(tmp_path: Path) -> None:
    """Hypothesis-style: random trees and edits; whenever the splice is taken, it gives the
    general path's files and warnings, and it is refused whenever the file set changed."""
    from assetsync.config import load_config

    for seed, kind in enumerate(KINDS * 2):
        rng = random.Random(seed)
        root = tmp_path / str(seed)
        (root / "site").mkdir(parents=True)
        (root / ".assetsync.toml").write_text(
            '[project]\nsource = "site"\nservice = "s"\nenvironment = "dev"\n' + EXTRA)
        config = load_config(root / ".assetsync.toml", environ={})
        _site(config)
        with State.open(config.state_dir) as state:
            before = prepare_files(config, state)
        outcome = carry.Carried(
            settings="", encoders="", generation=0, build=_no_build(),
            scanned=tuple(map(tuple, before.snapshot.files.values())),  # type: ignore[arg-type]
            files=before.files, sids=tuple(f"ZN{i:032x}" for i in range(len(before.files))))
        _edit(rng, [config.source], seed, kind)
        with State.open(config.state_dir) as state:
            spliced = prepare_files(config, state, carried=outcome)
            general = prepare_files(config, state)
        assert (spliced.files, spliced.warnings) == (general.files, general.warnings), seed
        assert (spliced.changed is not None) == (kind in ("contents", "revert")), (seed, kind)


def _no_build() -> Any:
    from assetsync.remote.resources import Build

    return Build(sid="ZB0", service_sid="ZS0", status="completed", asset_versions=(),
                 function_versions=(), dependencies=(), runtime=None, date_created=None)


def test_image_encoders_are_kept_and_checked(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, extra=EXTRA)
    _site(config)
    sync(config)
    (config.source / "d0" / "f0000.txt").write_text("no image changed")
    assert [e.files for e in _events(config) if e.kind == "carried"] == [1]
    key, settings = target_key(config), carry.settings_of(config)
    with State.open(config.state_dir) as state:
        kept = carry.load(state, key, config.service, "dev", settings)
        # Spliced without an image among the changed files: the images it carried still
        # tie it to the encoders that made them.
        assert kept is not None and "pillow=" in kept.encoders
        carry.save(state, key, config.service, "dev", replace(kept, encoders="pillow=0.0"))
        assert carry.load(state, key, config.service, "dev", settings) is None
    (config.source / "d0" / "f0000.txt").write_text("other encoders")
    assert not any(e.kind == "carried" for e in _events(config))


def test_functions_of_the_live_build_survive_a_carried_sync(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    fn_version, _build = published_beside_functions(config, emulator, 4)
    sync(config, adopt=True)  # the general path: builds on the function build
    (config.source / "d0" / "f0000.txt").write_text("changed")
    events: list[SyncEvent] = []

    result = sync(config, on_event=events.append)

    assert [e.files for e in events if e.kind == "carried"] == [1]
    assert_functions_kept(emulator, result, fn_version)
    assert result.function_versions == 1 and result.uploaded == ("/d0/f0000.txt",)


def test_drift_is_reported_as_without_a_carried_outcome(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 3)
    first = sync(config)
    assert first.service_sid and first.environment_sid
    deploy_function_build(emulator, first.service_sid, first.environment_sid, [])
    (config.source / "d0" / "f0000.txt").write_text("changed")
    emulator.state.request_log.clear()

    with pytest.raises(DriftError):
        sync(config)
    assert writes(emulator) == []


def test_new_settings_or_another_writer_take_the_general_path(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator)
    make_tree(config.source, 6)
    sync(config)
    (config.source / "d0" / "f0000.txt").write_text("one")
    assert [e.files for e in _events(config) if e.kind == "carried"] == [1]

    # Another environment's full sync records new versions of the same contents: the record
    # now answers differently, so the next sync plans from it.
    sync(config, environment="staging", full=True)
    (config.source / "d0" / "f0000.txt").write_text("two")
    assert not any(e.kind == "carried" for e in _events(config))

    # A visibility rule: the outcome was made under other settings.
    text = (tmp_path / ".assetsync.toml").read_text()
    (tmp_path / ".assetsync.toml").write_text(text + '[visibility]\nprotected = ["d1/**"]\n')
    config = load(tmp_path, emulator)
    (config.source / "d0" / "f0000.txt").write_text("three")
    events = _events(config)
    assert not any(e.kind == "carried" for e in events)
    with State.open(config.state_dir) as state:
        versions = state.versions(target_key(config), state.get_service(
            target_key(config), "site").service_sid)  # type: ignore[union-attr]
    assert {(v.path, v.visibility) for v in versions if v.path == "/d1/f0001.txt"} >= {
        ("/d1/f0001.txt", "protected")}

    # Full, adopt and force never use it.
    (config.source / "d0" / "f0000.txt").write_text("four")
    assert not any(e.kind == "carried" for e in _events(config, full=True))


def test_versions_generation_moves_with_every_version_write(tmp_path: Path) -> None:
    with State.open(tmp_path) as state:
        start = state.versions_generation()
        record = VersionRecord("ZS1", "xxh3_128:" + "0" * 32, "/a", "public", "ZN" + "1" * 32, 1,
                               None)
        state.record_versions("t", "ZS1", [record])
        added = state.versions_generation()
        state.record_versions("t", "ZS1", [record])  # replaced
        replaced = state.versions_generation()
        state.forget_versions("t", "ZS1", ["ZN" + "1" * 32])
        forgotten = state.versions_generation()
        state.save_carried_outcome("t", "s", "dev", b"x")
        exported = state.export_json()
        state.import_json(exported)
        assert state.carried_outcome("t", "s", "dev") is None  # an import forgets outcomes
    assert start < added < replaced < forgotten


def test_outcome_checks_see_the_build_the_journals_and_the_generation(tmp_path: Path) -> None:
    from assetsync.state.records import UploadIntent

    with State.open(tmp_path) as state:
        assert state.outcome_checks("t", "ZS1", "dev") is None
        state.record_environment("t", "ZS1", "dev", "ZE1", None)
        state.record_deployment("t", "ZS1", "ZE1", "ZB1", "ZD1")
        generation = state.versions_generation()
        assert state.outcome_checks("t", "ZS1", "dev") == ("ZB1", False, generation)
        state.record_pending("t", "ZS1", "ZE1", "ZB2")
        assert state.outcome_checks("t", "ZS1", "dev") == ("ZB1", True, generation)
        state.clear_pending("t", "ZS1", "ZE1")
        state.record_upload_intents("t", "ZS1", [UploadIntent("/a", "d", "public", 1, "ZH1")])
        assert state.outcome_checks("t", "ZS1", "dev") == ("ZB1", True, generation)
        state.clear_upload_intents("t", "ZS1")
        state.record_pending("t", "ZS1", "ZE9", "ZB3")  # another environment's journal
        assert state.outcome_checks("t", "ZS1", "dev") == ("ZB1", False, generation)


def test_settings_text_is_the_same_in_another_process(tmp_path: Path, emulator: Any) -> None:
    load(tmp_path, emulator, extra=EXTRA)
    code = ("import sys; from assetsync.config import load_config; from assetsync.state import last_outcome as carry;"
            "print(carry.settings_of(load_config(sys.argv[1], environ={})))")
    texts = {subprocess.run([sys.executable, "-c", code, str(tmp_path / ".assetsync.toml")],
                            capture_output=True, text=True, check=True,
                            env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
             for seed in ("1", "2")}
    assert len(texts) == 1 and "mms" in texts.pop()


def test_a_few_files_look_their_types_up_without_dropping_the_others(tmp_path: Path) -> None:
    sources = []
    for i in range(5):
        path = tmp_path / f"f{i}.png"
        path.write_bytes(_png(i))
        sources.append(path)
    whole = SniffCache(tmp_path)
    for i, path in enumerate(sources):
        whole.media(f"d{i}", str(path))
    whole.save()
    sources[0].write_bytes(b"not an image any more")  # a cached answer is not sniffed again

    some = SniffCache(tmp_path, some=True)
    found = some.media("d0", str(sources[0]))
    fresh = some.media("d9", str(sources[0]))
    some.save()

    assert found is not None and found.is_image and fresh is None
    lines = (tmp_path / "sniffed.txt").read_text().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["d0", "d1", "d2", "d3", "d4", "d9"]
