"""`assetsync urls [--json | --format json|csv|text]`: published path -> URL of what assetsync
last deployed (public and protected files; private ones have no URL). Read from the state: no
network. JSON is `{"/path": "https://…"}`; CSV has `path,url,visibility,service,environment_domain`
(`assetsync.sync.urlmap`). The text form marks protected files (a browser gets 403) and, for the
embedded target, adds each file's URL on `assetsync emulator`; `sync` prints its URLs here too."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from assetsync.cli._common import add_json_flag, config_from_args
from assetsync.config import Config
from assetsync.models import Visibility
from assetsync.results import SyncResult
from assetsync.sync.urlmap import UrlEntry, render_url_map

__all__ = [
    "PROTECTED_MARK",
    "handler",
    "local_hint",
    "local_origin",
    "local_url",
    "print_private_count",
    "print_url_rows",
    "register",
]

# Protected files answer only requests signed by Twilio (X-Twilio-Signature): not a browser.
PROTECTED_MARK = "(protected: Twilio-signed requests only, a browser gets 403)"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `urls` to the CLI."""
    p = subparsers.add_parser("urls", help="list the published URLs (public and protected files)")
    p.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    add_json_flag(p)
    p.add_argument("--format", choices=("text", "json", "csv"), default=None,
                   help="output format (default text; --json is --format json)")
    p.set_defaults(func=handler)


def local_origin(config: Config) -> str | None:
    """Where `assetsync emulator` serves the embedded target's sites (None for a real target).

    The printed `https://<domain>` URLs of the embedded target exist nowhere; the emulator
    serves the same files at `http://127.0.0.1:4280/_serve/<domain>/<path>`.
    """
    if config.target.api != "local":
        return None
    from assetsync.cli.commands.emulator import DEFAULT_PORT

    return f"http://127.0.0.1:{DEFAULT_PORT}"


def local_url(origin: str, row: UrlEntry) -> str:
    """`row` as the emulator at `origin` serves it (same encoded path)."""
    from assetsync.emulator.serving import SERVE_PREFIX

    return f"{origin}{SERVE_PREFIX}{row.environment_domain}{urlsplit(row.url).path}"


def local_hint(config: Config, domain: str | None) -> str | None:
    """How to open the embedded emulator's URLs in a browser (None for a real target)."""
    origin = local_origin(config)
    if origin is None or not domain:
        return None
    data = os.path.relpath(config.state_dir / "emulator", Path.cwd())
    return (f"local URLs: run `assetsync emulator --data {data}` (another terminal) and open "
            f"them; the https:// URLs work once the site is published to Twilio")


def print_url_rows(rows: tuple[UrlEntry, ...], limit: int | None = None, *,
                   origin: str | None = None) -> None:
    """`path  url` lines (the first `limit`, if given); with `origin`, each file's local URL
    on the emulator too. A protected file is marked: a browser gets 403 from it."""
    shown = rows if limit is None else rows[:limit]
    width = min(48, max((len(r.path) for r in shown), default=0))
    url_width = min(72, max((len(r.url) for r in shown), default=0)) if origin else 0
    for row in shown:
        line = f"  {row.path.ljust(width)}  {row.url.ljust(url_width)}"
        if origin is not None:
            line += f"  {local_url(origin, row)}"
        if row.visibility is Visibility.PROTECTED:
            line += f"  {PROTECTED_MARK}"
        print(line.rstrip())
    if limit is not None and len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more: `assetsync urls` lists them all")


def print_private_count(result: SyncResult) -> None:
    """The line that accounts for the published files the URL list leaves out: every file of
    the build (uploaded or reused) has a URL unless it is private."""
    private = len(result.uploaded) + result.reused - len(result.urls)
    if private > 0:
        print(f"  {private} private file(s) have no URL: only Functions read them "
              "(Runtime.getAssets())")


def handler(args: argparse.Namespace) -> int:
    """Print the URL map."""
    # Here, not at the top: `sync` imports this module for its URL lines, and `operations`
    # (status, rollback, promote, prune) is nothing a sync runs.
    from assetsync.sync.operations import published_urls

    config = config_from_args(args, {"project.environment": args.env})
    rows = published_urls(config)
    fmt = "json" if args.json else (args.format or "text")
    if fmt != "text":
        sys.stdout.write(render_url_map(rows, fmt))
        return 0
    if not rows:
        print(f"nothing published yet for {config.service}/{config.environment}: "
              "run `assetsync sync`")
        return 0
    print_url_rows(rows, origin=local_origin(config))
    hint = local_hint(config, rows[0].environment_domain)
    if hint:
        print(hint)
    return 0
