"""One service's sync, in phases: locate -> recover the journal -> assess -> upload -> build
-> deploy -> record, each passing small frozen values to the next.

`sync_service` is the per-service unit: a function of (service, environment, files) so that
`assetsync.sync.run.sync` calls it once for a site and `assetsync.sync.sharded` once per service
of a sharded site. What the sync does is decided by `assetsync.plan.assess` alone (the same
function `plan` and `status` ask).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache, partial

from assetsync.config import Config
from assetsync.errors import AssetsyncError, BuildFailedError, DriftError, NotFoundError
from assetsync.frozen import frozen
from assetsync.functions.local import FunctionProject
from assetsync.functions.plan import FunctionPlan
from assetsync.functions.variables import (
    VariablePlan,
    apply_variables,
    check_variables,
    plan_variables,
    recorded_variables,
)
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile
from assetsync.plan.assess import Assessment, assess
from assetsync.plan.assets import LiveBuild, RecordedService
from assetsync.prepare.stage import issue_line, raise_blocking
from assetsync.remote.client import ServerlessClient
from assetsync.remote.http import ClientStats as RequestStats
from assetsync.remote.resources import Build, Environment
from assetsync.results import EventCallback, FunctionsOutcome, SyncEvent, SyncResult
from assetsync.state.db import State
from assetsync.state.ledger import StateLedger, record_adopted_build, recorded_build
from assetsync.state.remote_manifest import MANIFEST_LIMIT, Manifest, holds_digest, is_reserved
from assetsync.sync.apply import ApplyOptions, apply_changes, finish_build, repair_names
from assetsync.sync.locate import Located, drift_of, locate_target, peek_target, to_live_build
from assetsync.sync.remote_manifest import (
    entries_of,
    manifest_function,
    moved_live,
    sync_state_from_live,
    upload_manifest,
)
from assetsync.sync.uploads import ASSETS, FUNCTIONS, Family, Uploaded, recover_uploads
from assetsync.sync.urlmap import UrlEntry, build_url_map

__all__ = [
    "RecordedSnapshot",
    "SyncFlags",
    "apply_options",
    "plan_live_variables",
    "remember_variables",
    "sync_service",
    "url_entries",
]


def url_entries(
    service: str, domain_name: str | None, files: Iterable[tuple[str, str]],
    *, exclude: Iterable[str] = (),
) -> tuple[UrlEntry, ...]:
    """The URL map of one service's (path, visibility) pairs; private files have no URL."""
    if not domain_name:
        return ()
    return build_url_map(((path, vis, service) for path, vis in files), {service: domain_name},
                         exclude=frozenset(exclude))


@frozen
class SyncFlags:
    """How a sync treats the plan: `dry_run` (write nothing), `full` (upload everything
    again), `adopt` / `force` (what to do about drift; see `sync`), `prune_variables` (delete
    the environment's Variables the .env no longer has)."""

    dry_run: bool = False
    full: bool = False
    adopt: bool = False
    force: bool = False
    prune_variables: bool = False


@frozen
class RecordedSnapshot:
    """`State.recorded_service` as a caller read it before `sync_service` (a sharded sync reads
    every service's to place files): reused when it is of the service the sync found and the
    state has committed nothing since (`State.writes`), instead of being read again."""

    service_sid: str
    writes: int
    recorded: RecordedService


def apply_options(config: Config) -> ApplyOptions:
    """`[sync]` as apply's knobs."""
    s = config.sync
    return ApplyOptions(concurrency=s.concurrency, build_timeout_s=s.build_timeout_s,
                        poll_interval_s=s.poll_interval_s, runtime=s.runtime, repair=s.repair,
                        remote_manifest=s.remote_manifest)


