"""watch() driving the real sync engine against the emulator over a socket; builds are counted from
the emulator's request log and content is read back from what the emulator serves."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetsync.config import Config, load_config
from assetsync.errors import BuildFailedError
from assetsync.sync.budget import BuildBudget, account_key
from assetsync.watch.engine import EngineSync
from assetsync.watch.run import WatchOptions
from tests.watch_harness import BOUND_S, FakeWallClock, Recorder, pause, watching

FINAL = b"version two, written completely"


def make_config(tmp_path: Path, emulator: Any) -> Config:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_bytes(b"version one")
    path = tmp_path / ".assetsync.toml"
    path.write_text(
        '[project]\nsource = "site"\nservice = "watch-e2e"\nenvironment = "dev"\n'
        f'[target]\napi = "{emulator.url}"\n[sync]\npoll_interval_s = 0.02\n',
        encoding="utf-8",
    )
    env = {"TWILIO_ACCOUNT_SID": emulator.account_sid, "TWILIO_AUTH_TOKEN": emulator.auth_token}
    return load_config(path, environ=env)


def engine(config: Config) -> Recorder:
    """The sync_fn `assetsync watch` uses: one engine sync per batch, the batch as a hint."""

    return Recorder(config.source, inner=EngineSync(config))


def budget(tmp_path: Path, limit: int = 100, clock: FakeWallClock | None = None) -> BuildBudget:
    return BuildBudget(account_key("AC" + "e" * 32, "emulator"), limit=limit,
                       ledger_dir=tmp_path / "budget", clock=clock or FakeWallClock())


def builds(emulator: Any, status: int = 201) -> int:
    return sum(1 for e in emulator.state.request_log.matching("POST", "api", "/v1/Services/*/Builds")
               if e.status == status)


def served(emulator: Any, recorder: Recorder, rel: str) -> bytes | None:
    domain = next(o.domain_name for o in reversed(recorder.outcomes) if getattr(o, "domain_name", None))
    response = httpx.get(f"{emulator.url}/_serve/{domain}/{rel}")
    return response.content if response.status_code == 200 else None


def wait_live(emulator: Any, recorder: Recorder, rel: str, content: bytes | None) -> None:
    """Wait (bounded) until a sync has finished after which `rel` serves `content`."""
    with recorder.cond:
        done = recorder.cond.wait_for(
            lambda: bool(recorder.outcomes) and served(emulator, recorder, rel) == content, timeout=BOUND_S
        )
    assert done, f"/{rel} never served {content!r}; outcomes: {recorder.outcomes}"


def test_burst_of_200_files_is_one_build(tmp_path: Path, emulator: Any) -> None:
    config = make_config(tmp_path, emulator)
    recorder = engine(config)
    with watching(config.source, recorder, budget(tmp_path), WatchOptions(quiet_window_s=1.0, max_wait_s=30.0),
                  state_dir=config.state_dir):
        recorder.wait_outcomes(1)
        before = builds(emulator)
        # 200 rather than test_watch.py's 500: every file is a real upload over the socket
        for i in range(200):
            (config.source / f"img-{i:03}.png").write_bytes(b"png %d" % i)
        recorder.wait_outcomes(2)
    assert builds(emulator) - before == 1
    assert len(recorder.outcomes[1].uploaded) == 200  # type: ignore[attr-defined]
    assert served(emulator, recorder, "img-199.png") == b"png 199"


def test_editor_saves_go_live_whole(tmp_path: Path, emulator: Any) -> None:
    config = make_config(tmp_path, emulator)
    recorder = engine(config)
    note = config.source / "notes.txt"
    with watching(config.source, recorder, budget(tmp_path), WatchOptions(settle_s=60.0),
                  state_dir=config.state_dir):
        wait_live(emulator, recorder, "notes.txt", b"version one")
        # vim's default save: swap file, probe, rename to a backup, write anew, drop the backup
        (config.source / ".notes.txt.swp").write_bytes(b"swap")
        os.rename(note, config.source / "notes.txt~")
        note.write_bytes(FINAL)
        (config.source / "notes.txt~").unlink()
        wait_live(emulator, recorder, "notes.txt", FINAL)
        # truncate, then a stalled writer: nothing half-written may go live meanwhile
        with open(note, "wb") as f:
            f.write(b"v3")
            f.flush()
            syncs_before = len(recorder.calls)
            pause(1.0)  # the writer stalls for over three quiet windows
            assert len(recorder.calls) == syncs_before
            f.write(b" complete")
        wait_live(emulator, recorder, "notes.txt", b"v3 complete")
    for path in recorder.all_paths():
        assert not path.endswith(("~", ".swp"))


def test_folder_delete_and_move_update_the_live_build(tmp_path: Path, emulator: Any) -> None:
    config = make_config(tmp_path, emulator)
    for folder in ("a", "b"):
        (config.source / folder).mkdir()
        (config.source / folder / "1.txt").write_bytes(folder.encode())
    recorder = engine(config)
    with watching(config.source, recorder, budget(tmp_path), state_dir=config.state_dir):
        wait_live(emulator, recorder, "b/1.txt", b"b")
        shutil.rmtree(config.source / "a")
        os.rename(config.source / "b", config.source / "c")
        wait_live(emulator, recorder, "c/1.txt", b"b")
        wait_live(emulator, recorder, "b/1.txt", None)
    assert served(emulator, recorder, "a/1.txt") is None


def test_overflow_reconcile_catches_a_change_no_event_reported(tmp_path: Path, emulator: Any) -> None:
    config = make_config(tmp_path, emulator)
    # A write through a hard link in another folder raises no inotify event in the watched one.
    outside = tmp_path / "outside"
    outside.mkdir()
    os.link(config.source / "notes.txt", outside / "notes-link")
    recorder = engine(config)
    with watching(config.source, recorder, budget(tmp_path), state_dir=config.state_dir) as running:
        wait_live(emulator, recorder, "notes.txt", b"version one")
        fd = os.open(outside / "notes-link", os.O_WRONLY)
        try:
            os.write(fd, b"VERSION ONE")  # same size, new bytes
        finally:
            os.close(fd)
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        running.wait_event(lambda e: e.kind == "overflow")
        wait_live(emulator, recorder, "notes.txt", b"VERSION ONE")
    assert all(c is None or "notes.txt" not in c for c in recorder.calls)  # only the reconcile saw it


def test_spent_budget_delays_builds_and_never_earns_a_429(tmp_path: Path, emulator: Any) -> None:
    config = make_config(tmp_path, emulator)
    wall = FakeWallClock()
    start = wall.now
    recorder = engine(config)
    with watching(config.source, recorder, budget(tmp_path, limit=2, clock=wall),
                  state_dir=config.state_dir) as running:
        wait_live(emulator, recorder, "notes.txt", b"version one")  # build 1, at start
        (config.source / "one.png").write_bytes(b"one")
        wait_live(emulator, recorder, "one.png", b"one")  # build 2
        (config.source / "two.png").write_bytes(b"two")
        waiting = running.wait_event(lambda e: e.status.state == "budget")
        assert waiting.status.next_build_at == start + 3600
        assert builds(emulator) == 2
        wall.now = start + 3600  # build 1 leaves the rolling hour
        wait_live(emulator, recorder, "two.png", b"two")
    assert builds(emulator) == 3
    assert not [e for e in emulator.state.request_log if e.status == 429]


def test_failed_build_is_retried_and_watch_keeps_running(tmp_path: Path, emulator: Any) -> None:
    config = make_config(tmp_path, emulator)
    recorder = engine(config)
    with watching(config.source, recorder, budget(tmp_path), state_dir=config.state_dir) as running:
        wait_live(emulator, recorder, "notes.txt", b"version one")
        emulator.state.fail_next_builds(1)
        (config.source / "new.png").write_bytes(b"new")
        failed = running.wait_event(lambda e: e.kind == "sync-failed")
        assert "build" in failed.message.lower()
        wait_live(emulator, recorder, "new.png", b"new")
        (config.source / "later.png").write_bytes(b"later")
        wait_live(emulator, recorder, "later.png", b"later")
    assert any(isinstance(o, BuildFailedError) for o in recorder.outcomes)
    assert builds(emulator) == 4  # start, the failed one, its retry, the later change
    assert running.result is not None and running.result.failures == 1


@pytest.fixture(autouse=True)
def _fast_emulator_builds(emulator: Any) -> None:
    emulator.state.build_delay_s = 0.0
