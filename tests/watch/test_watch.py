"""watch(): a real watchdog observer on real files, with a recording sync_fn through the seam."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Self

import pytest

from assetsync.errors import ApiConnectionError, BuildFailedError, ConfigError
from assetsync.sync.budget import BuildBudget, account_key
from assetsync.watch.run import WatchOptions, watch
from tests.watch_harness import BOUND_S, Cfg, FakeWallClock, Recorder, Running, pause, watching

FINAL = b"version two, written completely"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_bytes(b"version one")
    return site


def make_budget(tmp_path: Path, limit: int = 100, clock: FakeWallClock | None = None) -> BuildBudget:
    return BuildBudget(
        account_key("AC" + "1" * 32, "127.0.0.1"),
        limit=limit,
        ledger_dir=tmp_path / "budget",
        clock=clock or FakeWallClock(),
    )


# -- editor save patterns (watch-hash-manifest.md §3.2) ----------------------------------------


def python_atomic_save(p: Path) -> None:
    tmp = p.with_name(f".{p.name}.tmp-1234")
    with open(tmp, "wb") as f:
        f.write(FINAL)
        os.fsync(f.fileno())
    os.replace(tmp, p)


def truncate_then_stalled_write(p: Path) -> None:
    # The writer stalls between two writes for longer than the quiet window: the file is still
    # open for writing (no close event), so nothing may be deployed until it is closed.
    with open(p, "wb") as f:
        f.write(FINAL[:4])
        f.flush()
        pause(1.0)
        f.write(FINAL[4:])


def vim_backup_rename(p: Path) -> None:
    swap = p.with_name(f".{p.name}.swp")
    swap.write_bytes(b"swap 1")
    probe = p.with_name("4913")
    probe.write_bytes(b"")
    probe.unlink()
    backup = p.with_name(p.name + "~")
    os.rename(p, backup)
    p.write_bytes(FINAL)
    backup.unlink()
    swap.write_bytes(b"swap 2")


def sed_in_place(p: Path) -> None:
    tmp = p.with_name("sedAb12Cd")
    tmp.write_bytes(FINAL)
    os.replace(tmp, p)


def gedit_save(p: Path) -> None:
    tmp = p.with_name(".goutputstream-XY12Z3")
    tmp.write_bytes(FINAL)
    os.replace(tmp, p)


def jetbrains_safe_write(p: Path) -> None:
    tmp = p.with_name(p.name + "___jb_tmp___")
    old = p.with_name(p.name + "___jb_old___")
    tmp.write_bytes(FINAL)
    os.rename(p, old)
    os.rename(tmp, p)
    old.unlink()


def emacs_save(p: Path) -> None:
    lock = p.with_name(".#" + p.name)
    os.symlink("user@host.1234:1700000000", lock)
    autosave = p.with_name(f"#{p.name}#")
    autosave.write_bytes(FINAL[:7])
    shutil.copy2(p, p.with_name(p.name + "~"))
    p.write_bytes(FINAL)
    autosave.unlink()
    lock.unlink()


def vscode_atomic_save(p: Path) -> None:
    # VS Code's atomic write: `name.vsctmp` beside the file, renamed over it
    tmp = p.with_name(p.name + ".vsctmp")
    tmp.write_bytes(FINAL)
    os.replace(tmp, p)


def vscode_extension_save(p: Path) -> None:
    # the `.name.tmp-*` temp-then-rename of VS Code extensions (and Node's write-file helpers)
    tmp = p.with_name(f".{p.name}.tmp-vscode")
    tmp.write_bytes(FINAL)
    os.replace(tmp, p)


TEMP_NAMES = (".notes.txt.swp", "4913", "notes.txt~", "sedAb12Cd", ".goutputstream-XY12Z3",
              "notes.txt___jb_tmp___", "notes.txt___jb_old___", ".#notes.txt", "#notes.txt#",
              "notes.txt.vsctmp", ".notes.txt.tmp-vscode", ".notes.txt.tmp-1234")


@pytest.mark.parametrize(
    "save",
    [python_atomic_save, truncate_then_stalled_write, vim_backup_rename, sed_in_place, gedit_save,
     jetbrains_safe_write, emacs_save, vscode_atomic_save, vscode_extension_save],
)
def test_editor_save_is_synced_whole_and_temp_files_never_reach_the_engine(
    tmp_path: Path, root: Path, save: Callable[[Path], None]
) -> None:
    recorder = Recorder(root)
    options = WatchOptions(settle_s=60.0)  # a file left open must wait for its close, not a timer
    with watching(root, recorder, make_budget(tmp_path), options):
        save(root / "notes.txt")
        recorder.wait_for_path("notes.txt")
        with recorder.cond:
            assert recorder.cond.wait_for(lambda: recorder.last_seen_content("notes.txt") == FINAL, BOUND_S)
    seen = [s["notes.txt"] for s in recorder.seen if "notes.txt" in s]
    assert all(content in (FINAL, None) for content in seen), seen  # never half a save
    # a save is one change of the real file: no temp name reaches the engine
    assert not set(TEMP_NAMES) & recorder.all_paths()


# -- bursts, folders, overflow ------------------------------------------------------------------


def test_a_burst_of_500_files_is_one_sync(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root)
    budget = make_budget(tmp_path)
    # a generous quiet window keeps a loaded CI machine's scheduling gaps from splitting the burst
    with watching(root, recorder, budget, WatchOptions(quiet_window_s=1.0, max_wait_s=30.0)):
        for i in range(500):
            (root / f"img-{i:03}.png").write_bytes(b"png %d" % i)
        calls = recorder.wait_calls(2)
    burst = calls[1]
    assert burst is not None
    assert {f"img-{i:03}.png" for i in range(500)} <= burst
    assert len(recorder.calls) == 2
    assert budget.used() == 1


def test_folder_delete_and_moves_reach_the_engine_as_folders(tmp_path: Path, root: Path) -> None:
    for folder in ("a", "b", "d"):
        (root / folder).mkdir()
        (root / folder / "1.txt").write_bytes(b"one")
        (root / folder / "2.txt").write_bytes(b"two")
    outside = tmp_path / "outside"
    (outside / "e").mkdir(parents=True)
    (outside / "e" / "y.txt").write_bytes(b"why")
    recorder = Recorder(root)
    # settle_s is long: files of a folder moved in arrive complete and must not wait for it
    with watching(root, recorder, make_budget(tmp_path), WatchOptions(settle_s=60.0)):
        shutil.rmtree(root / "a")
        os.rename(root / "b", root / "c")
        os.rename(root / "d", outside / "d")
        os.rename(outside / "e", root / "e")
        for rel in ("a", "b", "c", "d", "e", "c/1.txt", "e/y.txt"):
            recorder.wait_for_path(rel)
    assert recorder.last_seen_content("e/y.txt") == b"why"


def test_queue_overflow_triggers_a_full_reconcile(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root)
    with watching(root, recorder, make_budget(tmp_path)) as running:
        # watchdog 7.1's only trace of IN_Q_OVERFLOW is this warning (watch-hash-manifest.md §3.3)
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        running.wait_event(lambda e: e.kind == "overflow")
        calls = recorder.wait_calls(2)
    assert calls[1] is None


class Writer:
    """A file written to in a loop in a thread until stopped: appended and closed each time
    (`while true; do echo >> busy.log; done`), or (`keep_open`) one open file written forever."""

    def __init__(self, path: Path, *, keep_open: bool) -> None:
        self.path, self.keep_open = path, keep_open
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self.keep_open:
            with open(self.path, "ab") as f:
                while not self.done.wait(0.02):
                    f.write(b"line\n")
                    f.flush()
        else:
            while not self.done.wait(0.02):
                with open(self.path, "ab") as f:
                    f.write(b"line\n")

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(BOUND_S)

    @property
    def busy(self) -> bool:
        return not self.done.is_set() and self.thread.is_alive()


# A long max wait: a save that had to wait for the busy file to go quiet would wait that long.
BUSY_OPTIONS = WatchOptions(quiet_window_s=0.3, max_wait_s=60.0, settle_s=60.0)


def test_a_save_goes_out_while_another_file_is_appended_in_a_loop(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root)
    with watching(root, recorder, make_budget(tmp_path), BUSY_OPTIONS) as running, \
            Writer(root / "busy.log", keep_open=False) as writer:
        running.wait_event(lambda e: e.kind == "changes")
        (root / "a.txt").write_bytes(b"saved")
        index = recorder.wait_for_path("a.txt")
        assert writer.busy  # the save did not wait for the busy file to go quiet
    assert recorder.seen[index]["a.txt"] == b"saved"


def test_full_reconcile_after_lost_events_does_not_wait_for_a_writer(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root)
    with watching(root, recorder, make_budget(tmp_path), BUSY_OPTIONS) as running, \
            Writer(root / "busy.log", keep_open=True) as writer:
        running.wait_event(lambda e: e.kind == "changes")
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        running.wait_event(lambda e: e.kind == "overflow")
        calls = recorder.wait_calls(2)
        assert calls[1] is None and writer.busy  # the full reconcile ran while it was written
        assert recorder.holds[1] == frozenset({"busy.log"})  # holding it at its live version
        (root / "a.txt").write_bytes(b"saved")
        index = recorder.wait_for_path("a.txt")
        assert writer.busy
        assert "busy.log" not in (recorder.calls[index] or ())  # still being written: it waits
    stopped = running.result
    assert stopped is not None and stopped.full_reconcile_reason is None


def test_ignored_paths_state_folder_and_vcs_metadata_raise_no_sync(tmp_path: Path, root: Path) -> None:
    state = root / ".assetsync"
    for folder in (state, root / ".git", root / "drafts"):
        folder.mkdir()
    recorder = Recorder(root)
    with watching(root, recorder, make_budget(tmp_path), state_dir=state, ignore=("drafts/",)):
        (state / "state.db").write_bytes(b"sqlite")
        (root / ".git" / "HEAD").write_bytes(b"ref: refs/heads/main")
        (root / "drafts" / "wip.png").write_bytes(b"png")
        (root / ".notes.txt.swp").write_bytes(b"swap")
        (root / "real.png").write_bytes(b"png")
        index = recorder.wait_for_path("real.png")
    assert recorder.calls[index] == frozenset({"real.png"})


def test_polling_mode_sees_changes(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root)
    options = WatchOptions(polling="on", poll_interval_s=0.2)
    with watching(root, recorder, make_budget(tmp_path), options) as running:
        assert running.wait_event(lambda e: e.kind == "started").status.mode == "polling"
        (root / "new.png").write_bytes(b"png")
        recorder.wait_for_path("new.png")


# -- budget and failures ------------------------------------------------------------------------


def test_spent_budget_delays_the_next_build_until_a_slot_frees(tmp_path: Path, root: Path) -> None:
    wall = FakeWallClock()
    start = wall.now
    budget = make_budget(tmp_path, limit=2, clock=wall)
    recorder = Recorder(root)
    with watching(root, recorder, budget) as running:
        for number, name in enumerate(("one.png", "two.png"), start=2):
            (root / name).write_bytes(b"png")
            recorder.wait_calls(number)
        (root / "three.png").write_bytes(b"png")
        waiting = running.wait_event(lambda e: e.status.state == "budget")
        assert waiting.status.next_build_at == start + 3600
        assert waiting.status.budget_remaining == 0
        assert running.thread.is_alive() and len(recorder.calls) == 3
        wall.now = start + 3600  # the first build leaves the rolling hour
        index = recorder.wait_for_path("three.png")
    assert index == 3
    assert running.result is not None and running.result.failures == 0


def test_first_sync_of_a_sharded_site_reserves_a_slot_per_service(tmp_path: Path, root: Path) -> None:
    # A site spread over 3 services builds 3 times per sync: with 2 slots left, even the first
    # sync of the session waits for the budget instead of overrunning it.
    wall = FakeWallClock()
    budget = make_budget(tmp_path, limit=4, clock=wall)
    budget.record(2)  # other processes spent 2 of 4
    recorder = Recorder(root)
    stop = threading.Event()
    running = Running(threading.Thread(target=lambda: None), stop)
    cfg = Cfg(root, tmp_path / "state", WatchOptions())

    def target() -> None:
        running.result = watch(cfg, stop=stop, sync_fn=recorder, budget=budget,
                               on_event=running.on_event, tick_s=0.05, services=3)

    running.thread = threading.Thread(target=target, daemon=True)
    running.thread.start()
    try:
        waiting = running.wait_event(lambda e: e.status.state == "budget")
        assert waiting.status.budget_remaining == 2
        assert recorder.calls == []
        wall.now += 3600  # the other builds leave the rolling hour
        assert recorder.wait_calls(1) == [None]
    finally:
        stop.set()
        running.thread.join(BOUND_S)
    assert running.result is not None and running.result.failures == 0


def test_failed_sync_is_retried_and_watch_keeps_running(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root, fail={2: ApiConnectionError("connection refused"),
                                    4: BuildFailedError("build ZB1 failed", build_sid="ZB1")})
    budget = make_budget(tmp_path)
    with watching(root, recorder, budget) as running:
        (root / "a.png").write_bytes(b"png")
        calls = recorder.wait_calls(3)
        assert calls[1] == calls[2] == frozenset({"a.png"})  # retried after backoff, same batch
        failed = running.wait_event(lambda e: e.kind == "sync-failed")
        assert failed.message == "connection refused"
        (root / "b.png").write_bytes(b"png")
        calls = recorder.wait_calls(5)
        assert calls[3] == calls[4] == frozenset({"b.png"})
    assert running.result is not None
    assert (running.result.failures, running.result.builds) == (2, 2)
    assert running.result.last_error is None
    assert budget.used() == 3  # the failed build counted against the hour, the dropped request not


def test_config_error_from_the_engine_stops_watch(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root, fail={2: ConfigError("set TWILIO_AUTH_TOKEN")})
    with watching(root, recorder, make_budget(tmp_path)) as running:
        (root / "a.png").write_bytes(b"png")
        running.thread.join(BOUND_S)
        assert isinstance(running.error, ConfigError)


def test_running_out_of_inotify_watches_switches_to_polling(tmp_path: Path, root: Path) -> None:
    recorder = Recorder(root)
    options = WatchOptions(poll_interval_s=0.2)
    with watching(root, recorder, make_budget(tmp_path), options) as running:
        assert running.wait_event(lambda e: e.kind == "started").status.mode == "inotify"
        # what watchdog 7.1 logs when it cannot re-add watches (ENOSPC) after an overflow
        logging.getLogger("watchdog.observers.inotify").error(
            "Unable to rebuild recursive inotify watches below %r", str(root)
        )
        advice = running.wait_event(lambda e: e.kind == "advice")
        assert advice.status.mode == "polling"
        assert "sudo sysctl fs.inotify.max_user_watches=" in advice.message
        calls = recorder.wait_calls(2)
        assert calls[1] is None  # what went unwatched is caught by a full reconcile
        (root / "after.png").write_bytes(b"png")
        recorder.wait_for_path("after.png")


def test_low_budget_stretches_the_quiet_window_until_slots_come_back(tmp_path: Path, root: Path) -> None:
    wall = FakeWallClock()
    budget = make_budget(tmp_path, limit=4, clock=wall)
    recorder = Recorder(root)
    with watching(root, recorder, budget) as running:
        budget.record(3)  # other processes spent 3 of 4: one left, below half
        (root / "a.png").write_bytes(b"png")
        # pacing: quiet window = 3600 / 4 * (1 - 1 / 2) = 450 s instead of 0.3 s
        paced = running.wait_event(
            lambda e: e.status.state == "pending" and (e.status.next_build_at or 0) > wall.now + 400
        )
        assert paced.status.budget_remaining == 1
        assert len(recorder.calls) == 1
        wall.now += 3600  # those builds leave the rolling hour
        recorder.wait_for_path("a.png")
