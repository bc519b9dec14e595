"""watch() as a new user meets it (issue 25): the real loop, the engine's sync_fn (`EngineSync`)
and the emulator over a socket. The config file is read again when it changes; a file that
cannot be published is held back while the rest goes; a network outage is reported when it
starts and when it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assetsync.config import Config, load_config
from assetsync.watch.engine import EngineSync
from assetsync.watch.run import WatchEvent
from tests.watch.test_watch_e2e import budget, make_config, wait_live
from tests.watch_harness import BOUND_S, Recorder, Running, run_watch


def start(tmp_path: Path, emulator: Any) -> tuple[Config, EngineSync, Recorder]:
    config = make_config(tmp_path, emulator)
    env = {"TWILIO_ACCOUNT_SID": emulator.account_sid, "TWILIO_AUTH_TOKEN": emulator.auth_token}
    engine = EngineSync(config, load=lambda: load_config(config.config_path, environ=env))
    emulator.state.build_delay_s = 0.0
    return config, engine, Recorder(config.source, inner=engine)


def kinds(running: Running, kind: str) -> list[WatchEvent]:
    with running.cond:
        return [e for e in running.events if e.kind == kind]


def wait_count(running: Running, kind: str, count: int) -> list[WatchEvent]:
    with running.cond:
        assert running.cond.wait_for(
            lambda: len([e for e in running.events if e.kind == kind]) >= count, timeout=BOUND_S
        ), [(e.kind, e.message) for e in running.events]
    return kinds(running, kind)


def test_an_edited_config_applies_without_a_restart_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, emulator: Any
) -> None:
    config, engine, recorder = start(tmp_path, emulator)
    (config.source / "drafts").mkdir()
    (config.source / "drafts" / "wip.txt").write_bytes(b"not for publishing")
    good = config.config_path.read_text(encoding="utf-8")
    with run_watch(config, recorder, budget(tmp_path), reload=engine.reload) as running:
        wait_live(emulator, recorder, "drafts/wip.txt", b"not for publishing")
        # what the error for an unpublishable file tells the user to do: add an [ignore] pattern
        config.config_path.write_text(good + '[ignore]\npatterns = ["drafts/"]\n', encoding="utf-8")
        reloaded = wait_count(running, "config-reloaded", 1)[0]
        assert ".assetsync.toml changed: config reloaded" in reloaded.message
        wait_live(emulator, recorder, "drafts/wip.txt", None)  # the full reconcile dropped it

        config.config_path.write_text(good + "[ignore\n", encoding="utf-8")
        broken = wait_count(running, "config-error", 1)[0]
        assert str(config.config_path) in broken.message and "\n" not in broken.message
        assert broken.message.endswith("keeping the last good config until .assetsync.toml is fixed")
        assert broken.status.config_error is not None
        (config.source / "notes.txt").write_bytes(b"saved while the config is broken")
        (config.source / "drafts" / "wip.txt").write_bytes(b"still ignored")
        wait_live(emulator, recorder, "notes.txt", b"saved while the config is broken")
        assert "drafts/wip.txt" not in recorder.all_paths()  # the last good [ignore] still holds

        config.config_path.write_text(good, encoding="utf-8")  # fixed: the pattern is gone again
        wait_count(running, "config-reloaded", 2)
        wait_live(emulator, recorder, "drafts/wip.txt", b"still ignored")
    assert running.result is not None and running.result.config_error is None


def test_an_unpublishable_file_is_held_back_and_the_other_edits_go_live(
    tmp_path: Path, emulator: Any
) -> None:
    config, _engine, recorder = start(tmp_path, emulator)
    with run_watch(config, recorder, budget(tmp_path)) as running:
        recorder.wait_outcomes(1)
        (config.source / "c#d.txt").write_bytes(b"a name Twilio refuses")
        held = wait_count(running, "held-back", 1)[0]
        assert held.message.startswith("c#d.txt: ")
        (config.source / "notes.txt").write_bytes(b"edit one")
        wait_live(emulator, recorder, "notes.txt", b"edit one")
        (config.source / "notes.txt").write_bytes(b"edit two")
        wait_live(emulator, recorder, "notes.txt", b"edit two")
        assert len(kinds(running, "held-back")) == 1  # shown once, not on every sync
        assert running.events[-1].status.held_back == 1
        (config.source / "c#d.txt").rename(config.source / "c-d.txt")  # fixed
        wait_live(emulator, recorder, "c-d.txt", b"a name Twilio refuses")
    assert not kinds(running, "sync-failed")
    assert running.result is not None and running.result.held_back == 0


def test_an_outage_is_reported_when_it_starts_and_when_it_ends(tmp_path: Path, emulator: Any) -> None:
    config, _engine, recorder = start(tmp_path, emulator)
    try:
        with run_watch(config, recorder, budget(tmp_path)) as running:
            recorder.wait_outcomes(1)
            emulator.state.faults.add("*", "*", "drop", count=None)  # the network goes away
            (config.source / "notes.txt").write_bytes(b"saved during the outage")
            down = wait_count(running, "unreachable", 1)[0]
            # reported by the client's first retry, long before the sync gives up
            assert "stopped answering" in down.message and not down.status.reachable
            assert len(recorder.outcomes) == 1
            emulator.state.faults.clear()
            up = wait_count(running, "reachable", 1)[0]
            assert up.message == "the target answers again" and up.status.reachable
            wait_live(emulator, recorder, "notes.txt", b"saved during the outage")
        assert len(kinds(running, "unreachable")) == len(kinds(running, "reachable")) == 1
    finally:
        emulator.state.faults.clear()

