"""The sync engine: the one place that composes files and network for `sync`.

`sync()` prepares the files (`assetsync.prepare.stage`: scan, classify, transform) and runs every
check on them (`blocking_problems`) before its first request; then it takes the build budget,
looks the target up and hands the files to `assetsync.sync.one_service.sync_service` (locate,
journal, assess, upload, build, deploy, record), once, or once per service of a sharded site
(`assetsync.sync.sharded`). `status`, `rollback`, `promote`, `prune` and `published_urls` live
in `assetsync.sync.operations`; the client and the runner both use, in `assetsync.sync.session`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from assetsync.config import Config, target_key
from assetsync.errors import ConfigError, StateError
from assetsync.frozen import frozen, replace
from assetsync.functions.local import FunctionProject, load_functions
from assetsync.models import PublishedFile
from assetsync.plan.assets import RecordedService
from assetsync.plan.shard_options import ShardOptions
from assetsync.prepare.classify import published_name
from assetsync.prepare.stage import (
    Prepared,
    ScanMemory,
    blocking_problems,
    issue_line,
    prepare_files,
    raise_blocking,
)
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build
from assetsync.results import EventCallback, SyncEvent, SyncResult
from assetsync.state import last_outcome as carry
from assetsync.state.db import State
from assetsync.sync.budget import BuildSlots
from assetsync.sync.locate import Located, peek_target, resolve_live
from assetsync.sync.one_service import sync_service
from assetsync.sync.phase_values import RecordedSnapshot, SyncFlags, apply_options
from assetsync.sync.session import make_client, open_client, run_sync
from assetsync.sync.urlmap import url_entries, write_url_map

__all__ = [
    "Prepared",
    "ScanMemory",
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


def _while_building(
    state: State, remember: Callable[[Build, Sequence[PublishedFile]], None],
    build: Build, files: Sequence[PublishedFile],
) -> None:
    """Housekeeping for the time a build takes: nothing waits on it then."""
    remember(build, files)
    state.settle()  # after remembering: its checkpoint then takes that write along
    # The young generation now holds most of what this sync allocated: collected here, it
    # leaves too little for the threshold's restore (`session.run_sync`) to set off a
    # collection once the deployment is made.
    gc.collect(0)


class _ChangedUploads:
    """An `on_event` that also notes the files that changed while being uploaded: their new
    version was recorded but not built (`assetsync.sync.apply`), so the build does not hold
    what the preparation saw for them."""

    def __init__(self, on_event: EventCallback | None) -> None:
        self.on_event = on_event
        self.paths: list[str] = []

    def __call__(self, event: SyncEvent) -> None:
        if event.kind == "changed_during_upload" and event.path:
            self.paths.append(event.path)
        if self.on_event is not None:
            self.on_event(event)

    def warnings(self) -> tuple[str, ...]:
        """One line per such file."""
        return tuple(f"{path}: changed while being uploaded; its live version stays (a new "
                     "file waits) and the next sync checks and publishes the new content"
                     for path in sorted(set(self.paths)))


def _remember(
    state: State, target: str, service: str, environment: str, settings: str,
    prepared: Prepared, uploads: _ChangedUploads, build: Build,
    files: Sequence[PublishedFile],
) -> None:
    """Keep a single-service sync's outcome for the next sync (`assetsync.state.last_outcome`)."""
    if files is not prepared.files or not prepared.clean or prepared.held or uploads.paths:
        return  # one service's share of a sharded site, warnings only the general path gives,
        # or a build that holds a file this run could not read, or did not build as prepared
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


@frozen
class _Run:
    """One sync as asked: the config, where it goes and how."""

    config: Config
    key: str  # the target's key in the state
    environment: str
    settings: str  # what a carried outcome must have been made under
    flags: SyncFlags
    shard: ShardOptions | None
    on_event: EventCallback | None


async def _prepare(run: _Run, state: State, paths: Iterable[str] | None,
                   memory: ScanMemory | None) -> tuple[Prepared, carry.Carried | None]:
    """The prepared files (in a thread: the loop stays free), and the carried outcome they
    may have been spliced from."""
    flags, config = run.flags, run.config
    grouped = run.shard is not None and bool(run.shard.groups or run.shard.first_service)
    # Full, adopt and force assess from the whole record (the outcome is for the usual sync);
    # a dry run may use it, it only reads. A site with shard groups is placed from scratch.
    carried = (carry.load(state, run.key, config.service, run.environment, run.settings)
               if not (flags.full or flags.adopt or flags.force or grouped) else None)
    with _scan_events(run.on_event) as events:
        prepared = await asyncio.to_thread(
            prepare_files, config, state, paths=paths, on_event=events, carried=carried,
            memory=memory)
    return prepared, carried


