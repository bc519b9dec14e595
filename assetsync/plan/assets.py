"""The plan: desired files + what assetsync recorded + the environment's live build -> the exact
assets to create, versions to upload or reuse, paths to drop, and whether a build is needed.

Pure and deterministic: the same inputs give the same, sorted plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_not, itemgetter, not_
from types import MappingProxyType
from typing import NamedTuple

from assetsync.frozen import field, frozen
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.prepare.classify import Issue

__all__ = [
    "LiveBuild",
    "LiveVersion",
    "Plan",
    "PlanCounts",
    "RecordedService",
    "build_plan",
]

VersionKey = tuple[str, str, str]  # (digest, path, visibility value)


def _frozen_map(value: Mapping[object, object] | None = None) -> Mapping[object, object]:
    return MappingProxyType(dict(value or {}))


@frozen
class RecordedService:
    """What assetsync recorded about one service and environment.

    Attributes:
        asset_sids: published path -> Asset SID.
        versions: (digest, path, visibility) -> Asset Version SID.
        owned_paths: paths assetsync published in the build last deployed to the environment.
        deployed_version_sids: assetsync's own version SIDs in that build.
        last_build_sid: that build, or None if assetsync never deployed here.
    """

    asset_sids: Mapping[str, str] = field(default_factory=_frozen_map)  # type: ignore[arg-type]
    versions: Mapping[VersionKey, str] = field(
        default_factory=_frozen_map  # type: ignore[arg-type]
    )
    owned_paths: frozenset[str] = frozenset()
    deployed_version_sids: frozenset[str] = frozenset()
    last_build_sid: str | None = None


class LiveVersion(NamedTuple):
    """A version inside the live build (asset or function), as the API embeds it (a
    NamedTuple: a build holds up to 1,100, made from the API's in one C-level step)."""

    sid: str
    asset_sid: str
    path: str
    visibility: str


@frozen
class LiveBuild:
    """The build currently deployed to the environment."""

    build_sid: str
    asset_versions: tuple[LiveVersion, ...] = ()
    function_versions: tuple[LiveVersion, ...] = ()
    dependencies: tuple[tuple[str, str], ...] = ()
    runtime: str | None = None
    # assetsync's own private manifest Function (assetsync.state.remote_manifest): never in
    # `function_versions`, so no plan carries it over, drops it or lists it as the user's.
    service_manifest: LiveVersion | None = None


@frozen
class PlanCounts:
    """Asset versions per visibility in the next build, and the per-build limits."""

    public: int
    protected: int
    private: int
    functions: int
    limits: BuildLimits

    @property
    def public_protected(self) -> int:
        """Public and protected share one limit."""
        return self.public + self.protected


@frozen
class Plan:
    """What a sync would do. Every tuple is sorted by path."""

    create_assets: tuple[str, ...]
    uploads: tuple[PublishedFile, ...]
    reuses: tuple[tuple[PublishedFile, str], ...]
    drops: tuple[str, ...]
    kept_foreign: tuple[LiveVersion, ...]
    function_versions: tuple[LiveVersion, ...]
    dependencies: tuple[tuple[str, str], ...]
    runtime: str | None
    needs_build: bool
    counts: PlanCounts
    issues: tuple[Issue, ...]
    # Live versions of files that exist but could not be read this run: kept as they are.
    held: tuple[LiveVersion, ...] = ()

    @property
    def is_noop(self) -> bool:
        """Nothing to create, upload or build."""
        return not (self.create_assets or self.uploads or self.needs_build)

    @property
    def errors(self) -> tuple[Issue, ...]:
        """The issues that stop a sync."""
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def upload_bytes(self) -> int:
        """Bytes the uploads would send."""
        return sum(f.size for f in self.uploads)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (stable keys, sorted lists) for `assetsync plan --json`."""

        def file_json(f: PublishedFile) -> dict[str, object]:
            return {
                "path": f.path,
                "visibility": f.visibility.value,
                "source": f.source,
                "size": f.size,
                "digest": f.digest,
                "content_type": f.content_type,
                "variant": f.variant,
            }

        def live_json(v: LiveVersion) -> dict[str, object]:
            return {"sid": v.sid, "path": v.path, "visibility": v.visibility}

        c = self.counts
        return {
            "noop": self.is_noop,
            "needs_build": self.needs_build,
            "create_assets": list(self.create_assets),
            "uploads": [file_json(f) for f in self.uploads],
            "upload_bytes": self.upload_bytes,
            "reuses": [{**file_json(f), "version_sid": sid} for f, sid in self.reuses],
            "drops": list(self.drops),
            "kept_foreign": [live_json(v) for v in self.kept_foreign],
            "held": [live_json(v) for v in self.held],
            "function_versions": [live_json(v) for v in self.function_versions],
            "dependencies": [list(d) for d in self.dependencies],
            "runtime": self.runtime,
            "counts": {
                "public": c.public,
                "protected": c.protected,
                "private": c.private,
                "public_protected": c.public_protected,
                "functions": c.functions,
                "limits": {
                    "public_protected": c.limits.public_protected,
                    "private": c.limits.private,
                    "functions": c.limits.functions,
                },
            },
            "issues": [
                {"path": i.path, "message": i.message, "severity": i.severity} for i in self.issues
            ],
        }


def _limit_issues(counts: PlanCounts) -> list[Issue]:
    # Per-build limits: twilio.com/docs/serverless/api "Limitations" (limits.py).
    issues = []
    for what, have, limit in (
        (
            "public+protected asset versions",
            counts.public_protected,
            counts.limits.public_protected,
        ),
        ("private asset versions", counts.private, counts.limits.private),
        ("function versions", counts.functions, counts.limits.functions),
    ):
        if have > limit:
            issues.append(
                Issue(
                    "/",
                    f"the build would hold {have} {what}, over the limit of {limit} per build: "
                    "ignore some files or enable [shard] to split them over services",
                )
            )
    return issues


_BY_PATH_SOURCE_DIGEST = itemgetter(0, 4, 2)  # a PublishedFile's (path, source, digest)
_BY_PATH_SID = attrgetter("path", "sid")
_VISIBILITY = attrgetter("visibility")
# A StrEnum member hashes and compares as its value: no `.value` per file.
_VERSION_KEY = attrgetter("digest", "path", "visibility")
_SECOND = itemgetter(1)


def _uploads_and_reuses(
    files: Sequence[PublishedFile], recorded: RecordedService, full: bool
) -> tuple[list[PublishedFile], list[tuple[PublishedFile, str]]]:
    versions = recorded.versions
    if full or not versions:  # a never-synced service (or a full sync): every file uploads
        return list(files), []
    # Each file's recorded version SID or None, then both lists, in C (maps, `compress`):
    # a Python loop here was most of an unchanged 10,000-file site's plan (measured).
    sids = list(map(versions.get, map(_VERSION_KEY, files)))
    recorded_ones = list(map(is_not, sids, repeat(None)))
    uploads = list(compress(files, map(not_, recorded_ones)))
    reuses = list(zip(compress(files, recorded_ones), compress(sids, recorded_ones)))
    return uploads, reuses  # type: ignore[return-value]


@frozen
class _LiveSplit:
    """The live build's asset versions as the next build treats them."""

    drops: tuple[str, ...]
    kept: tuple[LiveVersion, ...]  # another owner's: carried over
    held: tuple[LiveVersion, ...]  # assetsync's, of a file that could not be read: carried over
    issues: tuple[Issue, ...]
    reference: frozenset[str]  # the version SIDs the environment serves now


def _split_live(
    live: LiveBuild | None, recorded: RecordedService, wanted: set[str], held: frozenset[str]
) -> _LiveSplit:
    """Which live versions are assetsync's (by path, or by SID: a version of the build it
    deployed whose record was forgotten since, by `prune`, is still its own), which of those
    leave the build, and which belong to someone else (DESIGN.md invariant 3)."""
    if live is None:  # offline: the record stands in
        gone = tuple(sorted(recorded.owned_paths - wanted - held))
        return _LiveSplit(gone, (), (), (), frozenset(recorded.deployed_version_sids))
    owned_paths, owned_sids = recorded.owned_paths, recorded.deployed_version_sids
    drops: set[str] = set()
    kept: list[LiveVersion] = []
    kept_held: list[LiveVersion] = []
    issues: list[Issue] = []
    for v in live.asset_versions:
        if v.path in owned_paths or v.sid in owned_sids:
            if v.path in wanted:
                continue
            if v.path in held:
                kept_held.append(v)
            else:
                drops.add(v.path)
        elif v.path in wanted:
            issues.append(Issue(
                v.path, f"replaces a live version assetsync did not publish ({v.sid})", "warning"))
        else:
            kept.append(v)
    return _LiveSplit(tuple(sorted(drops)), tuple(sorted(kept, key=_BY_PATH_SID)),
                      tuple(sorted(kept_held, key=_BY_PATH_SID)), tuple(issues),
                      frozenset(v.sid for v in live.asset_versions))


def _counts(
    files: Sequence[PublishedFile], carried: Sequence[LiveVersion], functions: int,
    limits: BuildLimits,
) -> PlanCounts:
    by_class = {vis: 0 for vis in Visibility}
    by_class.update(Counter(map(_VISIBILITY, files)))  # counted in C: a site has 10,000 files
    for v in carried:
        vis = v.visibility.lower()
        by_class[
            Visibility(vis) if vis in Visibility._value2member_map_ else Visibility.PUBLIC
        ] += 1
    return PlanCounts(
        public=by_class[Visibility.PUBLIC],
        protected=by_class[Visibility.PROTECTED],
        private=by_class[Visibility.PRIVATE],
        functions=functions,
        limits=limits,
    )


def build_plan(
    desired: Sequence[PublishedFile],
    recorded: RecordedService,
    live: LiveBuild | None,
    *,
    limits: BuildLimits = DEFAULT_BUILD_LIMITS,
    full: bool = False,
    held: frozenset[str] = frozenset(),
) -> Plan:
    """Compute the asset plan for one service and environment (`assetsync.plan.assess` adds
    the functions and every blocking problem to it).

    Args:
        desired: the files to publish (already checked; one per path).
        recorded: what assetsync recorded for this service and environment.
        live: the environment's live build, or None if unknown (offline) or none yet.
        limits: per-build version limits.
        full: upload every file again instead of reusing recorded versions.
        held: published paths of files that exist but could not be read this run: their
            live version stays in the next build; they are never dropped.

    Returns:
        A `Plan`. Live asset versions on paths assetsync does not own are kept in the next
        build (DESIGN.md invariant 3), unless a desired file takes their path over.
    """
    files = sorted(desired, key=_BY_PATH_SOURCE_DIGEST)
    wanted_paths = {f.path for f in files}
    # A path with a recorded version has its Asset (made before its first upload): only the
    # others are looked up, so an incremental sync need not read every Asset SID.
    unversioned = wanted_paths.difference(map(_SECOND, recorded.versions))  # their paths
    create_assets = tuple(sorted(p for p in unversioned if p not in recorded.asset_sids))
    uploads, reuses = _uploads_and_reuses(files, recorded, full)
    split = _split_live(live, recorded, wanted_paths, held)
    carried = (*split.kept, *split.held)
    next_sids = set(map(_SECOND, reuses)) | {v.sid for v in carried}  # reuses' SIDs
    needs_build = bool(uploads) or next_sids != split.reference
    functions = live.function_versions if live is not None else ()
    counts = _counts(files, carried, len(functions), limits)
    issues = sorted((*split.issues, *_limit_issues(counts)), key=lambda i: (i.path, i.message))
    return Plan(
        create_assets=create_assets,
        uploads=tuple(uploads),
        reuses=tuple(reuses),
        drops=split.drops,
        kept_foreign=split.kept,
        function_versions=tuple(sorted(functions, key=lambda v: (v.path, v.sid))),
        dependencies=tuple(live.dependencies) if live is not None else (),
        runtime=live.runtime if live is not None else None,
        needs_build=needs_build,
        counts=counts,
        issues=tuple(issues),
        held=split.held,
    )
