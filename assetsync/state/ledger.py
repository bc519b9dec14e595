"""The state bound to one target, service and environment: what apply records as it goes.

Every method commits at once (`assetsync.state.db` runs each `record_*` in its own fsync'd
transaction), so whatever the ledger was told survives a crash the moment the call returns.

Uploads are journalled as *intents* before they are sent (one transaction for the whole batch):
if the process dies after the server acknowledged an upload but before its SID was recorded,
the next run finds that version on the Asset and records it instead of uploading it again
(`assetsync.sync.apply.recover_uploads`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Protocol

from assetsync.errors import ApiError
from assetsync.frozen import replace
from assetsync.functions.plan import FunctionPlan, plan_functions, recorded_function_versions
from assetsync.limits import BuildLimits
from assetsync.plan.assets import LiveBuild, LiveVersion
from assetsync.remote.resources import Build, VersionRef, parse_build
from assetsync.state.db import State
from assetsync.state.records import UploadIntent, VersionRecord
from assetsync.state.remote_manifest import MANIFEST_PATH, is_reserved
from assetsync.state.service_records import AssetSidsOnFirstUse

if TYPE_CHECKING:
    from assetsync.functions.local import FunctionProject
    from assetsync.models import PublishedFile

__all__ = [
    "Ledger",
    "StateLedger",
    "UploadIntent",
    "VersionRecord",
    "now_iso",
    "plan_recorded_functions",
    "record_adopted_build",
    "recorded_build",
    "to_live_build",
]


def now_iso() -> str:
    """The current UTC time with microseconds, for ordering recorded builds."""
    # Microseconds: builds are ordered by this for rollback, and two can start in one second.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A kept manifest is compact JSON: `_MANIFEST_FORMAT`, and each version as a
# [sid, parent_sid, path, visibility] array (a `VersionRef`'s fields in order). Half the size of
# the API's JSON and a third of its parse time, and the live build's manifest is read by every
# sync. Manifests kept before (the API's JSON, no "format") are still read.
_MANIFEST_FORMAT = 2

# Asset SIDs looked up one row each before the ledger reads the service's whole map instead
# (a cold publish asks for every path; an incremental sync for one or two).
_SINGLE_LOOKUPS = 8


def _manifest(build: Build) -> str:
    return json.dumps({
        "format": _MANIFEST_FORMAT,
        "sid": build.sid,
        "service_sid": build.service_sid,
        "asset_versions": build.asset_versions,  # NamedTuples encode as arrays
        "function_versions": build.function_versions,
        "dependencies": build.dependencies,
        "runtime": build.runtime,
        "date_created": build.date_created,
    }, separators=(",", ":"))


def _from_manifest(obj: dict[str, object]) -> Build:
    """A build from a kept manifest (`_manifest`'s or, from older states, the API's JSON)."""
    if obj.get("format") != _MANIFEST_FORMAT:
        return parse_build(obj)

    def refs(items: object) -> tuple[VersionRef, ...]:
        if not isinstance(items, list):
            raise ValueError("versions are not a list")
        made = tuple(map(tuple.__new__, repeat(VersionRef), items))
        if set(map(len, made)) - {4}:  # C-level: a Python loop here showed in each sync
            raise ValueError("not a list of [sid, parent_sid, path, visibility] arrays")
        return made

    deps = obj.get("dependencies")
    sid, runtime, created = obj.get("sid"), obj.get("runtime"), obj.get("date_created")
    if not isinstance(sid, str) or not isinstance(deps, list):
        raise ValueError("no build SID or dependencies")
    return Build(
        sid=sid, service_sid=str(obj.get("service_sid") or ""), status="completed",
        asset_versions=refs(obj.get("asset_versions")),
        function_versions=refs(obj.get("function_versions")),
        dependencies=tuple((str(name), str(version)) for name, version in deps),
        runtime=runtime if isinstance(runtime, str) else None,
        date_created=created if isinstance(created, str) else None,
    )


def record_adopted_build(
    state: State, target: str, service_sid: str, environment_sid: str, build: Build
) -> None:
    """Record a completed build assetsync did not create (adopted, promoted, rolled back to),
    so the next sync sees no drift and need not fetch it."""
    state.record_build(target, service_sid, build_sid=build.sid, environment_sid=environment_sid,
                       status="completed", version_sids=[v.sid for v in build.asset_versions],
                       created_at=now_iso(), manifest=_manifest(build))


def recorded_build(state: State, target: str, service_sid: str, build_sid: str) -> Build | None:
    """A build assetsync created, from its kept manifest (None if none was kept)."""
    text = state.build_manifest(target, service_sid, build_sid)
    if not text:
        return None
    try:
        return replace(_from_manifest(json.loads(text)), status="completed")
    except (ValueError, TypeError, ApiError):
        return None  # unreadable: fetch it instead


def to_live_build(build: Build) -> LiveBuild:
    """The plan's view of a build from the API (or of a kept manifest: `recorded_build`)."""

    def live(refs: Iterable[VersionRef]) -> tuple[LiveVersion, ...]:
        # Same fields in the same order: each tuple becomes the other type without a lookup.
        return tuple(map(tuple.__new__, repeat(LiveVersion), refs))

    functions = live(build.function_versions)
    # assetsync's manifest Function rides along apart from the user's functions.
    own = [v for v in functions if is_reserved(v.path)]
    return LiveBuild(
        build_sid=build.sid,
        asset_versions=live(build.asset_versions),
        function_versions=tuple(v for v in functions if not is_reserved(v.path)) if own
        else functions,
        dependencies=build.dependencies,
        runtime=build.runtime,
        service_manifest=next((v for v in own if v.path == MANIFEST_PATH), None),
    )


