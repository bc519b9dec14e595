"""Kept recorded views (`assetsync.state.recorded_views`): after any sequence of syncs, edits,
full syncs, rollbacks and prunes against the emulator, every view equals the one the state
makes, an unchanged state's views all come from the cache, and `plan --json` prints what it
prints without the cache (hypothesis drives the sequences)."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetsync.cli import main
from assetsync.config import Config, target_key
from assetsync.plan.assets import RecordedService
from assetsync.state.db import State
from assetsync.state.recorded_views import VIEWS_NAME, RecordedViews
from assetsync.sync.run import sync
from tests.plan.test_plan_cache import _same_as_uncached
from tests.sync_harness import credentials_env, load, make_tree

EXTRA = "[shard]\npublic_protected_per_build = 6\n"  # 14 files: three services


def _fields(view: RecordedService) -> tuple[object, ...]:
    return (dict(view.versions), list(view.versions), view.owned_paths,
            view.deployed_version_sids, view.last_build_sid)


def _views(config: Config) -> int:
    """Every recorded service's kept view against the state's own; how many were made."""
    key = target_key(config)
    with State.open(config.state_dir) as state:
        views = RecordedViews(state, config.state_dir)
        for service in state.services(key).values():
            kept = views.recorded_service(key, service.service_sid, config.environment)
            made = state.recorded_service(key, service.service_sid, config.environment)
            assert _fields(kept) == _fields(made)
            assert dict(kept.asset_sids) == dict(made.asset_sids)
        views.save()
        return views.made


def _cli(root: Path, *argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["-c", str(root / ".assetsync.toml"), *argv])


def _apply(root: Path, config: Config, op: tuple[Any, ...]) -> None:
    site = root / "site"
    if op[0] == "edit":
        target = site / f"d{op[1] % 10}" / f"f{op[1]:04d}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(op[2])
        sync(config)
    elif op[0] == "remove":
        (site / f"d{op[1] % 10}" / f"f{op[1]:04d}.txt").unlink(missing_ok=True)
        sync(config)
    elif op[0] == "full":
        sync(config, full=True)
    else:  # "rollback", "prune": what they refuse (nothing to go back to) changes nothing
        _cli(root, op[0], *(["--yes"] if op[0] == "prune" else []))


_OPS = st.lists(st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 15), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("remove"), st.integers(0, 15)),
    st.tuples(st.just("full")),
    st.tuples(st.just("rollback")),
    st.tuples(st.just("prune")),
), min_size=1, max_size=4)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_OPS)
def test_kept_views_always_equal_the_states_own(ops: list[tuple[Any, ...]], emulator: Any,
                                                monkeypatch: Any) -> None:
    root = Path(tempfile.mkdtemp(prefix="assetsync-views-"))
    emulator.state.reset()  # each example an empty account (the fixture resets per test)
    emulator.clock.reset()
    try:
        for name, value in credentials_env(emulator).items():
            monkeypatch.setenv(name, value)
        config = load(root, emulator, service="views", extra=EXTRA)
        make_tree(config.source, 14)
        sync(config)
        assert _views(config) >= 1  # the first plan makes them
        assert _views(config) == 0  # nothing changed: every view from the cache
        for op in ops:
            _apply(root, config, op)
            _views(config)
            assert _views(config) == 0
            _same_as_uncached(root / ".assetsync.toml")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_changed_build_record_is_a_new_view(tmp_path: Path, emulator: Any) -> None:
    """The build's stored versions are part of a view's key: the same build SID recorded again
    with other versions (no recorded version written) makes the view anew."""
    config = load(tmp_path, emulator, service="views-build", extra=EXTRA)
    make_tree(config.source, 4)
    sync(config)
    assert _views(config) == 1 and _views(config) == 0
    key = target_key(config)
    with State.open(config.state_dir) as state:
        service = next(iter(state.services(key).values()))
        env = state.get_environment(key, service.service_sid, config.environment)
        assert env is not None and env.build_sid
        build = state.get_build(key, service.service_sid, env.build_sid)
        assert build is not None
        state.record_build(key, service.service_sid, build_sid=env.build_sid,
                           environment_sid=env.environment_sid, status="completed",
                           version_sids=build.version_sids[:1], created_at=build.created_at)
    assert _views(config) == 1  # made again, and equal to the state's (checked inside)


def test_a_damaged_cache_is_ignored_and_written_again(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator, service="views-damaged", extra=EXTRA)
    make_tree(config.source, 4)
    sync(config)
    _views(config)
    cache = config.state_dir / VIEWS_NAME
    cache.write_bytes(cache.read_bytes()[:40])
    assert _views(config) == 1 and _views(config) == 0
