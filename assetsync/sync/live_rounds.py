"""The write phases of one service's sync, in rounds: finish a pending build, or upload, build
and deploy (re-uploading recorded versions Twilio expired), checking just before the deployment
that the live build is still the one assessed. When another machine deployed meanwhile, stop
with the drift message or, with `--adopt`, assess again against its build and go on (a rebase).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import cache, partial

from assetsync.errors import BuildFailedError, DriftError, NotFoundError
from assetsync.frozen import frozen, replace
from assetsync.models import PublishedFile
from assetsync.plan.assess import Assessment
from assetsync.plan.assets import LiveBuild
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build
from assetsync.state.ledger import StateLedger, record_adopted_build, recorded_build
from assetsync.state.remote_manifest import is_reserved
from assetsync.sync.apply import apply_changes, finish_build
from assetsync.sync.assess_phase import assess_target, live_view_of
from assetsync.sync.locate import drift_of
from assetsync.sync.next_manifest import manifest_maker, manifest_resource
from assetsync.sync.phase_values import Applied, Request, Target
from assetsync.sync.remote_manifest import moved_live
from assetsync.sync.uploads import ASSETS, FUNCTIONS, Family
from assetsync.sync.urlmap import UrlEntry, url_entries

__all__ = [
    "Round",
    "rounds",
]


# Rebases one `sync --adopt` makes when other machines keep deploying while it builds.
_REBASES = 3


@frozen
class Round:
    """One attempt at the write phases: where, what was assessed, against which live build."""

    at: Target
    found: Assessment
    live_view: LiveBuild | None
    pending: str | None


class _LiveMovedError(Exception):
    """The environment's live build changed after the assessment (raised before deploying)."""

    def __init__(self, build: Build) -> None:
        super().__init__(build.sid)
        self.build = build


async def rounds(
    req: Request, first: Round,
    while_building: Callable[[Build, Sequence[PublishedFile]], object] | None,
    notes: list[str],
) -> tuple[Target, Assessment, Applied, Callable[[], tuple[UrlEntry, ...]]]:
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
        live_view = live_view_of(req, at, notes)
        rnd = Round(at, assess_target(req, at, live_view, None), live_view, None)
    raise AssertionError("unreachable")  # the last round returns or raises


def _stop_or_rebase(req: Request, at: Target, moved: Build, rebases_left: int,
                    notes: list[str]) -> Target:
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


def _resumable(req: Request, at: Target, pending: str | None, found: Assessment) -> bool:
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


async def _apply(req: Request, at: Target, found: Assessment, live_view: LiveBuild | None,
                 pending: str | None, resumable: bool, building: Callable[[Build], None],
                 notes: list[str]) -> Applied:
    """The write phases: finish a pending build, or upload, build and deploy; or, with nothing
    to change after `--adopt`, record the live build as the one assetsync stands on."""
    ledger = at.ledger
    if req.flags.dry_run or ledger is None:
        return Applied()
    if resumable and pending is not None:
        notes.append(f"finished build {pending}, interrupted by an earlier run")
        await _before_build(req.variables)
        deployment = await finish_build(req.client, ledger.service_sid, ledger.environment_sid,
                                        pending, ledger, options=req.options,
                                        on_event=req.on_event,
                                        before_deploy=_still_live(req, at))
        return Applied(pending, deployment)
    if found.needs_build:
        return await _upload_build_deploy(req, at, ledger, found, live_view, building, notes)
    live = at.live
    env_rec = req.state.get_environment(req.target, ledger.service_sid, at.environment)
    if req.flags.adopt and live is not None and (env_rec is None or env_rec.build_sid != live.sid):
        # Nothing to change, but the live build is now the one assetsync stands on.
        record_adopted_build(req.state, req.target, ledger.service_sid,
                             ledger.environment_sid, live)
        ledger.record_deployment(live.sid, "")
    return Applied()


async def _upload_build_deploy(
    req: Request, at: Target, ledger: StateLedger, found: Assessment, live: LiveBuild | None,
    building: Callable[[Build], None], notes: list[str],
) -> Applied:
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
                extra_function=manifest_maker(req, at, found, live, notes),
                alongside=lambda: _before_build(manifest_resource(req, at, live),
                                                req.variables),
                fresh_service=at.created,
                before_deploy=_still_live(req, at),
                live_versions=({v.path: v.sid for v in live.asset_versions}
                               if live is not None else None),
            )
            return Applied(outcome.build_sid, outcome.deployment_sid, outcome.uploaded,
                            outcome.created_assets, outcome.functions_uploaded)
        except BuildFailedError as exc:
            missing = await _expired(req, at, ledger, found) if attempt == 1 else set()
            if not missing:
                raise
            req.state.forget_versions(req.target, ledger.service_sid, missing)
            notes.append(f"{len(missing)} recorded version(s) had expired and were re-uploaded"
                         f" after build {exc.build_sid} failed")
            found = assess_target(req, at, live, None)
    raise AssertionError("unreachable")  # the loop returns or raises


async def _expired(req: Request, at: Target, ledger: StateLedger,
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


async def _before_build(*steps: Awaitable[None] | None) -> None:
    """What a build (or a deployment) waits for, done side by side; the first error is raised
    once all are done."""
    done = await asyncio.gather(*(s for s in steps if s is not None), return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome


def _still_live(req: Request, at: Target) -> Callable[[], Awaitable[None]]:
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
