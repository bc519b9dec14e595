"""The sync engine: the one place that composes files and network.

`sync()` prepares the files (`assetsync.prepare.stage`: scan, classify, transform, check) while the
read-only lookups run, then hands them to `assetsync.sync.one_service.sync_service` (locate, journal,
drift, plan, apply, record), once, or once per service of a sharded site (`assetsync.sync.sharded`).
`status`, `rollback`, `promote`, `prune` and `published_urls` live in `assetsync.sync.operations` and
are re-exported here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from assetsync.state import last_outcome as carry
from assetsync.remote.client import ClientEvent, RetryPolicy, ServerlessClient, resolve_endpoints
from assetsync.config import Config, Credentials, target_key
from assetsync.errors import ConfigError, StateError
from assetsync.functions.local import load_functions
from assetsync.models import PublishedFile
from assetsync.plan.assets import RecordedService
from assetsync.prepare.stage import Prepared, issue_line, prepare_files
from assetsync.sync.locate import Located, peek_target, resolve_live
from assetsync.remote.resources import Build
from assetsync.sync.one_service import (
    RecordedSnapshot,
    SyncFlags,
    apply_options,
    sync_service,
    url_entries,
)
from assetsync.plan.shard_options import ShardOptions
from assetsync.state.db import State
from assetsync.results import EventCallback, SyncEvent, SyncResult
from assetsync.sync.urlmap import write_url_map

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "Prepared",
    "SyncFlags",
    "apply_options",
    "make_client",
    "open_client",
    "prepare_files",
    "run_sync",
    "sync",
    "sync_async",
    "sync_service",
    "url_entries",
    "write_urls_file",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")


def make_client(
    config: Config,
    *,
    on_event: Callable[[ClientEvent], None] | None = None,
    retry: RetryPolicy | None = None,
) -> ServerlessClient:
    """The client for a config's target.

    `api = "local"` runs the emulator in-process on `<state_dir>/emulator` with its built-in local
    account (no credentials, no network); anything else needs Twilio credentials.
    """
    transport = None
    if config.target.api == "local":
        from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, embedded_transport

        transport = embedded_transport(config.state_dir / "emulator")
        credentials = Credentials(
            account_sid=LOCAL_ACCOUNT_SID, username=LOCAL_ACCOUNT_SID, password=LOCAL_AUTH_TOKEN
        )
    else:
        credentials = config.require_credentials()
    api_base, upload_base = resolve_endpoints(config.target)
    return ServerlessClient(
        api_base=api_base,
        upload_base=upload_base,
        credentials=credentials,
        transport=transport,
        retry=retry or RetryPolicy(),
        on_event=on_event,
        max_concurrency=config.sync.concurrency,
    )


# ------------------------------------------------------------------------------- after a sync

def write_urls_file(config: Config, result: SyncResult) -> None:
    """Write the URL map to `[sync] urls_file` when one is set (single and sharded sites).

    A map inside the source folder is published like any file; its own entry is left out so
    publishing it never changes it.
    """
    name = config.sync.urls_file
    if not name or result.dry_run or not result.domain_name:
        return
    path = Path(name) if Path(name).is_absolute() else config.root / name
    entries = result.urls
    try:
        own = "/" + path.resolve().relative_to(config.source.resolve()).as_posix()
        entries = tuple(e for e in entries if e.path != own)
    except ValueError:
        pass  # outside the source folder
    write_url_map(path, entries)


# ------------------------------------------------------------------------------- entry points

@asynccontextmanager
async def open_client(
    config: Config, client: ServerlessClient | None, on_event: EventCallback | None
) -> AsyncIterator[ServerlessClient]:
    """The caller's client (opened if needed) or a new one for the config, with retry events
    forwarded to `on_event`."""

    def retry_event(event: ClientEvent) -> None:
        if on_event is not None and event.kind == "retry":
            on_event(SyncEvent("retry", message=event.reason, sid=str(event.status or "")))

    api = client or make_client(config)
    previous = api.on_event

    def both(event: ClientEvent) -> None:
        if previous is not None:
            previous(event)
        retry_event(event)

    api.on_event = both
    try:
        if api.is_open:
            yield api
        else:
            async with api:
                yield api
    finally:
        api.on_event = previous


# A target on this machine answers its lookups within this; one across a network takes 10s to
# 100s of milliseconds. See `_lookups_beside`.
_QUICK_LOOKUP_S = 0.005
# Loop turns a first request may take to be sent (a new connection's connect, then the write):
# a few on loopback; past this the work runs anyway.
_SEND_TURNS = 200


async def _lookups_beside(
    work: Callable[[EventCallback | None], T],
    lookups: Coroutine[object, object, U],
    client: ServerlessClient,
    on_event: EventCallback | None,
    forward: EventCallback | None,
) -> tuple[T, U]:
    """Run `work(events)` and `lookups` (on the event loop), overlapping them where that pays.

    A thread doing CPU work beside an event loop that wakes for I/O loses to the GIL on both
    sides: each wake-up of the loop waits out the 5 ms switch interval, and the work is cut
    short as often (measured: a 10 ms scan took 16-20 ms beside a 3 ms local lookup). So:
    - a target on this machine over a socket: the lookups' first request is sent, and the work
      runs right here while it is answered (the answer waits in the socket: ~1.3 ms of a
      2 ms round trip saved); its follow-ups, if any, come after;
    - any other target gets a head start: an in-process one has answered by its end and the
      work then runs here, with nothing else to serve; a remote one has not, and the work
      overlaps its round trips in a thread.
    The work's events go to `on_event` directly here, or through `forward` (to the loop's
    thread) from the thread. Once both are done, an error of the work is raised first, then
    the lookups'.
    """
    task = asyncio.ensure_future(lookups)
    try:
        if client.on_this_machine:
            sent = client.gets_sent
            for _ in range(_SEND_TURNS):
                if task.done() or client.gets_sent > sent:
                    break
                await asyncio.sleep(0)
            result = work(on_event)
        else:
            await asyncio.wait({task}, timeout=_QUICK_LOOKUP_S)
            if task.done():
                result = work(on_event)
            else:
                result = await asyncio.to_thread(work, forward)
    except BaseException:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return result, await task


@contextmanager
def _scan_events(on_event: EventCallback | None) -> Iterator[EventCallback | None]:
    """Hand events raised in the preparing thread to the event loop's thread, in order."""
    if on_event is None:
        yield None
        return
    loop = asyncio.get_running_loop()

    def forward(event: SyncEvent) -> None:
        loop.call_soon_threadsafe(on_event, event)

    yield forward