async def _settle_pending(
    client: ServerlessClient, ledger: StateLedger, live: Build | None, notes: list[str]
) -> str | None:
    """Journal housekeeping before planning; returns a pending build SID still to finish.

    A pending build that is already live means the last run crashed after deploying but before
    recording: record it now. One that failed or vanished is dropped.
    """
    state, target = ledger.state, ledger.target
    pending = state.get_pending(target, ledger.service_sid, ledger.environment_sid)
    if pending is None:
        return None
    if live is not None and live.sid == pending.build_sid:
        deployments = await client.list_deployments(ledger.service_sid, ledger.environment_sid)
        mine = [d.sid for d in deployments if d.build_sid == live.sid]
        ledger.record_deployment(live.sid, mine[-1] if mine else "")
        notes.append(f"recorded deployment of {live.sid}, interrupted by an earlier crash")
        return None
    try:
        status = await client.fetch_build_status(ledger.service_sid, pending.build_sid)
    except NotFoundError:
        status = "failed"
    if status == "failed":
        ledger.record_build_status(pending.build_sid, "failed")
        return None
    return pending.build_sid


async def _missing_versions(
    client: ServerlessClient, ledger: StateLedger,
    reuses: Sequence[tuple[PublishedFile, str]], family: Family = ASSETS,
) -> set[str]:
    """Reused version SIDs the API no longer has (Twilio deletes unreferenced ones after 7 days).

    An Asset (or Function) resource that is gone altogether is forgotten with its versions, so
    the next plan creates it again.
    """
    by_asset: dict[str, set[str]] = {}
    paths: dict[str, str] = {}
    for f, sid in reuses:
        asset = ledger.asset_sid(f.path)
        if asset:
            by_asset.setdefault(asset, set()).add(sid)
            paths[asset] = f.path
    missing: set[str] = set()
    for asset, sids in sorted(by_asset.items()):
        try:
            have = {v.sid for v in await family.list_versions(client, ledger.service_sid, asset)}
        except NotFoundError:
            ledger.forget_asset(paths[asset])
            have = set()
        missing |= sids - have
    return missing


@frozen
class _Target:
    """Where a sync writes (the locate phase's answer): None SIDs in a dry run of a service
    or environment that does not exist yet."""

    service: str
    environment: str
    service_sid: str | None
    env: Environment | None
    live: Build | None
    ledger: StateLedger | None
    fn_ledger: StateLedger | None
    created: bool = False  # this run made the service: it holds nothing to list or adopt


@frozen
class _Applied:
    """What the upload, build and deploy phases did."""

    build_sid: str | None = None
    deployment_sid: str | None = None
    uploaded: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    functions_uploaded: tuple[str, ...] = ()


@frozen
class _Request:
    """One service's sync as asked: the fixed inputs every phase reads."""

    client: ServerlessClient
    state: State
    target: str
    files: Sequence[PublishedFile]
    options: ApplyOptions
    flags: SyncFlags
    limits: BuildLimits
    functions: FunctionProject | None
    held: frozenset[str]
    on_event: EventCallback | None
    # The Variables' writes, going on while the files upload: awaited before any deployment
    # (the functions read them once deployed), and by `sync_service` before it returns.
    variables: asyncio.Future[None] | None = None


async def _locate(req: _Request, service: str, environment: str,
                  located: Located | None) -> _Target:
    """The service, environment and live build: `located` when the caller found them, else
    looked up, and created unless this is a dry run."""
    where = located
    if where is None or where.env is None:
        # The caller's peek is this run's lookup: not looked up a second time.
        where = where or await peek_target(req.client, req.state, req.target, service,
                                           environment)
        if where.env is None and not req.flags.dry_run:
            where = await locate_target(req.client, req.state, req.target, service, environment,
                                        create=True, peeked=where)
    env, service_sid = where.env, where.service_sid
    ledger = (StateLedger(req.state, req.target, service_sid, env.sid)
              if service_sid is not None and env is not None else None)
    fn_ledger = (StateLedger(req.state, req.target, service_sid, env.sid, kind="function")
                 if ledger is not None and service_sid is not None and env is not None
                 and req.functions is not None else None)
    return _Target(service, environment, service_sid, env, where.live, ledger, fn_ledger,
                   where.created)


