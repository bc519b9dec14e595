"""`assetsync logs [--tail] [--function PATH] [--since 10m] [--json]`: what the environment's
functions logged (console.log/warn/error and thrown errors), from the Serverless Logs resource."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from assetsync.cli._common import add_json_flag, config_from_args, print_json

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync logs`."""
    parser = subparsers.add_parser(
        "logs",
        help="show what the deployed functions logged (--tail to follow)",
        description=(
            "Read the environment's Logs (what its functions wrote with console.log, "
            "console.warn and console.error, and errors they threw) and print one line per "
            "entry: time, level, function path, message. --tail keeps polling for new ones "
            "until Ctrl-C."
        ),
    )
    add_json_flag(parser)
    parser.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    parser.add_argument("--tail", action="store_true", help="keep showing new entries")
    parser.add_argument("--function", metavar="PATH", help="only this function (e.g. /hello)")
    parser.add_argument("--since", metavar="WHEN", default=None,
                        help="start: 30s, 10m, 2h, 1d or a date-time (default 1d, 10m with "
                             "--tail)")
    parser.add_argument("--interval", metavar="SECONDS", type=float, default=2.0,
                        help="--tail: seconds between polls while entries come (doubling to "
                             "10 while none do; default 2)")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync logs`."""
    from assetsync.sync.logs import (
        LogLine,
        TailOptions,
        log_json,
        parse_since,
        read_logs,
        tail_logs,
    )

    config = config_from_args(args, {"project.environment": args.env})
    since = parse_since(args.since or ("10m" if args.tail else "1d"), datetime.now(UTC))

    def show(line: LogLine) -> None:
        if args.json:
            print_json(log_json(line))
        else:
            print(line.text(), flush=True)

    if not args.tail:
        for line in read_logs(config, since=since, function=args.function):
            show(line)
        return 0
    interval = max(0.1, args.interval)
    try:
        tail_logs(config, show, since=since, function=args.function,
                  options=TailOptions(interval_s=interval, max_interval_s=max(10.0, interval)))
    except KeyboardInterrupt:
        sys.stdout.flush()
        return 130  # Ctrl-C is how --tail ends: no traceback, no error line
    return 0
