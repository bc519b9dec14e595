"""`assetsync emulator`: run the local Serverless API in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.config import find_config, load_config
from assetsync.errors import ConfigError
from assetsync.frozen import fields

# The emulator (Starlette, httpx) is imported by the handler: `assetsync --help` registers this
# command without loading it.
if TYPE_CHECKING:
    from assetsync.emulator.state import EmulatorLimits, EmulatorState

__all__ = ["DEFAULT_PORT", "EXIT_PORT_IN_USE", "handler", "register"]

DEFAULT_PORT = 4280
# The emulator's own exit status for a port that is taken (docs/emulator.md): not 2 (usage), not
# 3 (another assetsync holds the state), so a script can tell "pick another --port" apart.
EXIT_PORT_IN_USE = 4
TOKEN_ENV = "ASSETSYNC_EMULATOR_AUTH_TOKEN"
_ACCOUNT = re.compile(r"^AC[0-9a-fA-F]{32}$")


def _limit_names() -> list[str]:
    from assetsync.emulator.state import EmulatorLimits

    return [f.name for f in fields(EmulatorLimits)]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `emulator` subcommand."""
    p = subparsers.add_parser(
        "emulator",
        help="run a local Twilio Serverless API (and serve what is deployed) until Ctrl-C",
        description="Serve the Serverless v1 API, its upload host and deployed assets on one "
        "local address. See docs/emulator.md.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: any free port)",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="state folder (default: <state_dir>/emulator of the config if there is one, "
        'which is what `api = "local"` publishes to; else ./.assetsync/emulator)',
    )
    p.add_argument(
        "--account-sid", help="account SID clients must use (default: the built-in local account)"
    )
    p.add_argument(
        "--auth-token",
        help=f"auth token clients must use (default: ${TOKEN_ENV}, else the built-in local token)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="arm a fault: 'METHOD PATH-GLOB ACTION [xCOUNT] [SECONDSs] [rate=R] [seed=N]', "
        "e.g. 'POST /v1/Services/*/Builds 429 x3' or 'POST /v1/* reset-after rate=0.2 seed=1' "
        "(repeatable)",
    )
    p.add_argument(
        "--latency",
        metavar="DELAY[:JITTER]",
        help="delay every request that no --fault answers, as a network round trip would: "
        "e.g. 80ms, or 80ms:20ms for 80-100 ms (units ms or s)",
    )
    p.add_argument("--fail-builds", type=int, default=0, metavar="N", help="the next N builds fail")
    p.add_argument(
        "--build-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long builds stay 'building' (default 1.0)",
    )
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a documented limit (names in docs/emulator.md; a wrong one lists them)",
    )
    p.set_defaults(func=handler)


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return Path(args.data)
    # The config every other command would use (found upward, as git finds .git), so that
    # `assetsync emulator` serves what `assetsync sync` published from anywhere in the project.
    config_file = Path(os.path.abspath(args.config)) if args.config else find_config(Path.cwd())
    if config_file is not None and config_file.exists():
        return load_config(config_file).state_dir / "emulator"
    return Path.cwd() / ".assetsync" / "emulator"


def _limits(pairs: list[str]) -> EmulatorLimits:
    from assetsync.emulator.state import EmulatorLimits

    names = _limit_names()
    values: dict[str, float] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in names:
            raise ConfigError(
                f"--limit {pair!r}: expected NAME=VALUE with NAME one of {', '.join(names)}"
            )
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"--limit {pair!r}: VALUE must be a number") from None
        if number < 0:
            raise ConfigError(f"--limit {pair!r}: VALUE must not be negative")
        values[name] = number if name.endswith("_s") else int(number)
    return EmulatorLimits(**values)  # type: ignore[arg-type]


def _project_dir(args: argparse.Namespace) -> Path:
    # Functions load `twilio` from the project's node_modules, as twilio-run's local server
    # does: the config's folder (where package.json sits in a Toolkit project), else here.
    config_file = Path(args.config) if args.config else Path.cwd() / ".assetsync.toml"
    return config_file.absolute().parent if config_file.exists() else Path.cwd()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


