"""`assetsync rollback [--to BUILD_SID]`: redeploy the previous completed build (or the one
named), rebuilding it from recorded versions if Twilio already deleted it."""

from __future__ import annotations

import argparse

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.cli._progress import Progress

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rollback` to the CLI."""
    p = subparsers.add_parser("rollback", help="redeploy the previous build")
    p.add_argument("--to", metavar="BUILD_SID", help="the build to go back to (default: the one "
                   "before the live build)")
    p.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    p.add_argument("--service", metavar="NAME", help="one service of a sharded site (name-2, "
                   "...; default the configured one): each service rolls back on its own")
    p.add_argument("--force", action="store_true",
                   help="roll back even if someone else deployed since assetsync did")
    add_json_flag(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Roll back."""
    # Here, not at the top: `assetsync --help` registers every command without loading it.
    from assetsync.sync.operations import rollback
    config = config_from_args(args, {"project.environment": args.env})
    progress = Progress(quiet=args.json, verbose=args.verbose)
    try:
        result = rollback(config, to=args.to, force=args.force, on_event=progress,
                          service=args.service)
    finally:
        progress.clear()
    if args.json:
        print_json(result.to_json())
        return 0
    for note in result.notes:
        print(f"note: {note}")
    print(f"{result.service}/{result.environment}: build {result.build_sid} is live again "
          f"(deployment {result.deployment_sid})")
    return 0
