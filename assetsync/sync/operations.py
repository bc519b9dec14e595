"""Commands around a sync: status, rollback, promote, prune, and the published URLs.

Each takes the config (and optionally a client, like `engine.sync`), holds the state lock while
it works, and returns a frozen result from `assetsync.results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from assetsync.config import Config, target_key
from assetsync.errors import AssetsyncError, ConfigError, DriftError, NotFoundError
from assetsync.frozen import frozen, replace
from assetsync.functions.local import (
    FunctionProject,
    functions_folder,
    load_functions,
    read_variables,
)
from assetsync.functions.variables import sync_variables
from assetsync.models import PublishedFile
from assetsync.plan.assess import Assessment, assess
from assetsync.plan.assets import RecordedService
from assetsync.prepare.classify import Issue
from assetsync.prepare.stage import Prepared, blocking_problems, prepare_files
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build, Environment
from assetsync.results import EventCallback, PruneResult, StatusResult, SyncResult
from assetsync.state.db import State
from assetsync.state.ledger import StateLedger, record_adopted_build, recorded_build
from assetsync.state.records import BuildRecord
from assetsync.sync.apply import deploy, find_duplicates, finish_build
from assetsync.sync.locate import (
    drift_of,
    fetch_live_build,
    find_environment,
    locate_target,
    to_live_build,
)
from assetsync.sync.phase_values import apply_options
from assetsync.sync.remote_manifest import sync_state_from_live
from assetsync.sync.session import run_on_state
from assetsync.sync.sharded import combine_results, service_names
from assetsync.sync.uploads import run_all
from assetsync.sync.urlmap import UrlEntry, url_entries
from assetsync.sync.variables_sync import (  # sync's own plan and record of the Variables
    plan_live_variables,
    remember_variables,
)

__all__ = ["promote", "prune", "published_urls", "rollback", "status"]


def _deploy_result(service: str, env_name: str, service_sid: str, env_sid: str,
                   domain: str | None, build_sid: str, deployment_sid: str, reused: int,
                   api: ServerlessClient, notes: list[str]) -> SyncResult:
    return SyncResult(
        service=service, environment=env_name, service_sid=service_sid,
        environment_sid=env_sid, domain_name=domain, build_sid=build_sid,
        deployment_sid=deployment_sid, uploaded=(), reused=reused, created_assets=(),
        dropped=(), kept_foreign=(), function_versions=0, upload_bytes=0, bytes_sent=0,
        requests=api.stats.requests, write_requests=api.stats.write_requests,
        retries=api.stats.retries, dry_run=False, noop=False, notes=tuple(notes),
    )


# ------------------------------------------------------------------------------- status

@frozen
class _LiveSide:
    """What `status` reads of one service's environment: where it is, its live build and
    that build's status, the build assetsync recorded and a pending one, and drift."""

    service_sid: str | None
    env: Environment | None
    live: Build | None
    live_status: str | None
    recorded_sid: str | None
    pending_sid: str | None
    drift: str | None
    state_source: str = "local"


async def _live_side(api: ServerlessClient, state: State, target: str, service: str,
                     env_name: str, *, remote_manifest: bool = True) -> _LiveSide:
    where = await locate_target(api, state, target, service, env_name, create=False)
    env, svc = where.env, where.service_sid
    live = await fetch_live_build(api, env)
    if svc is None or env is None:
        return _LiveSide(svc, env, live, None, None, None, None)
    # As `sync` does: a state that does not know the live build reads the build's manifest.
    read = await sync_state_from_live(api, state, target, svc, env_name, live,
                                      enabled=remote_manifest)
    live_status = await api.fetch_build_status(svc, live.sid) if live else None
    env_rec = state.get_environment(target, svc, env_name)
    recorded_sid = env_rec.build_sid if env_rec else None
    pending = state.get_pending(target, svc, env.sid)
    pending_sid = pending.build_sid if pending else None
    drift = None
    if live and recorded_sid and live.sid not in (recorded_sid, pending_sid):
        drift = drift_of(state, target, svc, live, recorded_sid).message()
    return _LiveSide(svc, env, live, live_status, recorded_sid, pending_sid, drift,
                     read.source)