# CPython collects its youngest generation every 700 allocations of container objects. A sync
# of 1,000 files makes ~15,000 such objects, nearly all freed by reference counting, so those
# collections (22 of them, 1.5 ms of a 90 ms sync, measured) find next to nothing. 50,000 is
# the threshold commonly recommended for such programs (M. Kennedy, "Python gc settings:
# change this and make your app go 20% faster", 2024); cycles are still collected.
_YOUNG_THRESHOLD = 50_000
_threshold_lock = threading.Lock()
_threshold_users = [0, 0]  # runs inside; the threshold to restore when the last one leaves


def _while_building(
    state: State, remember: Callable[[Build, Sequence[PublishedFile]], None],
    build: Build, files: Sequence[PublishedFile],
) -> None:
    """Housekeeping for the time a build takes: nothing waits on it then."""
    remember(build, files)
    state.settle()  # after remembering: its checkpoint then takes that write along
    # The young generation now holds most of what this sync allocated: collected here, it
    # leaves too little for the threshold's restore (`_fewer_collections`) to set off a
    # collection once the deployment is made.
    gc.collect(0)


def _carried_view(
    state: State, target: str, environment: str, located: Located, carried: carry.Carried,
    prepared: Prepared,
) -> RecordedService | None:
    """The carried outcome's stand-in for the service's record, when the live build is still
    its build (see `assetsync.state.last_outcome.recorded_view` for the rest)."""
    env, service_sid = located.env, located.service_sid
    if env is None or service_sid is None or env.build_sid != carried.build.sid:
        return None
    return carry.recorded_view(state, target, service_sid, environment, carried, prepared.files)


