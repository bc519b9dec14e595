"""Frozen results and progress events of the sync engine (`assetsync.sync.run`).

Kept apart from the engine so the CLI, watch mode and benchmarks can import the shapes without the
engine's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from assetsync.frozen import field, frozen

if TYPE_CHECKING:  # annotations only: `import assetsync` must not load asyncio (start-up)
    from assetsync.functions.plan import FunctionPlan
    from assetsync.functions.variables import VariablePlan
    from assetsync.prepare.classify import Issue
    from assetsync.sync.urlmap import UrlEntry

__all__ = [
    "EventCallback",
    "FunctionsOutcome",
    "PruneResult",
    "StatusResult",
    "SyncEvent",
    "SyncResult",
]


@frozen
class SyncEvent:
    """One step of a sync, for progress display; nothing below the CLI prints.

    Kinds, in order of appearance: `scan_issue` (path, message), `scan_done` (files,
    bytes = bytes hashed, total = files hashed), `transform_started` (total), `transformed`
    (path, files = done, total, bytes = output size), `secrets_checked` (files = files read,
    bytes = bytes read, total = public and protected files checked; see
    `assetsync.prepare.secret_check`), `carried` (files = files prepared
    again, total = files to publish: the last sync's outcome stood in for the others; see
    `assetsync.state.last_outcome`), `sharded` (total = services the site
    spans, message = their names; before any write), `connected` (message =
    service/environment), `planned` (files = uploads, bytes = upload bytes, total = desired
    files), `asset_created` / `function_created` (path, sid; recorded with the rest of its batch),
    `upload_started`
    (path, bytes), `uploaded` (path, bytes, sid; emitted once the version SID is durable in
    state), `changed_during_upload` (path), `build_created` (sid, files = asset versions,
    total = function versions), `build_status` (sid, message = status),
    `deployment_acknowledged` (sid = deployment; before it is recorded), `deployed` (sid),
    `recorded` (sid = build), `retiring` (sid = service, message = what is deleted: a service
    of a sharded site left with no file; before the request), and at any time `retry`
    (message) and `note` (message).
    """

    kind: str
    path: str | None = None
    sid: str | None = None
    files: int = 0
    bytes: int = 0
    total: int = 0
    message: str = ""


EventCallback = Callable[[SyncEvent], None]


@frozen
class FunctionsOutcome:
    """What a sync did (or would do) to the functions: paths only, never code.

    `paths` holds every function of the new build as (path, visibility)."""

    uploaded: tuple[str, ...] = ()
    reused: int = 0
    dropped: tuple[str, ...] = ()
    dependencies: tuple[tuple[str, str], ...] = ()
    dependencies_changed: bool = False
    paths: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "uploaded": list(self.uploaded),
            "reused": self.reused,
            "dropped": list(self.dropped),
            "dependencies": {name: version for name, version in self.dependencies},
            "dependencies_changed": self.dependencies_changed,
            "paths": {path: visibility for path, visibility in self.paths},
        }


@frozen
class SyncResult:
    """What one sync did (or, with `dry_run`, would do).

    `requests` counts every HTTP attempt (retries included); `write_requests` those that were not
    GETs; `bytes_sent` request body bytes. A sharded sync sums its services here (the SIDs are the
    first service's) and lists each service's own result in `services`.
    """

    service: str
    environment: str
    service_sid: str | None
    environment_sid: str | None
    domain_name: str | None
    build_sid: str | None
    deployment_sid: str | None
    uploaded: tuple[str, ...]
    reused: int
    created_assets: tuple[str, ...]
    dropped: tuple[str, ...]
    kept_foreign: tuple[str, ...]
    function_versions: int
    upload_bytes: int
    bytes_sent: int
    requests: int
    write_requests: int
    retries: int
    dry_run: bool
    noop: bool
    urls: tuple[UrlEntry, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    services: tuple[SyncResult, ...] = ()
    functions: FunctionsOutcome | None = None  # None: the live build's were carried forward
    variables: VariablePlan | None = None  # keys only; None: no .env
    # Files held back at their live version because they cannot be published (watch mode's
    # `hold_blocked`): one `path: problem` line each.
    held_back: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # A summary, not every field: a site's result holds thousands of URLs, and asyncio
        # formats the repr of a finished task's result when `asyncio.run` restores its SIGINT
        # handler (~3 ms per 1,000 URLs, twice, on every sync).
        return (
            f"SyncResult(service={self.service!r}, environment={self.environment!r}, "
            f"build_sid={self.build_sid!r}, deployment_sid={self.deployment_sid!r}, "
            f"uploaded={len(self.uploaded)}, reused={self.reused}, dropped={len(self.dropped)}, "
            f"urls={len(self.urls)}, services={len(self.services)}, dry_run={self.dry_run}, "
            f"noop={self.noop})"
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (no credentials: none are ever held here)."""
        doc: dict[str, object] = {
            "service": self.service,
            "environment": self.environment,
            "service_sid": self.service_sid,
            "environment_sid": self.environment_sid,
            "domain_name": self.domain_name,
            "build_sid": self.build_sid,
            "deployment_sid": self.deployment_sid,
            "dry_run": self.dry_run,
            "noop": self.noop,
            "uploaded": list(self.uploaded),
            "reused": self.reused,
            "created_assets": list(self.created_assets),
            "dropped": list(self.dropped),
            "kept_foreign": list(self.kept_foreign),
            "function_versions": self.function_versions,
            "upload_bytes": self.upload_bytes,
            "bytes_sent": self.bytes_sent,
            "requests": self.requests,
            "write_requests": self.write_requests,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed_s, 3),
            "urls": {row.path: row.url for row in self.urls},
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }
        if self.functions is not None:
            doc["functions"] = self.functions.to_json()
        if self.variables is not None:
            doc["variables"] = self.variables.to_json()
        if self.services:
            doc["services"] = [r.to_json() for r in self.services]
        return doc


