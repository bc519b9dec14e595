"""`assetsync urls [--json | --format json|csv|text]`: published path -> URL of what assetsync
last deployed (public and protected files; private ones have no URL). Read from the state: no
network. JSON is `{"/path": "https://…"}`; CSV has `path,url,visibility,service,environment_domain`
(`assetsync.sync.urlmap`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from assetsync.cli._common import add_json_flag, config_from_args
from assetsync.config import Config
from assetsync.sync.urlmap import UrlEntry, render_url_map

__all__ = ["handler", "local_hint", "print_url_rows", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `urls` to the CLI."""
    p = subparsers.add_parser("urls", help="list the published URLs (public and protected files)")
    p.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    add_json_flag(p)
    p.add_argument("--format", choices=("text", "json", "csv"), default=None,
                   help="output format (default text; --json is --format json)")
    p.set_defaults(func=handler)


def local_hint(config: Config, domain: str | None) -> str | None:
    """How to open the embedded emulator's URLs in a browser (None for a real target)."""
    if config.target.api != "local" or not domain:
        return None
    from assetsync.cli.commands.emulator import DEFAULT_PORT
    from assetsync.emulator.serving import SERVE_PREFIX

    data = os.path.relpath(config.state_dir / "emulator", Path.cwd())
    return (f"local emulator: run `assetsync emulator --data {data}`, then open "
            f"http://127.0.0.1:{DEFAULT_PORT}{SERVE_PREFIX}{domain}/<path>")


def print_url_rows(rows: tuple[UrlEntry, ...], limit: int | None = None) -> None:
    """`path  url` lines (the first `limit`, if given)."""
    shown = rows if limit is None else rows[:limit]
    width = min(48, max((len(r.path) for r in shown), default=0))
    for row in shown:
        print(f"  {row.path.ljust(width)}  {row.url}")
    if limit is not None and len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more: `assetsync urls` lists them all")


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
    print_url_rows(rows)
    hint = local_hint(config, rows[0].environment_domain)
    if hint:
        print(hint)
    return 0