def _remember(
    state: State, target: str, service: str, environment: str, settings: str,
    prepared: Prepared, build: Build, files: Sequence[PublishedFile],
) -> None:
    """Keep a single-service sync's outcome for the next sync (`assetsync.state.last_outcome`)."""
    if files is not prepared.files or not prepared.clean:
        return  # one service's share of a sharded site, or warnings only the general path gives
    if prepared.images:
        from assetsync.media.cache import encoder_versions

        encoders: Callable[[], str] | None = encoder_versions
    else:
        encoders = None
    try:
        carry.remember(state, target, service, environment, settings=settings,
                       encoders=encoders, scanned=prepared.snapshot.files, files=files,
                       build=build)
    except StateError as exc:  # a cache: the next sync takes the general path
        logger.warning("sync outcome not kept: %s", exc)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The young-generation threshold raised while any run is inside (watch mode's runs and
    a library caller's may overlap in threads: the first in saves it, the last out restores)."""
    with _threshold_lock:
        young, *older = gc.get_threshold()
        if _threshold_users[0] == 0:
            _threshold_users[1] = young
            gc.set_threshold(max(young, _YOUNG_THRESHOLD), *older)
        _threshold_users[0] += 1
    try:
        yield
    finally:
        with _threshold_lock:
            _threshold_users[0] -= 1
            if _threshold_users[0] == 0:
                gc.set_threshold(_threshold_users[1], *gc.get_threshold()[1:])


def run_sync(make: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run `make()` to completion from synchronous code (the CLI, watch mode, tests), with
    fewer garbage collections while it runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with _fewer_collections():
            return asyncio.run(make())
    raise RuntimeError("called from a running event loop: use the *_async variant instead")


async def sync_async(
    config: Config,
    *,
    client: ServerlessClient | None = None,
    dry_run: bool = False,
    full: bool = False,
    adopt: bool = False,
    force: bool = False,
    environment: str | None = None,
    paths: Iterable[str] | None = None,
    on_event: EventCallback | None = None,
    prune_variables: bool = False,
) -> SyncResult:
    """`sync` for callers already inside an event loop."""
    if adopt and force:
        raise ConfigError("--adopt and --force exclude each other: pick one")
    # Before any request: a bad package.json or .env stops the sync with nothing changed.
    functions = await asyncio.to_thread(load_functions, config)
    started = time.monotonic()
    env_name = environment or config.environment
    key = target_key(config)
    settings = carry.settings_of(config)
    view: RecordedService | None = None
    with State.open(config.state_dir) as state, \
            _scan_events(on_event) as scan_event:
        async with open_client(config, client, on_event) as api:
            before = api.stats.snapshot()
            shard = config.shard if isinstance(config.shard, ShardOptions) else None
            if shard is not None and (shard.groups or shard.first_service):
                # Groups can make a site impossible to place: find out before any request.
                from assetsync.sync.sharded import preflight

                prepared = await asyncio.to_thread(prepare_files, config, state, paths=paths,
                                                   on_event=scan_event)
                prepared.raise_errors()
                preflight(state, key, service=config.service, environment=env_name,
                          files=prepared.files, shard_options=shard)
                located = await peek_target(api, state, key, config.service, env_name)
            else:
                # Full, adopt and force plan from the whole record (the outcome is for the
                # usual sync); a dry run may use it, it only reads.
                carried = (carry.load(state, key, config.service, env_name, settings)
                           if not (full or adopt or force) else None)
                # Prepare the files while the (read-only) lookups are in flight, if they take
                # long; nothing is written remotely until the files have passed every check.
                prepared, located = await _lookups_beside(
                    lambda events: prepare_files(config, state, paths=paths, on_event=events,
                                                 carried=carried),
                    peek_target(api, state, key, config.service, env_name, parse_kept=False),
                    api, on_event, scan_event,
                )
                view = (_carried_view(state, key, env_name, located, carried, prepared)
                        if carried is not None and prepared.changed is not None else None)
                if view is not None and carried is not None:
                    located = replace(located, live=carried.build)  # its kept manifest, parsed
                    if on_event is not None:
                        changed = prepared.changed or 0
                        on_event(SyncEvent(
                            "carried", files=changed, total=len(prepared.files),
                            message=f"{changed} file(s) prepared, the others as the last sync "
                                    "published them"))
                else:
                    located = await resolve_live(api, state, key, env_name, located)
            prepared.raise_errors()
            flags = SyncFlags(dry_run=dry_run, full=full, adopt=adopt, force=force,
                              prune_variables=prune_variables)
            building = partial(_while_building, state, partial(
                _remember, state, key, config.service, env_name, settings, prepared))
            if shard is not None:
                from assetsync.sync.sharded import sync_sharded

                result = await sync_sharded(
                    api, state, key, service=config.service, environment=env_name,
                    files=prepared.files, shard_options=shard,
                    options=apply_options(config), flags=flags, on_event=on_event,
                    located=located, while_building=building, recorded_view=view,
                    functions=functions,
                )
            else:
                snapshot = (RecordedSnapshot(located.service_sid, state.writes, view)
                            if view is not None and located.service_sid else None)
                result = await sync_service(
                    api, state, key, service=config.service, environment=env_name,
                    files=prepared.files, options=apply_options(config), flags=flags,
                    on_event=on_event, located=located, snapshot=snapshot,
                    while_building=building, functions=functions,
                )
            after = api.stats
    write_urls_file(config, result)
    warnings = tuple(issue_line(i) for i in prepared.warnings) + result.warnings
    return replace(
        result, warnings=warnings, elapsed_s=time.monotonic() - started,
        requests=after.requests - before.requests,
        write_requests=after.write_requests - before.write_requests,
        bytes_sent=after.bytes_sent - before.bytes_sent, retries=after.retries - before.retries,
    )


def sync(
    config: Config,
    *,
    client: ServerlessClient | None = None,
    dry_run: bool = False,
    full: bool = False,
    adopt: bool = False,
    force: bool = False,
    environment: str | None = None,
    paths: Iterable[str] | None = None,
    on_event: EventCallback | None = None,
    prune_variables: bool = False,
) -> SyncResult:
    """Publish the source folder (and the functions beside it): upload only what changed,
    build, deploy, record.

    Args:
        config: the loaded configuration.
        client: a client to use (tests, benchmarks); default one for `config.target`.
        dry_run: plan only; no write request.
        full: upload every file again (the official toolkit's behaviour; a baseline).
        adopt: on drift, build on the live build (keep its functions and other files).
        force: on drift, replace the live build's files with assetsync's (functions kept).
        environment: environment unique name / domain suffix (default from config).
        paths: a hint from watch mode: only these source-relative paths may have changed.
        on_event: progress callback receiving `SyncEvent`s.
        prune_variables: delete the environment's Variables that the .env no longer has
            (kept by default, as `twilio-run deploy` keeps them).

    Raises:
        DriftError: someone deployed since assetsync's last deployment (without adopt/force).
        LimitError: a file or the build cannot be published; nothing was uploaded.
        BuildFailedError: the build failed; the previous deployment stays live.
        ApiError: the API refused a request (after retries where retrying is safe).
        LockHeldError: another assetsync holds the state folder.
    """
    return run_sync(lambda: sync_async(
        config, client=client, dry_run=dry_run, full=full, adopt=adopt, force=force,
        environment=environment, paths=paths, on_event=on_event,
        prune_variables=prune_variables,
    ))


_OPERATIONS = frozenset({"status", "rollback", "promote", "prune", "published_urls"})


def __getattr__(name: str) -> object:
    # `assetsync.sync.operations` builds on this module; its entry points are re-exported lazily so
    # `engine.status(...)` works without an import cycle.
    if name in _OPERATIONS:
        from assetsync.sync import operations
        return getattr(operations, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
