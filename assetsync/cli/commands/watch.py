"""`assetsync watch`: keep the source folder published.

A status line on a terminal, log lines otherwise.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from assetsync.cli import EXIT_INTERRUPTED, EXIT_OK
from assetsync.cli._common import config_from_args
from assetsync.config import Config
from assetsync.errors import LockHeldError
from assetsync.frozen import asdict, replace

# The watcher and the sync engine are imported by the handler: `assetsync --help` registers
# this command without loading them.
if TYPE_CHECKING:
    from assetsync.watch.run import WatchEvent, WatchOptions, WatchStatus


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync watch`."""
    parser = subparsers.add_parser(
        "watch",
        help="keep the source folder published, deploying each save within about a second",
        description=(
            "Watch the source folder (and a Toolkit project's functions folder, package.json and "
            ".env) and publish every change: saves are deployed after a quiet window (default "
            "300 ms), bursts coalesce into one build, and builds stay inside the account's "
            "hourly budget. Ctrl-C stops after the current sync. Settings: [watch] in "
            "the config file (see docs/watch.md)."
        ),
    )
    parser.add_argument("--env", metavar="NAME", help="environment (unique name / domain suffix)")
    parser.add_argument("--polling", choices=("auto", "on", "off"), help="override [watch] polling")
    parser.add_argument(
        "--quiet-window", type=float, metavar="SECONDS", help="override [watch] quiet_window_s"
    )
    parser.add_argument(
        "--builds-per-hour", type=int, metavar="N", help="override [watch] builds_per_hour"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="log lines instead of a status line, even on a terminal",
    )
    parser.set_defaults(func=handler)


def _clock(at: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) if at is not None else "-"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _changes(event: WatchEvent) -> str:
    # A change to a function, package.json or .env counts like a change in the source folder.
    if event.paths is None:
        return "full reconcile"
    return _count(len(event.paths) + len(event.toolkit), "change")


def _uploaded(result: object) -> int:
    """Asset and Function Versions a sync uploaded."""
    functions = getattr(result, "functions", None)
    return (
        len(getattr(result, "uploaded", ()) or ())
        + len(getattr(functions, "uploaded", ()) or ())
    )


def _variables_changed(result: object) -> str:
    """The Variables a sync set or deleted, keys only (values are secrets); "" for none. They
    change the environment without a build."""
    plan = getattr(result, "variables", None)
    keys = sorted(
        {*getattr(plan, "create", ()), *getattr(plan, "update", ()), *getattr(plan, "delete", ())}
    )
    return f"variables changed ({' '.join(keys)})" if keys else ""