@frozen
class StatusResult:
    """The environment's live build next to what assetsync recorded, and what a sync would do.

    `functions` and `variables` are set when the project deploys functions (a Toolkit
    functions folder; `variables` also needs a .env): what a sync would do to them against the
    live build and the environment's Variables, by path and by key (never a value or code).
    `function_redeploys`: functions whose recorded version the next build takes in place of
    the live one, with no upload (after a rollback, say). `runtime_change` is (live runtime,
    configured runtime) when a sync would change it.
    """

    service: str
    environment: str
    service_sid: str | None
    environment_sid: str | None
    domain_name: str | None
    live_build_sid: str | None
    live_build_status: str | None
    recorded_build_sid: str | None
    pending_build_sid: str | None
    drift: str | None
    pending_uploads: tuple[str, ...]
    pending_drops: tuple[str, ...]
    needs_build: bool
    counts: Mapping[str, int] = field(default_factory=dict)
    services: tuple[StatusResult, ...] = ()
    functions: FunctionPlan | None = None  # None: the project deploys no functions
    variables: VariablePlan | None = None  # keys only; None: no functions or no .env
    function_redeploys: tuple[str, ...] = ()
    runtime_change: tuple[str | None, str] | None = None
    # Names several Assets/Functions share (another tool made them): what `sync --repair` fixes.
    duplicates: str | None = None
    # Where the records of the live build came from: "local" or "service manifest" (read
    # from the live build's own manifest this time: assetsync.state.remote_manifest).
    state_source: str = "local"
    # The problems that stop a sync (`Assessment.errors`): the very lines `plan` prints.
    problems: tuple[Issue, ...] = ()

    @property
    def in_sync(self) -> bool:
        """No drift, nothing to build, no Variable to change, and nothing that blocks a sync
        (a folder `sync` refuses is not what is served)."""
        return (self.drift is None and not self.needs_build and not self.problems
                and not (self.variables is not None and self.variables.changed))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (with `services`, one per service, for a sharded site)."""
        doc: dict[str, object] = {
            "service": self.service,
            "environment": self.environment,
            "service_sid": self.service_sid,
            "environment_sid": self.environment_sid,
            "domain_name": self.domain_name,
            "live_build_sid": self.live_build_sid,
            "live_build_status": self.live_build_status,
            "recorded_build_sid": self.recorded_build_sid,
            "pending_build_sid": self.pending_build_sid,
            "drift": self.drift,
            "in_sync": self.in_sync,
            "pending_uploads": list(self.pending_uploads),
            "pending_drops": list(self.pending_drops),
            "needs_build": self.needs_build,
            "counts": dict(self.counts),
            "duplicates": self.duplicates,
            "state_source": self.state_source,
            "problems": [{"path": i.path, "message": i.message, "severity": i.severity}
                         for i in self.problems],
        }
        if self.functions is not None:
            change = self.runtime_change
            doc["functions"] = {
                **self.functions.to_json(),
                "redeploys": list(self.function_redeploys),
                "runtime_change": ({"from": change[0], "to": change[1]}
                                   if change is not None else None),
            }
        if self.variables is not None:
            doc["variables"] = self.variables.to_json()
        if self.services:
            doc["services"] = [s.to_json() for s in self.services]
        return doc


@frozen
class PruneResult:
    """Asset resources no live build uses: deleted, or (dry run) to delete."""

    service_sid: str | None  # a sharded site's: the configured service's (see `services`)
    candidates: tuple[tuple[str, str], ...]  # (asset SID, friendly name)
    deleted: tuple[str, ...]
    dry_run: bool
    service: str | None = None  # its unique name
    services: tuple[PruneResult, ...] = ()  # a sharded site: each service's own result

    def owners(self) -> dict[str, tuple[str | None, str | None]]:
        """Asset SID -> (service unique name, service SID) of each candidate."""
        parts = self.services or (self,)
        return {sid: (p.service, p.service_sid) for p in parts for sid, _name in p.candidates}

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; each candidate names its service (a sharded site has several)."""
        owners = self.owners()
        return {
            "service_sid": self.service_sid,
            "dry_run": self.dry_run,
            "candidates": [{"sid": s, "path": n, "service": owners.get(s, (None, None))[0],
                            "service_sid": owners.get(s, (None, None))[1]}
                           for s, n in self.candidates],
            "deleted": list(self.deleted),
        }
