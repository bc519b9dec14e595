"""`assetsync promote FROM_ENV TO_ENV`: deploy the build live on one environment to another
(created if missing). Nothing is uploaded or rebuilt."""

from __future__ import annotations

import argparse

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.operations import promote

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `promote` to the CLI."""
    p = subparsers.add_parser("promote", help="deploy one environment's live build to another")
    p.add_argument("from_env", metavar="FROM_ENV", help="environment whose live build to deploy")
    p.add_argument("to_env", metavar="TO_ENV", help="environment to deploy it to")
    add_json_flag(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Promote."""
    config = config_from_args(args)
    result = promote(config, args.from_env, args.to_env)
    if args.json:
        print_json(result.to_json())
        return 0
    for part in result.services or (result,):  # each service of a sharded site
        print(f"{part.service}/{part.environment}: build {part.build_sid} is live at "
              f"https://{part.domain_name} (promoted from {args.from_env})")
    return 0
