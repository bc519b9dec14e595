"""watch() in a Serverless Toolkit project: a saved function, `.env` or package.json alone goes
live through the real engine, against the emulator over a socket; other files beside them do
nothing. Both observers: inotify and the poller."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from assetsync.config import Config, load_config
from assetsync.scan.rules import IgnoreRules
from assetsync.sync.budget import BuildBudget, account_key
from assetsync.watch.engine import EngineSync
from assetsync.watch.events import Change, DirtySet, ignored_by, split_batch
from assetsync.watch.run import ToolkitPaths, WatchEvent, WatchOptions, toolkit_paths
from tests.sync_harness import api_get, credentials_env, write_config
from tests.toolkit_harness import HELLO, live, toolkit_project, uploads_to
from tests.watch_harness import FakeWallClock, Recorder, Running, run_watch

# Generous: other test runs share this 2-core machine. An upper bound, never a timing assertion.
BOUND_S = 60.0

MODES = {
    "inotify": WatchOptions(polling="off"),
    "polling": WatchOptions(polling="on", poll_interval_s=0.1),
}


@pytest.fixture(autouse=True)
def _fast_emulator_builds(emulator: Any) -> None:
    emulator.state.build_delay_s = 0.0


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_project(tmp_path: Path, emulator: Any) -> Config:
    write_config(tmp_path, emulator)
    toolkit_project(tmp_path)
    return load_config(tmp_path / ".assetsync.toml", environ=credentials_env(emulator))


def engine(config: Config) -> Recorder:
    """The sync_fn `assetsync watch` uses: one engine sync per batch, the batch as a hint."""

    return Recorder(config.source, inner=EngineSync(config))


def wait_outcomes(recorder: Recorder, count: int) -> list[object]:
    """The first `count` syncs' results (bounded wait); none of them may have failed."""
    with recorder.cond:
        done = recorder.cond.wait_for(lambda: len(recorder.outcomes) >= count, timeout=BOUND_S)
        outcomes = list(recorder.outcomes)
    assert done, f"only {len(outcomes)} of {count} syncs finished: {outcomes}"
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    return outcomes


@contextmanager
def watching(config: Config, recorder: Recorder, options: WatchOptions) -> Iterator[Running]:
    """Run watch() on the real config until the block ends; the block starts once the first
    full reconcile has deployed the project."""
    budget = BuildBudget(account_key("AC" + "f" * 32, "emulator"), limit=100,
                         ledger_dir=config.root / "budget", clock=FakeWallClock())
    with run_watch(config, recorder, budget, options=options) as running:
        wait_outcomes(recorder, 1)
        yield running
    assert running.error is None, running.error


def sync_started(running: Running) -> list[WatchEvent]:
    with running.cond:
        return [e for e in running.events if e.kind == "sync-started"]


def function_code(emulator: Any, path: str) -> str:
    """The code of the live build's Function Version at `path`, as the emulator serves it."""
    build = live(emulator)["build"]
    version = next(v for v in build["function_versions"] if v["path"] == path)
    return str(api_get(emulator, f"/v1/Services/{build['service_sid']}/Functions/"
                                 f"{version['function_sid']}/Versions/{version['sid']}/Content")["content"])


def test_a_saved_function_alone_uploads_one_function_version(
        tmp_path: Path, emulator: Any, mode: str) -> None:
    config = make_project(tmp_path, emulator)
    recorder = engine(config)
    changed = HELLO + "// changed while watching\n"
    with watching(config, recorder, MODES[mode]) as running:
        assert running.events[0].status.mode == mode
        before = live(emulator)
        emulator.state.request_log.clear()
        (tmp_path / "functions" / "hello.js").write_text(changed, encoding="utf-8")
        result = wait_outcomes(recorder, 2)[1]
    # No source path changed: the hint restricts the source scan to nothing, the functions are
    # re-read anyway.
    assert recorder.calls[1] == frozenset()
    assert sync_started(running)[1].toolkit == {(tmp_path / "functions" / "hello.js").as_posix()}
    assert result.functions.uploaded == ("/hello",)  # type: ignore[attr-defined]
    assert uploads_to(emulator, "Functions") == 1 and uploads_to(emulator, "Assets") == 0
    after = live(emulator)
    assert after["build"]["sid"] != before["build"]["sid"]
    assert after["functions"] == before["functions"] and after["assets"] == ["/index.html"]
    assert function_code(emulator, "/hello") == changed
    assert running.result is not None and running.result.pending == 0


