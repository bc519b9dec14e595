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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.cli._common import add_json_flag, config_from_args, format_bytes, print_json
from assetsync.cli._progress import Progress, kill_switch
from assetsync.config import Config
from assetsync.sync.run import sync
from assetsync.errors import AssetsyncError, ConfigError
from assetsync.results import SyncEvent, SyncResult

if TYPE_CHECKING:
    from assetsync.sync.budget import BuildBudget, Reservation

# `assetsync.sync.budget` (the build ledger) and the `urls` command's printing helpers are imported
# where they are used: a sync of a local target spends no build budget, and `--quiet` prints no
# URL; each costs a few ms of start-up that a cron or benchmark run would pay for nothing.

__all__ = ["BuildSlots", "handler", "log_to_file", "register"]

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
                       help="if someone else deployed: build on their live build, keeping its "
                       "functions and other files")
    drift.add_argument("--force", action="store_true",
                       help="if someone else deployed: replace their files with assetsync's "
                       "(their functions are kept, unless the project deploys a functions folder)")
    p.add_argument("--env-file", metavar="PATH",
                   help="the .env whose variables the environment gets (default: the Toolkit's "
                   "`.env` beside the functions folder; [project] env_file)")
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
        parts.append(f"functions: {verb} {len(fn.uploaded)} ({', '.join(fn.uploaded[:5]) or '-'})"
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


class BuildSlots:
    """The account's hourly build budget (Twilio allows 100; `assetsync watch` and other syncs of
    the account share it, `assetsync.sync.budget`) as one sync spends it, so that a sharded sync never
    passes it: one slot per service of the site the state knows, taken before any request; more
    before any write when the sync spreads the site over more services (its `sharded` event);
    settled with the builds made. A local target has no shared budget: nothing is taken.

    Raises:
        AssetsyncError: the budget has fewer slots left this hour.
    """

    def __init__(self, config: Config, dry_run: bool) -> None:
        self.budget: BuildBudget | None = None
        self.held: list[Reservation] = []
        if config.target.api != "twilio" or dry_run:
            return
        from assetsync.sync.budget import budget_for_config
        from assetsync.sync.sharded import services_in_use

        try:
            self.budget = budget_for_config(config)
            slots = services_in_use(config)
        except OSError as exc:  # never stop a sync over bookkeeping
            logging.getLogger(__name__).warning("could not read the build budget: %s", exc)
            self.budget = None
            return
        self.take(slots)

    @property
    def slots(self) -> int:
        """Slots taken so far."""
        return sum(r.slots for r in self.held)

    def take(self, slots: int) -> None:
        """Take `slots` more (all or none)."""
        if self.budget is None or slots <= 0:
            return
        reservation = self.budget.reserve(slots)
        if reservation is None:
            need = self.slots + slots
            at = time.strftime("%H:%M", time.localtime(self.budget.next_available_at(need)))
            raise AssetsyncError(
                f"build budget spent: a sync of this site may build {need} service(s), and "
                f"{self.budget.remaining() + self.slots} of the account's {self.budget.limit} "
                f"builds per hour are left (assetsync's ledger in {self.budget.ledger_dir}); "
                f"try again at {at}"
            )
        self.held.append(reservation)

    def watching(self, on_event: Callable[[SyncEvent], None]) -> Callable[[SyncEvent], None]:
        """`on_event`, taking more slots when the sync says how many services it spans."""

        def wrapped(event: SyncEvent) -> None:
            if event.kind == "sharded":
                self.take(event.total - self.slots)
            on_event(event)

        return wrapped

    def settle(self, builds: int) -> None:
        """Replace what was taken by the builds the sync made."""
        if self.budget is None:
            return
        try:
            for i, reservation in enumerate(self.held):
                self.budget.settle(reservation, builds if i == 0 else 0)
        except OSError as exc:
            logging.getLogger(__name__).warning("could not record %d build(s) in the budget: %s",
                                                builds, exc)
        self.held = []

    def settle_result(self, result: SyncResult) -> None:
        """`settle` with the builds `result` says the sync made."""
        if self.budget is not None:  # then `assetsync.sync.budget` is loaded already
            from assetsync.sync.budget import builds_made

            self.settle(builds_made(result))

    def settle_error(self, exc: BaseException) -> None:
        """`settle` with the builds a sync that raised `exc` made."""
        if self.budget is not None:
            from assetsync.sync.budget import builds_on_error

            self.settle(builds_on_error(exc))


def handler(args: argparse.Namespace) -> int:
    """Run one sync."""
    config = config_from_args(args, {
        "project.environment": args.env,
        "project.env_file": str(Path(args.env_file).resolve()) if args.env_file else None})
    quiet = args.quiet or args.json
    progress = Progress(quiet=quiet, verbose=args.verbose)
    with log_to_file(args.log_file):
        budget: BuildSlots | None = None
        try:
            budget = BuildSlots(config, args.dry_run)
            result = sync(config, dry_run=args.dry_run, full=args.full, adopt=args.adopt,
                          force=args.force, on_event=budget.watching(kill_switch(progress)),
                          prune_variables=args.prune_variables)
        except AssetsyncError as exc:
            if budget is not None:
                budget.settle_error(exc)
            if args.json:  # a program reading stdout still gets one document
                print_json({"ok": False, "error": str(exc), "type": type(exc).__name__,
                            "exit_code": exc.exit_code})
            raise
        except BaseException:
            if budget is not None:  # interrupted: every service may have built
                budget.settle(budget.slots)
            raise
        finally:
            progress.clear()
    budget.settle_result(result)
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
        print(f"  {part.service}/{part.environment} at https://{part.domain_name}: "
              f"{len(part.uploaded)} uploaded, {part.reused} reused, build {part.build_sid}")
    if result.urls and not result.dry_run:
        from assetsync.cli.commands.urls import local_hint, print_url_rows

        print_url_rows(result.urls, URLS_SHOWN)
        hint = local_hint(config, result.domain_name)
        if hint:
            print(hint)
    return 0
