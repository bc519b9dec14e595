"""Apply a plan to one service: create Asset resources, upload versions, build, wait, deploy;
and `--repair`: keep one Asset or Function per name where another tool made several.

Every remote object is written to the ledger (the state) as soon as it exists: Asset SIDs per
batch (one lost to a crash is found by name next time), versions through the upload journal
(`assetsync.sync.uploads`), the build in a pending journal before its status is polled, the
deployment once made. A rerun after a crash therefore reuses everything acknowledged and
finishes an interrupted build (DESIGN.md, state invariants 1 and 2).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TypeVar

from assetsync.errors import ApiStatusError, BuildFailedError
from assetsync.frozen import field, frozen
from assetsync.models import PublishedFile
from assetsync.remote.client import BuildTimeoutError, ServerlessClient
from assetsync.remote.resources import Asset, Build, FunctionResource
from assetsync.results import EventCallback, SyncEvent
from assetsync.state.ledger import Ledger, StateLedger
from assetsync.sync.uploads import ASSETS, FUNCTIONS, Family, Uploaded, run_all, upload_files

__all__ = [
    "ApplyOptions",
    "ApplyOutcome",
    "Duplicates",
    "apply_changes",
    "consolidate",
    "deploy",
    "ensure_assets",
    "find_duplicates",
    "finish_build",
    "repair_names",
]

logger = logging.getLogger(__name__)

_A = TypeVar("_A")
_B = TypeVar("_B")
_T = TypeVar("_T")


@frozen
class ApplyOptions:
    """Knobs from `[sync]`; `runtime` None keeps the live build's."""

    concurrency: int = 10
    build_timeout_s: float = 300.0
    poll_interval_s: float = 0.5
    runtime: str | None = None
    repair: bool = False  # `sync --repair`: consolidate Assets/Functions sharing a name
    remote_manifest: bool = True  # each build carries the service manifest (remote_manifest)


@frozen
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
    failures: list[Exception] | None = None,
    fresh_service: bool = False,
) -> tuple[str, ...]:
    """Make sure every path has an Asset (or Function) resource; returns the paths that got a
    new one.

    Existing resources named after a path (from a run that crashed before recording them, or
    from another deployer) are adopted instead of duplicated; `fresh_service`: this run made
    the service, so it has none and they are not listed. `failures`: see `run_all`.
    """
    missing = sorted({p for p in paths if ledger.asset_sid(p) is None})
    if not missing:
        return ()
    existing: dict[str, str] = {}
    for asset in await family.list_resources(client, service_sid) if not fresh_service else ():
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
                      limit=concurrency, failures=failures)
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
    before_deploy: Callable[[], Awaitable[None]] | None = None,
) -> str:
    """Wait for a build to complete, then deploy it; returns the deployment SID.

    A failed or timed-out build raises `BuildFailedError` and leaves the live deployment alone.
    `created_at`: when this run's create request was answered (the client's retry clock), so
    the poll schedule counts from the build's start rather than from after it was recorded;
    `status`: the build's status in that answer (see `ServerlessClient.wait_for_build`).
    `before_deploy`: run once the build completed, just before deploying; raising there
    leaves the live deployment alone (the check that no one deployed in between).
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
    if before_deploy is not None:
        await before_deploy()
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


@frozen
class _Sending:
    """What the resources and uploads of one apply share, `failures` among them (the first
    failure of any of them stops them all: see `run_all`)."""

    client: ServerlessClient
    service_sid: str
    options: ApplyOptions
    on_event: EventCallback | None
    fresh_service: bool
    failures: list[Exception] = field(default_factory=list)


async def _send(
    how: _Sending, family: Family, paths: Iterable[str], files: Sequence[PublishedFile],
    ledger: Ledger,
) -> tuple[tuple[str, ...], list[Uploaded]]:
    """Make sure of the resources of `paths` (Assets or Functions), then upload `files`'
    versions through `ledger`'s journal; returns the paths made and the uploads."""
    created = await ensure_assets(how.client, how.service_sid, paths, ledger,
                                  concurrency=how.options.concurrency, on_event=how.on_event,
                                  family=family, failures=how.failures,
                                  fresh_service=how.fresh_service)
    uploaded = await upload_files(how.client, how.service_sid, files, ledger,
                                  concurrency=how.options.concurrency, on_event=how.on_event,
                                  family=family, failures=how.failures)
    return created, uploaded


async def _send_functions(how: _Sending, files: Sequence[PublishedFile],
                          ledger: Ledger | None) -> list[Uploaded]:
    """Upload Function Versions through the Function tables' journal (`ledger`)."""
    if not files:
        return []
    if ledger is None:
        raise ValueError("function uploads need the function ledger")
    return (await _send(how, FUNCTIONS, (f.path for f in files), files, ledger))[1]


