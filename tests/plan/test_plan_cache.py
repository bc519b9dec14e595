"""`plan`'s preparation memo (`assetsync.prepare.memo`): a second plan of an unchanged tree,
sharded or not, reuses the prepared set and the shard placement and prints byte for byte what
a plan without the memo prints; every input the memo depends on invalidates it (issue 26)."""

from __future__ import annotations

import contextlib
import io
import json
import marshal
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetsync import __version__
from assetsync.cli import main
from assetsync.config import load_config
from assetsync.prepare.memo import MEMO_NAME
from assetsync.results import SyncEvent
from assetsync.state.recorded_views import VIEWS_NAME
from assetsync.sync.offline_plan import plan_offline
from assetsync.sync.plan_memo import JSON_MEMO_NAME
from tests.state.test_carry import _png
from tests.sync_harness import enter_cli, load, make_tree

BASE = '[project]\nsource = "site"\nservice = "memo"\nstate_dir = "state"\n'


def _write_config(root: Path, *, private: str = "", per_build: int = 0,
                  exclude: str = "") -> Path:
    text = BASE
    if private:
        text += f'[visibility]\nprivate = ["{private}"]\n'
    if per_build:
        text += f"[shard]\npublic_protected_per_build = {per_build}\n"
    if exclude:
        text += f'[optimize]\nexclude = ["{exclude}"]\n'
    path = root / ".assetsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _tree(root: Path, count: int = 24) -> Path:
    make_tree(root / "site", count)
    return root / ".assetsync.toml"


def _plan_out(config_path: Path) -> tuple[int, str]:
    """`assetsync plan --json`'s exit status and stdout, as a user gets them, planned: the
    output memo above the preparation memo (`assetsync.sync.plan_memo`, tested in
    test_plan_output_memo.py) is let go first, or an unchanged tree's plan would be printed
    from it without reaching the memo tested here."""
    (config_path.parent / "state" / JSON_MEMO_NAME).unlink(missing_ok=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["-c", str(config_path), "plan", "--json"])
    return code, out.getvalue()


def _memo_used(config_path: Path) -> bool:
    """Whether a plan reused the memo's prepared set (its `prepared` event)."""
    events: list[SyncEvent] = []
    plan_offline(load_config(config_path), on_event=events.append)
    return any(e.kind == "prepared" for e in events)


def _memo(config_path: Path) -> Path:
    return config_path.parent / "state" / MEMO_NAME


def _uncached(config_path: Path) -> tuple[int, str]:
    """The plan without a memo or kept recorded views (what the cached run left is put back
    afterwards)."""
    caches = [_memo(config_path), config_path.parent / "state" / VIEWS_NAME]
    kept = [path.read_bytes() if path.exists() else None for path in caches]
    for path in caches:
        path.unlink(missing_ok=True)
    try:
        return _plan_out(config_path)
    finally:
        for path, data in zip(caches, kept, strict=True):
            if data is not None:
                path.write_bytes(data)


def _same_as_uncached(config_path: Path) -> dict[str, Any]:
    cached = _plan_out(config_path)
    assert cached == _uncached(config_path)
    return json.loads(cached[1])  # type: ignore[no-any-return]


def test_an_unchanged_sharded_tree_is_planned_from_the_memo_byte_for_byte(
        tmp_path: Path) -> None:
    config = _write_config(tmp_path, per_build=10)  # 24 public files: three services
    _tree(tmp_path)
    first = _plan_out(config)
    assert _memo(config).exists()
    assert _memo_used(config)
    warm = _plan_out(config)
    assert warm == _uncached(config)
    answer = json.loads(warm[1])
    assert len(answer["shard"]["services"]) == 3
    # Only the scan's counts differ from the very first plan (it hashed every file).
    assert {**json.loads(first[1]), "scan": None} == {**answer, "scan": None}


