"""`plan`'s composition: what a sync would upload, reuse and drop, offline.

The same preparation and checks as `sync` (`assetsync.prepare`), then the same assessment
(`assetsync.plan.assess`) against the recorded state, the build assetsync recorded deploying
standing in for the live one (its kept manifest: the files and functions it holds). A site that
does not fit one build is spread over services as `sync` would spread it. A Toolkit project's
Variables are planned against the keyed digests the last sync recorded (keys, never a value).
When the last sync's carried outcome (`assetsync.state.last_outcome`) stands in for the
recorded build, only the changed files are prepared again, exactly as `sync` does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain, compress, repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from assetsync.collector import fewer_collections
from assetsync.config import Config, target_key
from assetsync.errors import LimitError
from assetsync.frozen import frozen, replace
from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.assess import assess
from assetsync.plan.assets import LiveBuild, Plan, PlanCounts, RecordedService, build_plan
from assetsync.plan.shard_options import (
    ShardOptions,
    changed_paths,
    previous_placement,
    service_names,
)
from assetsync.prepare.classify import Issue
from assetsync.prepare.memo import PrepareMemo, placement_key
from assetsync.prepare.stage import Prepared, blocking_problems, prepare_files
from assetsync.results import SyncEvent
from assetsync.scan.rules import Snapshot
from assetsync.state.db import State
from assetsync.state.last_outcome import Carried, recorded_view, settings_of
from assetsync.state.last_outcome import load as load_carried
from assetsync.sync.plan_inputs import PlanInputs, open_inputs

if TYPE_CHECKING:  # only for types: a plan that does not need them does not load them
    from assetsync.functions.local import FunctionProject
    from assetsync.functions.plan import FunctionPlan
    from assetsync.functions.variables import VariablePlan
    from assetsync.media.audio_stage import AudioReport
    from assetsync.plan.shard_result import ShardResult
    from assetsync.state.recorded_views import RecordedViews

__all__ = ["LocalPlan", "ServicePlan", "plan_offline"]

_PATH = attrgetter("path")
_FIRST = itemgetter(0)
_VISIBILITY = attrgetter("visibility")


@frozen
class ServicePlan:
    """One service's plan in a site spread over several services."""

    service: str
    plan: Plan


@frozen
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
    new_services: tuple[str, ...] = ()  # services of `shard` that sync creates first
    images: bool = False  # some file went through the image transform step (its encoders')

    @property
    def valid(self) -> bool:
        """No file that cannot be published."""
        return not any(i.severity == "error" for i in self.issues)


def _carried(state: State, config: Config, options: ShardOptions, *,
             full: bool) -> Carried | None:
    """The environment's last outcome, when `sync` would use it for this plan: not for a full
    plan, nor for a site with shard groups (placed from scratch), exactly as `sync` decides."""
    if full or options.groups or options.first_service:
        return None
    return load_carried(state, target_key(config), config.service, config.environment,
                        settings_of(config))


def _carried_view(state: State, config: Config, carried: Carried | None,
                  prepared: Prepared) -> tuple[RecordedService, LiveBuild] | None:
    """The configured service's record and recorded live build as the carried outcome holds
    them, when it stands in for the build assetsync recorded deploying (the one `plan` plans
    against) and the preparation was spliced from it; else None (read them from the state).
    The same test `sync` makes against the live build the API names."""
    if carried is None or prepared.changed is None:
        return None
    key = target_key(config)
    rec = state.get_service(key, config.service)
    env = state.get_environment(key, rec.service_sid, config.environment) if rec else None
    if rec is None or env is None or not env.build_sid:
        return None
    view = recorded_view(state, key, rec.service_sid, config.environment, carried,
                         prepared.files, live_build_sid=env.build_sid)
    if view is None:
        return None
    from assetsync.state.ledger import to_live_build

    return view, to_live_build(carried.build)


