"""`assetsync plan`: what a sync would upload, reuse and drop, without touching the network.

A Toolkit project's functions, Dependencies and Variables are planned too, against what the
last sync recorded: its build's kept manifest stands in for the live build, and keyed digests
for the live Variables (keys are shown, never a value).

Exit 0 when every file can be published, 1 when any cannot (each named on its own line),
2 for config errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.prepare.classify import Issue, duplicate_paths, published_name
from assetsync.cli._common import (
    add_json_flag,
    config_from_args,
    event_printer,
    format_bytes,
    print_issues,
    print_json,
)
from assetsync.config import Config, target_key
from assetsync.errors import LimitError, LockHeldError
from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.assets import Plan, PlanCounts, RecordedService, build_plan
from assetsync.scan.rules import Snapshot
from assetsync.plan.shard import previous_placement, service_names
from assetsync.plan.shard_options import ShardOptions
from assetsync.state.db import State
from assetsync.results import SyncEvent
from assetsync.media.audio_stage import AudioReport

if TYPE_CHECKING:
    from assetsync.functions.local import FunctionProject
    from assetsync.functions.plan import FunctionPlan
    from assetsync.plan.shard_result import ShardResult
    from assetsync.functions.variables import VariablePlan

__all__ = ["LocalPlan", "ServicePlan", "handler", "plan_locally", "register"]


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """One service's plan in a site spread over several services."""

    service: str
    plan: Plan


@dataclass(frozen=True, slots=True)
class LocalPlan:
    """The plan plus what led to it: the scan and every issue found on the way.

    `shard` and `services` are set when the site is spread over several services (as `sync`
    would spread it); `plan` is then every service's plan merged (counts summed).
    """

    snapshot: Snapshot
    plan: Plan
    issues: tuple[Issue, ...]
    shard: ShardResult | None = None
    services: tuple[ServicePlan, ...] = ()
    audio: tuple[AudioReport, ...] = ()  # what each audio file becomes (the transform step)
    functions: FunctionPlan | None = None  # None: the project deploys no functions
    variables: VariablePlan | None = None  # keys only; None: no functions or no .env
    variables_recorded: bool = False  # a sync recorded the environment's variable digests

    @property
    def valid(self) -> bool:
        """No file that cannot be published."""
        return not any(i.severity == "error" for i in self.issues)


def _open_state(config: Config, on_event: Callable[[SyncEvent], None]) -> State:
    """The state, or a read-only view of it while another assetsync (say `watch`) holds it."""
    try:
        return State.open(config.state_dir)
    except LockHeldError as exc:
        on_event(SyncEvent("note", message=f"{exc}; planning from a read-only view"))
        return State.open(config.state_dir, readonly=True)


def _recorded(state: State, config: Config, names: Sequence[str]) -> dict[str, RecordedService]:
    key = target_key(config)
    recorded: dict[str, RecordedService] = {}
    for name in names:
        service = state.get_service(key, name)
        if service is not None:
            recorded[name] = state.recorded_service(key, service.service_sid, config.environment)
    return recorded


