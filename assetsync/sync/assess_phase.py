"""The assess phase of one service's sync: the drift check on the live build, then
`assetsync.plan.assess` against the service's record. The first round runs it before writing,
and every rebase (`assetsync.sync.live_rounds`) runs it again.
"""

from __future__ import annotations

from assetsync.errors import AssetsyncError, DriftError
from assetsync.frozen import replace
from assetsync.plan.assess import Assessment, assess
from assetsync.plan.assets import LiveBuild, RecordedService
from assetsync.prepare.stage import raise_blocking
from assetsync.sync.locate import drift_of, to_live_build
from assetsync.sync.phase_values import RecordedSnapshot, Request, Target

__all__ = [
    "assess_target",
    "live_view_of",
]


def live_view_of(req: Request, at: Target, notes: list[str]) -> LiveBuild | None:
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


def assess_target(req: Request, at: Target, live: LiveBuild | None,
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
