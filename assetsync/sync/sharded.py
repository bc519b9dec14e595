"""Sharded sync: the site's files spread over several services, one per-service sync each.

`assetsync.plan.shard` (pure) decides which service each file lives in, stably, so that every build
stays within the per-build limits (1000 public+protected and 50 private asset versions). This
module feeds it what it needs from the state and the live builds (the previous assignment, what
each live build carries that the site does not own, how many other services the account holds)
and then runs `engine.sync_service` for each service, services receiving moved files first so
a moved file is live in its new service before its old one drops it. Services sync one after the
other on one client, so every upload shares its one concurrency limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import compress
from operator import attrgetter, not_

from assetsync.sync.apply import ApplyOptions
from assetsync.remote.client import ServerlessClient
from assetsync.config import Config, target_key
from assetsync.errors import DriftError
from assetsync.functions.local import FunctionProject
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.assets import RecordedService
from assetsync.sync.locate import Located, peek_target
from assetsync.remote.resources import Build
from assetsync.sync.one_service import RecordedSnapshot, SyncFlags, sync_service
from assetsync.plan.shard import (
    BuildCounts,
    ShardOptions,
    previous_placement,
    service_names,
    shard,
)
from assetsync.state.db import State
from assetsync.state.records import ServiceRecord
from assetsync.results import EventCallback, SyncEvent, SyncResult

__all__ = [
    "combine_results",
    "preflight",
    "previous_placement",
    "service_names",
    "services_in_use",
    "sync_sharded",
]

_PATH = attrgetter("path")
_VISIBILITY = attrgetter("visibility")


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
                       functions=len(loc.live.function_versions))


def _retired_and_empty(loc: Located | None, owned: frozenset[str]) -> bool:
    """A retired service whose next build would hold nothing (an empty build is refused)."""
    if loc is None or loc.live is None:
        return True
    return not loc.live.function_versions and all(v.path in owned for v in loc.live.asset_versions)


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
) -> SyncResult:
    """Shard `files` over `service`, `service-2`, ... and sync each service's environment.

    With a site that fits one service (the usual case) this is one `sync_service` call and no
    extra request; other services are looked up only when the site uses or needs them.
    Services run one after the other on the one client, so uploads of every service share its
    one concurrency limit (`[sync] concurrency`). `recorded_view`: `service`'s record as
    `assetsync.state.last_outcome.recorded_view` stands it in, instead of reading it. `functions` deploy
    with `service`, the first (the others carry none).
    """
    names = service_names(service, shard_options)
    known = state.services(target)
    recorded = _recorded(state, target, names, environment, known,
                         skip=service if recorded_view is not None else None)
    if recorded_view is not None and service in known:
        recorded = {service: recorded_view, **recorded}
    snapshots = {name: RecordedSnapshot(known[name].service_sid, state.writes, recorded[name])
                 for name in recorded if name in known}
    previous = previous_placement(files, recorded)
    found: dict[str, Located] = {}
    if located is not None:
        found[service] = located
    for name in recorded:
        if name not in found and name != service:
            found[name] = await peek_target(client, state, target, name, environment)
    empty = RecordedService()
    reserved = {name: _reserved(loc, recorded.get(name, empty).owned_paths)
                for name, loc in found.items()}
    limits = shard_options.limits
    private = list(map(_VISIBILITY, files)).count(Visibility.PRIVATE)
    spread = len(set(previous.values())) > 1 or private > limits.private or (
        len(files) - private > limits.public_protected)
    foreign = 0
    if spread:  # only then can another service be needed: count the account's other services
        ours = set(names)
        foreign = sum(1 for s in await client.list_services() if s.unique_name not in ours)

    def changed() -> list[str]:  # asked for only when files may have to move
        return [f.path for f in files  # (a StrEnum member hashes as its value)
                if (f.digest, f.path, f.visibility)
                not in recorded.get(previous.get(f.path, ""), empty).versions]

    plan = shard(files, previous, shard_options, base_service=service, reserved=reserved,
                 foreign_services=foreign, changed=changed)
    if on_event is not None:  # before any write: the sync CLI takes a budget slot per service
        on_event(SyncEvent("sharded", total=len(plan.services), message=" ".join(plan.services)))
    results: list[SyncResult] = []
    notes: list[str] = [m.describe() for m in plan.moves]
    for name in plan.sync_order():
        mine = (files if plan.services == (name,)  # the usual site: every file is here
                else [f for f in files if plan.assignment.get(f.path) == name])
        owned = recorded.get(name, empty).owned_paths
        if not mine and name != service and _retired_and_empty(found.get(name), owned):
            notes.append(f"service {name} no longer holds any file; its last build stays live "
                         "until you delete the service")
            continue
        try:
            results.append(await sync_service(
                client, state, target, service=name, environment=environment, files=mine,
                options=options, flags=flags or SyncFlags(), on_event=on_event,
                located=found.get(name), limits=limits, snapshot=snapshots.get(name),
                while_building=while_building,
                functions=functions if name == service else None,
            ))
        except DriftError as exc:
            if len(plan.services) == 1:
                raise
            raise DriftError(f"{name}/{environment}: {exc}") from None
    return combine_results(service, environment, results, notes)


def combine_results(
    service: str, environment: str, results: Sequence[SyncResult], notes: Sequence[str] = ()
) -> SyncResult:
    """One result for a sharded sync: the first service's SIDs, every service's files summed,
    and each service's own result in `services` (when there is more than one)."""
    if len(results) == 1 and not notes:
        return results[0]
    first = next((r for r in results if r.service == service), results[0] if results else None)

    def union(field: str) -> tuple[str, ...]:
        return tuple(sorted(p for r in results for p in getattr(r, field)))

    def total(field: str) -> int:
        return sum(int(getattr(r, field)) for r in results)

    many = len(results) > 1
    return SyncResult(
        service=service,
        environment=environment,
        service_sid=first.service_sid if first else None,
        environment_sid=first.environment_sid if first else None,
        domain_name=first.domain_name if first else None,
        build_sid=first.build_sid if first else None,
        deployment_sid=first.deployment_sid if first else None,
        uploaded=union("uploaded"),
        reused=total("reused"),
        created_assets=union("created_assets"),
        dropped=union("dropped"),
        kept_foreign=union("kept_foreign"),
        function_versions=total("function_versions"),
        upload_bytes=total("upload_bytes"),
        bytes_sent=total("bytes_sent"),
        requests=total("requests"),
        write_requests=total("write_requests"),
        retries=total("retries"),
        dry_run=all(r.dry_run for r in results),
        noop=all(r.noop for r in results),
        urls=tuple(sorted((u for r in results for u in r.urls), key=lambda u: u.path)),
        warnings=tuple(w for r in results for w in _prefixed(r, r.warnings, many)),
        notes=tuple(notes) + tuple(n for r in results for n in _prefixed(r, r.notes, many)),
        services=tuple(results) if many else (),
        functions=first.functions if first else None,
        variables=first.variables if first else None,
    )


def _prefixed(result: SyncResult, lines: Sequence[str], many: bool) -> list[str]:
    return [f"{result.service}: {line}" if many else line for line in lines]