def plan_locally(config: Config, *, full: bool = False, verbose: int = 0,
                 prune_variables: bool = False) -> LocalPlan:
    """Scan, classify, optimize and check exactly as `sync` does, then plan against the
    recorded state (no live build: offline), spreading the files over services as `sync`
    would when they do not fit one build. A file the scan could not take is an error here:
    it cannot be published. A functions folder adds the functions' and Variables' plans
    (`prune_variables`: as `sync --prune-variables` would).

    Raises:
        ConfigError: an unreadable or invalid package.json or .env (one line naming it).
    """
    from assetsync.functions.local import load_functions
    from assetsync.prepare.stage import prepare_files  # the sync pipeline, so plan never disagrees

    project = load_functions(config)  # first, as in `sync`: a bad .env stops before the scan
    on_event = event_printer(verbose)
    options = config.shard if isinstance(config.shard, ShardOptions) else ShardOptions()
    names = service_names(config.service, options)
    with _open_state(config, on_event) as state:
        prepared = prepare_files(config, state, on_event=on_event)
        recorded = _recorded(state, config, names)
        snapshot = prepared.snapshot
        scan_issues = {(i.path, i.message) for i in snapshot.issues}
        # Collisions are judged on the source names too, so that no later stage can hide one
        # (a file that classify kept already carries its name's published path).
        kept = {f.source: f.path for f in prepared.files if f.variant is None}
        names_seen = [(kept.get(rel) or published_name(rel)[0], rel) for rel in snapshot.files]
        collisions = [i for i in duplicate_paths(names_seen) if i not in prepared.errors]
        colliding = {i.path for i in collisions}
        clashing = {path for path, rel in names_seen if rel in colliding}
        desired = [f for f in prepared.files if f.path not in clashing]
        plan, shard_result, services, shard_issues = _plan_services(
            config, desired, recorded, options, full=full)
        # Functions deploy with the configured service only, as `sync` deploys them: only its
        # assets can take a function's path.
        beside = [f for f in prepared.files if shard_result is None
                  or shard_result.assignment.get(f.path, config.service) == config.service]
        project_plan = (_ProjectPlan.of(state, config, project, beside, options.limits,
                                        full=full, prune=prune_variables)
                        if project is not None else None)
    issues = (
        [Issue(path, message) for path, message in sorted(scan_issues)]
        + [i for i in prepared.warnings if (i.path, i.message) not in scan_issues]
        + list(prepared.errors)
        + collisions
        + shard_issues
        + list(plan.issues)
        + (project_plan.issues() if project_plan is not None else [])
    )
    issues.sort(key=lambda i: (i.severity != "error", i.path, i.message))
    return LocalPlan(snapshot=snapshot, plan=plan, issues=tuple(issues), shard=shard_result,
                     services=services, audio=tuple(
                         r for r in prepared.audio if isinstance(r, AudioReport)),
                     functions=project_plan.functions if project_plan is not None else None,
                     variables=project_plan.variables if project_plan is not None else None,
                     variables_recorded=project_plan is not None and project_plan.recorded)


@dataclass(frozen=True, slots=True)
class _ProjectPlan:
    """The functions' and Variables' plans of a Toolkit project, offline."""

    project: FunctionProject
    functions: FunctionPlan
    variables: VariablePlan | None
    recorded: bool  # a sync recorded the Variables' digests
    variable_issues: tuple[Issue, ...]

    @classmethod
    def of(cls, state: State, config: Config, project: FunctionProject,
           files: Sequence[PublishedFile], limits: BuildLimits, *, full: bool,
           prune: bool) -> _ProjectPlan:
        """Plan against the configured service's record: the Function Versions it recorded,
        its environment's recorded build (standing in for the live one, whose functions and
        Dependencies it holds) and the Variables' digests the last sync recorded. `files`: the
        assets published beside the functions."""
        from assetsync.state.ledger import plan_recorded_functions, recorded_build, to_live_build
        from assetsync.functions.variables import plan_recorded_variables

        key = target_key(config)
        service = state.get_service(key, config.service)
        sid = service.service_sid if service is not None else None
        env = state.get_environment(key, sid, config.environment) if sid else None
        built = (recorded_build(state, key, sid, env.build_sid)
                 if sid and env is not None and env.build_sid else None)
        functions = plan_recorded_functions(
            state, key, sid, project, files, to_live_build(built) if built is not None else None,
            limits=limits, full=full)
        variables: VariablePlan | None = None
        issues: tuple[Issue, ...] = ()
        recorded = False
        if project.variables is not None:
            file = project.env_file or ".env"
            digests = (state.variable_digests(key, env.service_sid, env.environment_sid)
                       if env is not None else {})
            recorded = bool(digests)
            try:
                variables = plan_recorded_variables(
                    project.variables, digests, key=state.variable_digest_key(),
                    scope=env.environment_sid if env is not None else "", prune=prune, file=file)
            except LimitError as exc:  # keys over Twilio's limits: named, never a value
                issues = (Issue(exc.path or file, str(exc)),)
        return cls(project, functions, variables, recorded, issues)

    def issues(self) -> list[Issue]:
        """What cannot be deployed: an error each, naming the file."""
        return [*self.project.issues, *self.functions.issues, *self.variable_issues]


