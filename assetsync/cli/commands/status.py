"""`assetsync status`: the environment's live build next to what assetsync recorded, drift, and
the changes a sync would make (to functions and Variables too: paths and keys, never a value).
Exit 0 whether or not a sync is needed (see `in_sync` in --json)."""

from __future__ import annotations

import argparse

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.results import StatusResult

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


def _keys(label: str, keys: tuple[str, ...]) -> None:
    if keys:
        shown = ", ".join(keys[:SHOWN]) + (f" and {len(keys) - SHOWN} more"
                                           if len(keys) > SHOWN else "")
        print(f"  {label}: {shown}")


def _functions_and_variables(result: StatusResult) -> None:
    """The `functions:` and `variables:` sections: paths and keys only."""
    fplan, variables = result.functions, result.variables
    if fplan is not None:
        redeploys = result.function_redeploys
        print(f"functions: {len(fplan.uploads)} to upload, {len(redeploys)} to redeploy, "
              f"{len(fplan.drops)} to drop, {len(fplan.reuses) - len(redeploys)} unchanged")
        _keys("upload", tuple(f.path for f in fplan.uploads))
        _keys("redeploy (a recorded version, no upload)", redeploys)
        _keys("drop", fplan.drops)
        if fplan.dependencies_changed:
            print("  dependencies change: " + (", ".join(
                f"{n}@{v}" for n, v in fplan.dependencies) or "none"))
    if result.runtime_change is not None:
        was, now = result.runtime_change
        print(f"runtime: {was or 'default'} -> {now} (a new build)")
    if variables is not None:
        print(f"variables: {len(variables.create)} to create, {len(variables.update)} to "
              f"update, {len(variables.unchanged)} unchanged, {len(variables.kept)} kept "
              "(not in the .env)")
        _keys("create", variables.create)
        _keys("update", variables.update)


def handler(args: argparse.Namespace) -> int:
    """Show the status."""
    # Here, not at the top: `assetsync --help` registers every command without loading it.
    from assetsync.sync.operations import status
    config = config_from_args(args, {"project.environment": args.env})
    result = status(config)
    if args.json:
        print_json(result.to_json())
        return 0
    where = f"{result.service}/{result.environment}"
    if result.environment_sid is None:
        _not_created(where, result)
        return 0
    print(f"{where} ({result.environment_sid}) at https://{result.domain_name}")
    live = result.live_build_sid or "none"
    print(f"  live build:     {live}" + (f" ({result.live_build_status})"
                                         if result.live_build_status else ""))
    print(f"  recorded build: {result.recorded_build_sid or 'none'}")
    if result.state_source != "local":
        print(f"  state:          read from the live build's {result.state_source}")
    if result.pending_build_sid:
        print(f"  pending build:  {result.pending_build_sid} (the next sync finishes it)")
    _services(result)
    if result.drift:
        print(f"  drift: {result.drift}")
    for part in (result, *result.services):
        if part.duplicates:
            print(f"  duplicates in {part.service}: {part.duplicates}")
    _listed("to upload", result.pending_uploads)
    _listed("to drop", result.pending_drops)
    _functions_and_variables(result)
    if result.in_sync:
        print("in sync: nothing to upload or build")
    _blocked(result)
    return 0


def _services(result: StatusResult) -> None:
    """One line per service of a sharded site."""
    for part in result.services:
        state = "drift" if part.drift else ("in sync" if part.in_sync else "changes")
        if (part.service != result.service and not part.drift and part.pending_drops
                and not part.counts.get("files")):  # as `sync` does: see sync/retire.py
            state = ("no file left: sync drops its files, deleting its environments (or the "
                     "service) when nothing else is in them")
        print(f"  {part.service}: live {part.live_build_sid or 'none'}, recorded "
              f"{part.recorded_build_sid or 'none'} ({state})")


def _not_created(where: str, result: StatusResult) -> None:
    """The environment does not exist yet: what a sync would do first."""
    if result.problems:
        print(f"{where}: not created yet; `assetsync sync` refuses this folder until the "
              "problems below are fixed")
    else:
        print(f"{where}: not created yet; `assetsync sync` creates it and publishes "
              f"{result.counts.get('files', 0)} file(s)")
    _blocked(result)


def _blocked(result: StatusResult) -> None:
    """What stops a sync of this folder: the very lines `plan` and `sync` print (stderr)."""
    if result.problems:
        from assetsync.cli.commands.plan import print_blocking  # the very lines `plan` prints

        print(f"blocked: `assetsync sync` refuses this folder ({len(result.problems)} "
              "problem(s)):")
        print_blocking(result.problems)