def _hold_back(prepared: Prepared, hold: frozenset[str],
               blocked: bool) -> tuple[Prepared, tuple[str, ...]]:
    """Watch mode's hold-backs: the files in `hold` and, when `blocked`, the files that cannot
    be published stay at their live version (`Prepared.held`; a new file waits) while the rest
    goes. Returns the preparation left to sync and one line per file held back for a problem."""
    errors = prepared.errors if blocked else ()
    if not hold and not errors:
        return prepared, ()
    sources = hold | {i.path for i in errors}
    held = {f.path for f in prepared.files if f.source in sources}
    held.update(p if p.startswith("/") else published_name(p)[0] for p in sources)
    # `changed=None`: the carried outcome's view holds the files this run leaves out.
    return replace(prepared, files=tuple(f for f in prepared.files if f.source not in sources),
                   errors=prepared.errors if not blocked else (), held=prepared.held | held,
                   changed=None, clean=False), tuple(issue_line(i) for i in errors)


def _check(run: _Run, state: State, prepared: Prepared,
           functions: FunctionProject | None) -> None:
    """Every check, before the first request: a problem stops the sync with nothing sent."""
    raise_blocking(blocking_problems(prepared, functions, source=run.config.source))
    shard = run.shard
    if shard is not None and (shard.groups or shard.first_service):
        # Groups can make a site impossible to place: find out before any request.
        from assetsync.sync.sharded import preflight

        preflight(state, run.key, service=run.config.service, environment=run.environment,
                  files=prepared.files, shard_options=shard)


def _check_references(config: Config, prepared: Prepared,
                      functions: FunctionProject | None) -> tuple[str, ...]:
    """`assetsync check`'s offline check on the publish set this sync prepared: its errors
    refuse the sync with `[check] strict = true` (before any request), else they are the
    result's warnings. A sync whose every file is carried unchanged from the last one, with
    no functions, reads no file for it (that publish set was checked then), unless strict:
    `strict` may have been turned on since, and `plan` and `status` would then refuse it."""
    if prepared.changed == 0 and functions is None and not config.check.strict:
        return ()
    # Imported here: only a sync with something to check pays for loading the check stage.
    from assetsync.check.project import reference_issues

    found = reference_issues(config, prepared.files, functions)
    raise_blocking(found)
    return tuple(f"{i.path}: {i.message} (`assetsync check`; [check] strict = true refuses "
                 "it)" for i in found)


async def _locate(run: _Run, api: ServerlessClient, state: State, prepared: Prepared,
                  carried: carry.Carried | None) -> tuple[Located, RecordedService | None]:
    """The target (read-only) and its live build: the carried outcome's, when the live build
    is still the very build it was made from (then its view of the record comes too)."""
    located = await peek_target(api, state, run.key, run.config.service, run.environment,
                                parse_kept=False)
    env = located.env
    view = None
    if (carried is not None and prepared.changed is not None and env is not None
            and located.service_sid is not None):
        view = carry.recorded_view(state, run.key, located.service_sid, run.environment,
                                   carried, prepared.files, live_build_sid=env.build_sid)
    if view is None or carried is None:
        return await resolve_live(api, state, run.key, run.environment, located), None
    if run.on_event is not None:
        changed = prepared.changed or 0
        run.on_event(SyncEvent(
            "carried", files=changed, total=len(prepared.files),
            message=f"{changed} file(s) prepared, the others as the last sync published them"))
    return replace(located, live=carried.build), view  # its kept manifest, parsed


async def _sync_target(run: _Run, api: ServerlessClient, state: State, prepared: Prepared,
                       carried: carry.Carried | None,
                       functions: FunctionProject | None) -> SyncResult:
    """Look the target up and sync it: one service, or each service of a sharded site."""
    config = run.config
    uploads = _ChangedUploads(run.on_event)
    run = replace(run, on_event=uploads)
    located, view = await _locate(run, api, state, prepared, carried)
    building = partial(_while_building, state, partial(
        _remember, state, run.key, config.service, run.environment, run.settings, prepared,
        uploads))
    result = await _sync_sites(run, api, state, prepared, located, view, building, functions)
    return replace(result, warnings=result.warnings + uploads.warnings())


