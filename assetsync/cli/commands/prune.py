"""`assetsync prune [--yes]`: delete Asset resources that no environment's live build uses.

A dry run by default: it lists what it would delete. Deleting an Asset deletes its versions, so
builds that used them can no longer be redeployed by `assetsync rollback`.
"""

from __future__ import annotations

import argparse

from assetsync.cli._common import add_json_flag, config_from_args, print_json

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `prune` to the CLI."""
    p = subparsers.add_parser("prune", help="delete Asset resources no live build uses "
                              "(dry run unless --yes)")
    p.add_argument("--yes", action="store_true", help="really delete them")
    p.add_argument("--service", metavar="NAME", help="only this service of a sharded site "
                   "(default: every service of the site)")
    add_json_flag(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Prune."""
    # Here, not at the top: `assetsync --help` registers every command without loading it.
    from assetsync.sync.operations import prune
    config = config_from_args(args)
    result = prune(config, yes=args.yes, service=args.service)
    if args.json:
        print_json(result.to_json())
        return 0
    if not result.candidates:
        print(f"nothing to prune in {args.service or config.service}: every Asset is in a "
              "live build")
        return 0
    verb = "deleted" if not result.dry_run else "would delete"
    print(f"{verb} {len(result.candidates)} Asset resource(s) no live build uses:")
    owners = result.owners()
    several = len({owner for owner, _sid in owners.values()}) > 1
    for sid, name in result.candidates:
        # A sharded site's candidates lie in several services: name each one's.
        where = f"  in {owners[sid][0]}" if several and owners[sid][0] else ""
        print(f"  {name}  {sid}{where}")
    if result.dry_run:
        print("dry run: run `assetsync prune --yes` to delete them")
    return 0
