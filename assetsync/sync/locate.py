"""Find (or create) the service and environment, read the live build, and describe drift.

Lookups go from cheapest to most thorough: a recorded SID is fetched directly; otherwise the
service is fetched by unique name (Twilio accepts it in place of the SID) and the environment is
found by unique name or domain suffix among the service's environments, as the official toolkit
does (api-contract.md §7.3 steps 1-2).
"""

from __future__ import annotations

from collections.abc import Mapping

from assetsync.errors import ApiStatusError, NotFoundError
from assetsync.frozen import frozen, replace
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build, Environment, Service
from assetsync.state.db import State
from assetsync.state.ledger import recorded_build, to_live_build  # re-exported: moved to the ledger
from assetsync.state.remote_manifest import is_reserved

__all__ = [
    "Drift",
    "Located",
    "create_service",
    "describe_drift",
    "drift_of",
    "fetch_live_build",
    "find_environment",
    "find_service",
    "locate_target",
    "peek_target",
    "to_live_build",
]


async def find_service(
    client: ServerlessClient, unique_name: str, recorded_sid: str | None, *, create: bool
) -> Service | None:
    """The service by recorded SID, else by unique name; created if missing and `create`."""
    for key in (recorded_sid, unique_name):
        if not key:
            continue
        try:
            service = await client.fetch_service(key)
        except NotFoundError:
            continue
        if service.unique_name in ("", unique_name):
            return service
    if not create:
        return None
    return (await create_service(client, unique_name))[0]


async def create_service(client: ServerlessClient, unique_name: str) -> tuple[Service, bool]:
    """Create the service (known absent); True when this call made it, False when another
    deployer made it in between (409) and theirs is used."""
    try:
        return await client.create_service(unique_name), True
    except ApiStatusError as exc:
        if exc.status_code != 409:
            raise
        return await client.fetch_service(unique_name), False


def _match_environment(envs: tuple[Environment, ...], name: str) -> Environment | None:
    by_name = [e for e in envs if e.unique_name == name]
    if by_name:
        return by_name[0]
    # twilio-run names environments "<suffix>-environment": find them by domain suffix.
    by_suffix = [e for e in envs if (e.domain_suffix or "") == name]
    return by_suffix[0] if by_suffix else None


async def find_environment(
    client: ServerlessClient,
    service_sid: str,
    name: str,
    recorded_sid: str | None,
    *,
    create: bool,
) -> Environment | None:
    """The environment by recorded SID, else by unique name or domain suffix; else created."""
    if recorded_sid:
        try:
            return await client.fetch_environment(service_sid, recorded_sid)
        except NotFoundError:
            pass
    found = _match_environment(await client.list_environments(service_sid), name)
    if found is not None or not create:
        return found
    try:
        return await client.create_environment(service_sid, name, name)
    except ApiStatusError as exc:
        if exc.status_code != 409:
            raise
        found = _match_environment(await client.list_environments(service_sid), name)
        if found is None:
            raise
        return found


async def fetch_live_build(client: ServerlessClient, env: Environment | None) -> Build | None:
    """The build the environment serves now, or None before any deployment."""
    if env is None or not env.build_sid:
        return None
    return await client.fetch_build(env.service_sid, env.build_sid)


@frozen
class Drift:
    """How the live build differs from the one assetsync deployed last."""

    live_build_sid: str
    recorded_build_sid: str
    changed_paths: tuple[str, ...]
    added_paths: tuple[str, ...]
    removed_paths: tuple[str, ...]
    functions: tuple[str, ...] = ()  # function paths changed, added or removed

    def message(self) -> str:
        """One line saying what changed and what to do."""
        parts = []
        for label, paths in (
            ("changed", self.changed_paths),
            ("added", self.added_paths),
            ("removed", self.removed_paths),
            ("of functions changed", self.functions),
        ):
            if paths:
                more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
                shown = ", ".join(paths[:3]) + more
                parts.append(f"{len(paths)} path(s) {label} ({shown})")
        what = "; ".join(parts) or "same files, different build (functions or settings changed)"
        return (
            f"the live build {self.live_build_sid} is not {self.recorded_build_sid}, which "
            f"assetsync deployed last (someone deployed in between): {what}. Run `assetsync sync "
            "--adopt` to build on the live build (keeping its other files and functions), or "
            "`--force` to replace it with assetsync's files"
        )


def describe_drift(
    live: Build,
    recorded_build_sid: str,
    recorded_sids: frozenset[str],
    path_of: Mapping[str, str],
    *,
    recorded_functions: Mapping[str, str] | None = None,
) -> Drift:
    """Compare the live build with the one assetsync recorded.

    Args:
        live: the environment's live build.
        recorded_build_sid: the build assetsync deployed last.
        recorded_sids: the asset version SIDs of that build.
        path_of: version SID -> path, for the versions assetsync uploaded.
        recorded_functions: Function Version SID -> path in the build assetsync deployed last
            (from its kept manifest), to name the functions changed since (a twilio-run
            deploy, an edit in the Console).
    """
    live_paths = {v.path for v in live.asset_versions}
    recorded_paths = {path_of[s] for s in recorded_sids if s in path_of}
    changed: set[str] = set()
    added: set[str] = set()
    for v in live.asset_versions:
        if v.sid not in recorded_sids:
            (changed if v.path in recorded_paths else added).add(v.path)
    removed = recorded_paths - live_paths
    functions: set[str] = set()
    if recorded_functions is not None:
        # assetsync's own manifest Function changes with every build: not the user's.
        live_functions = {v.sid: v.path for v in live.function_versions
                          if not is_reserved(v.path)}
        recorded_functions = {s: p for s, p in recorded_functions.items() if not is_reserved(p)}
        functions = ({p for s, p in live_functions.items() if s not in recorded_functions}
                     | {p for s, p in recorded_functions.items() if s not in live_functions})
    return Drift(live.sid, recorded_build_sid, tuple(sorted(changed)), tuple(sorted(added)),
                 tuple(sorted(removed)), tuple(sorted(functions)))


