"""Upload new asset versions: journal them, send them concurrently, record what was acknowledged.

1. The batch is journalled as *upload intents* (asset, digest, path, visibility, start time) in
   one transaction before the first byte is sent.
2. Uploads run concurrently, streamed from disk; each acknowledged version is recorded with the
   digest of the bytes actually sent, in group commits (acknowledgements that arrive while one
   fsync'd transaction is being written share the next one), and only then reported `uploaded`.
3. When the batch is over the intents are cleared. If the process dies first, the next run calls
   `recover_uploads`: for each journalled asset, a version the server holds that assetsync never
   recorded, with the intent's path and visibility, created after the intent was written, and
   the only such one, *is* that upload: it is recorded instead of being sent again. Anything
   ambiguous is simply uploaded again (an orphan version is harmless: Twilio deletes versions no
   build uses after 7 days). A Function Version is adopted only if its content (the API gives a
   function's code back) is the intent's; an Asset Version's content cannot be read back, so
   its adoption rests on the server acting only on complete bodies (Twilio's and the
   emulator's upload host refuse a cut-short one).
4. The same rule, within a run: an upload whose answer was lost (reset, closed, timed out after
   it was sent whole) looks for the version it made before it is sent again (`_find_lost`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from functools import partial

import xxhash

from assetsync.errors import ApiError, NotFoundError
from assetsync.frozen import frozen
from assetsync.models import DIGEST_PREFIX, PublishedFile
from assetsync.remote.adopt import CLOCK_SKEW, parse_time
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Asset, AssetVersion, FunctionResource
from assetsync.remote.upload import UploadedVersion
from assetsync.results import EventCallback, SyncEvent
from assetsync.state.ledger import Ledger, UploadIntent, VersionRecord, now_iso

__all__ = ["ASSETS", "FUNCTIONS", "Family", "Uploaded", "recover_uploads", "run_all",
           "upload_files"]


@frozen
class Family:
    """Assets or Functions: the API gives both the same shape (a resource per path named after
    it, versions on the upload host), so one journal serves both; these are the client's
    methods for one of them, and the ledger's `kind`."""

    kind: str
    list_resources: Callable[[ServerlessClient, str], Awaitable[Sequence[Asset | FunctionResource]]]
    create_resource: Callable[[ServerlessClient, str, str], Awaitable[Asset | FunctionResource]]
    list_versions: Callable[[ServerlessClient, str, str], Awaitable[Sequence[AssetVersion]]]
    upload_version: Callable[..., Awaitable[UploadedVersion]]
    # A version's content read back (Functions only: the API never gives an Asset's back).
    content: Callable[[ServerlessClient, str, str, str], Awaitable[str]] | None = None


ASSETS = Family("asset", ServerlessClient.list_assets, ServerlessClient.create_asset,
                ServerlessClient.list_asset_versions, ServerlessClient.upload_asset_version)
FUNCTIONS = Family("function", ServerlessClient.list_functions, ServerlessClient.create_function,
                   ServerlessClient.list_function_versions,
                   ServerlessClient.upload_function_version,
                   ServerlessClient.fetch_function_version_content)


@frozen
class Uploaded:
    """One acknowledged and recorded upload. `changed`: the bytes sent are not the ones
    prepared (the file changed after it was hashed and checked): the version is recorded under
    the digest of what was sent, and must not go into this run's build (DESIGN.md invariant 6:
    only checked content is published)."""

    path: str
    sid: str
    changed: bool = False


async def run_all(
    jobs: Iterable[Callable[[], Awaitable[Awaitable[None] | None]]], *, limit: int,
    failures: list[Exception] | None = None,
) -> None:
    """Run jobs, at most `limit` at a time; the first failure stops new jobs from starting.

    `failures`: a list shared by several `run_all` going on side by side, so that the first failure
    in any of them stops them all (each raises it). A job may return a tail (an awaitable): it runs
    after the job's place is given to the next job. An upload's tail records what the server
    acknowledged: held in its place, the fsync'd record kept a request slot idle, and the group
    commit then freed ten slots at once, so the uploads went out in lock-step waves rather than one
    as each slot freed.

    Jobs already in flight are left to finish rather than cancelled: an upload the server has
    acknowledged is then recorded, instead of being lost and sent again by the next run. The
    first error is raised once they are done.
    """
    slots = asyncio.Semaphore(max(1, limit))
    errors: list[Exception] = [] if failures is None else failures

    async def one(job: Callable[[], Awaitable[Awaitable[None] | None]]) -> None:
        async with slots:
            if errors:
                return
            try:
                tail = await job()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others finish
                errors.append(exc)
                return
        if tail is not None:
            try:
                await tail
            except Exception as exc:  # noqa: BLE001 - as above
                errors.append(exc)

    await asyncio.gather(*(one(job) for job in jobs))
    if errors:
        raise errors[0]


