"""`assetsync state export|import`: the state as JSON, e.g. to keep it in a CI cache."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assetsync.atomic import write_atomic
from assetsync.cli._common import config_from_args, print_json
from assetsync.errors import LockHeldError, StateError
from assetsync.state.db import State

__all__ = ["handler", "register"]


def _export(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        state = State.open(config.state_dir)
    except LockHeldError:  # exporting only reads: fine beside a running sync or watch
        state = State.open(config.state_dir, readonly=True)
    with state:
        data = state.export_json()
    if args.output in (None, "-"):
        print_json(data)
    else:
        try:
            write_atomic(Path(args.output), (json.dumps(data, indent=2) + "\n").encode("utf-8"))
        except OSError as exc:
            raise StateError(f"cannot write {args.output}: {exc.strerror or exc}; "
                             "choose another file with -o") from None
        sys.stderr.write(f"exported state to {args.output}\n")
    return 0


def _import(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    source = "standard input" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise StateError(f"cannot read {source} ({exc.strerror or exc}); give a file from "
                         "`assetsync state export`") from None
    except UnicodeDecodeError:
        raise StateError(f"cannot read {source}: not UTF-8 text; give a file from "
                         "`assetsync state export`") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(
            f"{source} is not JSON ({exc}); give a file from `assetsync state export`"
        ) from None
    with State.open(config.state_dir) as state:
        state.import_json(data)
    sys.stderr.write(f"imported state from {source} into {config.state_dir}\n")
    return 0


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync state export` or `assetsync state import`."""
    return int(args.state_func(args))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync state export|import`."""
    parser = subparsers.add_parser("state", help="export or import the local state as JSON")
    actions = parser.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the state as JSON (stdout or -o FILE)")
    export.add_argument("-o", "--output", help="file to write atomically (default: stdout)")
    export.set_defaults(func=handler, state_func=_export)
    imp = actions.add_parser("import", help="replace the state with an export (validated first)")
    imp.add_argument("file", help="JSON file from `assetsync state export`, or - for stdin")
    imp.set_defaults(func=handler, state_func=_import)