def drift_of(state: State, target: str, service_sid: str, live: Build,
             recorded_build_sid: str) -> Drift:
    """How `live` differs from the build assetsync recorded deploying last, from the state's
    records (the one description `sync`, `status` and `rollback` give)."""
    rec = state.get_build(target, service_sid, recorded_build_sid)
    path_of = {v.version_sid: v.path for v in state.versions(target, service_sid)}
    sids = frozenset(rec.version_sids) if rec else frozenset()
    # The recorded build's kept manifest lists its functions, so that a function changed by
    # another tool (twilio-run, the Console) is named too.
    kept = recorded_build(state, target, service_sid, recorded_build_sid)
    return describe_drift(live, recorded_build_sid, sids, path_of, recorded_functions=(
        {v.sid: v.path for v in kept.function_versions} if kept is not None else None))


@frozen
class Located:
    """The service SID, environment and live build a sync works on (None: not found)."""

    service_sid: str | None
    env: Environment | None
    live: Build | None = None
    created: bool = False  # the service is new: this lookup created it


async def locate_target(
    client: ServerlessClient, state: State, target: str, service: str, environment: str,
    *, create: bool, peeked: Located | None = None,
) -> Located:
    """The service and environment: recorded SIDs first (one GET), else look up or create.

    `peeked`: this run's read-only lookup of the same target (`peek_target`). When it found no
    service, the service is created without being looked up again (a cold sync sends one
    service lookup), and a service just made has no environment to list.
    """
    if create and peeked is not None and peeked.service_sid is None:
        made_svc, made = await create_service(client, service)
        state.record_service(target, service, made_svc.sid, made_svc.domain_base or None)
        env = (await client.create_environment(made_svc.sid, environment, environment) if made
               else await find_environment(client, made_svc.sid, environment, None, create=True))
        if env is not None:
            state.record_environment(target, made_svc.sid, environment, env.sid,
                                     env.domain_name)
        return Located(made_svc.sid, env, created=made)
    svc_rec = state.get_service(target, service)
    env_rec = state.get_environment(target, svc_rec.service_sid, environment) if svc_rec else None
    if svc_rec and env_rec:
        try:
            found = await client.fetch_environment(svc_rec.service_sid, env_rec.environment_sid)
            return Located(svc_rec.service_sid, found)
        except NotFoundError:
            pass
    svc = await find_service(client, service, svc_rec.service_sid if svc_rec else None,
                             create=create)
    if svc is None:
        return Located(None, None)
    if svc_rec is None or svc_rec.service_sid != svc.sid:
        state.record_service(target, service, svc.sid, svc.domain_base or None)
    env = await find_environment(client, svc.sid, environment,
                                 env_rec.environment_sid if env_rec else None, create=create)
    if env is not None:
        state.record_environment(target, svc.sid, environment, env.sid, env.domain_name)
    return Located(svc.sid, env)


async def peek_target(
    client: ServerlessClient,
    state: State,
    target: str,
    service: str,
    environment: str,
    *,
    parse_kept: bool = True,
) -> Located:
    """Read-only lookup of the service, environment and live build (creates nothing).

    When the live build is the one assetsync deployed last, its kept manifest stands in for
    fetching it (a build never changes; with 1,000 assets the fetch is the largest response of
    a sync). With `parse_kept=False` such a build is left out (`live` None) for `resolve_live`
    to parse later, once the carried outcome has had its say (it may make the parse needless).
    A build with no kept manifest is fetched either way.
    """
    where = await locate_target(client, state, target, service, environment, create=False)
    kept = _kept_build(state, target, environment, where)
    if kept is not None:
        if not parse_kept:
            return where
        known = recorded_build(state, target, where.service_sid or "", kept)
        if known is not None:
            return replace(where, live=known)
    return replace(where, live=await fetch_live_build(client, where.env))


async def resolve_live(
    client: ServerlessClient, state: State, target: str, environment: str, where: Located
) -> Located:
    """`where` with the live build that `peek_target(parse_kept=False)` left out, if any."""
    if where.live is not None or where.env is None or not where.env.build_sid:
        return where
    kept = _kept_build(state, target, environment, where)
    known = recorded_build(state, target, where.service_sid or "", kept) if kept else None
    return replace(where, live=known or await fetch_live_build(client, where.env))


def _kept_build(state: State, target: str, environment: str, where: Located) -> str | None:
    """The live build's SID when it is the one assetsync recorded deploying last."""
    env = where.env
    if env is None or not env.build_sid or not where.service_sid:
        return None
    rec = state.get_environment(target, where.service_sid, environment)
    return env.build_sid if rec is not None and rec.build_sid == env.build_sid else None