async def _side_by_side(failures: list[Exception], first: Callable[[], Awaitable[_A]],
                        second: Callable[[], Awaitable[_B]]) -> tuple[_A, _B]:
    """Run both concurrently; when one fails, the other (sharing its `failures` list, see
    `run_all`) starts no more work and finishes what is in flight, and the first error is
    raised once both are done: nothing acknowledged is left unrecorded.

    Each side is made (`first()`) only when its task starts: a coroutine made before and handed
    in was never started when a Ctrl-C cancelled the run in between, and Python printed
    "RuntimeWarning: coroutine ... was never awaited" under "assetsync: interrupted"."""

    async def stopping(step: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await step()
        except Exception as exc:
            failures.append(exc)  # a failure outside `run_all` (a listing) stops the other
            raise

    one, two = await asyncio.gather(stopping(first), stopping(second), return_exceptions=True)
    # The earliest failure (the other side's may only be it, raised again); else (a
    # cancellation is not among `failures`) the outcome itself.
    if isinstance(one, BaseException):
        raise failures[0] if failures else one
    if isinstance(two, BaseException):
        raise failures[0] if failures else two
    return one, two


async def _nothing() -> None:
    return None


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
    extra_function: Callable[[Sequence[Uploaded], Sequence[Uploaded], Sequence[str]],
                             Awaitable[str | None]] | None = None,
    before_deploy: Callable[[], Awaitable[None]] | None = None,
    live_versions: Mapping[str, str] | None = None,
    alongside: Callable[[], Awaitable[None]] | None = None,
    fresh_service: bool = False,
) -> ApplyOutcome:
    """Create assets, upload, build from reused + new versions (+ functions), wait, deploy.

    `while_building`: work for the time the build takes (run with the build once it is created
    and recorded, before its first poll), such as the URL map a result needs anyway.
    `function_uploads` go through `function_ledger` (the Function tables' journal) first, and
    join `function_sids` in the build. `extra_function`: given the asset and function
    uploads and every version SID the build holds so far, a Function Version SID it also
    holds (the service manifest), or None.
    `before_deploy`: see `finish_build`.
    `live_versions`: path -> SID of the live build's version of it. A file that changed
    between its checks and its upload (`Uploaded.changed`) keeps that version in this build
    (a new file waits): its new bytes were never checked, so the next sync checks them.
    `alongside`: makes other work the build needs done, run while the files upload (the
    service manifest's Function resource). `fresh_service`: this run made the service, so it
    has no Asset or Function to adopt and none is listed.
    """
    # Functions, assets and `alongside` share the request slots rather than take turns: a
    # function's three requests one after another (list, create, upload) left nine slots idle.
    how = _Sending(client, service_sid, options, on_event, fresh_service)
    sent, ((created, uploaded), _) = await _side_by_side(
        how.failures, partial(_send_functions, how, function_uploads, function_ledger),
        partial(_side_by_side, how.failures,
                partial(_send, how, ASSETS, {*create_assets, *(f.path for f in uploads)},
                        uploads, ledger),
                alongside if alongside is not None else _nothing),
    )
    function_sids = [*function_sids, *(u.sid for u in sent)]
    uploaded, kept = _checked_uploads(uploaded, live_versions or {})
    version_sids = sorted({*reused_sids, *(u.sid for u in uploaded), *kept})
    extra = (await extra_function(uploaded, sent, [*version_sids, *function_sids])
             if extra_function is not None else None)
    if extra is not None:
        function_sids.append(extra)
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
        created_at=created_at, status=build.status or None, before_deploy=before_deploy,
    )
    return ApplyOutcome(
        created_assets=created,
        uploaded=tuple(sorted(u.path for u in uploaded)),
        build_sid=build.sid,
        deployment_sid=deployment_sid,
        functions_uploaded=tuple(sorted(u.path for u in sent)),
    )


def _checked_uploads(uploaded: Sequence[Uploaded], live_versions: Mapping[str, str]
                     ) -> tuple[list[Uploaded], list[str]]:
    """The uploads this build takes (their bytes are the checked ones), and the live version
    SIDs kept in place of the others (DESIGN.md invariant 6; see `Uploaded.changed`)."""
    kept = [live_versions[u.path] for u in uploaded if u.changed and u.path in live_versions]
    return [u for u in uploaded if not u.changed], kept