def _recorded(state: State, config: Config, names: Sequence[str], *,
              view: RecordedService | None = None) -> dict[str, RecordedService]:
    """Each named service's record; `view` (the carried outcome's) stands in for the
    configured service's."""
    key = target_key(config)
    recorded: dict[str, RecordedService] = {}
    views: RecordedViews | None = None
    for name in names:
        if view is not None and name == config.service:
            recorded[name] = view
            continue
        service = state.get_service(key, name)
        if service is not None:
            if views is None:  # only a site with a recorded service reads or keeps views
                from assetsync.state.recorded_views import RecordedViews

                views = RecordedViews(state, config.state_dir)
            # As the state makes it (the Asset SIDs read only if a new file's path is looked
            # up, while the state is open: the plan is made inside it), or as it was kept.
            recorded[name] = views.recorded_service(key, service.service_sid, config.environment)
    if views is not None:
        views.save()
    return recorded


def _recorded_live(state: State, config: Config, service: str) -> LiveBuild | None:
    """The build assetsync recorded deploying to the service's environment (its kept
    manifest), standing in for the live build offline."""
    key = target_key(config)
    rec = state.get_service(key, service)
    env = state.get_environment(key, rec.service_sid, config.environment) if rec else None
    if rec is None or env is None or not env.build_sid:
        return None  # never deployed: the ledger (and the client's types) need not load
    from assetsync.state.ledger import recorded_build, to_live_build

    built = recorded_build(state, key, rec.service_sid, env.build_sid)
    return to_live_build(built) if built is not None else None


def _function_records(state: State, config: Config) -> list[tuple[str, str, str, str]]:
    key = target_key(config)
    rec = state.get_service(key, config.service)
    if rec is None:
        return []
    return [(v.digest, v.path, v.visibility, v.version_sid)
            for v in state.versions(key, rec.service_sid, kind="function")]


def plan_offline(config: Config, *, full: bool = False, prune_variables: bool = False,
                 on_event: Callable[[SyncEvent], None] | None = None,
                 inputs: PlanInputs | None = None) -> LocalPlan:
    """Prepare and check the folder exactly as `sync` does, then assess it against the
    recorded state (offline), spreading the files over services as `sync` would when they do
    not fit one build. A file the scan could not take is an error here: it cannot be
    published. A functions folder adds the functions' and Variables' plans
    (`prune_variables`: as `sync --prune-variables` would). `inputs`: the project, state and
    scan the caller opened (`assetsync.sync.plan_inputs.open_inputs`), else they are opened here.

    Raises:
        ConfigError: an unreadable or invalid package.json or .env (one line naming it).
    """
    # A plan makes an object or more per file, and all of them live until it is printed.
    with fewer_collections():
        if inputs is not None:
            return _plan_offline(config, inputs, full=full, prune_variables=prune_variables,
                                 on_event=on_event)
        with open_inputs(config, on_event or (lambda _event: None)) as opened:
            return _plan_offline(config, opened, full=full, prune_variables=prune_variables,
                                 on_event=on_event)


def _plan_offline(config: Config, inputs: PlanInputs, *, full: bool, prune_variables: bool,
                  on_event: Callable[[SyncEvent], None] | None) -> LocalPlan:
    project, state = inputs.project, inputs.state
    options = config.shard if isinstance(config.shard, ShardOptions) else ShardOptions()
    memo = PrepareMemo(config, readonly=state.readonly)
    prepared, problems, view = _prepare(state, config, options, project, full=full,
                                        on_event=on_event, memo=memo,
                                        snapshot=inputs.snapshot)
    recorded = _recorded(state, config, service_names(config.service, options),
                         view=view[0] if view is not None else None)
    live = view[1] if view is not None else _recorded_live(state, config, config.service)
    plan, shard_result, services, shard_issues = _plan_services(
        config, prepared.files, recorded, options, full=full, memo=memo)
    memo.save()
    # Functions deploy with the configured service only, as `sync` deploys them: only its
    # assets can take a function's path.
    beside = (prepared.files if shard_result is None else
              _in_service(prepared.files, shard_result, config.service))
    found = assess(beside, recorded.get(config.service, RecordedService()),
                   live, limits=options.limits,
                   full=full, held=prepared.held, problems=problems, functions=project,
                   function_records=_function_records(state, config) if project else (),
                   manifest=config.sync.remote_manifest)
    if shard_result is None and not shard_issues:
        plan = found.plan  # the site fits one service: its assessment is the plan
    project_plan = (_ProjectPlan.of(state, config, project, prune=prune_variables)
                    if project is not None else None)
    issues = _issues(prepared, problems, found.functions, shard_issues, plan, project_plan)
    return LocalPlan(snapshot=prepared.snapshot, plan=plan, issues=issues,
                     shard=shard_result, services=services, audio=_audio_reports(prepared),
                     functions=found.functions,
                     variables=project_plan.variables if project_plan is not None else None,
                     variables_recorded=project_plan is not None and project_plan.recorded,
                     new_services=tuple(n for n in (shard_result.services if shard_result
                                                    else ()) if n not in recorded),
                     images=prepared.images)


