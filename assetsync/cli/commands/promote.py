"""`assetsync promote FROM_ENV TO_ENV [--env-file PATH]`: deploy the build live on one
environment to another (created if missing), after setting its Variables from a .env when one
is named. Nothing is uploaded or rebuilt."""

from __future__ import annotations

import argparse
from pathlib import Path

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.errors import ConfigError

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `promote` to the CLI."""
    p = subparsers.add_parser("promote", help="deploy one environment's live build to another")
    p.add_argument("from_env", metavar="FROM_ENV", help="environment whose live build to deploy")
    p.add_argument("to_env", metavar="TO_ENV", help="environment to deploy it to")
    p.add_argument("--env-file", metavar="PATH",
                   help="a .env whose variables TO_ENV gets first, diffed by key as sync sets "
                   "them (twilio-run promote's --env; default: TO_ENV's own file when "
                   "[project] env_file has {env})")
    p.add_argument("--prune-variables", action="store_true",
                   help="with --env-file: delete TO_ENV's variables the file does not have")
    add_json_flag(p)
    p.set_defaults(func=handler)


def _per_environment_env_file(args: argparse.Namespace) -> str | None:
    """TO_ENV's own .env when `[project] env_file` names one per environment (`.env.{env}`).

    A single env_file (or the Toolkit's `.env`) is not taken: promote then leaves TO_ENV's
    Variables as they are, as twilio-run's promote does without `--env`.
    """
    to_config = config_from_args(args, {"project.environment": args.to_env}, warn=False)
    from_config = config_from_args(args, {"project.environment": args.from_env}, warn=False)
    if not to_config.env_file or to_config.env_file == from_config.env_file:
        return None
    if not Path(to_config.env_file).is_file():
        raise ConfigError(
            f"{to_config.config_path}: [project] env_file: {to_config.env_file} (for "
            f"{args.to_env}) does not exist: create it, or name a file with --env-file",
            key="project.env_file", file=str(to_config.config_path))
    return to_config.env_file


def handler(args: argparse.Namespace) -> int:
    """Promote."""
    # Here, not at the top: `assetsync --help` registers every command without loading it.
    from assetsync.sync.operations import promote
    config = config_from_args(args)
    env_file = args.env_file or _per_environment_env_file(args)
    if args.prune_variables and not env_file:
        raise ConfigError("--prune-variables needs --env-file (or a per-environment [project] "
                          "env_file such as \".env.{env}\"): the variables to keep")
    result = promote(config, args.from_env, args.to_env, env_file=env_file,
                     prune_variables=args.prune_variables)
    if args.json:
        print_json(result.to_json())
        return 0
    for part in result.services or (result,):  # each service of a sharded site
        print(f"{part.service}/{part.environment}: build {part.build_sid} is live at "
              f"https://{part.domain_name} (promoted from {args.from_env})")
        v = part.variables
        if v is not None:  # keys only: a value is never shown
            print(f"  variables: {len(v.create)} created, {len(v.update)} updated, "
                  f"{len(v.delete)} deleted, {len(v.unchanged)} unchanged"
                  + (f", {len(v.kept)} kept" if v.kept else ""))
    return 0
