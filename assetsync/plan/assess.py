"""The one answer to "what would a sync do": the prepared publish set, what assetsync recorded
and the environment's live build -> an `Assessment` (what to upload, reuse, drop, keep, the
functions' plan, and every problem that blocks the sync).

`plan`, `status`, `sync --dry-run` and `sync` all call `assess` and nothing else decides, so
they cannot disagree. Pure and deterministic: values in, a frozen value out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from assetsync.frozen import frozen, replace
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile
from assetsync.plan.assets import LiveBuild, LiveVersion, Plan, RecordedService, build_plan
from assetsync.prepare.classify import Issue
from assetsync.state.remote_manifest import MANIFEST_PATH, RESERVED_PREFIX, is_reserved

if TYPE_CHECKING:  # a project without functions (`plan`'s usual one) never loads their planner
    from assetsync.functions.local import FunctionProject
    from assetsync.functions.plan import FunctionPlan

__all__ = ["Assessment", "FunctionRecords", "assess"]

# The Function Versions a state recorded for a service: (digest, path, visibility, SID) rows.
FunctionRecords = Sequence[tuple[str, str, str, str]]


@frozen
class Assessment:
    """What a sync of one service's environment would do, and what stops it.

    Attributes:
        plan: the assets: Assets to create, versions to upload and reuse, paths to drop, the
            live versions another owner published (kept), and the live versions of files that
            could not be read this run (held: kept as they are).
        functions: the functions' plan, when the project deploys a functions folder.
        problems: every issue found, errors first; an error blocks the sync.
        runtime_change: (live runtime, configured runtime) when `[sync] runtime` differs
            from the live build's: a new build even with every file as it was.
    """

    plan: Plan
    functions: FunctionPlan | None = None
    problems: tuple[Issue, ...] = ()
    runtime_change: tuple[str | None, str] | None = None

    @property
    def errors(self) -> tuple[Issue, ...]:
        """The problems that stop a sync (one line per file)."""
        return tuple(i for i in self.problems if i.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        """The problems a sync reports and goes on."""
        return tuple(i for i in self.problems if i.severity != "error")

    @property
    def uploads(self) -> tuple[PublishedFile, ...]:
        """Asset versions to upload."""
        return self.plan.uploads

    @property
    def drops(self) -> tuple[str, ...]:
        """Paths the next build no longer serves."""
        return self.plan.drops

    @property
    def needs_build(self) -> bool:
        """A sync would build (and deploy)."""
        return (self.plan.needs_build or self.runtime_change is not None
                or (self.functions is not None and self.functions.needs_build))

    @property
    def in_sync(self) -> bool:
        """Nothing to upload or build, and nothing blocks."""
        return not (self.needs_build or self.plan.create_assets or self.plan.uploads
                    or self.errors)

    @property
    def function_count(self) -> int:
        """Function versions in the next build."""
        if self.functions is not None:
            return self.functions.count
        return len(self.plan.function_versions)

    @property
    def upload_bytes(self) -> int:
        """Bytes the asset and function uploads would send."""
        return self.plan.upload_bytes + (self.functions.upload_bytes if self.functions else 0)

    @property
    def uploads_count(self) -> int:
        """Asset and function versions to upload."""
        return len(self.plan.uploads) + (len(self.functions.uploads) if self.functions else 0)

    @property
    def carried(self) -> tuple[LiveVersion, ...]:
        """Live asset versions the next build takes as they are (another owner's, held)."""
        return (*self.plan.kept_foreign, *self.plan.held)

    @property
    def build_sids(self) -> list[str]:
        """The existing asset version SIDs the next build holds (sorted)."""
        return sorted({sid for _f, sid in self.plan.reuses} | {v.sid for v in self.carried})

    @property
    def function_sids(self) -> list[str]:
        """The existing function version SIDs the next build holds."""
        if self.functions is not None:
            return list(self.functions.reused_sids)
        return [v.sid for v in self.plan.function_versions]

    @property
    def dependencies(self) -> tuple[tuple[str, str], ...]:
        """The next build's Dependencies."""
        return self.functions.dependencies if self.functions is not None else self.plan.dependencies

    @property
    def empty(self) -> bool:
        """The next build would hold no version at all (Twilio refuses it)."""
        return not (self.plan.uploads or self.plan.reuses or self.carried or self.function_count)


def _sorted_once(groups: Iterable[Iterable[Issue]]) -> tuple[Issue, ...]:
    found: dict[tuple[str, str, str], Issue] = {}
    for group in groups:
        for issue in group:
            found.setdefault((issue.path, issue.message, issue.severity), issue)
    return tuple(sorted(found.values(), key=lambda i: (i.severity != "error", i.path, i.message)))


def assess(
    files: Sequence[PublishedFile],
    recorded: RecordedService,
    live: LiveBuild | None,
    *,
    limits: BuildLimits = DEFAULT_BUILD_LIMITS,
    full: bool = False,
    held: frozenset[str] = frozenset(),
    problems: Iterable[Issue] = (),
    functions: FunctionProject | None = None,
    function_records: FunctionRecords = (),
    runtime: str | None = None,
    manifest: bool = False,
) -> Assessment:
    """What a sync of `files` to one service's environment would do.

    Args:
        files: the prepared files this service publishes (`assetsync.prepare`).
        recorded: what assetsync recorded for the service and environment.
        live: the environment's live build (fetched, or its kept manifest when it is the build
            assetsync recorded deploying); offline, the recorded build's; None before any.
        limits: per-build version limits.
        full: upload every file (and function) again.
        held: published paths of files that exist but could not be read this run.
        problems: what the preparation's checks found (`prepare.blocking_problems`).
        functions: the project's functions, when it deploys a functions folder.
        function_records: the Function Versions recorded for the service.
        runtime: `[sync] runtime`, if set.
        manifest: the build carries the service manifest (`[sync] remote_manifest`), a
            private Function that takes one of the build's function slots.
    """
    plan = build_plan(files, recorded, live, limits=limits, full=full, held=held)
    fplan = None
    if functions is not None:
        from assetsync.functions.plan import plan_functions, recorded_function_versions

        live_sids = (frozenset(v.sid for v in live.function_versions) if live is not None
                     else frozenset[str]())
        fplan = plan_functions(
            functions.functions, functions.dependencies,
            recorded_function_versions(function_records, live_sids), live,
            asset_paths=frozenset(f.path for f in files), limits=limits, full=full)
    runtime_change = ((live.runtime, runtime)
                      if runtime and live is not None and live.runtime != runtime else None)
    reserved = _reserved_issues(files, functions)
    if manifest:
        plan, over = _with_manifest(plan, fplan)
        reserved += over
    found = _sorted_once((problems, plan.issues, fplan.issues if fplan is not None else (),
                          reserved))
    return Assessment(plan, fplan, found, runtime_change)


def _reserved_issues(files: Sequence[PublishedFile],
                     functions: FunctionProject | None) -> list[Issue]:
    """A file or function the project publishes under assetsync's own prefix."""
    mine = [*files, *(functions.functions if functions is not None else ())]
    return [Issue(f.path, f"{f.source}: {RESERVED_PREFIX} is reserved for assetsync's service "
                          "manifest: rename it or ignore it") for f in mine if is_reserved(f.path)]


def _with_manifest(plan: Plan, fplan: FunctionPlan | None) -> tuple[Plan, list[Issue]]:
    """The plan's counts with the manifest Function, and the issue when it does not fit."""
    users = fplan.count if fplan is not None else len(plan.function_versions)
    counts = replace(plan.counts, functions=users + 1)
    limit = counts.limits.functions
    issues = []
    if users + 1 > limit >= users:  # past the limit without it, the limit issue says so
        issues.append(Issue("/", f"the build would hold {users} function versions and "
                                 f"assetsync's manifest ({MANIFEST_PATH}), over the limit of "
                                 f"{limit} per build: remove a function, or set [sync] "
                                 "remote_manifest = false"))
    return replace(plan, counts=counts), issues
