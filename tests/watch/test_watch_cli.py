"""`assetsync watch` as a user runs it: a real process against the emulator, stopped with SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from tests.watch_harness import BOUND_S


class Watcher:
    """`assetsync watch --plain` in a subprocess; its output lines are collected as they come."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assetsync", "watch", "--plain", *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, text: str) -> str:
        with self.cond:
            found = self.cond.wait_for(lambda: any(text in line for line in self.lines), BOUND_S)
            assert found, f"no line with {text!r}:\n" + "\n".join(self.lines)
            return next(line for line in self.lines if text in line)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(BOUND_S)
        self.reader.join(BOUND_S)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(BOUND_S)
        self.reader.join(BOUND_S)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def project(tmp_path: Path, emulator: Any) -> tuple[Path, dict[str, str]]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>hello</h1>")
    (tmp_path / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "watch-cli"\nenvironment = "dev"\n'
        f'[target]\napi = "{emulator.url}"\n[sync]\npoll_interval_s = 0.02\n'
    )
    emulator.state.build_delay_s = 0.0
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "ASSETSYNC_"))},
        "TWILIO_ACCOUNT_SID": emulator.account_sid,
        "TWILIO_AUTH_TOKEN": emulator.auth_token,
        "ASSETSYNC_BUDGET_DIR": str(tmp_path / "budget"),
    }
    return tmp_path, env