async def _recover(req: _Request, at: _Target, notes: list[str]) -> str | None:
    """Settle the journal an earlier run left: a deployment it made, uploads it sent; returns
    a pending build still to finish."""
    if at.ledger is None:
        return None
    pending = await _settle_pending(req.client, at.ledger, at.live, notes)
    if not req.flags.dry_run:
        recovered = await recover_uploads(req.client, at.ledger)
        # The function journal holds the service manifest's uploads too.
        fn_ledger = at.fn_ledger or StateLedger(req.state, req.target, at.ledger.service_sid,
                                                at.ledger.environment_sid, kind="function")
        recovered += await recover_uploads(req.client, fn_ledger, FUNCTIONS)
        if recovered:
            notes.append(f"recorded {recovered} upload(s) an earlier run sent but did not record")
    return pending


def _live_view(req: _Request, at: _Target, notes: list[str]) -> LiveBuild | None:
    """The live build as the assessment sees it, after the drift check: drift stops the sync
    unless adopted (build on it) or forced (replace its files)."""
    live = at.live
    if live is None:
        return None
    env_rec = (req.state.get_environment(req.target, at.service_sid, at.environment)
               if at.service_sid else None)
    recorded_sid = env_rec.build_sid if env_rec else None
    view = to_live_build(live)
    if recorded_sid and live.sid != recorded_sid:
        flags = req.flags
        if not (flags.adopt or flags.force):
            raise DriftError(drift_of(req.state, req.target, at.service_sid or "", live,
                                      recorded_sid).message())
        notes.append(("adopted" if flags.adopt else "replaced") + f" live build {live.sid}")
        if flags.force:
            # Replace: keep only what invariant 3 always keeps (functions, dependencies, runtime).
            view = replace(view, asset_versions=())
    elif not recorded_sid:
        notes.append(f"first sync here: building on live build {live.sid}, keeping its functions "
                     "and the files assetsync does not publish")
    return view


def _assess(req: _Request, at: _Target, live: LiveBuild | None,
            snapshot: RecordedSnapshot | None) -> Assessment:
    """The assessment (`assetsync.plan.assess`) against the service's record; a blocking
    problem stops the sync here, before any upload."""
    state, sid = req.state, at.service_sid
    if snapshot is not None and sid == snapshot.service_sid and state.writes == snapshot.writes:
        recorded = snapshot.recorded  # nothing was recorded since the caller read it
    else:
        recorded = (state.recorded_service(req.target, sid, at.environment,
                                           assets_on_first_use=True)
                    if sid else RecordedService())
    rows = ([(v.digest, v.path, v.visibility, v.version_sid)
             for v in state.versions(req.target, sid, kind="function")]
            if sid and req.functions is not None else [])
    found = assess(req.files, recorded, live, limits=req.limits, full=req.flags.full,
                   held=req.held, functions=req.functions, function_records=rows,
                   runtime=req.options.runtime, manifest=req.options.remote_manifest)
    if at.ledger is not None:  # after assessing, which reads the Asset SIDs only if it needs them
        at.ledger.know_assets(recorded.asset_sids)
    raise_blocking(found.errors)
    if found.needs_build and found.empty:
        # Twilio refuses a build with no version at all (twilio-cli #215).
        raise AssetsyncError(
            f"nothing left to publish in {at.service}/{at.environment}: every file is gone from "
            "the source folder and a build needs at least one; keep one file, or delete the "
            "environment in the Twilio Console")
    return found


