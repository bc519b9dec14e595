"""Sharded sync: the site's files spread over several services, one per-service sync each.

`assetsync.plan.shard` (pure) decides which service each file lives in, stably, so that every build
stays within the per-build limits (1000 public+protected and 50 private asset versions). This
module feeds it what it needs from the state and the live builds (the previous assignment, what
each live build carries that the site does not own, how many other services the account holds),
finds or creates every service the site needs before anything is uploaded to any of them, and
then runs `sync_service` for each service, services receiving moved files first so a moved file
is live in its new service before its old one drops it; a service left with no file is retired
last (`assetsync.sync.retire`). Services sync one after the other on one client, so every upload
shares its one concurrency limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import compress
from operator import attrgetter, not_

from assetsync.config import Config, target_key
from assetsync.errors import ApiStatusError, AuthenticationError, DriftError, LimitError
from assetsync.frozen import frozen, replace
from assetsync.functions.local import FunctionProject
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.assets import RecordedService
from assetsync.plan.shard import (
    BuildCounts,
    ShardOptions,
    ShardResult,
    changed_paths,
    previous_placement,
    service_names,
    shard,
)
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build
from assetsync.results import EventCallback, SyncEvent, SyncResult
from assetsync.state.db import State
from assetsync.state.records import ServiceRecord
from assetsync.state.remote_manifest import is_reserved
from assetsync.sync.apply import ApplyOptions
from assetsync.sync.locate import Located, locate_target, peek_target
from assetsync.sync.one_service import sync_service
from assetsync.sync.phase_values import RecordedSnapshot, SyncFlags
from assetsync.sync.remote_manifest import sync_state_from_live
from assetsync.sync.retire import plan_retirement, retire_service, retirement_result

__all__ = [
    "combine_results",
    "preflight",
    "previous_placement",
    "provision_services",
    "service_names",
    "services_in_use",
    "sync_sharded",
]

_PATH = attrgetter("path")
_VISIBILITY = attrgetter("visibility")
_EMPTY = RecordedService()


def services_in_use(config: Config) -> int:
    """How many of the site's services the state knows (at least 1): the most builds one sync
    of the site makes, unless it opens a new service. Reads the state without its lock."""
    with State.open(config.state_dir, readonly=True) as state:
        target = target_key(config)
        return max(1, sum(1 for name in service_names(config.service, config.shard)
                          if state.get_service(target, name) is not None))


def _reserved(loc: Located, owned: frozenset[str]) -> BuildCounts:
    """What a live build carries that this site does not own (invariant 3 keeps it)."""
    if loc.live is None:
        return BuildCounts()
    versions = loc.live.asset_versions
    foreign = list(compress(versions, map(not_, map(owned.__contains__, map(_PATH, versions)))))
    private = sum(1 for v in foreign if v.visibility == Visibility.PRIVATE.value)
    return BuildCounts(public_protected=len(foreign) - private, private=private,
                       functions=sum(not is_reserved(v.path)
                                     for v in loc.live.function_versions))


def _retired_and_empty(loc: Located | None, owned: frozenset[str]) -> bool:
    """A retired service whose next build would hold nothing (an empty build is refused)."""
    if loc is None or loc.live is None:
        return True
    return (all(is_reserved(v.path) for v in loc.live.function_versions)  # the manifest's own
            and all(v.path in owned for v in loc.live.asset_versions))


def _recorded(
    state: State, target: str, names: Sequence[str], environment: str,
    known: Mapping[str, ServiceRecord] | None = None, skip: str | None = None,
) -> dict[str, RecordedService]:
    """What the state recorded for each of the site's services that exists (`known`: the
    target's recorded services, if the caller has read them), but `skip`."""
    known = state.services(target) if known is None else known
    return {name: state.recorded_service(target, known[name].service_sid, environment,
                                         assets_on_first_use=True)
            for name in names if name in known and name != skip}


def preflight(
    state: State, target: str, *, service: str, environment: str,
    files: Sequence[PublishedFile], shard_options: ShardOptions,
) -> None:
    """Raise the `LimitError` a sharded sync would, from the files and the state alone.

    What live builds carry and the account's other services only take room away, so a site
    that fails here fails for sure; `engine.sync` calls this before its first request when
    `[shard]` has groups or `first_service` (the configurations that can be impossible).
    """
    names = service_names(service, shard_options)
    recorded = _recorded(state, target, names, environment)
    shard(files, previous_placement(files, recorded), shard_options, base_service=service)


# ------------------------------------------------------------------------------- the survey

