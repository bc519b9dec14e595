"""Helpers every subcommand shares: config from arguments, JSON output, issue lines, and the
plain-line printer for progress events (`SyncEvent`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from assetsync.config import Config, load_config
from assetsync.prepare.classify import Issue
from assetsync.results import SyncEvent

__all__ = [
    "add_json_flag",
    "config_from_args",
    "event_printer",
    "format_bytes",
    "issue_line",
    "name_list",
    "print_issues",
    "print_json",
]


def config_from_args(args: object, overrides: Mapping[str, object] | None = None, *,
                     warn: bool = True) -> Config:
    """Load the config named by `-c/--config` (or the nearest .assetsync.toml at or above the
    working folder) with flag overrides; its warnings go to stderr (unless `warn` is false: a
    command that loads the same file again for another environment says them once).

    Overrides whose value is None (a flag not given) are left out, so env and file apply.
    """
    path = getattr(args, "config", None)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    # Normalized: `-c ../.assetsync.toml` from a subfolder would otherwise leave `..` in the
    # config's own path and root, which the scan then meets as a `..` glob segment.
    file = Path(os.path.abspath(path)) if path else None
    config = load_config(file, environ=os.environ, overrides=given)
    # problems that do not stop the run (a misspelled profile)
    for line in config.warnings if warn else ():
        sys.stderr.write(f"warning: {line}\n")
    return config


def add_json_flag(parser: object) -> None:
    """The shared `--json` flag."""
    parser.add_argument(  # type: ignore[attr-defined]
        "--json", action="store_true", help="print one JSON document for programs"
    )


def print_json(data: object, stream: TextIO | None = None) -> None:
    """One JSON document on stdout, on one line (stable key order, trailing newline).

    No indentation: `indent` switches json to its pure-Python encoder, ~10x slower on a
    10,000-file plan; `jq .` pretty-prints when a person wants to read it.
    """
    import json  # here: a command that prints no JSON (most runs) need not load it

    out = stream or sys.stdout
    out.write(json.dumps(data, ensure_ascii=False) + "\n")
    out.flush()


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - loop always returns


def name_list(names: Sequence[str], shown: int = 5) -> str:
    """`/a, /b … and 3 more`: the first `shown` names, and how many were left out ("-": none)."""
    text = ", ".join(names[:shown]) or "-"
    return text + (f" … and {len(names) - shown} more" if len(names) > shown else "")


def issue_line(issue: Issue) -> str:
    """`error: img/x#y.png: published path ...` — one line, naming the file."""
    return f"{issue.severity}: {issue.path}: {issue.message}"


def print_issues(issues: Iterable[Issue], stream: TextIO | None = None) -> None:
    """Each issue on its own line on stderr."""
    out = stream or sys.stderr
    for issue in issues:
        out.write(issue_line(issue) + "\n")


def event_printer(verbose: int = 0, stream: TextIO | None = None) -> Callable[[SyncEvent], None]:
    """A plain-line `on_event` callback: retries and notes always, every event with -v.

    Lines look like `scan_done: 12 files, 3 hashed, 0 issues in 0.004 s`.
    """
    out = stream or sys.stderr
    always = {"retry", "note", "changed_during_upload"}

    def on_event(event: SyncEvent) -> None:
        if event.kind not in always and verbose <= 0:
            return
        parts = [p for p in (event.path, event.sid, event.message) if p]
        out.write(f"{event.kind}: {' '.join(parts)}\n" if parts else f"{event.kind}\n")
        out.flush()

    return on_event