def _plan_services(
    config: Config,
    files: Sequence[PublishedFile],
    recorded: dict[str, RecordedService],
    options: ShardOptions,
    *,
    full: bool,
) -> tuple[Plan, ShardResult | None, tuple[ServicePlan, ...], list[Issue]]:
    """One plan when the site fits one build and lives in one service (the usual case), else
    the files sharded as `assetsync.sync.sharded.sync_sharded` shards them and one plan per service."""
    limits = options.limits
    empty = RecordedService()
    previous = previous_placement(files, recorded)
    private = sum(1 for f in files if f.visibility is Visibility.PRIVATE)
    over = private > limits.private or len(files) - private > limits.public_protected
    if not over and set(previous.values()) <= {config.service}:
        return build_plan(files, recorded.get(config.service, empty), None, limits=limits,
                          full=full), None, (), []
    from assetsync.plan.shard import shard  # only a site spread over services pays for it

    changed = [f.path for f in files if (f.digest, f.path, f.visibility.value)
               not in recorded.get(previous.get(f.path, ""), empty).versions]
    try:
        result = shard(files, previous, options, base_service=config.service, changed=changed)
    except LimitError as exc:
        # Cannot be spread: the one-service plan for the listing, the reason as the error
        # (its own per-build limit lines would only repeat it).
        plan = build_plan(files, recorded.get(config.service, empty), None, limits=limits,
                          full=full)
        plan = replace(plan, issues=tuple(i for i in plan.issues if i.path != "/"))
        return plan, None, (), [Issue(exc.path or "/", str(exc))]
    grouped: dict[str, list[PublishedFile]] = {name: [] for name in result.services}
    for f in files:
        grouped[result.assignment[f.path]].append(f)
    # A retired service is left as it is (its next build would be empty, which Twilio
    # refuses): `sync` notes it and drops nothing there, so neither does the plan.
    services = tuple(
        ServicePlan(name, build_plan(grouped[name], recorded.get(name, empty), None,
                                     limits=limits, full=full))
        for name in result.services
    )
    issues: list[Issue] = []
    if options == ShardOptions():
        issues.append(Issue("/", (
            f"the site does not fit one build ({len(files) - private} public+protected of "
            f"{limits.public_protected}, {private} private of {limits.private}): sync spreads it "
            f"over {len(result.services)} services ({', '.join(result.services)}) with the "
            "default [shard] settings; see docs/sharding.md to configure them"), "warning"))
    return _merged([s.plan for s in services], limits), result, services, issues


def _merged(plans: Sequence[Plan], limits: BuildLimits) -> Plan:
    """Every service's plan as one (sorted by path; counts summed over the services)."""
    return Plan(
        create_assets=tuple(sorted(p for plan in plans for p in plan.create_assets)),
        uploads=tuple(sorted((f for plan in plans for f in plan.uploads),
                             key=lambda f: f.path)),
        reuses=tuple(sorted((r for plan in plans for r in plan.reuses),
                            key=lambda r: r[0].path)),
        drops=tuple(sorted(p for plan in plans for p in plan.drops)),
        kept_foreign=(),
        function_versions=(),
        dependencies=(),
        runtime=None,
        needs_build=any(plan.needs_build for plan in plans),
        counts=PlanCounts(
            public=sum(plan.counts.public for plan in plans),
            protected=sum(plan.counts.protected for plan in plans),
            private=sum(plan.counts.private for plan in plans),
            functions=sum(plan.counts.functions for plan in plans),
            limits=limits,
        ),
        issues=tuple(i for plan in plans for i in plan.issues),
    )