def plan_recorded_functions(
    state: State, target: str, service_sid: str | None, functions: FunctionProject,
    files: Sequence[PublishedFile], live: LiveBuild | None, *, limits: BuildLimits, full: bool,
) -> FunctionPlan:
    """The functions' plan against the Function Versions this state recorded for the service
    and `live` (the live build for `sync`; the recorded one for the offline `plan`)."""
    live_sids = (
        frozenset(v.sid for v in live.function_versions) if live is not None else frozenset()
    )
    rows = ([(v.digest, v.path, v.visibility, v.version_sid)
             for v in state.versions(target, service_sid, kind="function")]
            if service_sid else [])
    return plan_functions(functions.functions, functions.dependencies,
                          recorded_function_versions(rows, live_sids), live,
                          asset_paths=frozenset(f.path for f in files), limits=limits, full=full)


class Ledger(Protocol):
    """What apply needs from the state, for one service and environment."""

    service_sid: str

    def asset_sid(self, path: str) -> str | None: ...

    def record_asset(self, path: str, asset_sid: str) -> None: ...

    def record_assets(self, assets: Mapping[str, str]) -> None: ...

    def forget_asset(self, path: str) -> None: ...

    def record_versions(self, versions: Sequence[VersionRecord]) -> None: ...

    def versions(self) -> tuple[VersionRecord, ...]: ...

    def record_intents(self, intents: Sequence[UploadIntent]) -> None: ...

    def intents(self) -> tuple[UploadIntent, ...]: ...

    def clear_intents(self) -> None: ...

    def record_pending_build(self, build: Build) -> None: ...

    def record_build_status(self, build_sid: str, status: str) -> None: ...

    def record_deployment(self, build_sid: str, deployment_sid: str) -> None: ...