def test_watch_deploys_a_save_and_stops_cleanly_on_ctrl_c(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    watcher = Watcher(root, env)
    try:
        watcher.wait_line("watching (")
        watcher.wait_line("full reconcile deployed: 1 uploaded")
        (root / "site" / "logo.png").write_bytes(b"png")
        deployed = watcher.wait_line("1 change deployed")
        assert "1 uploaded, build ZB" in deployed
        code = watcher.interrupt()
    finally:
        watcher.kill()
    assert code == 0
    assert any("stopping after the current sync" in line for line in watcher.lines)
    assert "stopped; 2 builds, 0 failed syncs, 0 pending" in watcher.lines[-1]
    assert env["TWILIO_AUTH_TOKEN"] not in "\n".join(watcher.lines)
    assert not any("Traceback" in line for line in watcher.lines)


def test_interrupt_with_undeployed_changes_exits_130(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    watcher = Watcher(root, env, "--builds-per-hour", "1")
    try:
        watcher.wait_line("full reconcile deployed")  # the hour's only build
        (root / "site" / "late.png").write_bytes(b"png")
        waiting = watcher.wait_line("build budget spent (1/hour); next build at")
        assert waiting
        code = watcher.interrupt()
    finally:
        watcher.kill()
    assert code == 130
    assert any("stopped; 1 change not deployed: run `assetsync sync`" in line for line in watcher.lines)


def test_a_second_ctrl_c_aborts_the_sync_in_flight_and_the_next_sync_converges(
    project: tuple[Path, dict[str, str]], emulator: Any
) -> None:
    root, env = project
    for i in range(30):
        (root / "site" / f"page{i}.html").write_text(f"<p>{i}</p>")
    # Every upload answers after 0.3 s: the start's full reconcile is still uploading when
    # both Ctrl-Cs arrive.
    emulator.state.faults.add("POST", "/v1/Services/*/Assets/*/Versions", "delay", count=31,
                              delay_s=0.3)
    watcher = Watcher(root, env)
    try:
        watcher.wait_line("watching (")
        watcher.proc.send_signal(signal.SIGINT)
        watcher.wait_line("stopping after the current sync (Ctrl-C again to abort it)")
        code = watcher.interrupt()
    finally:
        watcher.kill()
    assert code == 130
    assert watcher.lines[-1] == "assetsync: interrupted", watcher.lines
    assert not any("Traceback" in line or "Warning" in line for line in watcher.lines)
    assert not any("deployed" in line for line in watcher.lines)  # aborted before its build

    emulator.state.faults.clear()
    done = subprocess.run([sys.executable, "-m", "assetsync", "sync", "--json"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=BOUND_S, check=False)
    assert done.returncode == 0, done.stderr
    with emulator.client() as http:
        live = http.get("/v1/Services/watch-cli/Environments").json()["environments"][0]
        build = http.get(f"/v1/Services/watch-cli/Builds/{live['build_sid']}").json()
    assert len(build["asset_versions"]) == 31  # index.html and the 30 pages


def test_second_watch_on_the_same_project_exits_3(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    first = Watcher(root, env)
    try:
        first.wait_line("watching (")
        second = subprocess.run(
            [sys.executable, "-m", "assetsync", "watch", "--plain"],
            cwd=root, env=env, capture_output=True, text=True, timeout=BOUND_S, check=False,
        )
    finally:
        first.kill()
    assert second.returncode == 3
    message = second.stderr.strip().splitlines()
    assert len(message) == 1
    assert f"another `assetsync watch` is running for {root / '.assetsync.toml'} (pid {first.proc.pid})" in message[0]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--builds-per-hour", "500"], "command line: [watch] builds_per_hour is 500"),
        (["--quiet-window", "0"], "command line: [watch] quiet_window_s is 0"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2(
    project: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    root, _env = project
    code = main(["-c", str(root / ".assetsync.toml"), "watch", "--plain", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and expected in err[0]


def test_bad_watch_section_in_the_config_names_file_and_key(
    project: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _env = project
    config = root / ".assetsync.toml"
    config.write_text(config.read_text() + "[watch]\nquiet_ms = 300\n")
    code = main(["-c", str(config), "watch"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{config}: [watch] quiet_ms is not a known key" in err


def test_missing_source_folder_is_one_clear_line(
    project: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = project
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "ASSETSYNC_BUDGET_DIR"):
        monkeypatch.setenv(name, env[name])
    (root / "site" / "index.html").unlink()
    (root / "site").rmdir()
    code = main(["-c", str(root / ".assetsync.toml"), "watch", "--plain"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2  # a config problem
    assert len(err) == 1 and "source folder" in err[0] and "does not exist" in err[0]


def test_a_failure_is_printed_once_and_an_edited_config_is_applied(
    project: tuple[Path, dict[str, str]], emulator: Any
) -> None:
    root, env = project
    config = root / ".assetsync.toml"
    good = config.read_text()
    (root / "site" / "drafts").mkdir()
    (root / "site" / "drafts" / "wip.txt").write_text("work in progress")
    watcher = Watcher(root, env)
    try:
        watcher.wait_line("full reconcile deployed: 2 uploaded")
        emulator.state.fail_next_builds(1)
        (root / "site" / "logo.png").write_bytes(b"png")
        watcher.wait_line("sync failed: ")
        watcher.wait_line("1 change deployed")  # the retry
        config.write_text(good + "[ignore\n")
        broken = watcher.wait_line("config error: ")
        assert str(config) in broken and "keeping the last good config" in broken
        config.write_text(good + '[ignore]\npatterns = ["drafts/"]\n')
        watcher.wait_line("note: .assetsync.toml changed: config reloaded; running a full reconcile")
        watcher.wait_line("full reconcile deployed: 0 uploaded")  # drafts/wip.txt dropped
        code = watcher.interrupt()
    finally:
        watcher.kill()
    assert code == 0
    assert len([line for line in watcher.lines if "failed" in line and "ZB" in line]) == 1
    assert not any("WARNING" in line for line in watcher.lines)  # no log line beside it


def test_ctrl_c_with_only_the_periodic_reconcile_pending_is_no_undeployed_change(
    project: tuple[Path, dict[str, str]]
) -> None:
    root, env = project
    config = root / ".assetsync.toml"
    config.write_text(config.read_text() + "[watch]\nreconcile_interval_s = 10\n")
    watcher = Watcher(root, env, "--builds-per-hour", "1")
    try:
        watcher.wait_line("full reconcile deployed")  # the hour's only build
        # the periodic check comes due and waits for the budget: nothing is known to be changed
        watcher.wait_line("build budget spent (1/hour); next build at")
        code = watcher.interrupt()
    finally:
        watcher.kill()
    assert code == 0
    assert "stopped; 1 builds, 0 failed syncs, 0 pending" in watcher.lines[-1]
    assert not any("not deployed" in line for line in watcher.lines)
