"""The next build's service manifest as one service's sync makes it: its Function resource
while the files upload, its content once the build's versions are known. The format is
`assetsync.state.remote_manifest`'s, the wire work `assetsync.sync.remote_manifest`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from assetsync.plan.assess import Assessment
from assetsync.plan.assets import LiveBuild
from assetsync.state.ledger import StateLedger
from assetsync.state.remote_manifest import MANIFEST_LIMIT, Manifest, holds_digest
from assetsync.sync.phase_values import Request, Target
from assetsync.sync.remote_manifest import entries_of, manifest_function, upload_manifest
from assetsync.sync.uploads import Uploaded

__all__ = [
    "manifest_maker",
    "manifest_resource",
]


def manifest_maker(
    req: Request, at: Target, found: Assessment, live: LiveBuild | None, notes: list[str],
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


def manifest_resource(req: Request, at: Target,
                       live: LiveBuild | None) -> Awaitable[None] | None:
    """The service manifest's Function resource, made while the files upload rather than
    after them (None when `[sync] remote_manifest` is off)."""
    if not req.options.remote_manifest or at.ledger is None:
        return None
    ledger = StateLedger(req.state, req.target, at.ledger.service_sid,
                         at.ledger.environment_sid, kind="function")
    return manifest_function(req.client, ledger, live.service_manifest if live else None,
                             fresh=at.created)
