"""`assetsync sync`: publish the source folder, uploading only what changed.

Progress goes to stderr (a redrawn line on a terminal, plain lines otherwise); the summary and
the published URLs go to stdout, or one JSON document with `--json`. `--quiet` prints nothing on
success (cron); `--log-file` appends one line per remote change. Exit 0 ok, 1 error, 2 config,
3 another assetsync holds the state, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assetsync.cli._common import (
    add_json_flag,
    config_from_args,
    format_bytes,
    name_list,
    print_json,
)
from assetsync.cli._progress import Progress, kill_switch
from assetsync.errors import AssetsyncError, ConfigError
from assetsync.results import SyncResult

# The `urls` command's printing helpers are imported where they are used: `--quiet` prints no
# URL, and they cost a few ms of start-up that a cron or benchmark run would pay for nothing.
# The account's build budget is the library's (`assetsync.sync.budget.BuildSlots`).

__all__ = ["handler", "log_to_file", "register"]

URLS_SHOWN = 50


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sync` to the CLI."""
    p = subparsers.add_parser(
        "sync", help="publish the source folder, uploading only what changed",
        description="Publish the source folder to Twilio Serverless (or the local emulator): "
        "upload only what changed, build once, deploy.",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--env", metavar="NAME", help="environment (unique name / domain suffix)")
    p.add_argument("--full", action="store_true",
                   help="upload every file again, like `twilio-run deploy` (a baseline)")
    drift = p.add_mutually_exclusive_group()
    drift.add_argument("--adopt", action="store_true",
                       help="if someone else deployed (before or during this sync): build on "
                       "their live build, keeping its functions and other files")
    drift.add_argument("--force", action="store_true",
                       help="if someone else deployed: replace their files with assetsync's "
                       "(their functions are kept, unless the project deploys a functions folder)")
    p.add_argument("--env-file", metavar="PATH",
                   help="the .env whose variables the environment gets (default: the Toolkit's "
                   "`.env` beside the functions folder; [project] env_file)")
    p.add_argument("--repair", action="store_true",
                   help="where several Assets or Functions share a name (made by another "
                   "tool), keep the one the live build uses and delete the others")
    p.add_argument("--prune-variables", action="store_true",
                   help="delete the environment's variables the .env no longer has (kept by "
                   "default, as `twilio-run deploy` keeps them)")
    add_json_flag(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing unless it fails")
    p.add_argument("--log-file", metavar="PATH",
                   help="append one timestamped line per remote change to PATH")
    p.set_defaults(func=handler)


@contextmanager
def log_to_file(path: str | None) -> Iterator[None]:
    """Append assetsync's INFO log (one line per remote mutation) to `path`."""
    if not path:
        yield
        return
    try:
        file_handler = logging.FileHandler(Path(path).expanduser(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--log-file {path}: cannot open it ({exc.strerror}); pick a "
                          "writable path", key="--log-file") from None
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.setLevel(logging.INFO)
    logger = logging.getLogger("assetsync")
    previous = logger.level
    logger.addHandler(file_handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(file_handler)
        logger.setLevel(previous)
        file_handler.close()


def _functions_line(result: SyncResult) -> str:
    """Functions and variables in a few words (keys only: a value is never shown)."""
    parts = []
    fn = result.functions
    if fn is not None:
        verb = "would upload" if result.dry_run else "uploaded"
        parts.append(f"functions: {verb} {len(fn.uploaded)} ({name_list(fn.uploaded)})"
                     f", reused {fn.reused}, dropped {len(fn.dropped)}"
                     + ("; dependencies changed" if fn.dependencies_changed else ""))
    v = result.variables
    if v is not None:
        verb = "would change" if result.dry_run else "changed"
        changed = [f"+{k}" for k in v.create] + [f"~{k}" for k in v.update] + [
            f"-{k}" for k in v.delete]
        parts.append(f"variables: {verb} {len(changed)} ({' '.join(changed) or '-'}), "
                     f"{len(v.unchanged)} unchanged" + (
                         f", {len(v.kept)} kept (not in the .env; --prune-variables deletes them)"
                         if v.kept else ""))
    return "\n".join(parts)


def _summary(result: SyncResult) -> str:
    where = f"{result.service}/{result.environment}"
    extra = _functions_line(result)
    return _summary_line(result, where) + (f"\n{extra}" if extra else "")


def _uploads(result: SyncResult) -> str:
    """`2 file(s)`, or `2 file(s) and 1 function(s)`: what `upload_bytes` counts."""
    functions = len(result.functions.uploaded) if result.functions is not None else 0
    return f"{len(result.uploaded)} file(s)" + (
        f" and {functions} function(s)" if functions else "")


def _summary_line(result: SyncResult, where: str) -> str:
    if result.dry_run:
        return (f"Dry run for {where}: would upload {_uploads(result)} "
                f"({format_bytes(result.upload_bytes)}), reuse {result.reused}, drop "
                f"{len(result.dropped)}; nothing was written")
    site = f" at https://{result.domain_name}" if result.domain_name else ""
    if result.noop:
        return (f"Up to date: {where}{site} serves all {result.reused} file(s); nothing to upload "
                f"(build {result.build_sid})")
    return (f"Published {where}{site}: uploaded {_uploads(result)} "
            f"({format_bytes(result.upload_bytes)}), reused {result.reused}, dropped "
            f"{len(result.dropped)}; build {result.build_sid} is live ({result.elapsed_s:.1f} s, "
            f"{result.requests} requests)")


def handler(args: argparse.Namespace) -> int:
    """Run one sync."""
    # Here, not at the top: `assetsync --help` registers every command without loading it.
    from assetsync.prepare.stage import BlockedError
    from assetsync.sync.run import sync
    config = config_from_args(args, {
        "project.environment": args.env,
        "project.env_file": str(Path(args.env_file).resolve()) if args.env_file else None,
        "sync.repair": True if args.repair else None})
    quiet = args.quiet or args.json
    progress = Progress(quiet=quiet, verbose=args.verbose, dry_run=args.dry_run)
    with log_to_file(args.log_file):
        try:
            result = sync(config, dry_run=args.dry_run, full=args.full, adopt=args.adopt,
                          force=args.force, on_event=kill_switch(progress),
                          prune_variables=args.prune_variables)
        except AssetsyncError as exc:
            if args.json:  # a program reading stdout still gets one document
                print_json({"ok": False, "error": str(exc), "type": type(exc).__name__,
                            "exit_code": exc.exit_code})
            if isinstance(exc, BlockedError) and not args.json:
                from assetsync.cli.commands.plan import print_blocking

                print_blocking(exc.issues)  # the very lines `plan` prints
                return exc.exit_code
            raise
        finally:
            progress.clear()
    if args.json:
        print_json({"ok": True, **result.to_json()})
        return 0
    if args.quiet:
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(_summary(result))
    for part in result.services:
        if part.build_sid is None and part.dropped:  # a service retired (see its note)
            print(f"  {part.service}/{part.environment}: retired, {len(part.dropped)} dropped")
            continue
        print(f"  {part.service}/{part.environment} at https://{part.domain_name}: "
              f"{len(part.uploaded)} uploaded, {part.reused} reused, build {part.build_sid}")
    if result.urls and not result.dry_run:
        from assetsync.cli.commands.urls import (
            local_hint,
            local_origin,
            print_private_count,
            print_url_rows,
        )

        print_url_rows(result.urls, URLS_SHOWN, origin=local_origin(config))
        print_private_count(result)
        hint = local_hint(config, result.domain_name)
        if hint:
            print(hint)
    return 0