async def _service_status(
    api: ServerlessClient, state: State, target: str, service: str, env_name: str,
    files: Sequence[PublishedFile], prepared: Prepared, problems: Sequence[Issue] = (),
    functions: FunctionProject | None = None, runtime: str | None = None,
    *, remote_manifest: bool = True,
) -> StatusResult:
    """One service's status: the live build next to the recorded one, drift, and what a sync
    would do (`assetsync.plan.assess`, as `sync` asks it). `problems`: what the preparation's
    checks found; `functions` (the configured service's only, as in `sync`) adds its functions
    and Variables; `runtime` is `[sync] runtime`."""
    side = await _live_side(api, state, target, service, env_name,
                            remote_manifest=remote_manifest)
    svc, env, live = side.service_sid, side.env, side.live
    found = _assessed(state, target, svc, env_name, files, prepared, live, functions, runtime,
                      problems, manifest=remote_manifest)
    variables = (await plan_live_variables(api, functions, svc, env, prune=False)
                 if functions is not None and functions.variables is not None else None)
    fplan = found.functions
    live_functions = {v.sid for v in live.function_versions} if live else set()
    redeploys = tuple(f.path for f, sid in fplan.reuses
                      if sid not in live_functions) if fplan is not None else ()
    c = found.plan.counts
    dups = (await find_duplicates(api, svc, functions=functions is not None)
            if svc is not None else None)
    return StatusResult(
        service=service, environment=env_name, service_sid=svc,
        environment_sid=env.sid if env else None,
        domain_name=env.domain_name if env else None,
        live_build_sid=live.sid if live else None, live_build_status=side.live_status,
        recorded_build_sid=side.recorded_sid, pending_build_sid=side.pending_sid,
        drift=side.drift, pending_uploads=tuple(f.path for f in found.plan.uploads),
        pending_drops=found.plan.drops, needs_build=found.needs_build,
        counts={"public": c.public, "protected": c.protected, "private": c.private,
                "functions": found.function_count, "files": len(files),
                "errors": len(found.errors)},
        functions=fplan, variables=variables, function_redeploys=redeploys,
        runtime_change=found.runtime_change, duplicates=dups.message() if dups else None,
        state_source=side.state_source, problems=found.errors,
    )


def _assessed(
    state: State, target: str, svc: str | None, env_name: str, files: Sequence[PublishedFile],
    prepared: Prepared, live: Build | None, functions: FunctionProject | None,
    runtime: str | None, problems: Sequence[Issue], *, manifest: bool = True,
) -> Assessment:
    """The assessment a sync of this service would make now (`status` reports it)."""
    recorded = state.recorded_service(target, svc, env_name) if svc else RecordedService()
    rows = ([(v.digest, v.path, v.visibility, v.version_sid)
             for v in state.versions(target, svc, kind="function")]
            if svc and functions is not None else [])
    return assess(files, recorded, to_live_build(live) if live else None,
                  held=prepared.held, problems=problems, functions=functions,
                  function_records=rows, runtime=runtime, manifest=manifest)


def status(
    config: Config, *, client: ServerlessClient | None = None, environment: str | None = None
) -> StatusResult:
    """The live build next to the recorded one, drift, and what a sync would change.

    For a sharded site, each of its services is reported in `services` (files stay with the
    service that holds them; new files are counted for the first service). A project that
    deploys functions also gets its functions' and Variables' changes (by path and key), on
    the first service, which is where `sync` deploys them.
    """
    env_name = environment or config.environment

    async def work(api: ServerlessClient, state: State, target: str) -> StatusResult:
        prepared = prepare_files(config, state)
        functions = load_functions(config)
        names = _site_services(config, state, target)
        owner: dict[str, str] = {}
        for name in names[1:]:
            rec = state.get_service(target, name)
            if rec is not None:
                owned = state.recorded_service(target, rec.service_sid, env_name).owned_paths
                owner.update(dict.fromkeys(owned, name))
        # Every check `sync` runs before its first request, on the configured service (where
        # a sync would stop).
        problems = blocking_problems(prepared, functions, source=config.source)
        if config.check.strict:  # then a broken reference stops `sync` too
            from assetsync.check.project import reference_issues

            problems += reference_issues(config, prepared.files, functions)
        parts = [
            await _service_status(api, state, target, name, env_name,
                                  [f for f in prepared.files
                                   if owner.get(f.path, config.service) == name], prepared,
                                  problems if name == config.service else (),
                                  functions if name == config.service else None,
                                  config.sync.runtime,
                                  remote_manifest=config.sync.remote_manifest)
            for name in names
        ]
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        return replace(
            first,
            drift=next((f"{p.service}: {p.drift}" for p in parts if p.drift), None),
            pending_uploads=tuple(sorted(u for p in parts for u in p.pending_uploads)),
            pending_drops=tuple(sorted(d for p in parts for d in p.pending_drops)),
            needs_build=any(p.needs_build for p in parts),
            counts={**first.counts, "files": len(prepared.files)},
            problems=tuple(i for p in parts for i in p.problems),
            services=tuple(parts),
        )

    return run_on_state(config, client, None, work)


