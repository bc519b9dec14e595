"""Sync progress: a redrawn line on a terminal, plain lines otherwise; the kill switch."""

from __future__ import annotations

import io

from assetsync.cli._progress import Progress, kill_switch
from assetsync.results import SyncEvent


def feed(progress: Progress, uploads: int = 20) -> None:
    progress(SyncEvent("scan_done", files=uploads, message=f"{uploads} files"))
    progress(SyncEvent("planned", files=uploads, bytes=uploads * 1000, total=uploads + 5))
    for i in range(uploads):
        progress(SyncEvent("upload_started", path=f"/f{i}", bytes=1000))
        progress(SyncEvent("uploaded", path=f"/f{i}", bytes=1000, sid=f"ZN{i}"))
    progress(SyncEvent("build_created", sid="ZB1", files=uploads + 5))
    progress(SyncEvent("build_status", sid="ZB1", message="building"))
    progress(SyncEvent("build_status", sid="ZB1", message="completed"))
    progress(SyncEvent("deployed", sid="ZD1", message="ZB1"))


def test_plain_lines_log_each_tenth_and_the_build() -> None:
    out = io.StringIO()
    feed(Progress(out, tty=False))
    lines = out.getvalue().splitlines()
    assert lines[0] == "uploading 20 of 25 files (19.5 KiB)"
    assert sum(line.startswith("uploaded ") for line in lines) == 10
    assert "uploaded 20/20 files (19.5 KiB/19.5 KiB)" in lines
    assert lines[-2:] == ["building ZB1 (25 asset versions)", "deployed ZB1 (ZD1)"]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_one_redrawn_line_with_a_bar() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    feed(progress, uploads=4)
    text = out.getvalue()
    assert "\n" not in text  # everything redraws one line
    assert "uploading [" + "#" * 24 + "] 4/4 files, 3.9 KiB/3.9 KiB" in text
    assert "building ZB1: completed" in text
    assert text.endswith("\r\x1b[K")  # cleared when deployed


def test_retries_and_notes_always_show_and_quiet_shows_nothing() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress(SyncEvent("planned", files=2, bytes=10, total=2))
    progress(SyncEvent("uploaded", path="/a", bytes=5))
    progress(SyncEvent("retry", message="POST /v1/... HTTP 429"))
    assert out.getvalue().endswith("retrying: POST /v1/... HTTP 429\n")
    assert "\r\x1b[K" in out.getvalue()  # the status line was cleared before the message

    quiet = io.StringIO()
    feed(Progress(quiet, tty=False, quiet=True))
    assert quiet.getvalue() == ""


def test_kill_switch_is_off_unless_set() -> None:
    seen: list[SyncEvent] = []
    callback = seen.append
    assert kill_switch(callback, {}) is callback
    wrapped = kill_switch(seen.append, {"ASSETSYNC_DEBUG_KILL_AFTER": "uploaded:1000"})
    wrapped(SyncEvent("uploaded"))
    assert [e.kind for e in seen] == ["uploaded"]  # forwarded; the 1000th would kill
