"""Command line entry point: argument parsing, exit codes; the only package that prints.

Each subcommand lives in its own module under `assetsync.cli.commands`, named after the
command, and exposes `register(subparsers)`, which adds its parser and sets `func=handler` where
`handler(args) -> int` returns the exit status. Modules are discovered, so adding a command never
touches this file; only the module of the command being run is imported, so `assetsync plan`
does not pay for the emulator's, Pillow's or watchdog's imports.

`main(argv)` runs a command in the caller's interpreter (tests, programs); `run()`, behind
`python -m assetsync`, runs it as the whole process.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from assetsync import __version__
from assetsync.errors import AssetsyncError

__all__ = ["build_parser", "main", "run"]

# Exit codes (STYLE.md): 0 ok, 1 error, 2 usage/config, 3 lock held, 130 interrupted; the
# emulator's own 4, its port in use, is `commands.emulator.EXIT_PORT_IN_USE`.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130

_MISSING = object()


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv (the first positional word), if any."""
    skip_next = False
    for token in argv:
        if skip_next:
            skip_next = False
        elif token in ("-c", "--config"):
            skip_next = True
        elif not token.startswith("-"):
            return token
    return None


def _terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size` finds it (`COLUMNS`, then the
    terminal of stdout, else 80), without importing shutil (and its compression modules)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    stdout = sys.__stdout__
    if columns <= 0 and stdout is not None:
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, as wide as the terminal. argparse makes a formatter for every
    argument it is given (to check its metavar), and its own would import shutil for the
    width: ~1.5 ms of every command's start-up, help shown or not."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser laid out by `_HelpFormatter` unless told otherwise; subcommands'
    parsers are made of their parent's class, so every parser of the command line is one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _command_modules(command: str | None) -> list[str]:
    """The modules under `assetsync.cli.commands` to register: only `command`'s when it names
    one (its module is found without listing the folder), else every one."""
    from assetsync.cli import commands

    if command and command.isidentifier() and not command.startswith("_"):
        name = f"{commands.__name__}.{command}"
        try:
            importlib.import_module(name)
            return [name]
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the command's module exists but one of its imports is missing
    # The folder's own listing, not `pkgutil.iter_modules`: pkgutil loads `inspect` (~5 ms of
    # `--help`), and the commands are plain modules, one `.py` file each.
    names = {entry.name[:-3] for folder in commands.__path__ for entry in os.scandir(folder)
             if entry.name.endswith(".py") and not entry.name.startswith("_")}
    return [f"{commands.__name__}.{name}" for name in sorted(names)]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with the subcommands registered.

    With `command` naming a known subcommand only that one is imported and registered (start-up
    time); otherwise every discovered subcommand is, for help and for argparse's own errors.
    """
    parser = _Parser(
        prog="assetsync",
        description=(
            "Publish a folder of static assets to Twilio Serverless, uploading only what changed."
        ),
    )
    parser.add_argument("--version", action="version", version=f"assetsync {__version__}")
    parser.add_argument(
        "-c", "--config",
        help="path to .assetsync.toml (default: the nearest one in this folder or above it)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules(command):
        importlib.import_module(name).register(subparsers)
    for command_parser in subparsers.choices.values():
        _accept_config_flag(command_parser)
    return parser


def _accept_config_flag(parser: argparse.ArgumentParser) -> None:
    """Let `-c/--config` follow the command too (`assetsync plan -c FILE`), and its actions'.

    SUPPRESS as the default: a command that is not given the flag leaves the value taken before
    the command (`assetsync -c FILE plan`) in place instead of setting it back to None.
    """
    if "--config" not in parser._option_string_actions:
        parser.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="CONFIG",
                            help="path to .assetsync.toml (as before the command)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _accept_config_flag(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one assetsync command; returns the process exit status."""
    return _main(list(sys.argv[1:] if argv is None else argv), process=False)


def run() -> NoReturn:
    """`python -m assetsync`: run one command as the whole process and exit with its status.

    `main` is for callers that share the interpreter (tests, programs); this owns it, so it
    also spares the process work whose only purpose is a long-lived interpreter: see below.
    """
    # While the command's modules load, the collector would walk their ~50,000 objects (classes,
    # functions, none of them garbage) some 70 times: ~8 ms of a 0.25 s `sync` (measured). It is
    # off until they are in; `_modules_loaded` freezes them and turns it back on.
    gc.disable()
    # httpx's package imports its own command-line tool, `httpx._main` (click and pygments:
    # ~8 ms, a fifth of httpx's import, measured), which this process never runs; a None in
    # sys.modules makes that import fail, and httpx then defines its stub `httpx.main`, as it
    # does whenever the tool's extras are missing (without `rich`, that import fails anyway,
    # after loading click and pygments). Only until the command's modules are in: a later
    # `import httpx._main` works as usual.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    status = _main(sys.argv[1:], process=True)
    # At exit the interpreter collects every object still tracked, to free memory the OS is
    # about to take back: ~25 ms after a `sync` of 1,000 files (measured). Frozen, they are out
    # of the collector's sight; atexit handlers (logging's flush and close), module teardown
    # and the final flush of stdout/stderr run as before. Nothing is left for a collection to
    # finalize: the commands close the state, clients, event loops and files (`with` blocks)
    # before they return.
    gc.freeze()
    raise SystemExit(status)


def _modules_loaded(func: object = None) -> None:
    """`run`'s command is imported: undo the start-up settings (see `run`). First, the modules
    its handler (`func`) would import on its first call, as its command module names them in
    `PRELOAD` (after parsing: `--help` does not load them), so that they load under the same
    settings."""
    module = sys.modules.get(getattr(func, "__module__", ""))
    for name in getattr(module, "PRELOAD", ()):
        importlib.import_module(name)
    if sys.modules.get("httpx._main", _MISSING) is None:
        del sys.modules["httpx._main"]
    # Frozen, the modules' objects stay out of every later collection (they live as long as
    # the process anyway); otherwise the first collection would walk all of them at once.
    gc.freeze()
    gc.enable()


def _main(argv: list[str], *, process: bool) -> int:
    try:
        return _run(argv, process=process)
    except BrokenPipeError:
        # The reader went away (`assetsync urls | head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _run(argv: list[str], *, process: bool = False) -> int:
    parser = build_parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if process:
        _modules_loaded(getattr(args, "func", None))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    _log_to_stderr(args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("assetsync: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except AssetsyncError as exc:
        print(f"assetsync: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _log_to_stderr(verbose: int) -> None:
    """Log records at WARNING and above to stderr (INFO with -v, DEBUG with -vv), one line
    each.

    The level is set on the handler, not only on the root logger: `sync --log-file` lowers the
    `assetsync` logger to INFO so the file gets one line per remote change, and those records
    then reach every handler up the tree; a level on the root logger alone would let them
    through to stderr, and `sync --quiet` would no longer be quiet (cron mails it).
    `logging` is imported here, not at the top: `--help` and a usage error need none of it.
    """
    import logging

    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])  # a no-op when the host set logging up