def test_a_saved_env_file_alone_updates_the_variable(tmp_path: Path, emulator: Any) -> None:
    config = make_project(tmp_path, emulator)
    recorder = engine(config)
    with watching(config, recorder, MODES["inotify"]) as running:
        assert live(emulator)["variables"]["GREETING"] != "hi-from-watch"
        # An editor's atomic save: a temp file renamed over the .env.
        temp = tmp_path / ".env.tmp-4711"
        temp.write_text("GREETING=hi-from-watch\nOTHER=other\n", encoding="utf-8")
        os.replace(temp, tmp_path / ".env")
        wait_outcomes(recorder, 2)
    assert recorder.calls[1] == frozenset()
    assert sync_started(running)[1].toolkit == {(tmp_path / ".env").as_posix()}
    assert live(emulator)["variables"] == {"GREETING": "hi-from-watch", "OTHER": "other"}
    assert uploads_to(emulator, "Functions") == 3  # the first deploy's; none since


def test_renamed_and_deleted_functions_leave_the_live_build(
        tmp_path: Path, emulator: Any, mode: str) -> None:
    config = make_project(tmp_path, emulator)
    recorder = engine(config)
    functions = tmp_path / "functions"
    with watching(config, recorder, MODES[mode]):
        os.rename(functions / "lib" / "util.private.js", functions / "lib" / "helpers.private.js")
        shutil.move(functions / "admin", tmp_path / "admin-away")  # a folder moved out
        with recorder.cond:
            done = recorder.cond.wait_for(
                lambda: len(recorder.outcomes) >= 2
                and live(emulator)["functions"] == [("/hello", "public"), ("/lib/helpers", "private")],
                timeout=BOUND_S)
        assert done, (recorder.calls, live(emulator)["functions"])
    assert all(c == frozenset() for c in recorder.calls[1:])


def test_files_beside_package_json_and_non_functions_trigger_no_sync(
        tmp_path: Path, emulator: Any, mode: str) -> None:
    config = make_project(tmp_path, emulator)
    recorder = engine(config)
    with watching(config, recorder, MODES[mode]) as running:
        (tmp_path / "notes.md").write_text("beside package.json", encoding="utf-8")
        (tmp_path / ".env.local").write_text("X=1\n", encoding="utf-8")
        (tmp_path / "package.json~").write_text("{}", encoding="utf-8")  # an editor's backup
        (tmp_path / "more").mkdir()
        (tmp_path / "more" / "package.json").write_text("{}", encoding="utf-8")
        (tmp_path / "functions" / "README.md").write_text("not a function", encoding="utf-8")
        (tmp_path / "functions" / ".hello.js.swp").write_bytes(b"vim swap")
        (tmp_path / "functions" / "hello.js~").write_text("vim backup", encoding="utf-8")
        (tmp_path / "functions" / "hello.js___jb_tmp___").write_text("JetBrains", encoding="utf-8")
        # Then one asset: its sync must be the only one, and cover that asset alone.
        (config.source / "marker.txt").write_text("marker", encoding="utf-8")
        wait_outcomes(recorder, 2)
    assert running.result is not None and running.result.pending == 0
    assert running.result.syncs == 2, recorder.calls
    assert recorder.calls[1] == frozenset({"marker.txt"})
    assert sync_started(running)[1].toolkit == frozenset()


def test_toolkit_events_are_kept_by_absolute_path_and_their_neighbours_dropped(
        tmp_path: Path, emulator: Any) -> None:
    config = make_project(tmp_path, emulator)
    toolkit = toolkit_paths(config)
    assert toolkit == ToolkitPaths(tmp_path / "functions", (tmp_path / "package.json", tmp_path / ".env"))
    dirty = DirtySet(config.source, ignored_by(IgnoreRules()), toolkit)
    for rel in ("functions/a/b.js", "functions/README.md", "functions/.b.js.swp", "functions/b.js~",
                "package.json", ".env", "notes.md", ".env.local", ".assetsync/state.db",
                "site/x.txt", "site/.x.txt.swp"):
        dirty.add(Change("closed", str(tmp_path / rel), None, False, 1.0))
    dirty.add(Change("deleted", str(tmp_path / "functions" / "admin"), None, True, 1.0))
    dirty.add(Change("moved", str(tmp_path / ".env.tmp-1"), str(tmp_path / ".env"), False, 1.0))
    source, changed = split_batch(dirty.take(()))
    assert source == {"x.txt"}
    assert changed == {(tmp_path / rel).as_posix()
                       for rel in ("functions/a/b.js", "functions/admin", "package.json", ".env")}
