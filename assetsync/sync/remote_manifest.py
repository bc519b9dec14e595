"""The service manifest over the wire: read the live build's (and import it into a state that
does not know that build), compose and upload the next build's, and check just before a deploy
that the live build is still the one the sync assessed.

The format and the import are `assetsync.state.remote_manifest`'s; docs/sync.md, "State that
travels with the build", says what a user sees.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import xxhash

from assetsync.errors import NotFoundError
from assetsync.frozen import frozen
from assetsync.models import DIGEST_PREFIX, PublishedFile, Visibility
from assetsync.plan.assets import LiveVersion
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build
from assetsync.state.db import State
from assetsync.state.ledger import StateLedger
from assetsync.state.remote_manifest import (
    MANIFEST_LIMIT,
    MANIFEST_PATH,
    Manifest,
    ManifestEntry,
    Verified,
    decode,
    encode,
    import_manifest,
    verify,
)
from assetsync.sync.uploads import FUNCTIONS, upload_files

__all__ = [
    "ManifestRead",
    "entries_of",
    "manifest_function",
    "moved_live",
    "read_live_manifest",
    "sync_state_from_live",
    "upload_manifest",
]

# Said when the live build has no manifest to read (another tool deployed over assetsync's
# build, or it was made with the manifest turned off).
_FALLBACK = ("the live build {sid} carries no assetsync manifest this version can read "
             "(another tool such as twilio-run deployed it, or [sync] remote_manifest was "
             "off): every file is uploaded again, as without one")


@frozen
class ManifestRead:
    """Where a sync's records of the live build came from: `source` "local" or "service
    manifest"; `note` a line for the result (None when there is nothing to say)."""

    source: str
    note: str | None = None


def _manifest_ref(build: Build) -> tuple[str, str] | None:
    """(Function SID, Function Version SID) of the build's manifest, if it has one."""
    for ref in build.function_versions:
        if ref.path == MANIFEST_PATH:
            return ref.parent_sid, ref.sid
    return None


async def read_live_manifest(client: ServerlessClient, build: Build) -> Verified | None:
    """The build's manifest checked against its versions, or None when it carries none that
    assetsync can read."""
    ref = _manifest_ref(build)
    if ref is None:
        return None
    try:
        code = await client.fetch_function_version_content(build.service_sid, *ref)
    except NotFoundError:
        return None
    found = decode(code)
    return verify(found, build) if found is not None else None


async def sync_state_from_live(
    client: ServerlessClient, state: State, target: str, service_sid: str | None,
    environment: str, live: Build | None, *, enabled: bool, adopt: bool = False,
) -> ManifestRead:
    """Bring a state that does not know the live build up to date from the build's manifest.

    A state that recorded deploying the live build is used as it is ("local"). One with no
    record of it (a fresh checkout, a CI runner without a cache) reads the live build's
    manifest and records the entries the build really holds. An older state (another machine
    deployed since) takes the manifest only when the build is exactly the one it was written
    for, so a build another tool made by carrying the manifest over is still drift; and not
    with `adopt`, which builds on the live build keeping the files this state does not know
    as another's. With no manifest, the sync goes on as it did before manifests existed (a
    fresh state uploads everything; an older one reports drift).
    """
    if live is None or service_sid is None or not enabled:
        return ManifestRead("local")
    env = state.get_environment(target, service_sid, environment)
    if env is None or env.build_sid == live.sid or (adopt and env.build_sid):
        return ManifestRead("local")
    read = await read_live_manifest(client, live)
    if read is None or (env.build_sid and not read.exact):
        return ManifestRead("local", None if env.build_sid else _FALLBACK.format(sid=live.sid))
    manifest = read.manifest
    import_manifest(state, target, service_sid, env.environment_sid, live, manifest)
    skipped = (f"; {read.dropped} entr(ies) no longer in the build were left out"
               if read.dropped else "")
    return ManifestRead("service manifest", (
        f"state read from the service manifest of live build {live.sid} "
        f"({len(manifest.assets)} file(s), {len(manifest.functions)} function(s){skipped})"))


def entries_of(files: Iterable[tuple[PublishedFile, str]]) -> tuple[ManifestEntry, ...]:
    """Manifest rows for (published file, version SID) pairs."""
    return tuple(ManifestEntry(f.path, f.visibility.value, f.digest, sid, f.size,
                               f.content_type, f.source, f.variant) for f, sid in files)


async def manifest_function(client: ServerlessClient, ledger: StateLedger,
                            live: LiveVersion | None, *, fresh: bool = False) -> None:
    """The manifest's Function: recorded, else the live build's, else one of its name, else
    a new one (recorded at once, as every Function assetsync makes). `fresh`: the service is
    new (this run made it), so it has none to look for."""
    recorded = ledger.asset_sid(MANIFEST_PATH)
    if recorded is not None:
        return
    sid = live.asset_sid if live is not None else None
    if sid is None:
        found = ([] if fresh else [fn.sid for fn in await client.list_functions(
            ledger.service_sid) if fn.friendly_name == MANIFEST_PATH])
        sid = found[0] if found else (
            await client.create_function(ledger.service_sid, MANIFEST_PATH)).sid
    ledger.record_asset(MANIFEST_PATH, sid)


async def upload_manifest(
    client: ServerlessClient, ledger: StateLedger, manifest: Manifest, live: LiveVersion | None,
) -> str | None:
    """The Function Version holding `manifest`: one recorded with the same content (a build
    retried after a failure, or one that changed only dependencies) is reused, else a new one
    is uploaded and recorded. None past `MANIFEST_LIMIT` (the build goes without one).
    `ledger` is the service's function ledger."""
    code = encode(manifest)
    if len(code) > MANIFEST_LIMIT:
        return None
    digest = DIGEST_PREFIX + xxhash.xxh3_128(code).hexdigest()
    for v in ledger.versions():
        if (v.digest, v.path, v.visibility) == (digest, MANIFEST_PATH, "private"):
            return v.version_sid
    await manifest_function(client, ledger, live)
    fd, tmp = tempfile.mkstemp(prefix="assetsync-manifest-", suffix=".js")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(code)
        # Through the upload journal like any Function Version: recorded once acknowledged,
        # a lost answer looked up (by content) before it is sent again.
        sent = await upload_files(client, ledger.service_sid, [PublishedFile(
            MANIFEST_PATH, Visibility.PRIVATE, digest, len(code), "(assetsync manifest)", tmp,
            "application/javascript")], ledger, concurrency=1, on_event=None, family=FUNCTIONS)
    finally:
        os.unlink(tmp)
    return sent[0].sid


async def moved_live(
    client: ServerlessClient, service_sid: str, environment_sid: str, assessed: str | None,
) -> Build | None:
    """Just before a deploy: None when the environment still serves the build the sync
    assessed (`assessed`, None for none), else the build it serves now.

    Twilio has no conditional deployment, so a deploy landing between this read and ours can
    still win; the read narrows that window from the whole upload and build to one request.
    """
    env = await client.fetch_environment(service_sid, environment_sid)
    if (env.build_sid or None) == assessed or not env.build_sid:
        return None
    return await client.fetch_build(service_sid, env.build_sid)