# Up to this many uploads, the journal writes (a transaction and an fsync each, well under a
# millisecond) run on the event loop: a hop to a worker thread and back costs about as much as
# the write, and there are too few uploads in flight for a short stall to hold any up.
_INLINE_WRITES_MAX = 4


async def _write_with(inline: bool, fn: Callable[..., object], *args: object) -> None:
    if inline:
        fn(*args)
    else:
        await asyncio.to_thread(fn, *args)


class _GroupCommit:
    """Records versions in as few fsync'd transactions as the acknowledgements allow."""

    def __init__(self, ledger: Ledger, *, inline: bool = False) -> None:
        self.ledger = ledger
        self.inline = inline
        self.waiting: list[tuple[VersionRecord, asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def record(self, version: VersionRecord) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((version, done))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        await asyncio.shield(done)  # a cancelled upload still gets its acknowledgement recorded

    async def _write(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            try:
                # Off the event loop (unless there are only a few): uploads keep flowing
                # during the fsync.
                await _write_with(self.inline, self.ledger.record_versions,
                                  [v for v, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiter, who raises it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


async def upload_files(
    client: ServerlessClient,
    service_sid: str,
    files: Sequence[PublishedFile],
    ledger: Ledger,
    *,
    concurrency: int,
    on_event: EventCallback | None,
    family: Family = ASSETS,
    failures: list[Exception] | None = None,
) -> list[Uploaded]:
    """Upload versions concurrently, recording each as soon as it is acknowledged.

    The first fatal error stops new uploads from starting (a bad credential or a rejected file
    ends the run quickly); the ones in flight finish and are recorded. `failures`: see
    `run_all` (shared with work going on beside these uploads).
    """
    if not files:
        return []
    started = now_iso()
    since = parse_time(started)
    intents = [UploadIntent(path=f.path, digest=f.digest, visibility=f.visibility.value,
                            size=f.size, asset_sid=ledger.asset_sid(f.path) or "",
                            created_at=started) for f in files]
    inline = len(files) <= _INLINE_WRITES_MAX
    await _write_with(inline, ledger.record_intents, intents)
    commits = _GroupCommit(ledger, inline=inline)
    done: list[Uploaded] = []
    # Recording a version settles the intent of the same (path, digest, visibility); one sent
    # with other bytes (the file changed after it was hashed) leaves its intent to clear.
    unsettled = [False]

    async def upload(file: PublishedFile) -> Awaitable[None]:
        asset_sid = ledger.asset_sid(file.path)
        if asset_sid is None:  # ensure_assets ran first; a None here is a bug
            raise RuntimeError(f"no {family.kind} resource recorded for {file.path}")
        if on_event is not None:
            on_event(SyncEvent("upload_started", path=file.path, bytes=file.size))

        async def send(asset: str) -> UploadedVersion:
            return await family.upload_version(
                client, service_sid, asset, path=file.path, visibility=file.visibility.value,
                content_path=file.content_path, content_type=file.content_type,
                find_lost=partial(_find_lost, client, ledger, family, asset, file, since),
            )

        try:
            sent = await send(asset_sid)
        except NotFoundError:
            # The Asset resource was deleted behind assetsync's back (the Console, a prune from
            # another machine): forget it and its versions, make a new one, send again.
            await asyncio.to_thread(ledger.forget_asset, file.path)
            asset_sid = (await family.create_resource(client, service_sid, file.path)).sid
            await asyncio.to_thread(ledger.record_asset, file.path, asset_sid)
            sent = await send(asset_sid)
        return acknowledged(file, sent)  # recorded after the request slot is given up

    async def acknowledged(file: PublishedFile, sent: UploadedVersion) -> None:
        # Record what was actually sent: if the file changed since it was hashed, the version
        # holds the new bytes and must never be reused for the old digest.
        await commits.record(VersionRecord(service_sid, sent.digest, file.path,
                                           file.visibility.value, sent.version.sid, sent.size,
                                           now_iso()))
        if sent.digest != file.digest:
            unsettled[0] = True
            if on_event is not None:
                on_event(SyncEvent("changed_during_upload", path=file.path, sid=sent.version.sid))
        if on_event is not None:
            on_event(SyncEvent("uploaded", path=file.path, sid=sent.version.sid, bytes=sent.size))
        done.append(Uploaded(file.path, sent.version.sid, changed=sent.digest != file.digest))

    try:
        await run_all((partial(upload, file) for file in files), limit=concurrency,
                      failures=failures)
    except Exception:
        # Every upload that was acknowledged has been recorded (the ones in flight finished).
        await _write_with(inline, ledger.clear_intents)
        raise
    if unsettled[0]:
        await _write_with(inline, ledger.clear_intents)
    return done


async def _find_lost(
    client: ServerlessClient, ledger: Ledger, family: Family, asset_sid: str,
    file: PublishedFile, since: datetime | None,
) -> str | None:
    """The version an upload whose answer was lost made, if any. Any fresh one was made by
    this upload's lost attempts (one file per asset in a batch), each sent whole: the newest
    holds these bytes."""
    versions = await family.list_versions(client, ledger.service_sid, asset_sid)
    known = {v.version_sid for v in ledger.versions()}
    fresh = _fresh(versions, known, file.path, file.visibility.value, since)
    if not fresh:
        return None
    # The newest, by date, then by place in the list (dates have whole seconds; `_fresh`
    # kept only versions with one).
    newest = max(range(len(fresh)), key=lambda i: (parse_time(fresh[i].date_created), i))
    return fresh[newest].sid


def _fresh(
    versions: Sequence[AssetVersion], known: set[str], path: str, visibility: str,
    since: datetime | None,
) -> list[AssetVersion]:
    """The intent rule: versions assetsync never recorded, with the intent's path and
    visibility, made since the intent was written (less the clock skew), oldest first."""
    if since is None:
        return []
    return [
        v for v in versions
        if v.sid not in known and v.path == path and v.visibility == visibility
        and (created := parse_time(v.date_created)) is not None and created >= since - CLOCK_SKEW
    ]


async def _holds(
    client: ServerlessClient, family: Family, service_sid: str, owner_sid: str,
    version_sid: str, digest: str,
) -> bool:
    """Whether a version holds the content of `digest`, as far as the API can tell."""
    if family.content is None:
        return True  # an Asset Version's content cannot be read back (api-contract.md §3.6)
    try:
        content = await family.content(client, service_sid, owner_sid, version_sid)
    except ApiError:
        return False
    return DIGEST_PREFIX + xxhash.xxh3_128(content.encode()).hexdigest() == digest


async def recover_uploads(
    client: ServerlessClient, ledger: Ledger, family: Family = ASSETS
) -> int:
    """Record the uploads a crashed run got acknowledged but not recorded; returns how many.

    Costs one GET per journalled asset, and only after a run that did not finish its uploads.
    """
    intents = ledger.intents()
    if not intents:
        return 0
    recorded = ledger.versions()
    known = {v.version_sid for v in recorded}
    have = {(v.digest, v.path, v.visibility) for v in recorded}
    by_asset: dict[str, list[UploadIntent]] = defaultdict(list)
    for intent in intents:
        by_asset[intent.asset_sid].append(intent)
    adopted: list[VersionRecord] = []
    for asset_sid, items in sorted(by_asset.items()):
        intent = items[0]
        if not asset_sid or len({(i.digest, i.path, i.visibility) for i in items}) != 1:
            continue  # two different contents journalled for one asset: cannot tell which
        if (intent.digest, intent.path, intent.visibility) in have:
            continue  # it was recorded after all
        try:
            versions = await family.list_versions(client, ledger.service_sid, asset_sid)
        except NotFoundError:
            continue
        fresh = _fresh(versions, known, intent.path, intent.visibility,
                       parse_time(intent.created_at))
        if len(fresh) == 1 and await _holds(client, family, ledger.service_sid, asset_sid,
                                            fresh[0].sid, intent.digest):
            adopted.append(VersionRecord(ledger.service_sid, intent.digest, intent.path,
                                         intent.visibility, fresh[0].sid, intent.size, now_iso()))
    if adopted:
        await asyncio.to_thread(ledger.record_versions, adopted)
    await asyncio.to_thread(ledger.clear_intents)
    return len(adopted)
