"""`assetsync emulator`: run the local Serverless API in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sqlite3
import sys
from pathlib import Path

from assetsync.config import load_config
from assetsync.emulator.faults import parse_fault_spec
from assetsync.emulator.serving import SERVE_PREFIX
from assetsync.emulator.state import (
    LOCAL_ACCOUNT_SID,
    LOCAL_AUTH_TOKEN,
    EmulatorLimits,
    EmulatorState,
)
from assetsync.errors import ConfigError
from assetsync.remote.http import is_loopback_host

__all__ = ["DEFAULT_PORT", "handler", "register"]

DEFAULT_PORT = 4280
TOKEN_ENV = "ASSETSYNC_EMULATOR_AUTH_TOKEN"
_ACCOUNT = re.compile(r"^AC[0-9a-fA-F]{32}$")
_LIMITS = [f.name for f in dataclasses.fields(EmulatorLimits)]


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
        help="arm a fault: 'METHOD PATH-GLOB ACTION [xCOUNT] [SECONDSs]', e.g. "
        "'POST /v1/Services/*/Builds 429 x3' (repeatable)",
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
        help=f"override a documented limit ({', '.join(_LIMITS)})",
    )
    p.set_defaults(func=handler)


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return Path(args.data)
    config_file = Path(args.config) if args.config else Path.cwd() / ".assetsync.toml"
    if config_file.exists():
        return load_config(config_file).state_dir / "emulator"
    return Path.cwd() / ".assetsync" / "emulator"


def _limits(pairs: list[str]) -> EmulatorLimits:
    values: dict[str, float] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in _LIMITS:
            raise ConfigError(
                f"--limit {pair!r}: expected NAME=VALUE with NAME one of {', '.join(_LIMITS)}"
            )
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"--limit {pair!r}: VALUE must be a number") from None
        if number < 0:
            raise ConfigError(f"--limit {pair!r}: VALUE must not be negative")
        values[name] = number if name.endswith("_s") else int(number)
    return EmulatorLimits(**values)  # type: ignore[arg-type]


def _state(args: argparse.Namespace, data: Path) -> tuple[EmulatorState, str]:
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
    state.fail_next_builds(args.fail_builds)
    return state, source


def handler(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns 0 after a clean stop."""
    from assetsync.emulator.serve import serve_forever

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
        raise ConfigError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    finally:
        state.close()
    print("assetsync emulator stopped", file=sys.stderr, flush=True)
    return 0