def _site_services(config: Config, state: State, target: str) -> list[str]:
    """The configured service, then the other services of a sharded site that hold files."""
    names = _scheme(config)
    return [config.service] + [n for n in names[1:] if state.get_service(target, n) is not None]


def _scheme(config: Config) -> list[str]:
    """Every name a service of this site may have (`service`, `service-2`, ...)."""
    return service_names(config.service, config.shard)


def _one_of_the_site(config: Config, service: str | None) -> str:
    """`service` (default the configured one), refused unless it is one of the site's."""
    if service is None:
        return config.service
    names = _scheme(config)
    if service not in names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"--service {service}: not a service of this site ({shown}); "
                          "`assetsync status` lists them", key="project.service")
    return service


# ------------------------------------------------------------------------------- rollback

def rollback(
    config: Config,
    *,
    to: str | None = None,
    client: ServerlessClient | None = None,
    environment: str | None = None,
    force: bool = False,
    on_event: EventCallback | None = None,
    service: str | None = None,
) -> SyncResult:
    """Deploy the previous completed build again (or `to`), rebuilding it from the recorded
    versions if Twilio already deleted it (undeployed builds go after 24 h).

    `service` picks one service of a sharded site (`name-2`, ...; default the configured one):
    each service has its own builds, so each is rolled back on its own.
    """
    env_name = environment or config.environment
    name = _one_of_the_site(config, service)

    async def work(api: ServerlessClient, state: State, target: str) -> SyncResult:
        where = await locate_target(api, state, target, name, env_name, create=False)
        env, svc = where.env, where.service_sid
        if env is None or svc is None:
            raise AssetsyncError(f"nothing to roll back: {name}/{env_name} does not "
                                 "exist yet; run `assetsync sync` first")
        live = await fetch_live_build(api, env)
        env_rec = state.get_environment(target, svc, env_name)
        current = env_rec.build_sid if env_rec else None
        if live is not None and current and live.sid != current and not force:
            raise DriftError(drift_of(state, target, svc, live, current).message()
                             + "; or roll back anyway with `assetsync rollback --force`")
        live_sid = live.sid if live else None
        to_sid, choice = _rollback_target(state, target, svc, env.sid, live_sid, to,
                                          f"{name}/{env_name}")
        if to_sid == live_sid:
            raise AssetsyncError(f"{to_sid} is already live on {name}/{env_name}")
        ledger = StateLedger(state, target, svc, env.sid)
        notes = [f"rolled back from {live_sid or 'nothing'} to {to_sid}"]
        try:
            status = await api.fetch_build_status(svc, to_sid)
        except NotFoundError:
            status = None
        if status == "completed":
            deployment = await deploy(api, svc, env.sid, to_sid)
            if choice is None:  # someone else's build: record it so the next sync sees no drift
                record_adopted_build(state, target, svc, env.sid,
                                     await api.fetch_build(svc, to_sid))
            ledger.record_deployment(to_sid, deployment)
            return _deploy_result(name, env_name, svc, env.sid, env.domain_name, to_sid,
                                  deployment, len(choice.version_sids) if choice else 0, api,
                                  notes)
        if choice is None:
            raise AssetsyncError(f"build {to_sid} is gone (or not completed) and assetsync has no "
                                 "record of its versions to rebuild it from")
        own = (recorded_build(state, target, svc, to_sid)
               if name == config.service and functions_folder(config) is not None else None)
        rebuilt = await _rebuild(api, state, ledger, choice, own or live, notes)
        deployment = await finish_build(api, svc, env.sid, rebuilt, ledger,
                                        options=apply_options(config), on_event=on_event)
        return _deploy_result(name, env_name, svc, env.sid, env.domain_name, rebuilt,
                              deployment, len(choice.version_sids), api, notes)

    return run_on_state(config, client, on_event, work)


