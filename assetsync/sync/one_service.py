"""One service's sync, in phases: locate -> recover the journal -> assess -> upload -> build
-> deploy -> record, each passing small frozen values to the next.

`sync_service` is the per-service unit: a function of (service, environment, files) so that
`assetsync.sync.run.sync` calls it once for a site and `assetsync.sync.sharded` once per service
of a sharded site. What the sync does is decided by `assetsync.plan.assess` alone (the same
function `plan` and `status` ask).

This module composes the phases and holds locate and recover; the values they pass are
`sync/phase_values.py`'s, assess `sync/assess_phase.py`'s, the write rounds
`sync/live_rounds.py`'s, the Variables `sync/variables_sync.py`'s and the answer
`sync/service_result.py`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from assetsync.errors import NotFoundError
from assetsync.frozen import replace
from assetsync.functions.local import FunctionProject
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile
from assetsync.plan.assess import Assessment
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build
from assetsync.results import EventCallback, SyncEvent, SyncResult
from assetsync.state.db import State
from assetsync.state.ledger import StateLedger
from assetsync.sync.apply import ApplyOptions, repair_names
from assetsync.sync.assess_phase import assess_target, live_view_of
from assetsync.sync.live_rounds import Round, rounds
from assetsync.sync.locate import Located, locate_target, peek_target
from assetsync.sync.phase_values import RecordedSnapshot, Request, SyncFlags, Target
from assetsync.sync.remote_manifest import sync_state_from_live
from assetsync.sync.service_result import Tally, result
from assetsync.sync.uploads import FUNCTIONS, recover_uploads
from assetsync.sync.variables_sync import plan_live_variables, set_variables

__all__ = [
    "sync_service",
]


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


async def _locate(req: Request, service: str, environment: str,
                  located: Located | None) -> Target:
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
    return Target(service, environment, service_sid, env, where.live, ledger, fn_ledger,
                   where.created)


async def _recover(req: Request, at: Target, notes: list[str]) -> str | None:
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
    req = Request(client, state, target, files, options, flags, limits, functions, held,
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
    live_view = live_view_of(req, at, notes)
    found = assess_target(req, at, live_view, snapshot if read.source == "local" else None)
    # A service this run made has no Variables to list.
    variables = (await plan_live_variables(client, functions, at.service_sid,
                                           None if at.created else at.env,
                                           prune=flags.prune_variables)
                 if functions is not None and functions.variables is not None else None)
    if on_event is not None:
        on_event(SyncEvent("planned", files=found.uploads_count, bytes=found.upload_bytes,
                           total=len(files) + (len(functions.functions) if functions else 0)))
    _assessment_notes(found, at.live, notes)
    writing = asyncio.ensure_future(set_variables(req, at, variables, notes))
    try:
        at, found, applied, urls = await rounds(replace(req, variables=writing),
                                                 Round(at, found, live_view, pending),
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
    return result(req, at, found, applied, variables,
                   Tally(before, client.stats, tuple(notes), urls()))