def _assessment_notes(found: Assessment, live: Build | None, notes: list[str]) -> None:
    if found.runtime_change is not None and live is not None:
        notes.append(f"runtime {live.runtime} -> {found.runtime_change[1]}")
    if found.plan.held:
        paths = [v.path for v in found.plan.held]
        notes.append(f"kept the live version of {len(paths)} file(s) that could not be read "
                     f"this run: {', '.join(paths[:3])}")
    fplan = found.functions
    if fplan is not None:
        if fplan.drops:
            notes.append(f"{len(fplan.drops)} function(s) the folder no longer has leave the "
                         f"build: {', '.join(fplan.drops[:3])}")
        if fplan.dependencies_changed:
            notes.append("dependencies changed: " + (", ".join(
                f"{n}@{v}" for n, v in fplan.dependencies) or "none"))


def _resumable(req: _Request, at: _Target, pending: str | None, found: Assessment) -> bool:
    """Whether the pending build an earlier run created is the very build this sync would
    make (then it is finished, not made again); a pending build that is not is abandoned."""
    if pending is None or at.ledger is None:
        return False
    fplan = found.functions
    state, service_sid, env_sid = req.state, at.ledger.service_sid, at.ledger.environment_sid
    if not (found.needs_build and not found.plan.uploads and not found.plan.create_assets
            and not (fplan is not None and fplan.uploads)):
        if not req.flags.dry_run:
            state.clear_pending(req.target, service_sid, env_sid)
        return False
    rec = state.get_build(req.target, service_sid, pending)
    ok = rec is not None and set(rec.version_sids) == set(found.build_sids)
    if ok and fplan is not None:  # the same functions and dependencies too
        made = recorded_build(state, req.target, service_sid, pending)
        ok = made is not None and (  # the manifest Function is not the user's
            {v.sid for v in made.function_versions if not is_reserved(v.path)}
            == set(fplan.reused_sids)
            and tuple(sorted(made.dependencies)) == fplan.dependencies)
    if not ok:
        state.clear_pending(req.target, service_sid, env_sid)
    return ok


async def _set_variables(req: _Request, at: _Target, variables: VariablePlan | None,
                         notes: list[str]) -> None:
    """Before the build: the functions it deploys may read them on their first request."""
    local = req.functions.variables if req.functions is not None else None
    if variables is None or local is None or req.flags.dry_run or at.ledger is None:
        return
    if variables.changed:
        await apply_variables(req.client, at.ledger.service_sid, at.ledger.environment_sid,
                              local, variables)
        notes.append(f"variables: {len(variables.create)} created, {len(variables.update)} "
                     f"updated, {len(variables.delete)} deleted")
    remember_variables(req.state, req.target, at.ledger.service_sid,
                       at.ledger.environment_sid, local, variables)


async def _upload_build_deploy(
    req: _Request, at: _Target, ledger: StateLedger, found: Assessment, live: LiveBuild | None,
    building: Callable[[Build], None], notes: list[str],
) -> _Applied:
    """Upload, build and deploy; when the build fails because recorded versions expired
    (Twilio deletes unreferenced ones after 7 days), forget them and try once more."""
    for attempt in (1, 2):
        try:
            outcome = await apply_changes(
                req.client, service_sid=ledger.service_sid,
                environment_sid=ledger.environment_sid,
                create_assets=found.plan.create_assets, uploads=found.plan.uploads,
                reused_sids=found.build_sids, function_sids=found.function_sids,
                dependencies=found.dependencies,
                runtime=req.options.runtime or found.plan.runtime,
                ledger=ledger, options=req.options, on_event=req.on_event,
                while_building=building,
                function_uploads=found.functions.uploads if found.functions is not None else (),
                function_ledger=at.fn_ledger,
                extra_function=_manifest_maker(req, at, found, live, notes),
                alongside=_before_build(_manifest_resource(req, at, live), req.variables),
                fresh_service=at.created,
                before_deploy=_still_live(req, at),
                live_versions=({v.path: v.sid for v in live.asset_versions}
                               if live is not None else None),
            )
            return _Applied(outcome.build_sid, outcome.deployment_sid, outcome.uploaded,
                            outcome.created_assets, outcome.functions_uploaded)
        except BuildFailedError as exc:
            missing = await _expired(req, at, ledger, found) if attempt == 1 else set()
            if not missing:
                raise
            req.state.forget_versions(req.target, ledger.service_sid, missing)
            notes.append(f"{len(missing)} recorded version(s) had expired and were re-uploaded"
                         f" after build {exc.build_sid} failed")
            found = _assess(req, at, live, None)
    raise AssertionError("unreachable")  # the loop returns or raises