@frozen
class Duplicates:
    """Names that several Assets (or Functions) of one service carry, each with their SIDs in the
    order the API lists them (oldest first). assetsync never makes two (DESIGN.md invariant 7);
    another tool can, and Twilio then fails deploys with "Conflicting SIDs" (serverless-toolkit
    #469)."""

    assets: Mapping[str, tuple[str, ...]]
    functions: Mapping[str, tuple[str, ...]]

    def __bool__(self) -> bool:
        return bool(self.assets or self.functions)

    def message(self) -> str:
        """One line naming them and what to do."""
        parts = []
        for label, names in (("Assets", self.assets), ("Functions", self.functions)):
            if names:
                shown = ", ".join(f"{n} ({len(s)})" for n, s in sorted(names.items())[:3])
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                parts.append(f"{len(names)} name(s) carried by several {label}: {shown}{more}")
        return ("; ".join(parts) + "; run `assetsync sync --repair` to keep one of each (the "
                "one the live build uses) and delete the others")


def _named(resources: Iterable[Asset | FunctionResource]) -> dict[str, tuple[str, ...]]:
    by_name: dict[str, list[str]] = {}
    for r in resources:
        by_name.setdefault(r.friendly_name, []).append(r.sid)
    return {name: tuple(sids) for name, sids in by_name.items() if len(sids) > 1}


async def find_duplicates(
    client: ServerlessClient, service_sid: str, *, functions: bool = True
) -> Duplicates:
    """The names several Assets (and, with `functions`, Functions) of a service carry."""
    assets = _named(await client.list_assets(service_sid))
    fns = _named(await client.list_functions(service_sid)) if functions else {}
    return Duplicates(assets, fns)


async def consolidate(
    client: ServerlessClient, service_sid: str, environment_sid: str,
    ledgers: Sequence[StateLedger], *, on_event: EventCallback | None = None,
) -> tuple[str, ...]:
    """Keep one Asset (or Function) per name and delete the others; returns the SIDs deleted.

    Run once the build a sync made is live. Kept, per name: every one whose versions the live
    build uses, else the one the state recorded, else the oldest. Versions the state recorded
    under a deleted one are forgotten, so no later build names them. `ledgers`: the asset
    ledger, and the function ledger when the project deploys functions (Functions sharing a
    name are consolidated only then).
    """
    kinds = {ledger.kind: ledger for ledger in ledgers}
    found = await find_duplicates(client, service_sid, functions="function" in kinds)
    if not found:
        return ()
    env = await client.fetch_environment(service_sid, environment_sid)
    live = await client.fetch_build(service_sid, env.build_sid) if env.build_sid else None
    used = ({v.parent_sid for v in (*live.asset_versions, *live.function_versions)}
            if live is not None else set())
    deleted: list[str] = []
    for kind, names in (("asset", found.assets), ("function", found.functions)):
        ledger = kinds.get(kind)
        if ledger is None:
            continue
        family = ASSETS if kind == "asset" else FUNCTIONS
        for name, sids in sorted(names.items()):
            keep = {s for s in sids if s in used}
            if not keep:
                recorded = ledger.asset_sid(name)
                keep = {recorded if recorded in sids else sids[0]}
            ledger.record_asset(name, min(keep, key=sids.index))
            for sid in sids:
                if sid not in keep:
                    await _delete_resource(client, service_sid, sid, ledger, family)
                    deleted.append(sid)
                    _emit(on_event, SyncEvent(f"{kind}_deleted", path=name, sid=sid))
    return tuple(deleted)


async def repair_names(
    client: ServerlessClient, ledger: StateLedger, fn_ledger: StateLedger | None,
    on_event: EventCallback | None = None,
) -> str | None:
    """`sync --repair`, once the sync's build is live: `consolidate`, and the note saying what
    it deleted (None when no name had several)."""
    ledgers = [ledger] if fn_ledger is None else [ledger, fn_ledger]
    deleted = await consolidate(client, ledger.service_sid, ledger.environment_sid, ledgers,
                                on_event=on_event)
    if not deleted:
        return None
    return (f"repaired: deleted {len(deleted)} Asset(s)/Function(s) that shared a name with "
            "the one kept")


async def _delete_resource(
    client: ServerlessClient, service_sid: str, sid: str, ledger: StateLedger, family: Family
) -> None:
    """Delete one Asset or Function, forgetting the versions the state recorded under it."""
    gone = {v.sid for v in await family.list_versions(client, service_sid, sid)}
    ledger.state.forget_versions(ledger.target, service_sid, gone, kind=ledger.kind)
    if family is ASSETS:
        await client.delete_asset(service_sid, sid)
    else:
        await client.delete_function(service_sid, sid)