def _human(config: Config, result: LocalPlan) -> None:
    plan, snap = result.plan, result.snapshot
    out = sys.stdout
    out.write(
        f"service {config.service}, environment {config.environment}, target {config.target.api}\n"
        f"source {config.source}: {len(snap.files)} files ({snap.hashed} hashed, "
        f"{snap.reused} unchanged since last scan)\n"
    )
    # Spread over services: each row says which service it belongs to.
    rows = [(action, vis, path, size, s.service) for s in result.services
            for action, vis, path, size in _rows(s.plan)] or [
        (*row, "") for row in _rows(plan)]
    rows.sort(key=lambda r: (r[2], r[0], r[4]))
    fplan = result.functions
    # The functions after the files, each row marked as one (`sync` deploys them together).
    rows += [(*row, "function") for row in _function_rows(fplan)] if fplan is not None else []
    width = max((len(r[2]) for r in rows), default=0)
    for action, vis, path, size, service in rows:
        line = f"  {action:<6} {vis:<9} {path:<{width}}  {size:>9}  {service}"
        out.write(line.rstrip() + "\n")
    c = plan.counts
    out.write(
        f"{len(plan.create_assets)} new assets, {len(plan.uploads)} uploads "
        f"({format_bytes(plan.upload_bytes)}), {len(plan.reuses)} reused, "
        f"{len(plan.drops)} dropped\n"
    )
    if result.shard is None:
        out.write(
            f"next build: {c.public} public + {c.protected} protected = {c.public_protected} of "
            f"{c.limits.public_protected}, {c.private} private of {c.limits.private}\n"
        )
    else:
        out.write(f"{len(result.shard.services)} services, next builds (offline: content "
                  "assetsync does not own is not counted):\n")
        out.writelines(f"  {line}\n" for line in result.shard.usage_lines())
        out.writelines(f"  {name}: holds no file now; its last build stays live until you "
                       "delete the service\n" for name in result.shard.retired)
        if result.shard.moves:
            out.write(f"{len(result.shard.moves)} file(s) move to another service:\n")
            out.writelines(f"  {move.describe()}\n" for move in result.shard.moves)
    if result.audio:
        out.write("audio:\n")
        out.writelines(f"  {report.describe()}\n" for report in result.audio)
    out.writelines(f"{line}\n" for line in _project_lines(result))
    if (plan.is_noop and not (fplan is not None and fplan.needs_build)
            and not (result.variables is not None and result.variables.changed)):
        out.write("nothing to do: everything is published\n")
    print_issues(result.issues)
    errors = sum(1 for i in result.issues if i.severity == "error" and i.path != "/")
    if errors:
        sys.stderr.write(
            f"{errors} file(s) cannot be published; fix them or add them to [ignore]\n"
        )


def _function_rows(fplan: FunctionPlan) -> list[tuple[str, str, str, str]]:
    rows = [("upload", f.visibility.value, f.path, format_bytes(f.size)) for f in fplan.uploads]
    rows += [("reuse", f.visibility.value, f.path, "") for f, _sid in fplan.reuses]
    rows += [("drop", "", p, "") for p in fplan.drops]
    return sorted(rows, key=lambda r: (r[2], r[0]))