def _rollback_target(state: State, target: str, svc: str, env_sid: str,
                     live_sid: str | None, to: str | None,
                     where: str) -> tuple[str, BuildRecord | None]:
    """The build to roll back to (`to`, else the newest completed one older than the live
    one) and assetsync's record of it (None: a build it did not make)."""
    ours = [b for b in state.builds(target, svc)
            if b.environment_sid == env_sid and b.status == "completed"]
    if to is not None:
        return to, next((b for b in ours if b.build_sid == to), None)
    now = next((b.created_at for b in ours if b.build_sid == live_sid), None)
    older = [b for b in ours if b.build_sid != live_sid
             and (now is None or (b.created_at or "") < now)]
    if not older:
        raise AssetsyncError(f"no earlier build of {where} to roll back to; name one with "
                             "--to BUILD_SID")
    return older[-1].build_sid, older[-1]


async def _rebuild(api: ServerlessClient, state: State, ledger: StateLedger,
                   choice: BuildRecord, base: Build | None, notes: list[str]) -> str:
    """Build `choice` again from its recorded versions (Twilio deleted it); returns the new
    build's SID, recorded as pending.

    `base` gives the functions, dependencies and runtime: the build's own (its kept manifest)
    where assetsync deploys the functions, else the live build's, as their owner deployed
    them."""
    if base is not None and base.sid == choice.build_sid:
        notes.append(f"restored the {len(base.function_versions)} function(s), dependencies "
                     f"and runtime of {choice.build_sid}")
    rebuilt = await api.create_build(
        ledger.service_sid, asset_versions=choice.version_sids,
        function_versions=[v.sid for v in base.function_versions] if base else (),
        dependencies=base.dependencies if base else (), runtime=base.runtime if base else None,
    )
    ledger.record_pending_build(rebuilt)
    target, svc = ledger.target, ledger.service_sid
    state.set_build_status(target, svc, choice.build_sid, "deleted")  # never a candidate again
    # Keep the original's place in history, so a second rollback goes further back.
    state.record_build(target, svc, build_sid=rebuilt.sid, environment_sid=ledger.environment_sid,
                       status="building", version_sids=choice.version_sids,
                       created_at=choice.created_at)
    notes.append(f"{choice.build_sid} was deleted by Twilio; rebuilt it as {rebuilt.sid}")
    return rebuilt.sid


# ------------------------------------------------------------------------------- promote

def promote(
    config: Config,
    from_env: str,
    to_env: str,
    *,
    client: ServerlessClient | None = None,
    on_event: EventCallback | None = None,
    env_file: str | None = None,
    prune_variables: bool = False,
) -> SyncResult:
    """Deploy the build live on `from_env` to `to_env` (created if missing); no upload.

    Every service of a sharded site is promoted (each service's result in `services`).
    `env_file`: a .env whose Variables `to_env` gets first (diffed by key, as `sync` sets
    them; `prune_variables` deletes the keys it lacks), in the configured service, where the
    functions live, as twilio-run's promote does with `--env`.
    """
    local = read_variables(Path(env_file)) if env_file is not None else None  # before any request

    async def work(api: ServerlessClient, state: State, target: str) -> SyncResult:
        names = _site_services(config, state, target)
        parts = [await promote_one(api, state, target, name) for name in names]
        return combine_results(config.service, to_env, parts)

    async def promote_one(api: ServerlessClient, state: State, target: str,
                          name: str) -> SyncResult:
        where = await locate_target(api, state, target, name, from_env, create=False)
        source, svc = where.env, where.service_sid
        if source is None or svc is None or not source.build_sid:
            raise AssetsyncError(f"nothing to promote: {name}/{from_env} has no live "
                                 "build; sync it first")
        dest_rec = state.get_environment(target, svc, to_env)
        dest = await find_environment(api, svc, to_env,
                                      dest_rec.environment_sid if dest_rec else None, create=True)
        assert dest is not None
        state.record_environment(target, svc, to_env, dest.sid, dest.domain_name)
        build_sid = source.build_sid
        if state.get_build(target, svc, build_sid) is None:
            record_adopted_build(state, target, svc, dest.sid,
                                 await api.fetch_build(svc, build_sid))
        notes: list[str] = []
        variables = None
        if local is not None and env_file is not None and name == config.service:
            # Before the deployment: the functions it makes live may read them at once.
            variables = await sync_variables(api, svc, dest.sid, local, prune=prune_variables,
                                             file=env_file)
            remember_variables(state, target, svc, dest.sid, local, variables)
            notes.append(f"variables: {len(variables.create)} created, {len(variables.update)} "
                         f"updated, {len(variables.delete)} deleted")
        deployment = await deploy(api, svc, dest.sid, build_sid)
        StateLedger(state, target, svc, dest.sid).record_deployment(build_sid, deployment)
        done = _deploy_result(name, to_env, svc, dest.sid, dest.domain_name, build_sid,
                              deployment, 0, api, [f"promoted {build_sid} from {from_env}",
                                                   *notes])
        return replace(done, variables=variables)

    return run_on_state(config, client, on_event, work)