class _Display:
    """Plain log lines (not a terminal, or --plain): one line per thing that happened."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.status: WatchStatus | None = None
        self.uploaded = 0
        # The last failure and no-op shown: the same one again (every backoff, a file written
        # in a loop every max_wait_s) is news to no one, and the status line keeps it.
        self.shown_failure: str | None = None
        self.shown_noop: frozenset[str] | None = None

    def line(self, text: str) -> None:
        self.out.write(f"{_clock(time.time())} {text}\n")
        self.out.flush()

    def redraw(self) -> None:
        """Plain output has no status line."""

    def on_sync_event(self, event: object) -> None:
        if getattr(event, "kind", None) == "uploaded":
            self.uploaded += 1
            self.redraw()

    def on_watch_event(self, event: WatchEvent) -> None:
        self.status = event.status
        text = self._describe(event)
        if text:
            self.line(text)
        else:
            self.redraw()

    def _describe(self, event: WatchEvent) -> str | None:
        s = event.status
        if event.kind == "started":
            return (
                f"watching ({event.message}); "
                f"budget {s.budget_remaining}/{s.budget_limit} builds this hour"
            )
        if event.kind in ("advice", "overflow", "config-reloaded", "unreachable", "reachable"):
            return f"note: {event.message}"
        if event.kind == "config-error":
            return f"config error: {event.message}"
        if event.kind == "held-back":
            return (f"held back (its live version stays; fix it or add an [ignore] pattern): "
                    f"{event.message}")
        if event.kind == "sync-started":
            self.uploaded = 0
            return None
        if event.kind == "synced":
            self.shown_failure = None
            return self._synced(event)
        if event.kind == "sync-failed":
            if event.message == self.shown_failure:
                return None
            self.shown_failure = event.message
            return (
                f"sync failed: {event.message}; "
                f"retrying at {_clock(s.next_build_at)} or on the next change"
            )
        if event.kind == "waiting" and s.state == "budget":
            return (
                f"build budget spent ({s.budget_limit}/hour); "
                f"next build at {_clock(s.next_build_at)}"
            )
        return None

    def _synced(self, event: WatchEvent) -> str | None:
        from assetsync.watch.run import builds_made

        builds = builds_made(event.result)
        uploaded = _uploaded(event.result)
        variables = _variables_changed(event.result)
        if builds or variables:
            self.shown_noop = None
        if builds:
            build = getattr(event.result, "build_sid", None) if builds == 1 else None
            what = f"build {build}" if build else _count(builds, "build")
            return f"{_changes(event)} deployed: {uploaded} uploaded, {what}" + (
                f", {variables}" if variables else "")
        if variables:
            return f"{_changes(event)} deployed: {variables}"
        if event.paths is None:
            return None
        batch = event.paths | event.toolkit
        if batch == self.shown_noop:
            return None
        self.shown_noop = batch
        return f"{_changes(event)}: nothing to deploy"

    def finish(self, status: WatchStatus) -> None:
        pending = status.pending + (1 if _undeployed(status) and not status.pending else 0)
        self.line(
            f"stopped; {status.builds} builds, {status.failures} failed syncs, {pending} pending"
        )


class _StatusLine(_Display):
    """On a terminal: the same lines, plus one status line redrawn in place below them."""

    def line(self, text: str) -> None:
        self.out.write("\r\x1b[2K")
        super().line(text)
        self.redraw()

    def redraw(self) -> None:
        s = self.status
        if s is None:
            return
        parts = [f"{s.mode}", f"last deploy {_clock(s.last_deploy_at)}"]
        if s.state == "syncing":
            parts.append(f"syncing ({self.uploaded} uploaded)")
        else:
            parts.append(f"{s.pending} pending" if s.pending else "up to date")
        parts.append(f"budget {s.budget_remaining}/{s.budget_limit}")
        if s.next_build_at is not None and s.state in ("pending", "budget", "backoff"):
            parts.append(f"next build {_clock(s.next_build_at)}")
        if not s.reachable:
            parts.append("target not answering")
        if s.held_back:
            parts.append(f"{_count(s.held_back, 'file')} held back")
        if s.config_error:
            parts.append("config file broken: last good config in use")
        if s.last_error:
            parts.append(f"last error: {s.last_error}")
        width = shutil.get_terminal_size().columns - 1
        self.out.write("\r\x1b[2K" + " · ".join(parts)[:width])
        self.out.flush()

    def finish(self, status: WatchStatus) -> None:
        self.out.write("\r\x1b[2K")
        super().finish(status)
        self.out.write("\r\x1b[2K")
        self.out.flush()


def _options(config: Config, args: argparse.Namespace) -> WatchOptions:
    base = config.watch
    flags = {
        "polling": args.polling,
        "quiet_window_s": args.quiet_window,
        "builds_per_hour": args.builds_per_hour,
    }
    chosen = {k: v for k, v in flags.items() if v is not None}
    if not chosen:
        return base
    from assetsync.watch.run import parse_watch_section

    # The same checks as the config file, so a bad flag gets the same one-line error.
    table = {**asdict(base), **chosen}
    if "quiet_window_s" in chosen:
        table["max_wait_s"] = max(base.max_wait_s, chosen["quiet_window_s"])
    return parse_watch_section(table, file="command line")


@contextmanager
def _watch_lock(config: Config) -> Iterator[None]:
    """One `assetsync watch` per project: two would race each other's syncs for the state lock."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.state_dir / "watch.lock", "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid_text = lock.read().strip()
            pid = int(pid_text) if pid_text.isdigit() else None
            raise LockHeldError(
                f"another `assetsync watch` is running for {config.config_path} "
                f"(pid {pid_text or '?'}); "
                "stop it first",
                pid=pid,
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) stops after the current sync; a second Ctrl-C aborts it."""
    clear = b"\r\x1b[2K" if sys.stderr.isatty() else b""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        # Never print() here: the signal may land inside a print of the main thread, and a
        # nested write to the same stream raises "reentrant call". A raw write cannot.
        os.write(
            sys.stderr.fileno(),
            clear + b"assetsync: stopping after the current sync (Ctrl-C again to abort it)\n",
        )

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler_ in previous.items():
            signal.signal(sig, handler_)


# Why a pending full reconcile leaves changes possibly undeployed; the periodic check
# ("interval") is no sign of any change, so stopping before it is no loss.
_UNRUN_RECONCILE = {
    "start": "the full reconcile at start did not run",
    "overflow": "file events were lost and the full reconcile did not run",
    "watch limit": "some folders went unwatched and the full reconcile did not run",
    "config": "the edited config is not applied yet",
}


def _undeployed(status: WatchStatus) -> str | None:
    """What a stop leaves unpublished, or None."""
    if status.pending:
        return f"{_count(status.pending, 'change')} not deployed"
    if status.full_reconcile_pending:
        return _UNRUN_RECONCILE.get(status.full_reconcile_reason or "start")
    return None


def _reloader(args: argparse.Namespace) -> Callable[[], Config]:
    """Reads the config file again as the command did at start (environment, flags)."""
    def load() -> Config:
        config = config_from_args(args, {"project.environment": args.env})
        return replace(config, watch=_options(config, args))

    return load


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync watch` until Ctrl-C; exit 0 if everything was deployed, 130 if not."""
    from assetsync.sync.budget import budget_for_config
    from assetsync.sync.sharded import services_in_use
    from assetsync.watch.engine import EngineSync
    from assetsync.watch.run import watch

    config = config_from_args(args, {"project.environment": args.env})
    options = _options(config, args)
    budget = budget_for_config(config, limit=options.builds_per_hour)
    display = (
        _StatusLine(sys.stdout) if sys.stdout.isatty() and not args.plain else _Display(sys.stdout)
    )
    stop = threading.Event()
    engine = EngineSync(replace(config, watch=options), load=_reloader(args),
                        on_event=display.on_sync_event)
    with _watch_lock(config), _stop_on_signals(stop):
        status = watch(
            config,
            stop=stop,
            sync_fn=engine,
            budget=budget,
            on_event=display.on_watch_event,
            options=options,
            services=services_in_use(config),
            reload=engine.reload,
        )
    display.finish(status)
    what = _undeployed(status)
    if what:
        print(f"assetsync: stopped; {what}: run `assetsync sync` to publish them", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK
