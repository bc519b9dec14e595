"""`assetsync status`: the environment's live build next to what assetsync recorded, drift, and
the changes a sync would make. Exit 0 whether or not a sync is needed (see `in_sync` in --json)."""

from __future__ import annotations

import argparse

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.operations import status

__all__ = ["handler", "register"]

SHOWN = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `status` to the CLI."""
    p = subparsers.add_parser("status", help="live build, recorded state, pending changes, drift")
    p.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    add_json_flag(p)
    p.set_defaults(func=handler)


def _listed(label: str, paths: tuple[str, ...]) -> None:
    if not paths:
        return
    print(f"{label} ({len(paths)}):")
    for path in paths[:SHOWN]:
        print(f"  {path}")
    if len(paths) > SHOWN:
        print(f"  ... and {len(paths) - SHOWN} more")


def handler(args: argparse.Namespace) -> int:
    """Show the status."""
    config = config_from_args(args, {"project.environment": args.env})
    result = status(config)
    if args.json:
        print_json(result.to_json())
        return 0
    where = f"{result.service}/{result.environment}"
    if result.environment_sid is None:
        print(f"{where}: not created yet; `assetsync sync` creates it and publishes "
              f"{result.counts.get('files', 0)} file(s)")
        return 0
    print(f"{where} ({result.environment_sid}) at https://{result.domain_name}")
    live = result.live_build_sid or "none"
    print(f"  live build:     {live}" + (f" ({result.live_build_status})"
                                         if result.live_build_status else ""))
    print(f"  recorded build: {result.recorded_build_sid or 'none'}")
    if result.pending_build_sid:
        print(f"  pending build:  {result.pending_build_sid} (the next sync finishes it)")
    for part in result.services:
        state = "drift" if part.drift else ("in sync" if not part.needs_build else "changes")
        print(f"  {part.service}: live {part.live_build_sid or 'none'}, recorded "
              f"{part.recorded_build_sid or 'none'} ({state})")
    if result.drift:
        print(f"  drift: {result.drift}")
    _listed("to upload", result.pending_uploads)
    _listed("to drop", result.pending_drops)
    if not result.drift and not result.needs_build:
        print("in sync: nothing to upload or build")
    return 0