async def _expired(req: _Request, at: _Target, ledger: StateLedger,
                   found: Assessment) -> set[str]:
    """The reused versions (assets, then functions) the API no longer has; the functions'
    are forgotten here, the assets' by the caller."""
    missing = await _missing_versions(req.client, ledger, found.plan.reuses)
    if found.functions is not None and at.fn_ledger is not None:
        gone = await _missing_versions(req.client, at.fn_ledger, found.functions.reuses,
                                       FUNCTIONS)
        req.state.forget_versions(req.target, ledger.service_sid, gone, kind="function")
        missing |= gone
    return missing


async def _apply(req: _Request, at: _Target, found: Assessment, live_view: LiveBuild | None,
                 pending: str | None, resumable: bool, building: Callable[[Build], None],
                 notes: list[str]) -> _Applied:
    """The write phases: finish a pending build, or upload, build and deploy; or, with nothing
    to change after `--adopt`, record the live build as the one assetsync stands on."""
    ledger = at.ledger
    if req.flags.dry_run or ledger is None:
        return _Applied()
    if resumable and pending is not None:
        notes.append(f"finished build {pending}, interrupted by an earlier run")
        await _before_build(req.variables)
        deployment = await finish_build(req.client, ledger.service_sid, ledger.environment_sid,
                                        pending, ledger, options=req.options,
                                        on_event=req.on_event,
                                        before_deploy=_still_live(req, at))
        return _Applied(pending, deployment)
    if found.needs_build:
        return await _upload_build_deploy(req, at, ledger, found, live_view, building, notes)
    live = at.live
    env_rec = req.state.get_environment(req.target, ledger.service_sid, at.environment)
    if req.flags.adopt and live is not None and (env_rec is None or env_rec.build_sid != live.sid):
        # Nothing to change, but the live build is now the one assetsync stands on.
        record_adopted_build(req.state, req.target, ledger.service_sid,
                             ledger.environment_sid, live)
        ledger.record_deployment(live.sid, "")
    return _Applied()