def test_a_site_that_fits_one_service_is_memoized_too(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _tree(tmp_path)
    _plan_out(config)
    assert _memo_used(config)
    assert json.loads(_plan_out(config)[1])["shard"] is None
    _same_as_uncached(config)


def test_an_edited_file_is_prepared_again_and_planned_with_its_new_content(
        tmp_path: Path) -> None:
    config = _write_config(tmp_path, per_build=10)
    _tree(tmp_path)
    _plan_out(config)
    edited = tmp_path / "site" / "d3" / "f0003.txt"
    edited.write_bytes(b"a new content, longer than the old one was")
    answer = _same_as_uncached(config)
    upload = next(u for u in answer["uploads"] if u["path"] == "/d3/f0003.txt")
    assert upload["size"] == edited.stat().st_size
    edited.write_bytes(b"x")  # and again, now spliced into the memo the last plan kept
    answer = _same_as_uncached(config)
    assert next(u for u in answer["uploads"] if u["path"] == "/d3/f0003.txt")["size"] == 1


def test_added_and_removed_files_are_seen(tmp_path: Path) -> None:
    config = _write_config(tmp_path, per_build=10)
    _tree(tmp_path)
    _plan_out(config)
    (tmp_path / "site" / "new.txt").write_text("new", encoding="utf-8")
    (tmp_path / "site" / "d0" / "f0000.txt").unlink()
    answer = _same_as_uncached(config)
    paths = {u["path"] for u in answer["uploads"]}
    assert "/new.txt" in paths and "/d0/f0000.txt" not in paths


def test_a_visibility_change_invalidates_the_memo(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _tree(tmp_path)
    _plan_out(config)
    _write_config(tmp_path, private="d1/**")
    assert not _memo_used(config)  # other settings: prepared afresh (and kept)
    answer = _same_as_uncached(config)
    private = {u["path"] for u in answer["uploads"] if u["visibility"] == "private"}
    assert private == {f"/d1/f{i:04d}.txt" for i in (1, 11, 21)}


def test_a_shard_change_places_the_files_again(tmp_path: Path) -> None:
    config = _write_config(tmp_path, per_build=10)
    _tree(tmp_path)
    assert len(json.loads(_plan_out(config)[1])["shard"]["services"]) == 3
    _write_config(tmp_path, per_build=5)
    answer = _same_as_uncached(config)
    assert len(answer["shard"]["services"]) == 5
    assert {s["public_protected"] for s in answer["shard"]["services"]} <= {4, 5}


def _tamper(config_path: Path, *, version: str | None = None,
            encoders: str | None = None) -> None:
    """Give every file of the memo's prepared set another content type (what a stale memo
    would hold), and optionally another assetsync version or image encoders."""
    memo = _memo(config_path)
    fmt, settings_text, entry, placement = marshal.loads(memo.read_bytes())
    files = list(entry[2])
    at = 3 if files[0] == "same" else 7
    names, index = files[at]
    files[at] = (tuple("text/x-stale" for _ in names), index)
    entry = (encoders if encoders is not None else entry[0], entry[1], tuple(files), *entry[3:])
    if version is not None:
        assert f"'{__version__}'" in settings_text
        settings_text = settings_text.replace(f"'{__version__}'", f"'{version}'")
    memo.write_bytes(marshal.dumps((fmt, settings_text, entry, placement), 4))


def _content_types(config_path: Path) -> set[str]:
    return {u["content_type"] for u in json.loads(_plan_out(config_path)[1])["uploads"]}


def test_a_memo_is_used_only_under_the_settings_and_version_it_was_made_with(
        tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _tree(tmp_path)
    _plan_out(config)
    _tamper(config)  # the control: the memo is read, so a stale one would show
    assert _content_types(config) == {"text/x-stale"}
    _tamper(config, version="0.0.0-older")
    assert _content_types(config) == {"text/plain"}  # another version's memo: ignored
    _tamper(config)
    _write_config(tmp_path, exclude="d9/**")  # [optimize]: what the transform step reads
    assert _content_types(config) == {"text/plain"}
    _tamper(config)
    _write_config(tmp_path, private="nothing/**")  # [visibility]
    assert _content_types(config) == {"text/plain"}


def test_an_image_set_is_kept_under_the_image_encoders_it_was_made_with(
        tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    _tree(tmp_path, 4)
    for seed in range(3):
        (tmp_path / "site" / f"img{seed}.png").write_bytes(_png(seed))
    expected = _plan_out(config)
    kept = marshal.loads(_memo(config).read_bytes())[2]
    assert "pillow=" in kept[0]  # the encoders' versions it depends on
    _tamper(config)  # the control: read under the same encoders
    assert _content_types(config) == {"text/x-stale"}
    _tamper(config, encoders=kept[0].replace("pillow=", "pillow=0.older-"))
    assert _plan_out(config) == expected  # other encoders: prepared afresh


def test_a_damaged_memo_is_ignored_and_written_again(tmp_path: Path) -> None:
    config = _write_config(tmp_path, per_build=10)
    _tree(tmp_path)
    expected = _plan_out(config)
    _memo(config).write_bytes(_memo(config).read_bytes()[:1000])
    assert _plan_out(config) == expected
    assert _memo_used(config)


def test_after_a_sharded_sync_the_placement_follows_the_recorded_one(
        tmp_path: Path, emulator: Any, monkeypatch: Any) -> None:
    cfg = load(tmp_path, emulator, service="memo",
               extra="[shard]\npublic_protected_per_build = 10\n")
    make_tree(cfg.source, 24)
    enter_cli(tmp_path, emulator, monkeypatch)
    path = tmp_path / ".assetsync.toml"
    _plan_out(path)  # a memo of the never-synced site's placement
    from assetsync.sync.run import sync

    sync(cfg)
    answer = _same_as_uncached(path)
    assert answer["noop"] and not answer["uploads"]
    make_tree(cfg.source, 30)  # six more files: placed beside the recorded ones
    answer = _same_as_uncached(path)
    assert {u["path"] for u in answer["uploads"]} == {
        f"/d{i % 10}/f{i:04d}.txt" for i in range(24, 30)}


_OPS = st.lists(st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 29), st.binary(min_size=0, max_size=40)),
    st.tuples(st.just("add"), st.integers(0, 29)),
    st.tuples(st.just("remove"), st.integers(0, 29)),
    st.tuples(st.just("private"), st.sampled_from(["", "d1/**", "d2/*.txt"])),
    st.tuples(st.just("shard"), st.sampled_from([0, 4, 7, 30])),
    st.tuples(st.just("exclude"), st.sampled_from(["", "d3/**"])),
), min_size=1, max_size=6)


def _apply(root: Path, op: tuple[Any, ...], knobs: dict[str, Any]) -> None:
    site = root / "site"
    if op[0] in ("edit", "add", "remove"):
        target = site / f"d{op[1] % 10}" / f"f{op[1]:04d}.txt"
        if op[0] == "remove":
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(op[2] if op[0] == "edit" else f"added {op[1]}".encode())
        return
    knobs[{"private": "private", "shard": "per_build", "exclude": "exclude"}[op[0]]] = op[1]
    _write_config(root, **knobs)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_OPS)
def test_a_memoized_plan_always_answers_as_an_unmemoized_one(ops: list[tuple[Any, ...]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="assetsync-memo-"))
    try:
        knobs: dict[str, Any] = {"per_build": 10}
        config = _write_config(root, **knobs)
        make_tree(root / "site", 20)
        _plan_out(config)
        for op in ops:
            _apply(root, op, knobs)
            _same_as_uncached(config)
    finally:
        shutil.rmtree(root, ignore_errors=True)
