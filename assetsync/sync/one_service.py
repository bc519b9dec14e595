"""One service's sync: locate, settle the journal, check drift, plan, apply, record.

`sync_service` is the per-service unit: a function of (service, environment, files) so that
`assetsync.sync.run.sync` calls it once for a site and `assetsync.sync.sharded` once per service of a
sharded site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

from assetsync.sync.apply import ApplyOptions, apply_changes, finish_build
from assetsync.remote.client import ServerlessClient
from assetsync.config import Config
from assetsync.errors import AssetsyncError, BuildFailedError, DriftError, LimitError, NotFoundError
from assetsync.functions.local import FunctionProject
from assetsync.functions.plan import FunctionPlan
from assetsync.state.ledger import StateLedger, record_adopted_build, recorded_build
from assetsync.state.ledger import plan_recorded_functions as _plan_functions  # `plan`'s too
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile
from assetsync.plan.assets import Plan, RecordedService, build_plan
from assetsync.prepare.stage import issue_line
from assetsync.sync.locate import Located, describe_drift, locate_target, peek_target, to_live_build
from assetsync.remote.resources import Build, Environment
from assetsync.state.db import State
from assetsync.results import EventCallback, FunctionsOutcome, SyncEvent, SyncResult
from assetsync.sync.urlmap import UrlEntry, build_url_map
from assetsync.functions.variables import (
    VariablePlan,
    apply_variables,
    check_variables,
    plan_variables,
    recorded_variables,
)
from assetsync.sync.uploads import ASSETS, FUNCTIONS, Family, recover_uploads

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


@dataclass(frozen=True, slots=True)
class SyncFlags:
    """How a sync treats the plan: `dry_run` (write nothing), `full` (upload everything
    again), `adopt` / `force` (what to do about drift; see `sync`), `prune_variables` (delete
    the environment's Variables the .env no longer has)."""

    dry_run: bool = False
    full: bool = False
    adopt: bool = False
    force: bool = False
    prune_variables: bool = False


@dataclass(frozen=True, slots=True)
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
                        poll_interval_s=s.poll_interval_s, runtime=s.runtime)


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