async def sync_service(
    client: ServerlessClient,
    state: State,
    target: str,
    *,
    service: str,
    environment: str,
    files: Sequence[PublishedFile],
    options: ApplyOptions,
    flags: SyncFlags = SyncFlags(),
    on_event: EventCallback | None = None,
    located: Located | None = None,
    limits: BuildLimits = DEFAULT_BUILD_LIMITS,
    snapshot: RecordedSnapshot | None = None,
    while_building: Callable[[Build, Sequence[PublishedFile]], object] | None = None,
    functions: FunctionProject | None = None,
    held: frozenset[str] = frozenset(),
) -> SyncResult:
    """Sync one service's environment to `files`; the per-service unit of a (sharded) sync.

    `located` is the caller's `peek_target` result (taken once every check has passed: no
    request goes out before, not even a lookup); without
    it (or if it found no environment) the service and environment are looked up, and created
    unless `dry_run`. `snapshot`: what the caller read of this service's record, if still valid.
    `while_building`: the caller's work for the time a build takes (see `apply_changes`), given
    the build and the files it publishes. `functions`: the project's functions, Dependencies
    and Variables to deploy with the files; None carries the live build's functions forward.
    `held`: published paths of files that exist but could not be read this run (their live
    versions stay).
    """
    req = _Request(client, state, target, files, options, flags, limits, functions, held,
                   on_event)
    before = client.stats.snapshot()
    notes: list[str] = []
    at = await _locate(req, service, environment, located)
    pending = await _recover(req, at, notes)
    if on_event is not None and at.env is not None:
        on_event(SyncEvent("connected", sid=at.env.sid, message=f"{service}/{environment}"))
    # A state that does not know the live build reads the build's own manifest first.
    read = await sync_state_from_live(client, state, target, at.service_sid, environment,
                                      at.live, enabled=options.remote_manifest,
                                      adopt=flags.adopt)
    notes.extend([read.note] if read.note else [])
    live_view = _live_view(req, at, notes)
    found = _assess(req, at, live_view, snapshot if read.source == "local" else None)
    # A service this run made has no Variables to list.
    variables = (await plan_live_variables(client, functions, at.service_sid,
                                           None if at.created else at.env,
                                           prune=flags.prune_variables)
                 if functions is not None and functions.variables is not None else None)
    if on_event is not None:
        on_event(SyncEvent("planned", files=found.uploads_count, bytes=found.upload_bytes,
                           total=len(files) + (len(functions.functions) if functions else 0)))
    _assessment_notes(found, at.live, notes)
    writing = asyncio.ensure_future(_set_variables(req, at, variables, notes))
    try:
        at, found, applied, urls = await _rounds(replace(req, variables=writing),
                                                 _Round(at, found, live_view, pending),
                                                 while_building, notes)
    except BaseException:
        await asyncio.gather(writing, return_exceptions=True)  # this error is the one raised
        raise
    await writing
    if options.repair and not flags.dry_run and at.ledger is not None:  # after the build is live
        repaired = await repair_names(client, at.ledger, at.fn_ledger, on_event)
        notes.extend([repaired] if repaired else [])
    if applied.deployment_sid is not None and on_event is not None:
        on_event(SyncEvent("recorded", sid=applied.build_sid))
    return _result(req, at, found, applied, variables,
                   _Tally(before, client.stats, tuple(notes), urls()))


# Rebases one `sync --adopt` makes when other machines keep deploying while it builds.
_REBASES = 3


@frozen
class _Round:
    """One attempt at the write phases: where, what was assessed, against which live build."""

    at: _Target
    found: Assessment
    live_view: LiveBuild | None
    pending: str | None


class _LiveMovedError(Exception):
    """The environment's live build changed after the assessment (raised before deploying)."""

    def __init__(self, build: Build) -> None:
        super().__init__(build.sid)
        self.build = build


async def _rounds(
    req: _Request, first: _Round,
    while_building: Callable[[Build, Sequence[PublishedFile]], object] | None,
    notes: list[str],
) -> tuple[_Target, Assessment, _Applied, Callable[[], tuple[UrlEntry, ...]]]:
    """The write phases; when another machine deployed meanwhile, stop with the drift message
    or, with `--adopt`, assess again against its build and go on (a rebase)."""
    rnd = first
    for rebases_left in range(_REBASES, -1, -1):
        at, found = rnd.at, rnd.found
        # Computed while the build builds (or at the end when there is no build). The
        # functions this sync deploys have URLs too (private ones, like private files, none).
        urls = cache(partial(url_entries, at.service, at.env.domain_name if at.env else None,
                             [(f.path, f.visibility.value) for f in _deployed(found)]))

        def building(build: Build, urls: Callable[[], object] = urls) -> None:
            urls()
            if while_building is not None:
                while_building(build, req.files)

        resumable = _resumable(req, at, rnd.pending, found)
        try:
            applied = await _apply(req, at, found, rnd.live_view, rnd.pending, resumable,
                                   building, notes)
            return at, found, applied, urls
        except _LiveMovedError as moved:
            at = _stop_or_rebase(req, at, moved.build, rebases_left, notes)
        live_view = _live_view(req, at, notes)
        rnd = _Round(at, _assess(req, at, live_view, None), live_view, None)
    raise AssertionError("unreachable")  # the last round returns or raises