# ------------------------------------------------------------------------------- prune

@frozen
class _Candidate:
    sid: str
    name: str


def prune(
    config: Config, *, yes: bool = False, client: ServerlessClient | None = None,
    on_event: EventCallback | None = None, service: str | None = None,
) -> PruneResult:
    """Asset resources no environment's live build uses; deleted only with `yes`.

    Every service of a sharded site is pruned (`service` picks one); the result's `service_sid`
    is the first one's. Deleting an Asset deletes its versions: builds that used them (rollback
    targets) can no longer be rebuilt.
    """
    only = _one_of_the_site(config, service) if service is not None else None

    async def work(api: ServerlessClient, state: State, target: str) -> PruneResult:
        names = [only] if only else _site_services(config, state, target)
        parts = [await prune_one(api, state, target, name) for name in names]
        return PruneResult(parts[0].service_sid, tuple(c for p in parts for c in p.candidates),
                           tuple(d for p in parts for d in p.deleted), not yes,
                           service=parts[0].service, services=tuple(parts))

    async def prune_one(api: ServerlessClient, state: State, target: str,
                        name: str) -> PruneResult:
        rec = state.get_service(target, name)
        try:
            svc = await api.fetch_service(rec.service_sid if rec else name)
        except NotFoundError:
            return PruneResult(None, (), (), not yes, service=name)
        used: set[str] = set()
        for env in await api.list_environments(svc.sid):
            live = await fetch_live_build(api, env)
            if live is not None:
                used.update(v.parent_sid for v in live.asset_versions)
            pending = state.get_pending(target, svc.sid, env.sid)
            if pending is not None:  # a build on its way to deployment keeps its assets too
                rec_build = state.get_build(target, svc.sid, pending.build_sid)
                path_asset = state.asset_sids(target, svc.sid)
                paths = {v.path for v in state.versions(target, svc.sid)
                         if rec_build and v.version_sid in rec_build.version_sids}
                used.update(path_asset[p] for p in paths if p in path_asset)
        candidates = sorted((_Candidate(a.sid, a.friendly_name)
                             for a in await api.list_assets(svc.sid) if a.sid not in used),
                            key=lambda c: c.name)
        deleted: list[str] = []
        if yes and candidates:
            by_sid = {sid: path for path, sid in state.asset_sids(target, svc.sid).items()}

            async def delete(c: _Candidate) -> None:
                await api.delete_asset(svc.sid, c.sid)
                if c.sid in by_sid:
                    state.retire_asset(target, svc.sid, by_sid[c.sid])
                deleted.append(c.sid)

            await run_all((partial(delete, c) for c in candidates),
                          limit=config.sync.concurrency)
        return PruneResult(svc.sid, tuple((c.sid, c.name) for c in candidates),
                           tuple(sorted(deleted)), not yes, service=name)

    return run_on_state(config, client, on_event, work)


# ------------------------------------------------------------------------------- urls

def published_urls(config: Config, *, environment: str | None = None) -> tuple[UrlEntry, ...]:
    """Published path -> URL of what assetsync last deployed (from the state; no network).

    A sharded site's services (`service`, `service-2`, ...) are all included, and a Toolkit
    project's public and protected functions (from the deployed build's kept manifest).
    """
    env_name = environment or config.environment
    target = target_key(config)
    toolkit = functions_folder(config) is not None
    entries: list[UrlEntry] = []
    with State.open(config.state_dir) as state:
        for name in _scheme(config):
            svc = state.get_service(target, name)
            env = state.get_environment(target, svc.service_sid, env_name) if svc else None
            if svc is None or env is None or not env.build_sid:
                continue
            build = state.get_build(target, svc.service_sid, env.build_sid)
            in_build = set(build.version_sids) if build else set()
            files = {(v.path, v.visibility) for v in state.versions(target, svc.service_sid)
                     if v.version_sid in in_build}
            if toolkit and name == config.service:  # the functions `sync` deployed there
                kept = recorded_build(state, target, svc.service_sid, env.build_sid)
                files |= {(v.path, v.visibility.lower())
                          for v in (kept.function_versions if kept is not None else ())}
            entries.extend(url_entries(name, env.domain_name, files))
    return tuple(sorted(entries, key=lambda e: e.path))
