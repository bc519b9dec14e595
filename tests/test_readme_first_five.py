"""The README's "Your first five minutes" runs as written: init, plan, sync, open the local URL
the sync printed on `assetsync emulator`, then `assetsync watch`, edit, and see the edit served;
each command a real process in a fresh folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import assetsync

REPO = Path(assetsync.__file__).resolve().parents[1]
SECTION = "## Your first five minutes"


def readme_commands() -> list[str]:
    """The commands of the section's shell blocks, in order, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.DOTALL)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def start(root: Path, command: str, *extra: str) -> subprocess.Popen[str]:
    """`assetsync ...` from the README as a process of this checkout's package."""
    argv = command.split()
    assert argv[0] == "assetsync"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "assetsync", *argv[1:], *extra], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(root: Path, command: str) -> str:
    proc = start(root, command)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"{command}: {out}"
    return out


def wait_for_line(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """Read the process's output until a line matches (the test's timeout bounds the wait)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"ended without {pattern!r}: {''.join(seen)}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """The long-running processes a test starts; any still running at the end are stopped."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def served(url: str) -> str:
    answer = httpx.get(url, timeout=10)
    return answer.text if answer.status_code == 200 else f"HTTP {answer.status_code}"


def test_the_first_five_minutes_as_written(tmp_path: Path,
                                           processes: list[subprocess.Popen[str]]) -> None:
    commands = readme_commands()
    assert commands == ["assetsync init", "assetsync plan", "assetsync sync",
                        "assetsync emulator", "assetsync watch"]
    root = tmp_path / "my-site"
    (root / "public").mkdir(parents=True)
    (root / ".git").mkdir()  # a project of its own: no config above it is ever found
    page = root / "public" / "index.html"
    page.write_text("<h1>first</h1>\n")

    assert "wrote" in finish(root, "assetsync init")
    assert "/index.html" in finish(root, "assetsync plan")
    out = finish(root, "assetsync sync")
    local = re.search(r"http://127\.0\.0\.1:4280/_serve/\S+/index\.html", out)
    assert local is not None, out

    # The one change to the README's commands: any free port, so the test never meets a real
    # emulator on 4280; the printed URL is opened on that port instead.
    emulator = start(root, "assetsync emulator", "--port", "0")
    processes.append(emulator)
    origin = wait_for_line(emulator, r"listening on (http://127\.0\.0\.1:\d+)").group(1)
    url = local.group(0).replace("http://127.0.0.1:4280", origin)
    assert served(url) == "<h1>first</h1>\n"

    watch = start(root, "assetsync watch")
    processes.append(watch)
    wait_for_line(watch, r"watching")
    page.write_text("<h1>edited</h1>\n")
    while served(url) != "<h1>edited</h1>\n":  # live within about a second; the test's
        time.sleep(0.05)                       # timeout bounds a watch that never deploys

    watch.send_signal(signal.SIGINT)
    rest, _ = watch.communicate(timeout=60)
    assert watch.returncode == 0, rest
    emulator.send_signal(signal.SIGINT)
    emulator.communicate(timeout=60)
    assert emulator.returncode == 0