def _latency(text: str, on_error: Callable[[], None]) -> tuple[float, float]:
    """`--latency DELAY[:JITTER]` in seconds (`80ms`, `0.08s`, `80ms:20ms`)."""
    parts = [_DURATION.match(part) for part in text.split(":")]
    if len(parts) > 2 or not all(parts):
        on_error()
        raise ConfigError(f"--latency {text!r}: expected DELAY[:JITTER] such as 80ms or "
                          "80ms:20ms (units ms or s)")
    seconds = [float(m[1]) / (1000 if m[2] == "ms" else 1) for m in parts if m]
    return seconds[0], seconds[1] if len(seconds) > 1 else 0.0


def _state(args: argparse.Namespace, data: Path) -> tuple[EmulatorState, str]:
    from assetsync.emulator.faults import parse_fault_spec
    from assetsync.emulator.state import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, EmulatorState

    account = args.account_sid or LOCAL_ACCOUNT_SID
    if not _ACCOUNT.match(account):
        raise ConfigError(f"--account-sid {account!r}: expected AC followed by 32 hex digits")
    if args.auth_token:
        token, source = args.auth_token, "--auth-token"
    elif os.environ.get(TOKEN_ENV):
        token, source = os.environ[TOKEN_ENV], f"${TOKEN_ENV}"
    else:
        token, source = (
            LOCAL_AUTH_TOKEN,
            "the built-in local token (LOCAL_AUTH_TOKEN, docs/emulator.md)",
        )
    if args.build_delay < 0:
        raise ConfigError("--build-delay: must not be negative")
    if args.fail_builds < 0:
        raise ConfigError("--fail-builds: must not be negative")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: use 0..65535 (0 picks a free port)")
    limits = _limits(args.limit)
    try:
        state = EmulatorState(
            data,
            project_dir=_project_dir(args),
            account_sid=account,
            auth_token=token,
            limits=limits,
            build_delay_s=args.build_delay,
        )
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"--data {data}: {data / 'emulator.sqlite3'} is not a usable emulator database "
            f"({exc}); "
            "point --data at another folder"
        ) from None
    try:
        for spec in args.fault:
            state.faults.add(*parse_fault_spec(spec))
    except ValueError as exc:
        state.close()
        raise ConfigError(f"--fault: {exc}") from None
    if args.latency:  # last: the first rule that matches answers, so --fault rules come first
        delay, jitter = _latency(args.latency, state.close)
        state.faults.add("*", "*", "delay", count=None, delay_s=delay, jitter_s=jitter)
    state.fail_next_builds(args.fail_builds)
    return state, source


def handler(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns 0 after a clean stop."""
    from assetsync.emulator.serve import serve_forever
    from assetsync.emulator.serving import SERVE_PREFIX
    from assetsync.remote.http import is_loopback_host

    data = _data_dir(args)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--data {data}: cannot create the folder: {exc.strerror}") from None
    state, token_source = _state(args, data)

    def ready(url: str) -> None:
        print(f"assetsync emulator listening on {url}", flush=True)
        print(f"  API and upload host: {url}/v1", flush=True)
        print(
            f"  deployed assets:     Host: <domain_name> or "
            f"{url}{SERVE_PREFIX}<domain_name>/<path>",
            flush=True,
        )
        print(f"  data:                {data}", flush=True)
        print(f"  functions' packages: {state.project_dir}/node_modules", flush=True)
        print(f"  account SID:         {state.account_sid}", flush=True)
        print(f"  auth token:          from {token_source}", flush=True)
        if not is_loopback_host(args.host):
            print(
                f"warning: {args.host} is reachable from other machines; anyone with the "
                "credentials can publish to this emulator",
                file=sys.stderr,
                flush=True,
            )
        print("Press Ctrl-C to stop.", flush=True)

    try:
        serve_forever(state, args.host, args.port, on_ready=ready)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"assetsync: error: port {args.port} on {args.host} is already in use (another "
                  "emulator or program listens there): stop it, or pick another port with "
                  "--port N (0 picks a free one)", file=sys.stderr, flush=True)
            return EXIT_PORT_IN_USE
        raise ConfigError(
            f"--host {args.host} --port {args.port}: cannot listen there "
            f"({exc.strerror or exc}); pick another --host or --port"
        ) from None
    finally:
        state.close()
    print("assetsync emulator stopped", file=sys.stderr, flush=True)
    return 0
