"""Progress for sync-like commands: one redrawn status line on a terminal, plain lines otherwise.

Driven by `SyncEvent`s; it writes to stderr so stdout stays the command's result (URLs, JSON).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from assetsync.cli._common import format_bytes
from assetsync.results import SyncEvent

__all__ = ["KILL_SWITCH", "Progress", "kill_switch"]

_BAR = 24


class Progress:
    """An `on_event` callback showing files and bytes uploaded, build and deployment.

    Args:
        stream: where to draw (stderr).
        tty: redraw one line in place; otherwise print plain lines (CI logs, cron mail).
        quiet: show nothing but retries' final failures (which are errors anyway).
        verbose: with plain lines, print every event.
        dry_run: the sync writes nothing: say what it would upload, not that it uploads.
    """

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 quiet: bool = False, verbose: int = 0, dry_run: bool = False) -> None:
        self.out = stream or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.quiet = quiet
        self.verbose = verbose
        self.dry_run = dry_run
        self.files = self.bytes = self.total_files = self.total_bytes = 0
        self._step = 0
        self._drawn = False

    # -- drawing ---------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        """A permanent line (clears the status line first on a terminal)."""
        self.clear()
        self.out.write(text + "\n")
        self.out.flush()

    def _status(self, text: str) -> None:
        if self.tty:
            width = max(20, _columns() - 1)
            self.out.write("\r" + text[:width].ljust(min(width, len(text) + 2)) + "\x1b[K")
            self.out.flush()
            self._drawn = True

    def clear(self) -> None:
        """Erase the status line, if one is drawn."""
        if self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False

    def _upload_text(self) -> str:
        done = self.bytes / self.total_bytes if self.total_bytes else (
            self.files / self.total_files if self.total_files else 1.0)
        filled = int(done * _BAR)
        return (f"uploading [{'#' * filled}{'.' * (_BAR - filled)}] {self.files}/{self.total_files}"
                f" files, {format_bytes(self.bytes)}/{format_bytes(self.total_bytes)}")

    # -- events ----------------------------------------------------------------------------

    def __call__(self, event: SyncEvent) -> None:
        if self.quiet:
            return
        kind = event.kind
        if kind in ("retry", "note", "changed_during_upload"):
            what = {"retry": "retrying", "changed_during_upload": "changed while uploading"}
            self._line(f"{what.get(kind, kind)}: {event.path or event.message}")
            return
        if not self.tty and self.verbose > 0:
            parts = [p for p in (event.path, event.sid, event.message) if p]
            self._line(f"{kind}: {' '.join(parts)}" if parts else kind)
            return
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

    def _scan_done(self, event: SyncEvent) -> None:
        self._status(f"scanned {event.files} files")

    def _transformed(self, event: SyncEvent) -> None:
        self._status(f"optimizing images {event.files}/{event.total}")

    def _planned(self, event: SyncEvent) -> None:
        self.total_files, self.total_bytes = event.files, event.bytes
        self.files = self.bytes = self._step = 0
        if event.files and not self.tty:
            verb = "would upload" if self.dry_run else "uploading"
            self._line(f"{verb} {event.files} of {event.total} files "
                       f"({format_bytes(event.bytes)})")

    def _uploaded(self, event: SyncEvent) -> None:
        self.files += 1
        self.bytes += event.bytes
        if self.tty:
            self._status(self._upload_text())
            return
        # Plain lines: one per tenth of the work, so a 10,000-file run logs ten lines.
        step = self.files * 10 // max(1, self.total_files)
        if step > self._step:
            self._step = step
            self._line(f"uploaded {self.files}/{self.total_files} files "
                       f"({format_bytes(self.bytes)}/{format_bytes(self.total_bytes)})")

    def _build_created(self, event: SyncEvent) -> None:
        if self.tty:
            self._status(f"building {event.sid}")
        else:
            functions = f", {event.total} function versions" if event.total else ""
            self._line(f"building {event.sid} ({event.files} asset versions{functions})")

    def _build_status(self, event: SyncEvent) -> None:
        if self.tty:
            self._status(f"building {event.sid}: {event.message}")

    def _deployed(self, event: SyncEvent) -> None:
        if not self.tty:
            self._line(f"deployed {event.message} ({event.sid})")
        else:
            self.clear()


_HANDLERS: Mapping[str, Callable[[Progress, SyncEvent], None]] = {
    "scan_done": Progress._scan_done,
    "transformed": Progress._transformed,
    "planned": Progress._planned,
    "uploaded": Progress._uploaded,
    "build_created": Progress._build_created,
    "build_status": Progress._build_status,
    "deployed": Progress._deployed,
}


def _columns() -> int:
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 80  # a pseudo-terminal may report 0 columns


# A documented debugging switch for crash-safety tests (docs/sync.md): `KIND[:N]` makes the
# process SIGKILL itself right after the Nth event of that kind, e.g. `uploaded:3`.
KILL_SWITCH = "ASSETSYNC_DEBUG_KILL_AFTER"


def kill_switch(
    on_event: Callable[[SyncEvent], None], environ: Mapping[str, str] | None = None
) -> Callable[[SyncEvent], None]:
    """Wrap `on_event` with the kill switch if `ASSETSYNC_DEBUG_KILL_AFTER` is set."""
    spec = (os.environ if environ is None else environ).get(KILL_SWITCH, "").strip()
    if not spec:
        return on_event
    kind, _, nth = spec.partition(":")
    limit = int(nth) if nth.isdigit() else 1
    seen = [0]

    def wrapped(event: SyncEvent) -> None:
        on_event(event)
        if event.kind == kind:
            seen[0] += 1
            if seen[0] >= limit:
                os.kill(os.getpid(), signal.SIGKILL)

    return wrapped