async def _sync_sites(
    run: _Run, api: ServerlessClient, state: State, prepared: Prepared, located: Located,
    view: RecordedService | None, building: Callable[[Build, Sequence[PublishedFile]], None],
    functions: FunctionProject | None,
) -> SyncResult:
    """One service, or each service of a sharded site."""
    config = run.config
    if run.shard is not None:
        from assetsync.sync.sharded import sync_sharded

        return await sync_sharded(
            api, state, run.key, service=config.service, environment=run.environment,
            files=prepared.files, shard_options=run.shard, options=apply_options(config),
            flags=run.flags, on_event=run.on_event, located=located,
            while_building=building, recorded_view=view, functions=functions,
            held=prepared.held)
    snapshot = (RecordedSnapshot(located.service_sid, state.writes, view)
                if view is not None and located.service_sid else None)
    return await sync_service(
        api, state, run.key, service=config.service, environment=run.environment,
        files=prepared.files, options=apply_options(config), flags=run.flags,
        on_event=run.on_event, located=located, snapshot=snapshot, while_building=building,
        functions=functions, held=prepared.held)


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
    scan_memory: ScanMemory | None = None,
    spend_budget: bool = True,
    hold: Iterable[str] = (),
    hold_blocked: bool = False,
) -> SyncResult:
    """`sync` for callers already inside an event loop."""
    if adopt and force:
        raise ConfigError("--adopt and --force exclude each other: pick one")
    # Before any request: a bad package.json or .env stops the sync with nothing changed.
    functions = await asyncio.to_thread(load_functions, config)
    started = time.monotonic()
    shard = config.shard
    flags = SyncFlags(dry_run=dry_run, full=full, adopt=adopt, force=force,
                      prune_variables=prune_variables)
    with State.open(config.state_dir) as state:
        run = _Run(config, target_key(config), environment or config.environment,
                   carry.settings_of(config), flags, shard, on_event)
        prepared, carried = await _prepare(run, state, paths, scan_memory)
        prepared, held_back = _hold_back(prepared, frozenset(hold), hold_blocked)
        _check(run, state, prepared, functions)
        checked = _check_references(config, prepared, functions)
        slots = BuildSlots(config, dry_run or not spend_budget)
        run = replace(run, on_event=slots.watching(on_event))
        with slots.held():  # taken before the first request, settled with the builds made
            async with open_client(config, client, on_event) as api:
                before = api.stats.snapshot()
                result = await _sync_target(run, api, state, prepared, carried, functions)
                after = api.stats
            slots.made(result)
    write_urls_file(config, result)
    warnings = tuple(issue_line(i) for i in prepared.warnings) + checked + result.warnings
    if functions is not None:  # node_modules left out, or no twilio package for the emulator
        warnings += tuple(issue_line(i) for i in functions.warnings)
    return replace(
        result, warnings=warnings, elapsed_s=time.monotonic() - started,
        requests=after.requests - before.requests,
        write_requests=after.write_requests - before.write_requests,
        bytes_sent=after.bytes_sent - before.bytes_sent, retries=after.retries - before.retries,
        held_back=held_back,
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
    scan_memory: ScanMemory | None = None,
    spend_budget: bool = True,
    hold: Iterable[str] = (),
    hold_blocked: bool = False,
) -> SyncResult:
    """Publish the source folder (and the functions beside it): upload only what changed,
    build, deploy, record.

    Args:
        config: the loaded configuration.
        client: a client to use (tests, benchmarks); default one for `config.target`.
        dry_run: assess only; no write request.
        full: upload every file again (the official toolkit's behaviour; a baseline).
        adopt: on drift, build on the live build (keep its functions and other files).
        force: on drift, replace the live build's files with assetsync's (functions kept).
        environment: environment unique name / domain suffix (default from config).
        paths: a hint from watch mode: only these source-relative paths may have changed
            (used with `scan_memory`).
        on_event: progress callback receiving `SyncEvent`s.
        prune_variables: delete the environment's Variables that the .env no longer has
            (kept by default, as `twilio-run deploy` keeps them).
        scan_memory: the caller's last snapshot of the source folder (watch mode keeps one),
            so a `paths` hint re-examines only those paths.
        spend_budget: take the account's hourly build budget (`assetsync.sync.budget`) for a
            Twilio target; watch mode, which keeps its own, passes False.
        hold: watch mode: source-relative paths of files still being written; they stay at
            their live version (a new one waits) and the rest goes.
        hold_blocked: watch mode: a file that cannot be published is held back the same way
            (named in the result's `held_back`) instead of stopping the sync.

    Raises:
        BlockedError: a file or the build cannot be published (each named in `.issues`);
            nothing was sent.
        DriftError: someone deployed since assetsync's last deployment (without adopt/force).
        BuildFailedError: the build failed; the previous deployment stays live.
        ApiError: the API refused a request (after retries where retrying is safe).
        LockHeldError: another assetsync holds the state folder.
        AssetsyncError: the account's build budget is spent for this hour.
    """
    return run_sync(lambda: sync_async(
        config, client=client, dry_run=dry_run, full=full, adopt=adopt, force=force,
        environment=environment, paths=paths, on_event=on_event,
        prune_variables=prune_variables, scan_memory=scan_memory, spend_budget=spend_budget,
        hold=hold, hold_blocked=hold_blocked,
    ))