def _build_sids(plan: Plan) -> list[str]:
    return sorted({sid for _f, sid in plan.reuses} | {v.sid for v in plan.kept_foreign})


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
) -> SyncResult:
    """Sync one service's environment to `files`; the per-service unit of a (sharded) sync.

    `located` is a `peek_target` result fetched while the files were being prepared; without
    it (or if it found no environment) the service and environment are looked up, and created
    unless `dry_run`. `snapshot`: what the caller read of this service's record, if still valid.
    `while_building`: the caller's work for the time a build takes (see `apply_changes`), given
    the build and the files it publishes. `functions`: the project's functions, Dependencies
    and Variables to deploy with the files; None carries the live build's functions forward.
    """
    dry_run, full, adopt, force = flags.dry_run, flags.full, flags.adopt, flags.force
    before = client.stats.snapshot()
    notes: list[str] = []
    where = located
    if where is None or where.env is None:
        where = await peek_target(client, state, target, service, environment)
        if where.env is None and not dry_run:
            where = await locate_target(client, state, target, service, environment, create=True)
    env, service_sid, live = where.env, where.service_sid, where.live
    ledger = (StateLedger(state, target, service_sid, env.sid)
              if service_sid is not None and env is not None else None)
    pending = await _settle_pending(client, ledger, live, notes) if ledger else None
    fn_ledger = (StateLedger(state, target, ledger.service_sid, ledger.environment_sid,
                             kind="function")
                 if ledger is not None and functions is not None else None)
    if ledger is not None and not dry_run:
        recovered = await recover_uploads(client, ledger)
        if fn_ledger is not None:
            recovered += await recover_uploads(client, fn_ledger, FUNCTIONS)
        if recovered:
            notes.append(f"recorded {recovered} upload(s) an earlier run sent but did not record")
    if on_event is not None and env is not None:
        on_event(SyncEvent("connected", sid=env.sid, message=f"{service}/{environment}"))

    env_rec = state.get_environment(target, service_sid, environment) if service_sid else None
    recorded_sid = env_rec.build_sid if env_rec else None
    live_view = to_live_build(live) if live is not None else None
    if live is not None and recorded_sid and live.sid != recorded_sid:
        rec = state.get_build(target, service_sid or "", recorded_sid)
        sids = frozenset(rec.version_sids) if rec else frozenset()
        path_of = {v.version_sid: v.path for v in state.versions(target, service_sid or "")}
        kept = recorded_build(state, target, service_sid or "", recorded_sid)
        drift = describe_drift(live, recorded_sid, sids, path_of, recorded_functions=(
            {v.sid: v.path for v in kept.function_versions} if kept is not None else None))
        if not (adopt or force):
            raise DriftError(drift.message())
        notes.append(("adopted" if adopt else "replaced") + f" live build {live.sid}")
        if force and live_view is not None:
            # Replace: keep only what invariant 3 always keeps (functions, dependencies, runtime).
            live_view = replace(live_view, asset_versions=())
    elif live is not None and not recorded_sid:
        notes.append(f"first sync here: building on live build {live.sid}, keeping its functions "
                     "and the files assetsync does not publish")

    if (snapshot is not None and service_sid == snapshot.service_sid
            and state.writes == snapshot.writes):
        recorded = snapshot.recorded  # nothing was recorded since the caller read it
    else:
        recorded = (state.recorded_service(target, service_sid, environment,
                                           assets_on_first_use=True)
                    if service_sid else RecordedService())
    plan = build_plan(files, recorded, live_view, limits=limits, full=full)
    if ledger is not None:  # after the plan, which reads the Asset SIDs only if it needs them
        ledger.know_assets(recorded.asset_sids)
    fplan = (_plan_functions(state, target, service_sid, functions, files, live_view,
                             limits=limits, full=full)
             if functions is not None else None)
    errors = [*plan.errors, *(fplan.issues if fplan else ()),
              *(functions.issues if functions else ())]
    if errors:
        raise LimitError("; ".join(i.message for i in errors), limit="build")
    variables = (await plan_live_variables(client, functions, service_sid, env,
                                       prune=flags.prune_variables)
                 if functions is not None and functions.variables is not None else None)
    if on_event is not None:
        on_event(SyncEvent("planned", files=len(plan.uploads) + len(fplan.uploads if fplan else ()),
                           bytes=plan.upload_bytes + (fplan.upload_bytes if fplan else 0),
                           total=len(files) + (len(functions.functions) if functions else 0)))

    # A new [sync] runtime is a change too, even with every file as it was.
    runtime_change = bool(options.runtime and live is not None and live.runtime != options.runtime)
    if runtime_change and live is not None:
        notes.append(f"runtime {live.runtime} -> {options.runtime}")
    work = not plan.is_noop or runtime_change or (fplan is not None and fplan.needs_build)
    if fplan is not None:
        if fplan.drops:
            notes.append(f"{len(fplan.drops)} function(s) the folder no longer has leave the "
                         f"build: {', '.join(fplan.drops[:3])}")
        if fplan.dependencies_changed:
            notes.append("dependencies changed: " + (", ".join(
                f"{n}@{v}" for n, v in fplan.dependencies) or "none"))
    functions_left = fplan.count if fplan is not None else len(plan.function_versions)
    if work and not (plan.uploads or plan.reuses or plan.kept_foreign or functions_left):
        # Twilio refuses a build with no version at all (twilio-cli #215).
        raise AssetsyncError(
            f"nothing left to publish in {service}/{environment}: every file is gone from the "
            "source folder and a build needs at least one; keep one file, or delete the "
            "environment in the Twilio Console"
        )
    # Computed while the build builds (or at the end when there is no build). The functions
    # this sync deploys have URLs too (private ones, like private files, have none).
    deployed = (*files, *(fplan.uploads if fplan else ()),
                *(f for f, _sid in (fplan.reuses if fplan else ())))
    urls = cache(lambda: url_entries(service, env.domain_name if env else None,
                                     ((f.path, f.visibility.value) for f in deployed)))

    def building(build: Build) -> None:
        urls()
        if while_building is not None:
            while_building(build, files)

    build_sid = deployment_sid = None
    uploaded: tuple[str, ...] = ()
    functions_uploaded: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    resumable = (pending is not None and work
                 and not plan.uploads and not plan.create_assets
                 and not (fplan is not None and fplan.uploads))
    if resumable and ledger is not None and pending is not None:
        rec = state.get_build(target, ledger.service_sid, pending)
        resumable = rec is not None and set(rec.version_sids) == set(_build_sids(plan))
        if resumable and fplan is not None:  # the same functions and dependencies too
            made = recorded_build(state, target, ledger.service_sid, pending)
            resumable = made is not None and (
                {v.sid for v in made.function_versions} == set(fplan.reused_sids)
                and tuple(sorted(made.dependencies)) == fplan.dependencies)
        if not resumable:
            state.clear_pending(target, ledger.service_sid, ledger.environment_sid)
    elif pending is not None and ledger is not None and not dry_run:
        state.clear_pending(target, ledger.service_sid, ledger.environment_sid)

    if variables is not None and variables.changed and not dry_run and ledger is not None \
            and functions is not None and functions.variables is not None:
        # Before the build: the functions it deploys may read them on their first request.
        await apply_variables(client, ledger.service_sid, ledger.environment_sid,
                              functions.variables, variables)
        notes.append(f"variables: {len(variables.create)} created, {len(variables.update)} "
                     f"updated, {len(variables.delete)} deleted")
    if variables is not None and not dry_run and ledger is not None \
            and functions is not None and functions.variables is not None:
        remember_variables(state, target, ledger.service_sid, ledger.environment_sid,
                           functions.variables, variables)
    if dry_run or ledger is None:
        pass
    elif resumable and pending is not None:
        notes.append(f"finished build {pending}, interrupted by an earlier run")
        build_sid = pending
        deployment_sid = await finish_build(client, ledger.service_sid, ledger.environment_sid,
                                            pending, ledger, options=options, on_event=on_event)
    elif work:
        for attempt in (1, 2):
            try:
                outcome = await apply_changes(
                    client, service_sid=ledger.service_sid, environment_sid=ledger.environment_sid,
                    create_assets=plan.create_assets, uploads=plan.uploads,
                    reused_sids=_build_sids(plan),
                    function_sids=(fplan.reused_sids if fplan is not None
                                   else [v.sid for v in plan.function_versions]),
                    dependencies=fplan.dependencies if fplan is not None else plan.dependencies,
                    runtime=options.runtime or plan.runtime,
                    ledger=ledger, options=options, on_event=on_event, while_building=building,
                    function_uploads=fplan.uploads if fplan is not None else (),
                    function_ledger=fn_ledger,
                )
                break
            except BuildFailedError as exc:
                missing = (await _missing_versions(client, ledger, plan.reuses)
                           if attempt == 1 else set())
                if fplan is not None and fn_ledger is not None and attempt == 1:
                    gone = await _missing_versions(client, fn_ledger, fplan.reuses, FUNCTIONS)
                    state.forget_versions(target, ledger.service_sid, gone, kind="function")
                    missing |= gone
                if not missing:
                    raise
                # Expired versions: forget them, upload those files again, build once more.
                state.forget_versions(target, ledger.service_sid, missing)
                notes.append(f"{len(missing)} recorded version(s) had expired and were re-uploaded"
                             f" after build {exc.build_sid} failed")
                recorded = state.recorded_service(target, ledger.service_sid, environment,
                                                  assets_on_first_use=True)
                plan = build_plan(files, recorded, live_view, limits=limits, full=full)
                if functions is not None:
                    fplan = _plan_functions(state, target, ledger.service_sid, functions, files,
                                            live_view, limits=limits, full=full)
        uploaded, created = outcome.uploaded, outcome.created_assets
        functions_uploaded = outcome.functions_uploaded
        build_sid, deployment_sid = outcome.build_sid, outcome.deployment_sid
    elif adopt and live is not None and recorded_sid != live.sid and ledger is not None:
        # Nothing to change, but the live build is now the one assetsync stands on.
        record_adopted_build(state, target, ledger.service_sid, ledger.environment_sid, live)
        ledger.record_deployment(live.sid, "")

    if deployment_sid is not None and on_event is not None:
        on_event(SyncEvent("recorded", sid=build_sid))
    after = client.stats
    return SyncResult(
        service=service,
        environment=environment,
        service_sid=service_sid,
        environment_sid=env.sid if env else None,
        domain_name=env.domain_name if env else None,
        build_sid=build_sid or (live.sid if live is not None and not work else None),
        deployment_sid=deployment_sid,
        uploaded=uploaded if not dry_run else tuple(f.path for f in plan.uploads),
        reused=len(plan.reuses),
        created_assets=created if not dry_run else plan.create_assets,
        dropped=plan.drops,
        kept_foreign=tuple(v.path for v in plan.kept_foreign),
        function_versions=functions_left,
        upload_bytes=plan.upload_bytes + (fplan.upload_bytes if fplan is not None else 0),
        bytes_sent=after.bytes_sent - before.bytes_sent,
        requests=after.requests - before.requests,
        write_requests=after.write_requests - before.write_requests,
        retries=after.retries - before.retries,
        dry_run=dry_run,
        noop=not work and build_sid is None,
        urls=urls(),
        warnings=tuple(issue_line(i) for i in plan.issues if i.severity != "error"),
        notes=tuple(notes),
        functions=(_functions_outcome(fplan, functions_uploaded, dry_run)
                   if fplan is not None else None),
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