@frozen
class _Site:
    """What the state and the live services say about the site before it is sharded."""

    recorded: Mapping[str, RecordedService]  # per recorded service of the site
    snapshots: Mapping[str, RecordedSnapshot]
    previous: Mapping[str, str]  # path -> service, from the last sync
    found: Mapping[str, Located]  # per recorded service: where it is and its live build
    foreign: int  # services of the account that are not the site's (counted when needed)

    def reserved(self) -> dict[str, BuildCounts]:
        """Per service, the room its live build's content of others takes."""
        return {name: _reserved(loc, self.recorded.get(name, _EMPTY).owned_paths)
                for name, loc in self.found.items()}

    def owned(self, name: str) -> frozenset[str]:
        """The paths assetsync deployed in service `name`'s environment."""
        return self.recorded.get(name, _EMPTY).owned_paths


def _read_records(
    state: State, target: str, service: str, environment: str, names: Sequence[str],
    recorded_view: RecordedService | None,
) -> tuple[dict[str, RecordedService], dict[str, RecordedSnapshot]]:
    """Each recorded service's record (`recorded_view` standing in for `service`'s), and the
    snapshots that let `sync_service` skip reading it again."""
    known = state.services(target)
    recorded = _recorded(state, target, names, environment, known,
                         skip=service if recorded_view is not None else None)
    if recorded_view is not None and service in known:
        recorded = {service: recorded_view, **recorded}
    snapshots = {name: RecordedSnapshot(known[name].service_sid, state.writes, recorded[name])
                 for name in recorded if name in known}
    return recorded, snapshots


async def _read_manifests(
    client: ServerlessClient, state: State, target: str, names: Sequence[str],
    environment: str, located: Located | None,
) -> list[str]:
    """A state that recorded no deployment of the site (a fresh checkout) reads each of its
    services' manifests before the files are placed, so each file stays in the service that
    holds it (`assetsync.sync.remote_manifest`); services are looked up in order, up to the
    first that does not exist. Returns what it says about them."""
    known = state.services(target)
    notes: list[str] = []
    for name in names:
        rec = known.get(name)
        env = state.get_environment(target, rec.service_sid, environment) if rec else None
        if env is not None and env.build_sid:
            return notes  # not fresh: each service's sync brings its own record up to date
    for name in names:
        # The caller's lookup of the first service (live build resolved) is not repeated:
        # a cold sync looks each service up once.
        where = (located if name == names[0] and located is not None
                 else await peek_target(client, state, target, name, environment))
        if where.env is None or where.live is None:
            return notes
        read = await sync_state_from_live(client, state, target, where.service_sid,
                                          environment, where.live, enabled=True)
        notes.extend([f"{name}: {read.note}"] if read.note else [])
    return notes


def _may_spread(files: Sequence[PublishedFile], previous: Mapping[str, str],
                options: ShardOptions) -> bool:
    """Whether the site may need more than one service (only then do other services count)."""
    limits = options.limits
    private = list(map(_VISIBILITY, files)).count(Visibility.PRIVATE)
    return (len(set(previous.values())) > 1 or private > limits.private
            or len(files) - private > limits.public_protected)


async def _survey(
    client: ServerlessClient, state: State, target: str, *, service: str, environment: str,
    files: Sequence[PublishedFile], options: ShardOptions, located: Located | None,
    recorded_view: RecordedService | None,
) -> _Site:
    """Read the site's records, look up each recorded service (read-only) and, when the site
    may spread, count the account's other services."""
    names = service_names(service, options)
    recorded, snapshots = _read_records(state, target, service, environment, names,
                                        recorded_view)
    found: dict[str, Located] = {} if located is None else {service: located}
    for name in recorded:
        if name not in found and name != service:
            found[name] = await peek_target(client, state, target, name, environment)
    previous = previous_placement(files, recorded)
    foreign = 0
    if _may_spread(files, previous, options):
        ours = set(names)
        foreign = sum(1 for s in await client.list_services() if s.unique_name not in ours)
    return _Site(recorded, snapshots, previous, found, foreign)


def _place(files: Sequence[PublishedFile], site: _Site, options: ShardOptions,
           service: str) -> ShardResult:
    """Shard the files, knowing what the live builds carry and the account holds."""

    def changed() -> list[str]:  # asked for only when files may have to move
        return changed_paths(files, site.recorded, site.previous)

    return shard(files, site.previous, options, base_service=service, reserved=site.reserved(),
                 foreign_services=site.foreign, changed=changed)


# ------------------------------------------------------------------------------- provisioning

async def _open_service(
    client: ServerlessClient, state: State, target: str, name: str, environment: str,
    peeked: Located | None,
) -> tuple[Located, bool]:
    """Find or create service `name` and its environment; True when the service is new.
    `peeked`: this run's read-only lookup of it, if any (not repeated)."""
    if peeked is None:
        peeked = await locate_target(client, state, target, name, environment, create=False)
    if peeked.env is not None:
        return peeked, False
    where = await locate_target(client, state, target, name, environment, create=True,
                                peeked=peeked)
    return where, where.created


