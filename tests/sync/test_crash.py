"""Kill-and-rerun: `assetsync sync` in a real subprocess, SIGKILLed at 27 points (after N asset
creations or uploads, while uploading, during the build poll, between build and deployment, right
after the deployment is acknowledged, and at timed moments that land inside state writes). Each
rerun must converge: no content uploaded twice, the state opens cleanly, the live build is the
recorded one and `completed`, and it holds exactly the source folder.

The kill points come from `ASSETSYNC_DEBUG_KILL_AFTER=KIND:N`, a documented debugging switch of
the CLI (docs/sync.md): the process SIGKILLs itself right after the Nth progress event of a kind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from assetsync.config import load_config, target_key
from assetsync.state.db import State
from tests.sync_harness import api_get, credentials_env, make_tree, write_config

KILLED = -signal.SIGKILL


def _env(emulator: Any, kill: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "ASSETSYNC_"))}
    env.update(credentials_env(emulator))
    if kill:
        env["ASSETSYNC_DEBUG_KILL_AFTER"] = kill
    return env


def run_sync(
    root: Path, emulator: Any, kill: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assetsync", "-c", str(root / ".assetsync.toml"), "sync", "--json"],
        env=_env(emulator, kill), capture_output=True, text=True, timeout=60, check=False,
    )


def timed_kill(root: Path, emulator: Any, after_s: float) -> int:
    """SIGKILL a sync `after_s` seconds after its uploads began (or when it is done)."""
    with subprocess.Popen(
        [sys.executable, "-m", "assetsync", "-c", str(root / ".assetsync.toml"), "sync"],
        env=_env(emulator, None), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith(("uploading", "uploaded", "building")):
                break
        try:
            proc.wait(timeout=after_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.stderr.read()
        return proc.wait(timeout=30)


def assert_state_opens(root: Path) -> None:
    with State.open(root / ".assetsync") as state:
        state.export_json()


def assert_converged(root: Path, emulator: Any, service: str) -> dict[str, Any]:
    final = run_sync(root, emulator)
    assert final.returncode == 0, final.stderr
    result = json.loads(final.stdout)
    config = load_config(root / ".assetsync.toml", environ=credentials_env(emulator))
    with State.open(config.state_dir) as state:
        key = target_key(config)
        svc = state.get_service(key, service)
        assert svc is not None
        env = state.get_environment(key, svc.service_sid, "dev")
        assert env is not None
        assert state.get_pending(key, svc.service_sid, env.environment_sid) is None
    live = api_get(emulator, f"/v1/Services/{svc.service_sid}/Environments/{env.environment_sid}")
    assert live["build_sid"] == env.build_sid == result["build_sid"]
    status = api_get(emulator, f"/v1/Services/{svc.service_sid}/Builds/{env.build_sid}/Status")
    assert status["status"] == "completed"
    build = api_get(emulator, f"/v1/Services/{svc.service_sid}/Builds/{env.build_sid}")
    published = sorted(v["path"] for v in build["asset_versions"])
    expected = sorted("/" + p.relative_to(config.source).as_posix()
                      for p in config.source.rglob("*") if p.is_file())
    assert published == expected
    # No content was uploaded twice: one stored version per (path, content digest).
    versions = Counter(
        (rec.data["path"], rec.data["digest"])
        for asset in emulator.state.store.children("asset", svc.service_sid)
        for rec in emulator.state.store.children("asset_version", asset.sid)
    )
    twice = {key: n for key, n in versions.items() if n > 1}
    assert twice == {}, twice
    return result


def kill_chain(root: Path, emulator: Any, points: list[str]) -> None:
    for point in points:
        killed = run_sync(root, emulator, kill=point)
        assert killed.returncode == KILLED, (point, killed.returncode, killed.stderr)
        assert_state_opens(root)


def project(tmp_path: Path, emulator: Any, service: str, files: int = 12,
            extra: str = "") -> Path:
    write_config(tmp_path, emulator, service=service, extra=extra)
    make_tree(tmp_path / "site", files, size=2000)
    return tmp_path


def test_first_publish_killed_at_every_stage(tmp_path: Path, emulator: Any) -> None:
    root = project(tmp_path, emulator, "crash-a")
    kill_chain(root, emulator, [
        "asset_created:5", "upload_started:1", "upload_started:3", "uploaded:4",
        "build_created:1", "build_status:1", "deployment_acknowledged:1",
    ])
    result = assert_converged(root, emulator, "crash-a")
    assert any("interrupted" in note for note in result["notes"]) or result["noop"]


def test_incremental_sync_killed_at_every_stage(tmp_path: Path, emulator: Any) -> None:
    root = project(tmp_path, emulator, "crash-b", extra="concurrency = 1\n")
    assert run_sync(root, emulator).returncode == 0
    site = root / "site"
    max(site.rglob("*.txt")).unlink()
    unedited = iter(sorted(site.rglob("*.txt")))

    def edit(count: int) -> None:
        for path in [next(unedited) for _ in range(count)]:
            path.write_text(path.read_text() + " edited")

    edit(4)
    (site / "new1.txt").write_text("new one")
    (site / "new2.txt").write_text("new two")
    for point in ("planned:1", "asset_created:1", "uploaded:1", "uploaded:2", "build_created:1",
                  "build_status:1", "deployed:1"):
        if point.startswith("uploaded:"):
            # Each upload's record is written (fsync'd, off the event loop) while the next
            # upload goes out, so by the Nth "uploaded" report an earlier run may have sent and
            # even recorded every change: fresh edits make sure this run has N to upload.
            edit(int(point.partition(":")[2]))
        kill_chain(root, emulator, [point])
    assert_converged(root, emulator, "crash-b")


def test_killed_at_the_edges_of_each_phase(tmp_path: Path, emulator: Any) -> None:
    root = project(tmp_path, emulator, "crash-c")
    kill_chain(root, emulator, [
        "scan_done:1", "connected:1", "planned:1", "asset_created:12", "upload_started:12",
        "uploaded:1", "build_status:1", "recorded:1",
    ])
    assert_converged(root, emulator, "crash-c")


def test_killed_at_timed_moments_inside_requests_and_state_writes(tmp_path: Path,
                                                                  emulator: Any) -> None:
    root = project(tmp_path, emulator, "crash-d", files=60)
    # Slow every upload a little so the kills land mid-run, in requests and state commits.
    emulator.state.faults.add("POST", "/v1/Services/*/Assets/*/Versions", "delay", count=200,
                              delay_s=0.03)
    codes = []
    for after in (0.0, 0.05, 0.1, 0.15, 0.2):
        codes.append(timed_kill(root, emulator, after))
        assert_state_opens(root)
    assert codes.count(KILLED) >= 3, codes
    assert_converged(root, emulator, "crash-d")


def test_ctrl_c_exits_130_and_the_rerun_converges(tmp_path: Path, emulator: Any) -> None:
    root = project(tmp_path, emulator, "crash-e", files=30)
    emulator.state.faults.add("POST", "/v1/Services/*/Assets/*/Versions", "delay", count=30,
                              delay_s=0.2)
    with subprocess.Popen(
        [sys.executable, "-m", "assetsync", "-c", str(root / ".assetsync.toml"), "sync"],
        env=_env(emulator, None), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:  # interrupt once uploads are under way
            if line.startswith("uploading"):
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 130, rest
    # Nothing but the one line: no traceback, and no "coroutine ... was never awaited".
    assert "interrupted" in rest and "Traceback" not in rest and "Warning" not in rest, rest
    assert_state_opens(root)
    emulator.state.faults.clear()
    assert_converged(root, emulator, "crash-e")