def _project_lines(result: LocalPlan) -> list[str]:
    """The functions' totals, the Dependencies and the Variables (keys only, never a value)."""
    lines: list[str] = []
    fplan, v = result.functions, result.variables
    if fplan is not None:
        lines.append(
            f"functions: {len(fplan.uploads)} uploads ({format_bytes(fplan.upload_bytes)}), "
            f"{len(fplan.reuses)} reused, {len(fplan.drops)} dropped; next build: "
            f"{fplan.count} of {result.plan.counts.limits.functions}")
        deps = ", ".join(f"{name}@{version}" for name, version in fplan.dependencies) or "none"
        lines.append(f"dependencies {'changed' if fplan.dependencies_changed else 'unchanged'}: "
                     f"{deps}")
    if v is not None:
        if not result.variables_recorded:
            # Nothing to compare with offline: no sync recorded this environment's Variables.
            keys = " ".join((*v.create, *v.update, *v.unchanged)) or "-"
            lines.append(f"variables: {len(v.create) + len(v.update) + len(v.unchanged)} to set "
                         f"({keys}); no sync has recorded this environment's variables yet")
        else:
            parts = [f"{len(keys)} {what} ({' '.join(keys)})" for what, keys in (
                ("new", v.create), ("changed", v.update), ("to delete", v.delete)) if keys]
            parts.append(f"{len(v.unchanged)} unchanged")
            if v.kept:
                parts.append(f"{len(v.kept)} kept ({' '.join(v.kept)}: not in the .env; "
                             "--prune-variables deletes them)")
            lines.append(f"variables since the last sync: {', '.join(parts)}")
    return lines


def _rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    rows = [("upload", f.visibility.value, f.path, format_bytes(f.size)) for f in plan.uploads]
    rows += [("reuse", f.visibility.value, f.path, "") for f, _sid in plan.reuses]
    rows += [("drop", "", p, "") for p in plan.drops]
    return rows


def _json(config: Config, result: LocalPlan) -> dict[str, object]:
    data: dict[str, object] = {
        "service": config.service,
        "environment": config.environment,
        "target": config.target.api,
        "source": str(config.source),
        "valid": result.valid,
        "scan": {
            "files": len(result.snapshot.files),
            "hashed": result.snapshot.hashed,
            "reused": result.snapshot.reused,
        },
        **result.plan.to_json(),
        "issues": [
            {"path": i.path, "message": i.message, "severity": i.severity}
            for i in result.issues
        ],
        "shard": None,
        "audio": [report.to_json() for report in result.audio],
    }
    # As `sync --json` names them: present when the project deploys functions (`variables`
    # also needs a .env); keys and paths only.
    if result.functions is not None:
        data["functions"] = result.functions.to_json()
    if result.variables is not None:
        data["variables"] = result.variables.to_json()
    if result.shard is not None:
        where = result.shard.assignment
        for key in ("uploads", "reuses"):
            for entry in data[key]:  # type: ignore[attr-defined]
                entry["service"] = where[entry["path"]]
        shard_json = result.shard.to_json()
        plans = {s.service: s.plan for s in result.services}
        for entry in shard_json["services"]:  # type: ignore[attr-defined]
            plan = plans[entry["service"]]
            entry.update(uploads=len(plan.uploads), reuses=len(plan.reuses),
                         drops=len(plan.drops), needs_build=plan.needs_build)
        data["shard"] = shard_json
    return data


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync plan`."""
    config = config_from_args(args, {
        "project.environment": args.environment,
        "project.env_file": str(Path(args.env_file).resolve()) if args.env_file else None})
    result = plan_locally(config, full=args.full, verbose=args.verbose,
                          prune_variables=args.prune_variables)
    if args.json:
        print_json(_json(config, result))
    else:
        _human(config, result)
    return 0 if result.valid else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync plan`."""
    parser = subparsers.add_parser(
        "plan",
        help="show what a sync would upload, reuse and drop (offline)",
        description="Scan the source folder and show the plan against the recorded state. "
        "Exit 0 when every file can be published, 1 when any cannot, 2 for config errors.",
    )
    add_json_flag(parser)
    parser.add_argument("--full", action="store_true", help="plan to upload every file again")
    parser.add_argument("-e", "--environment", help="environment unique name (overrides config)")
    parser.add_argument("--env-file", metavar="PATH",
                        help="the .env whose variables to plan (as `sync --env-file`)")
    parser.add_argument("--prune-variables", action="store_true",
                        help="plan the recorded variables the .env no longer has as deleted, as "
                        "`sync --prune-variables` deletes them (kept by default)")
    parser.set_defaults(func=handler)