async def _undo(client: ServerlessClient, state: State, target: str,
                created: Mapping[str, str]) -> str:
    """Delete the services this run created (empty: nothing was uploaded yet); says how
    many went, for the error line."""
    gone = 0
    for name, sid in created.items():
        try:
            await client.delete_service(sid)
        except ApiStatusError:
            continue  # left for the user: the error names the limit, not this
        state.forget_service(target, name, sid)
        gone += 1
    return f" (the {gone} new service(s) it had created were deleted again)" if gone else ""


async def provision_services(
    client: ServerlessClient, state: State, target: str, names: Sequence[str],
    environment: str, found: Mapping[str, Located],
) -> dict[str, Located]:
    """Find or create every service in `names` (and its environment) before anything is
    uploaded to any of them, so an account that cannot hold them all fails the sync with
    nothing published. `found`: what was looked up already (kept, live build included).

    Raises:
        LimitError: the account refused a service (Twilio's service limit); the services this
            call created are deleted again.
    """
    located = dict(found)
    created: dict[str, str] = {}
    for name in names:
        if name in located and located[name].env is not None:
            continue
        try:
            where, new = await _open_service(client, state, target, name, environment,
                                             located.get(name))
        except ApiStatusError as exc:
            undone = await _undo(client, state, target, created)
            if isinstance(exc, AuthenticationError):
                raise
            raise LimitError(
                f"{name}: the account refused to create it ({exc}); this site needs "
                f"{len(names)} services ({', '.join(names)}), and nothing was uploaded or "
                f"built{undone}; delete services the account no longer uses, or publish fewer "
                "files", limit="services") from None
        if new and where.service_sid is not None:
            created[name] = where.service_sid
        located[name] = where
    return located


# ------------------------------------------------------------------------------- the syncs

@frozen
class _Run:
    """What every service's sync of one sharded sync shares."""

    client: ServerlessClient
    state: State
    target: str
    service: str  # the configured one: it gets the functions and is never retired
    environment: str
    options: ApplyOptions
    flags: SyncFlags
    on_event: EventCallback | None
    while_building: Callable[[Build, Sequence[PublishedFile]], object] | None
    functions: FunctionProject | None
    held: frozenset[str] = frozenset()  # files that could not be read: their live versions stay


async def _retire(run: _Run, name: str, owned: frozenset[str]) -> SyncResult:
    """Retire service `name`: it holds no file now and its next build would be empty."""
    retirement = await plan_retirement(run.client, run.state, run.target, name)
    line = await retire_service(run.client, run.state, run.target, retirement,
                                dry_run=run.flags.dry_run, on_event=run.on_event)
    return retirement_result(retirement, run.environment, owned, line,
                             dry_run=run.flags.dry_run)


async def _sync_one(run: _Run, name: str, files: Sequence[PublishedFile], site: _Site,
                    plan: ShardResult) -> SyncResult:
    """One service's sync; drift there is named after the service."""
    try:
        return await sync_service(
            run.client, run.state, run.target, service=name, environment=run.environment,
            files=files, options=run.options, flags=run.flags, on_event=run.on_event,
            located=site.found.get(name), limits=plan.limits,
            snapshot=site.snapshots.get(name), while_building=run.while_building,
            functions=run.functions if name == run.service else None, held=run.held,
        )
    except DriftError as exc:
        if len(plan.services) == 1:
            raise
        raise DriftError(f"{name}/{run.environment}: {exc}") from None


async def _sync_each(run: _Run, files: Sequence[PublishedFile], site: _Site,
                     plan: ShardResult) -> list[SyncResult]:
    """Every service in `plan.sync_order()`: synced to its share of the files, or retired."""
    results: list[SyncResult] = []
    for name in plan.sync_order():
        mine = (files if plan.services == (name,)  # the usual site: every file is here
                else [f for f in files if plan.assignment.get(f.path) == name])
        owned = site.owned(name)
        # A file held back this run (it exists, but could not be read) keeps its service.
        if (not mine and name != run.service and not owned & run.held
                and _retired_and_empty(site.found.get(name), owned)):
            results.append(await _retire(run, name, owned))
        else:
            results.append(await _sync_one(run, name, mine, site, plan))
    return results


