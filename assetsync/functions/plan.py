"""The functions' plan: local functions + recorded Function Versions + the live build -> which
functions to upload, which versions to reuse, which live functions the next build drops, and
whether the Dependencies changed. Pure and deterministic, like `assetsync.plan.assets`.

When a project deploys functions, the folder is the whole truth about them, as it is for
`twilio-run deploy`: the next build holds exactly its functions (a live function the folder no
longer has is dropped, and `plan` says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from assetsync.frozen import frozen
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile
from assetsync.plan.assets import LiveBuild
from assetsync.prepare.classify import Issue

__all__ = ["FunctionPlan", "check_functions", "plan_functions", "recorded_function_versions"]

VersionKey = tuple[str, str, str]  # (digest, path, visibility value)


@frozen
class FunctionPlan:
    """What a sync does to the functions. Tuples are sorted by path."""

    uploads: tuple[PublishedFile, ...] = ()
    reuses: tuple[tuple[PublishedFile, str], ...] = ()
    drops: tuple[str, ...] = ()
    dependencies: tuple[tuple[str, str], ...] = ()
    dependencies_changed: bool = False
    needs_build: bool = False
    issues: tuple[Issue, ...] = ()

    @property
    def reused_sids(self) -> tuple[str, ...]:
        """The recorded Function Versions the next build takes as they are."""
        return tuple(sid for _f, sid in self.reuses)

    @property
    def count(self) -> int:
        """Function versions in the next build."""
        return len(self.uploads) + len(self.reuses)

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.uploads)

    def to_json(self) -> dict[str, object]:
        """For `--json`: paths, visibilities and SIDs (a function's code is never included)."""
        def one(f: PublishedFile) -> dict[str, object]:
            return {"path": f.path, "visibility": f.visibility.value, "source": f.source,
                    "size": f.size, "digest": f.digest}

        return {
            "uploads": [one(f) for f in self.uploads],
            "reuses": [{**one(f), "version_sid": sid} for f, sid in self.reuses],
            "drops": list(self.drops),
            "dependencies": [list(d) for d in self.dependencies],
            "dependencies_changed": self.dependencies_changed,
            "needs_build": self.needs_build,
        }


def check_functions(
    functions: Sequence[PublishedFile],
    asset_paths: frozenset[str],
    *,
    limits: BuildLimits = DEFAULT_BUILD_LIMITS,
) -> list[Issue]:
    """Everything Twilio would refuse, found before any upload: an error each, naming the file.

    Path rules and sizes are the official library's and the upload host's
    (`assetsync.functions.toolkit`); 50 function versions per build (twilio.com/docs/serverless/api,
    "Limitations"); a function and an asset cannot share a path (one URL serves one of them).
    """
    # Here, not at the top: a site without functions (the ledger loads this module for every
    # sync) never loads the Toolkit's rules.
    from assetsync.functions.toolkit import function_path_problem, function_size_limit

    issues: list[Issue] = []
    by_path: dict[str, list[PublishedFile]] = {}
    for f in functions:
        by_path.setdefault(f.path, []).append(f)
        where = f"functions/{f.source}"
        problem = function_path_problem(f.path)
        if problem is not None:
            issues.append(Issue(f.path, f"{where}: {problem}"))
        limit = function_size_limit(f.visibility)
        if f.size > limit:
            issues.append(Issue(f.path, f"{where}: {f.size:,} bytes, over the upload host's "
                                        f"{limit:,} for a {f.visibility.value} function: "
                                        "split it, or move data into an asset"))
        if f.path in asset_paths:
            issues.append(Issue(f.path, f"{where} deploys as {f.path}, which an asset also "
                                        "publishes: rename one of them, or ignore the asset"))
    for path, same in sorted(by_path.items()):
        if len(same) > 1:
            names = ", ".join(f"functions/{f.source}" for f in same)
            issues.append(Issue(path, f"{names} all deploy as {path}: keep one"))
    if len(by_path) > limits.functions:
        issues.append(Issue("/", f"the build would hold {len(by_path)} function versions, over "
                                 f"the limit of {limits.functions} per build: merge functions "
                                 "or split them over services"))
    return issues


def recorded_function_versions(
    records: Sequence[tuple[str, str, str, str]], live_sids: frozenset[str]
) -> dict[VersionKey, str]:
    """(digest, path, visibility) -> the recorded Function Version, from (digest, path,
    visibility, version SID) rows: where one content was uploaded twice, the one the live build
    holds (then the newest-named), so an unchanged function needs no new build."""
    out: dict[VersionKey, str] = {}
    for digest, path, visibility, sid in sorted(records, key=lambda r: (r[3] in live_sids, r[3])):
        out[(digest, path, visibility)] = sid
    return out


def plan_functions(
    functions: Sequence[PublishedFile],
    dependencies: tuple[tuple[str, str], ...] | None,
    recorded: Mapping[VersionKey, str],
    live: LiveBuild | None,
    *,
    asset_paths: frozenset[str] = frozenset(),
    limits: BuildLimits = DEFAULT_BUILD_LIMITS,
    full: bool = False,
) -> FunctionPlan:
    """Compute the functions' plan for one service and environment.

    Args:
        functions: the local functions (`assetsync.functions.local`).
        dependencies: package.json's, or None to keep the live build's.
        recorded: what assetsync uploaded (`recorded_function_versions`).
        live: the environment's live build, or None.
        asset_paths: the paths the assets publish (a function may not take one).
        full: upload every function again.
    """
    files = sorted(functions, key=lambda f: (f.path, f.source))
    uploads: list[PublishedFile] = []
    reuses: list[tuple[PublishedFile, str]] = []
    for f in files:
        sid = None if full else recorded.get((f.digest, f.path, f.visibility.value))
        if sid is None:
            uploads.append(f)
        else:
            reuses.append((f, sid))
    live_functions = live.function_versions if live is not None else ()
    live_deps = tuple(sorted(live.dependencies)) if live is not None else ()
    wanted = {f.path for f in files}
    deps = live_deps if dependencies is None else tuple(sorted(dependencies))
    deps_changed = deps != live_deps
    needs_build = (bool(uploads) or deps_changed
                   or {sid for _f, sid in reuses} != {v.sid for v in live_functions})
    return FunctionPlan(
        uploads=tuple(uploads),
        reuses=tuple(reuses),
        drops=tuple(sorted({v.path for v in live_functions} - wanted)),
        dependencies=deps,
        dependencies_changed=deps_changed,
        needs_build=needs_build,
        issues=tuple(sorted(check_functions(files, asset_paths, limits=limits),
                            key=lambda i: (i.path, i.message))),
    )
