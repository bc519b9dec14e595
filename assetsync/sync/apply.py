"""Apply a plan to one service: create Asset resources, upload versions, build, wait, deploy.

Every remote object is written to the ledger (the state) as soon as it exists: Asset SIDs per
batch (one lost to a crash is found by name next time), versions through the upload journal
(`assetsync.sync.uploads`), the build in a pending journal before its status is polled, the
deployment once made. A rerun after a crash therefore reuses everything acknowledged and
finishes an interrupted build (DESIGN.md, state invariants 1 and 2).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from assetsync.remote.client import BuildTimeoutError, ServerlessClient
from assetsync.errors import ApiStatusError, BuildFailedError
from assetsync.state.ledger import Ledger
from assetsync.models import PublishedFile
from assetsync.remote.resources import Build
from assetsync.results import EventCallback, SyncEvent
from assetsync.sync.uploads import ASSETS, FUNCTIONS, Family, run_all, upload_files

__all__ = [
    "ApplyOptions",
    "ApplyOutcome",
    "apply_changes",
    "deploy",
    "ensure_assets",
    "finish_build",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """Knobs from `[sync]`; `runtime` None keeps the live build's."""

    concurrency: int = 10
    build_timeout_s: float = 300.0
    poll_interval_s: float = 0.5
    runtime: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What apply did."""

    created_assets: tuple[str, ...]
    uploaded: tuple[str, ...]
    build_sid: str | None
    deployment_sid: str | None
    functions_uploaded: tuple[str, ...] = ()


def _emit(on_event: EventCallback | None, event: SyncEvent) -> None:
    if on_event is not None:
        on_event(event)


async def ensure_assets(
    client: ServerlessClient,
    service_sid: str,
    paths: Iterable[str],
    ledger: Ledger,
    *,
    concurrency: int,
    on_event: EventCallback | None,
    family: Family = ASSETS,
) -> tuple[str, ...]:
    """Make sure every path has an Asset (or Function) resource; returns the paths that got a
    new one.

    Existing resources named after a path (from a run that crashed before recording them, or
    from another deployer) are adopted instead of duplicated.
    """
    missing = sorted({p for p in paths if ledger.asset_sid(p) is None})
    if not missing:
        return ()
    existing: dict[str, str] = {}
    for asset in await family.list_resources(client, service_sid):
        existing.setdefault(asset.friendly_name, asset.sid)
    created: dict[str, str] = {}

    async def create(path: str) -> None:
        sid = (await family.create_resource(client, service_sid, path)).sid
        created[path] = sid
        if on_event is not None:
            on_event(SyncEvent(f"{family.kind}_created", path=path, sid=sid))

    adopted = {p: existing[p] for p in missing if p in existing}
    try:
        await run_all((partial(create, p) for p in missing if p not in existing),
                      limit=concurrency)
    finally:
        # One transaction for the lot: an Asset created but not recorded before a crash is
        # found by its name on the next run (above), never created twice.
        await asyncio.to_thread(ledger.record_assets, {**adopted, **created})
    return tuple(sorted(created))


async def finish_build(
    client: ServerlessClient,
    service_sid: str,
    environment_sid: str,
    build_sid: str,
    ledger: Ledger,
    *,
    options: ApplyOptions,
    on_event: EventCallback | None,
    created_at: float | None = None,
    status: str | None = None,
) -> str:
    """Wait for a build to complete, then deploy it; returns the deployment SID.

    A failed or timed-out build raises `BuildFailedError` and leaves the live deployment alone.
    `created_at`: when this run's create request was answered (the client's retry clock), so
    the poll schedule counts from the build's start rather than from after it was recorded;
    `status`: the build's status in that answer (see `ServerlessClient.wait_for_build`).
    """

    def emit_status(value: str) -> None:
        _emit(on_event, SyncEvent("build_status", sid=build_sid, message=value))

    try:
        await client.wait_for_build(
            service_sid,
            build_sid,
            timeout_s=options.build_timeout_s,
            poll_interval_s=options.poll_interval_s,
            on_status=emit_status,
            created_at=created_at,
            status=status,
        )
    except BuildTimeoutError:
        raise  # still building: the journal keeps it, so the next run resumes waiting
    except BuildFailedError:
        ledger.record_build_status(build_sid, "failed")
        raise
    # Recorded completed with the deployment, in one transaction: until then the pending
    # journal makes a rerun poll it again, which is all a separate record would have saved.
    deployment_sid = await deploy(client, service_sid, environment_sid, build_sid)
    _emit(on_event, SyncEvent("deployment_acknowledged", sid=deployment_sid))
    ledger.record_deployment(build_sid, deployment_sid)
    _emit(on_event, SyncEvent("deployed", sid=deployment_sid, message=build_sid))
    return deployment_sid


async def deploy(
    client: ServerlessClient, service_sid: str, environment_sid: str, build_sid: str
) -> str:
    """Create a deployment; a 409 because the build is already live counts as done."""
    try:
        return (await client.create_deployment(service_sid, environment_sid, build_sid)).sid
    except ApiStatusError as exc:
        # Re-activating the active build answers 409 (serverless-api #27/#28): a rerun after a
        # crash between deploying and recording lands here.
        if exc.status_code != 409:
            raise
        env = await client.fetch_environment(service_sid, environment_sid)
        if env.build_sid != build_sid:
            raise
        deployments = await client.list_deployments(service_sid, environment_sid)
        mine = [d for d in deployments if d.build_sid == build_sid]
        return mine[-1].sid if mine else ""


async def apply_changes(
    client: ServerlessClient,
    *,
    service_sid: str,
    environment_sid: str,
    create_assets: Sequence[str],
    uploads: Sequence[PublishedFile],
    reused_sids: Sequence[str],
    function_sids: Sequence[str],
    dependencies: Sequence[tuple[str, str]],
    runtime: str | None,
    ledger: Ledger,
    options: ApplyOptions,
    on_event: EventCallback | None = None,
    while_building: Callable[[Build], object] | None = None,
    function_uploads: Sequence[PublishedFile] = (),
    function_ledger: Ledger | None = None,
) -> ApplyOutcome:
    """Create assets, upload, build from reused + new versions (+ functions), wait, deploy.

    `while_building`: work for the time the build takes (run with the build once it is created
    and recorded, before its first poll), such as the URL map a result needs anyway.
    `function_uploads` go through `function_ledger` (the Function tables' journal) first, and
    join `function_sids` in the build.
    """
    functions_uploaded: list[str] = []
    function_sids = list(function_sids)
    if function_uploads:
        if function_ledger is None:
            raise ValueError("function uploads need the function ledger")
        await ensure_assets(client, service_sid, (f.path for f in function_uploads),
                            function_ledger, concurrency=options.concurrency,
                            on_event=on_event, family=FUNCTIONS)
        sent = await upload_files(client, service_sid, function_uploads, function_ledger,
                                  concurrency=options.concurrency, on_event=on_event,
                                  family=FUNCTIONS)
        function_sids += [u.sid for u in sent]
        functions_uploaded = sorted(u.path for u in sent)
    needed = {*create_assets, *(f.path for f in uploads)}
    created = await ensure_assets(
        client, service_sid, needed, ledger, concurrency=options.concurrency, on_event=on_event
    )
    uploaded = await upload_files(
        client, service_sid, uploads, ledger, concurrency=options.concurrency, on_event=on_event
    )
    version_sids = sorted({*reused_sids, *(u.sid for u in uploaded)})
    build: Build = await client.create_build(
        service_sid,
        asset_versions=version_sids,
        function_versions=function_sids,
        dependencies=dependencies,
        runtime=runtime,
    )
    # Its answer's arrival, not the end of parsing it: no await lies between the two, so this
    # is the create request's answer.
    created_at = client.answered_at if client.answered_at is not None else client.retry.clock()
    ledger.record_pending_build(build)
    _emit(on_event, SyncEvent("build_created", sid=build.sid, files=len(version_sids),
                              total=len(function_sids)))
    if while_building is not None:
        while_building(build)  # inside the build's first wait, which counts from `created_at`
    deployment_sid = await finish_build(
        client, service_sid, environment_sid, build.sid, ledger, options=options, on_event=on_event,
        created_at=created_at, status=build.status or None,
    )
    return ApplyOutcome(
        created_assets=created,
        uploaded=tuple(sorted(u.path for u in uploaded)),
        build_sid=build.sid,
        deployment_sid=deployment_sid,
        functions_uploaded=tuple(functions_uploaded),
    )
