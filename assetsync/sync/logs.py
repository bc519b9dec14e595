"""`logs`: what the environment's functions logged, read through the Serverless Logs resource.

`parse_since` (pure) turns `10m` / `2h` / an ISO date into the start of the range;
`read_logs` pages every Log of the range once; `tail_logs` polls for new ones (backing off while
nothing comes, never showing one twice) until its `stop` says so. Each line names the function by
its path, from the live build (or the Function's name for one no longer deployed).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from assetsync.config import Config
from assetsync.errors import AssetsyncError, ConfigError
from assetsync.frozen import frozen
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import LogEntry
from assetsync.sync.locate import fetch_live_build, find_environment, find_service
from assetsync.sync.session import open_client, run_sync

__all__ = ["LogLine", "TailOptions", "log_json", "parse_since", "read_logs", "tail_logs"]

_SINCE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@frozen
class LogLine:
    """One Log as `logs` shows it: time, level, the function's path, the message."""

    sid: str
    date_created: str
    level: str
    function: str
    message: str

    def text(self) -> str:
        """The one line `assetsync logs` prints for it."""
        return f"{self.date_created} {self.level:<5} {self.function} {self.message}"


@frozen
class TailOptions:
    """How `tail_logs` polls: every `interval_s` while logs come, doubling to `max_interval_s`
    while none do; `sleep` waits (injectable), `stop` is asked before every poll."""

    interval_s: float = 2.0
    max_interval_s: float = 10.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    stop: Callable[[], bool] = lambda: False


def parse_since(text: str, now: datetime) -> datetime:
    """The start of a `--since` range: `30s`, `10m`, `2h`, `1d` before `now`, or an ISO 8601
    date-time (GMT when it has no offset).

    Raises:
        ConfigError: neither form (names `--since` and both forms).
    """
    match = _SINCE.match(text)
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since {text!r}: expected a duration such as 10m, 2h, 1d or a "
                          "date-time such as 2026-12-07T14:00:00Z", key="--since") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Source:
    """Where the logs are read and how function SIDs become paths."""

    service_sid: str
    environment_sid: str
    paths: dict[str, str]
    function_sid: str | None


async def _locate(api: ServerlessClient, config: Config, function: str | None) -> _Source:
    svc = await find_service(api, config.service, None, create=False)
    env = (await find_environment(api, svc.sid, config.environment, None, create=False)
           if svc is not None else None)
    if svc is None or env is None:
        raise AssetsyncError(f"no environment {config.environment} of service {config.service} "
                             "yet: run `assetsync sync` first")
    live = await fetch_live_build(api, env)
    paths = {ref.parent_sid: ref.path for ref in (live.function_versions if live else ())}
    wanted = None
    if function is not None:
        path = "/" + function.lstrip("/")
        wanted = next((sid for sid, p in paths.items() if p == path), None)
        if wanted is None:
            shown = ", ".join(sorted(paths.values())[:5]) or "none"
            raise ConfigError(f"--function {path}: no such function in the live build of "
                              f"{config.service}/{config.environment} (deployed: {shown})",
                              key="--function")
    return _Source(svc.sid, env.sid, paths, wanted)


async def _lines(api: ServerlessClient, source: _Source, entries: tuple[LogEntry, ...]
                 ) -> list[LogLine]:
    if any(e.function_sid and e.function_sid not in source.paths for e in entries):
        # A function no longer in the live build: its Function's name is its path
        # (the Toolkit and assetsync name Functions so).
        for fn in await api.list_functions(source.service_sid):
            source.paths.setdefault(fn.sid, fn.friendly_name)
    # stable: the API's order within a second
    ordered = sorted(entries, key=lambda e: e.date_created)
    return [LogLine(e.sid, e.date_created, e.level, source.paths.get(e.function_sid) or
                    e.function_sid or "-", e.message) for e in ordered]


def read_logs(config: Config, *, since: datetime, until: datetime | None = None,
              function: str | None = None, client: ServerlessClient | None = None
              ) -> tuple[LogLine, ...]:
    """Every Log of the environment from `since` (to `until`), oldest first.

    Raises:
        ConfigError: `function` is not a function of the live build.
        AssetsyncError: the service or environment does not exist; API errors.
    """
    async def work() -> tuple[LogLine, ...]:
        async with open_client(config, client, None) as api:
            source = await _locate(api, config, function)
            entries = await api.list_logs(
                source.service_sid, source.environment_sid, start_date=_iso(since),
                end_date=_iso(until) if until else None, function_sid=source.function_sid)
            return tuple(await _lines(api, source, entries))

    return run_sync(work)


def tail_logs(config: Config, on_line: Callable[[LogLine], None], *, since: datetime,
              function: str | None = None, options: TailOptions = TailOptions(),
              client: ServerlessClient | None = None) -> int:
    """Show the Logs from `since`, then each new one, until `options.stop()` is true.

    Each poll asks for the Logs from the newest date already seen (dates are whole seconds, so
    that second is asked for again) and skips the SIDs already shown. Returns how many lines
    were shown.

    Raises:
        ConfigError, AssetsyncError: as `read_logs`.
    """
    async def work() -> int:
        async with open_client(config, client, None) as api:
            source = await _locate(api, config, function)
            return await _poll(api, source, on_line, _iso(since), options)

    return run_sync(work)


async def _poll(api: ServerlessClient, source: _Source, on_line: Callable[[LogLine], None],
                start: str, options: TailOptions) -> int:
    seen: dict[str, str] = {}  # sid -> date_created, of the second `start` names and later
    shown, wait = 0, options.interval_s
    while not options.stop():
        entries = await api.list_logs(source.service_sid, source.environment_sid,
                                      start_date=start, function_sid=source.function_sid)
        fresh = [e for e in entries if e.sid not in seen]
        for line in await _lines(api, source, tuple(fresh)):
            on_line(line)
            shown += 1
        for e in fresh:
            seen[e.sid] = e.date_created
        if fresh:
            start = max(start, *(e.date_created for e in fresh))
            seen = {sid: when for sid, when in seen.items() if when >= start}
            wait = options.interval_s
        if options.stop():
            break
        await options.sleep(wait)
        if not fresh:  # back off while nothing comes
            wait = min(wait * 2, options.max_interval_s)
    return shown


def log_json(line: LogLine) -> Mapping[str, str]:
    """A line as `logs --json` writes it (one JSON object per line)."""
    return {"sid": line.sid, "date_created": line.date_created, "level": line.level,
            "function": line.function, "message": line.message}