def _prepare(
    state: State, config: Config, options: ShardOptions, project: FunctionProject | None, *,
    full: bool, on_event: Callable[[SyncEvent], None] | None, memo: PrepareMemo,
    snapshot: Snapshot,
) -> tuple[Prepared, tuple[Issue, ...], tuple[RecordedService, LiveBuild] | None]:
    """The prepared files and every problem in them, as `sync` prepares and checks them, and
    the carried outcome's view of the configured service when it stands in (see
    `_carried_view`; then, as in `sync`, only the changed files were prepared again)."""
    carried = _carried(state, config, options, full=full)
    prepared = prepare_files(config, state, on_event=on_event, carried=carried, memo=memo,
                             snapshot=snapshot)
    problems = blocking_problems(prepared, project, source=config.source, limits=options.limits)
    if config.check.strict:  # then a broken reference stops `sync`: say so here too
        from assetsync.check.project import reference_issues

        problems += reference_issues(config, prepared.files, project)
    view = _carried_view(state, config, carried, prepared)
    if view is not None and on_event is not None:
        changed = prepared.changed or 0
        on_event(SyncEvent(
            "carried", files=changed, total=len(prepared.files),
            message=f"{changed} file(s) prepared, the others as the last sync published them"))
    return prepared, problems, view


def _audio_reports(prepared: Prepared) -> tuple[AudioReport, ...]:
    """What the transform step made of each audio file (loading its types only if any)."""
    if not prepared.audio:
        return ()
    from assetsync.media.audio_stage import AudioReport

    return tuple(r for r in prepared.audio if isinstance(r, AudioReport))


def _issues(prepared: Prepared, problems: Sequence[Issue], functions: FunctionPlan | None,
            shard_issues: Sequence[Issue], plan: Plan,
            project_plan: _ProjectPlan | None) -> tuple[Issue, ...]:
    """Every issue, errors first, each once: the scan's (a file it could not take is an error
    here), the preparation's checks, the functions', the placement's and the plan's."""
    scan = {(i.path, i.message) for i in prepared.snapshot.issues}
    found = {
        *(Issue(path, message) for path, message in scan),
        *(i for i in prepared.warnings if (i.path, i.message) not in scan),
        *problems, *(functions.issues if functions is not None else ()),
        *shard_issues, *plan.issues,
        *(project_plan.variable_issues if project_plan is not None else ()),
    }
    return tuple(sorted(found, key=lambda i: (i.severity != "error", i.path, i.message)))


@frozen
class _ProjectPlan:
    """The Variables' plan of a Toolkit project, offline."""

    project: FunctionProject
    variables: VariablePlan | None
    recorded: bool  # a sync recorded the Variables' digests
    variable_issues: tuple[Issue, ...]

    @classmethod
    def of(cls, state: State, config: Config, project: FunctionProject, *,
           prune: bool) -> _ProjectPlan:
        """Plan the .env against the Variables' digests the last sync recorded for the
        configured service's environment (the functions are the assessment's)."""
        from assetsync.functions.variables import plan_recorded_variables

        key = target_key(config)
        service = state.get_service(key, config.service)
        sid = service.service_sid if service is not None else None
        env = state.get_environment(key, sid, config.environment) if sid else None
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
        return cls(project, variables, recorded, issues)