class StateLedger:
    """The state, bound to one target, service and environment (apply's `Ledger`)."""

    def __init__(self, state: State, target: str, service_sid: str, environment_sid: str,
                 *, kind: str = "asset") -> None:
        self.state = state
        self.target = target
        self.service_sid = service_sid
        self.environment_sid = environment_sid
        # "function": the same journal over the Function tables (`asset_sid` is then a
        # Function's SID); builds are recorded alike.
        self.kind = kind
        # Path -> Asset SID: the service's whole map once read; before that, the paths looked
        # up one at a time (an incremental sync needs one or two of its 1,000).
        self._known: dict[str, str] | None = None
        self._some: dict[str, str | None] = {}

    @property
    def _assets(self) -> dict[str, str]:
        if self._known is None:
            self._known = self.state.asset_sids(self.target, self.service_sid, kind=self.kind)
            self._some.clear()
        return self._known

    def know_assets(self, assets: Mapping[str, str]) -> None:
        """Path -> Asset SID as the caller has just read it from this state (a sync reads it
        with the rest of the service's record), unless the ledger has read it already. A map
        still waiting to be read (`AssetSidsOnFirstUse`) is left unread."""
        if self._known is None and not (
            isinstance(assets, AssetSidsOnFirstUse) and not assets.loaded
        ):
            self._known = dict(assets)
            self._some.clear()

    def asset_sid(self, path: str) -> str | None:
        if self._known is not None:
            return self._known.get(path)
        if path not in self._some:
            if len(self._some) >= _SINGLE_LOOKUPS:  # many paths: one read of them all
                return self._assets.get(path)
            self._some[path] = self.state.asset_sid(self.target, self.service_sid, path,
                                                    kind=self.kind)
        return self._some[path]

    def record_asset(self, path: str, asset_sid: str) -> None:
        self.record_assets({path: asset_sid})

    def record_assets(self, assets: Mapping[str, str]) -> None:
        """Path -> Asset SID for several paths, in one transaction."""
        if assets:
            self.state.record_assets(self.target, self.service_sid, assets, kind=self.kind)
            (self._some if self._known is None else self._known).update(assets)

    def forget_asset(self, path: str) -> None:
        self.state.forget_asset(self.target, self.service_sid, path, kind=self.kind)
        if self._known is None:
            self._some[path] = None
        else:
            self._known.pop(path, None)


    def record_versions(self, versions: Sequence[VersionRecord]) -> None:
        """Several acknowledged uploads in one transaction (a group commit)."""
        self.state.record_versions(self.target, self.service_sid, versions, kind=self.kind)

    def versions(self) -> tuple[VersionRecord, ...]:
        """Every version recorded for this service."""
        return self.state.versions(self.target, self.service_sid, kind=self.kind)

    def record_intents(self, intents: Sequence[UploadIntent]) -> None:
        """Journal uploads about to be sent (one transaction)."""
        self.state.record_upload_intents(self.target, self.service_sid, intents, kind=self.kind)

    def intents(self) -> tuple[UploadIntent, ...]:
        """Uploads journalled by a run that did not finish."""
        return self.state.upload_intents(self.target, self.service_sid, kind=self.kind)

    def clear_intents(self) -> None:
        """Every journalled upload is settled (recorded, or known not to have happened)."""
        self.state.clear_upload_intents(self.target, self.service_sid, kind=self.kind)

    def record_pending_build(self, build: Build) -> None:
        """A build just created: its versions, its manifest, and the journal row that makes a
        rerun finish it."""
        self.state.record_build(
            self.target, self.service_sid, build_sid=build.sid,
            environment_sid=self.environment_sid, status="building",
            version_sids=[v.sid for v in build.asset_versions], created_at=now_iso(),
            manifest=_manifest(build), pending=True,
        )

    def record_build_status(self, build_sid: str, status: str) -> None:
        self.state.set_build_status(self.target, self.service_sid, build_sid, status)
        if status == "failed":
            self.state.clear_pending(self.target, self.service_sid, self.environment_sid)

    def record_deployment(self, build_sid: str, deployment_sid: str) -> None:
        self.state.record_deployment(
            self.target, self.service_sid, self.environment_sid, build_sid, deployment_sid
        )