async def sync_sharded(
    client: ServerlessClient,
    state: State,
    target: str,
    *,
    service: str,
    environment: str,
    files: Sequence[PublishedFile],
    shard_options: ShardOptions,
    options: ApplyOptions,
    flags: SyncFlags | None = None,
    on_event: EventCallback | None = None,
    located: Located | None = None,
    while_building: Callable[[Build, Sequence[PublishedFile]], object] | None = None,
    recorded_view: RecordedService | None = None,
    functions: FunctionProject | None = None,
    held: frozenset[str] = frozenset(),
) -> SyncResult:
    """Shard `files` over `service`, `service-2`, ... and sync each service's environment.

    With a site that fits one service (the usual case) this is one `sync_service` call and no
    extra request; other services are looked up only when the site uses or needs them, and
    every service the site needs is found or created before anything is uploaded. A service
    left with no file is retired (its environments, or itself, deleted). Services run one
    after the other on the one client, so uploads of every service share its one concurrency
    limit (`[sync] concurrency`). `recorded_view`: `service`'s record as
    `assetsync.state.last_outcome.recorded_view` stands it in, instead of reading it.
    `functions` deploy with `service`, the first (the others carry none). `held`: published
    paths of files that exist but could not be read this run (their live versions stay).
    """
    flags = flags or SyncFlags()
    read = (await _read_manifests(client, state, target, service_names(service, shard_options),
                                  environment, located) if options.remote_manifest else [])
    site = await _survey(client, state, target, service=service, environment=environment,
                         files=files, options=shard_options, located=located,
                         recorded_view=recorded_view)
    plan = _place(files, site, shard_options, service)
    if on_event is not None:  # before any write: the sync CLI takes a budget slot per service
        on_event(SyncEvent("sharded", total=len(plan.services), message=" ".join(plan.services)))
    if len(plan.services) > 1 and not flags.dry_run:
        site = replace(site, found=await provision_services(
            client, state, target, plan.services, environment, site.found))
    run = _Run(client, state, target, service, environment, options, flags, on_event,
               while_building, functions, held)
    results = await _sync_each(run, files, site, plan)
    return combine_results(service, environment, results,
                           [*read, *(m.describe() for m in plan.moves)])


# ------------------------------------------------------------------------------- the result

def _union(results: Sequence[SyncResult], field: str) -> tuple[str, ...]:
    return tuple(sorted(p for r in results for p in getattr(r, field)))


def _total(results: Sequence[SyncResult], field: str) -> int:
    return sum(int(getattr(r, field)) for r in results)


def _prefixed(result: SyncResult, lines: Sequence[str], many: bool) -> list[str]:
    return [f"{result.service}: {line}" if many else line for line in lines]


def _blank(service: str, environment: str) -> SyncResult:
    """A result of no service (stands in for the first one when there is none)."""
    return SyncResult(
        service=service, environment=environment, service_sid=None, environment_sid=None,
        domain_name=None, build_sid=None, deployment_sid=None, uploaded=(), reused=0,
        created_assets=(), dropped=(), kept_foreign=(), function_versions=0, upload_bytes=0,
        bytes_sent=0, requests=0, write_requests=0, retries=0, dry_run=False, noop=True,
    )


def combine_results(
    service: str, environment: str, results: Sequence[SyncResult], notes: Sequence[str] = ()
) -> SyncResult:
    """One result for a sharded sync: the first service's SIDs, every service's files summed,
    and each service's own result in `services` (when there is more than one)."""
    if len(results) == 1 and not notes:
        return results[0]
    first = next((r for r in results if r.service == service),
                 results[0] if results else _blank(service, environment))
    many = len(results) > 1
    return SyncResult(
        service=service,
        environment=environment,
        service_sid=first.service_sid,
        environment_sid=first.environment_sid,
        domain_name=first.domain_name,
        build_sid=first.build_sid,
        deployment_sid=first.deployment_sid,
        uploaded=_union(results, "uploaded"),
        reused=_total(results, "reused"),
        created_assets=_union(results, "created_assets"),
        dropped=_union(results, "dropped"),
        kept_foreign=_union(results, "kept_foreign"),
        function_versions=_total(results, "function_versions"),
        upload_bytes=_total(results, "upload_bytes"),
        bytes_sent=_total(results, "bytes_sent"),
        requests=_total(results, "requests"),
        write_requests=_total(results, "write_requests"),
        retries=_total(results, "retries"),
        dry_run=all(r.dry_run for r in results),
        noop=all(r.noop for r in results),
        urls=tuple(sorted((u for r in results for u in r.urls), key=lambda u: u.path)),
        warnings=tuple(w for r in results for w in _prefixed(r, r.warnings, many)),
        notes=tuple(notes) + tuple(n for r in results for n in _prefixed(r, r.notes, many)),
        services=tuple(results) if many else (),
        functions=first.functions,
        variables=first.variables,
    )