def _plan_services(
    config: Config,
    files: Sequence[PublishedFile],
    recorded: dict[str, RecordedService],
    options: ShardOptions,
    *,
    full: bool,
    memo: PrepareMemo | None = None,
) -> tuple[Plan, ShardResult | None, tuple[ServicePlan, ...], list[Issue]]:
    """One plan when the site fits one build and lives in one service (the usual case), else
    the files sharded as `assetsync.sync.sharded.sync_sharded` shards them and one plan per
    service."""
    limits = options.limits
    empty = RecordedService()
    previous = previous_placement(files, recorded)
    private = list(map(_VISIBILITY, files)).count(Visibility.PRIVATE)
    over = private > limits.private or len(files) - private > limits.public_protected
    if not over and set(previous.values()) <= {config.service}:
        return build_plan(files, recorded.get(config.service, empty), None, limits=limits,
                          full=full), None, (), []
    try:
        result = _placed(config, files, recorded, previous, options, memo)
    except LimitError as exc:
        # Cannot be spread: the one-service plan for the listing, the reason as the error
        # (its own per-build limit lines would only repeat it).
        plan = build_plan(files, recorded.get(config.service, empty), None, limits=limits,
                          full=full)
        plan = replace(plan, issues=tuple(i for i in plan.issues if i.path != "/"))
        return plan, None, (), [Issue(exc.path or "/", str(exc))]
    grouped: dict[str, list[PublishedFile]] = {name: [] for name in result.services}
    for f, name in zip(files, map(result.assignment.__getitem__, map(_PATH, files))):
        grouped[name].append(f)
    # A retired service (no file left) stops serving the site's files: `sync` deletes its
    # environments (an empty build is refused) or builds it without them, so they are drops.
    retired = [p for name in result.retired for p in recorded.get(name, empty).owned_paths]
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
    merged = _merged([s.plan for s in services], limits)
    if retired:
        merged = replace(merged, drops=tuple(sorted((*merged.drops, *retired))),
                         needs_build=True)
    return merged, result, services, issues


def _placed(config: Config, files: Sequence[PublishedFile], recorded: dict[str, RecordedService],
            previous: dict[str, str], options: ShardOptions, memo: PrepareMemo | None
            ) -> ShardResult:
    """Each file's service as `shard` places it, or as the memo kept it for these very inputs
    (the same answer). Raises `LimitError` as `shard` does."""
    def changed() -> list[str]:  # asked when some file was placed before
        return changed_paths(files, recorded, previous)

    key = placement_key(options, config.service, files, previous, changed)
    result = memo.placement(key) if memo is not None else None
    if result is None:
        from assetsync.plan.shard import shard  # only a site spread over services pays for it

        result = shard(files, previous, options, base_service=config.service, changed=changed)
        if memo is not None:
            memo.keep_placement(key, result)
    return result


def _in_service(files: Sequence[PublishedFile], placed: ShardResult, service: str
                ) -> list[PublishedFile]:
    """The files placed in `service` (C-level maps: a 10,000-file site comes through here)."""
    where = map(placed.assignment.get, map(_PATH, files), repeat(service))
    return list(compress(files, map(service.__eq__, where)))


def _every(plans: Sequence[Plan], field: str) -> Iterator[Any]:
    """One field's items of every plan, in turn."""
    return chain.from_iterable(map(attrgetter(field), plans))


def _merged(plans: Sequence[Plan], limits: BuildLimits) -> Plan:
    """Every service's plan as one (sorted by path; counts summed over the services)."""
    return Plan(
        create_assets=tuple(sorted(_every(plans, "create_assets"))),
        uploads=tuple(sorted(_every(plans, "uploads"), key=_PATH)),
        # (file, SID) pairs by their file, whose path comes first and is unique
        reuses=tuple(sorted(_every(plans, "reuses"), key=_FIRST)),
        drops=tuple(sorted(_every(plans, "drops"))),
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