def _stop_or_rebase(req: _Request, at: _Target, moved: Build, rebases_left: int,
                    notes: list[str]) -> _Target:
    """After another machine deployed `moved` while this sync built: the build this sync made
    is abandoned (never deployed); the sync stops with the drift message, or with `--adopt`
    goes on against `moved`."""
    ledger = at.ledger
    assert ledger is not None  # only a sync that writes gets this far
    req.state.clear_pending(req.target, ledger.service_sid, ledger.environment_sid)
    if not req.flags.adopt or rebases_left == 0:
        stopped = "stopped before deploying, nothing was deployed: "
        if at.live is None:  # the environment had no build when this sync assessed it
            raise DriftError(f"{stopped}build {moved.sid} was deployed to {at.service}/"
                             f"{at.environment} while this sync ran (another machine); run "
                             "`assetsync sync --adopt` to build on it")
        raise DriftError(stopped + drift_of(req.state, req.target, ledger.service_sid, moved,
                                            at.live.sid).message())
    notes.append(f"rebased onto live build {moved.sid}, which another machine deployed while "
                 "this sync ran")
    return replace(at, live=moved)


def _manifest_maker(
    req: _Request, at: _Target, found: Assessment, live: LiveBuild | None, notes: list[str],
) -> Callable[[Sequence[Uploaded], Sequence[Uploaded], Sequence[str]],
              Awaitable[str | None]] | None:
    """What uploads the next build's service manifest once its versions are known (None when
    `[sync] remote_manifest` is off)."""
    if not req.options.remote_manifest or at.ledger is None:
        return None
    ledger = StateLedger(req.state, req.target, at.ledger.service_sid,
                         at.ledger.environment_sid, kind="function")

    async def make(assets: Sequence[Uploaded], functions: Sequence[Uploaded],
                   holds: Sequence[str]) -> str | None:
        sent, fsent = {u.path: u.sid for u in assets}, {u.path: u.sid for u in functions}
        rows = entries_of([*found.plan.reuses, *((f, sent[f.path]) for f in found.plan.uploads
                                                 if f.path in sent)])
        fplan = found.functions
        frows = (entries_of([*fplan.reuses, *((f, fsent[f.path]) for f in fplan.uploads
                                              if f.path in fsent)]) if fplan else ())
        manifest = Manifest(rows, frows, at.live.sid if at.live is not None else None,
                            holds_digest(holds))
        sid = await upload_manifest(req.client, ledger, manifest,
                                    live.service_manifest if live is not None else None)
        if sid is None:
            notes.append(f"built without the service manifest: over the upload host's "
                         f"{MANIFEST_LIMIT:,} bytes for a private function")
        return sid

    return make


async def _before_build(*steps: Awaitable[None] | None) -> None:
    """What a build (or a deployment) waits for, done side by side; the first error is raised
    once all are done."""
    done = await asyncio.gather(*(s for s in steps if s is not None), return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome


def _manifest_resource(req: _Request, at: _Target,
                       live: LiveBuild | None) -> Awaitable[None] | None:
    """The service manifest's Function resource, made while the files upload rather than
    after them (None when `[sync] remote_manifest` is off)."""
    if not req.options.remote_manifest or at.ledger is None:
        return None
    ledger = StateLedger(req.state, req.target, at.ledger.service_sid,
                         at.ledger.environment_sid, kind="function")
    return manifest_function(req.client, ledger, live.service_manifest if live else None,
                             fresh=at.created)


def _still_live(req: _Request, at: _Target) -> Callable[[], Awaitable[None]]:
    """The check just before deploying: the live build is still the one assessed."""
    ledger = at.ledger
    assert ledger is not None

    async def check() -> None:
        moved = await moved_live(req.client, ledger.service_sid, ledger.environment_sid,
                                 at.live.sid if at.live is not None else None)
        if moved is not None:
            raise _LiveMovedError(moved)

    return check


def _deployed(found: Assessment) -> tuple[PublishedFile, ...]:
    """The files and functions the next build serves from the folder."""
    fplan = found.functions
    files = (*found.plan.uploads, *(f for f, _sid in found.plan.reuses))
    if fplan is None:
        return files
    return (*files, *fplan.uploads, *(f for f, _sid in fplan.reuses))


@frozen
class _Tally:
    """The request counters around a sync, its notes and its URL map."""

    before: RequestStats
    after: RequestStats
    notes: tuple[str, ...]
    urls: tuple[UrlEntry, ...]


def _result(req: _Request, at: _Target, found: Assessment, applied: _Applied,
            variables: VariablePlan | None, tally: _Tally) -> SyncResult:
    """The record phase's answer: what was (or, in a dry run, would be) done."""
    dry_run, plan, live, env = req.flags.dry_run, found.plan, at.live, at.env
    before, after = tally.before, tally.after
    return SyncResult(
        service=at.service,
        environment=at.environment,
        service_sid=at.service_sid,
        environment_sid=env.sid if env else None,
        domain_name=env.domain_name if env else None,
        build_sid=applied.build_sid or (live.sid if live is not None
                                        and not found.needs_build else None),
        deployment_sid=applied.deployment_sid,
        uploaded=tuple(f.path for f in plan.uploads) if dry_run else applied.uploaded,
        reused=len(plan.reuses),
        created_assets=plan.create_assets if dry_run else applied.created,
        dropped=plan.drops,
        kept_foreign=tuple(v.path for v in plan.kept_foreign),
        function_versions=found.function_count,
        upload_bytes=found.upload_bytes,
        bytes_sent=after.bytes_sent - before.bytes_sent,
        requests=after.requests - before.requests,
        write_requests=after.write_requests - before.write_requests,
        retries=after.retries - before.retries,
        dry_run=dry_run,
        noop=not found.needs_build and applied.build_sid is None,
        urls=tally.urls,
        warnings=tuple(issue_line(i) for i in found.warnings),
        notes=tally.notes,
        functions=(_functions_outcome(found.functions, applied.functions_uploaded, dry_run)
                   if found.functions is not None else None),
        variables=variables,
    )


def remember_variables(
    state: State, target: str, service_sid: str, environment_sid: str,
    local: Mapping[str, str], plan: VariablePlan,
) -> None:
    """After `plan` was applied or confirmed: the keyed digests the offline `plan` diffs the
    .env against (never a value; the key is this state's own)."""
    key = state.variable_digest_key()
    was = state.variable_digests(target, service_sid, environment_sid)
    now = (recorded_variables(local, plan, key=key, scope=environment_sid, previous=was)
           if key is not None else was)
    if now != was:  # an unchanged record costs no transaction (no fsync)
        state.record_variable_digests(target, service_sid, environment_sid, now)


async def plan_live_variables(
    client: ServerlessClient, functions: FunctionProject, service_sid: str | None,
    env: Environment | None, *, prune: bool,
) -> VariablePlan:
    """The .env against the environment's Variables (all new where there is none yet)."""
    local = functions.variables or {}
    file = functions.env_file or ".env"
    check_variables(local, file=file)  # before any request
    remote = (await client.list_variables(service_sid, env.sid)
              if service_sid is not None and env is not None else ())
    return plan_variables(local, remote, prune=prune, file=file)


def _functions_outcome(
    fplan: FunctionPlan, uploaded: tuple[str, ...], dry_run: bool
) -> FunctionsOutcome:
    return FunctionsOutcome(
        uploaded=tuple(f.path for f in fplan.uploads) if dry_run else uploaded,
        reused=len(fplan.reuses),
        dropped=fplan.drops,
        dependencies=fplan.dependencies,
        dependencies_changed=fplan.dependencies_changed,
        paths=tuple(sorted((f.path, f.visibility.value)
                           for f in (*fplan.uploads, *(f for f, _s in fplan.reuses)))),
    )
