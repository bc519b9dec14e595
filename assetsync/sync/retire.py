"""Retiring a service of a sharded site that no longer holds any file.

Twilio refuses a build with nothing in it, so such a service cannot be emptied by a new build:
the only way to stop it serving the files the folder no longer has is to delete the
environments the site deployed there (by `sync` and by `promote`: every environment the state
recorded for the service), or the whole service when nothing in it is anyone else's (assetsync
created it for the site). Said first (a `retiring` event), then done, then forgotten by the state,
so `status`, `urls` and the next `sync` no longer see it. A crash in between is harmless: a
rerun finds what is left (a DELETE of something already gone counts as done).
"""

from __future__ import annotations

from collections.abc import Collection

from assetsync.errors import NotFoundError
from assetsync.frozen import frozen
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Environment
from assetsync.results import EventCallback, SyncEvent, SyncResult
from assetsync.state.db import State
from assetsync.state.remote_manifest import is_reserved

__all__ = ["Retirement", "plan_retirement", "retire_service", "retirement_result"]


@frozen
class Retirement:
    """What retiring one service does.

    Attributes:
        service: its unique name.
        service_sid: its SID (None: it is gone already; only the state's record is left).
        delete: the site's environments (unique names, SIDs) to delete.
        kept: environments left as they are: another tool's, or whose live build carries
            content assetsync does not own.
        whole: the service itself is deleted (everything in it is the site's).
        gone: environments the state recorded that the service no longer has (an earlier,
            interrupted retirement deleted them): forgotten too.
    """

    service: str
    service_sid: str | None
    delete: tuple[tuple[str, str], ...] = ()
    kept: tuple[str, ...] = ()
    whole: bool = False
    gone: tuple[str, ...] = ()

    def describe(self, verb: str) -> str:
        """One line saying what is (`verb`: "deleting", "deleted", "would delete") deleted, and
        why; without the service's name (a sharded sync's result prefixes its notes with it)."""
        names = ", ".join(name for name, _sid in self.delete) or "none"
        why = "no file left here, and Twilio refuses an empty build"
        if self.service_sid is None:
            return f"{why}; the service is gone already: forgotten"
        if self.whole:
            return (f"{why}: {verb} the service, which assetsync created for the site "
                    f"(environments: {names})")
        kept = (f"; left as they are: {', '.join(self.kept)} (content assetsync does not own)"
                if self.kept else "")
        if not self.delete:
            return f"{why}; no environment of the site's is left to delete there{kept}"
        return (f"{why}: {verb} its environments {names} (the service holds content of "
                f"others, so it stays){kept}")


async def _ours(
    client: ServerlessClient, env: Environment, recorded: Collection[str], versions: set[str]
) -> bool:
    """Whether `env` is the site's to delete: assetsync recorded it, and its live build (if
    any) holds only versions assetsync uploaded and no function."""
    if env.sid not in recorded:
        return False
    if not env.build_sid:
        return True
    try:
        build = await client.fetch_build(env.service_sid, env.build_sid)
    except NotFoundError:
        return True
    # assetsync's own manifest Function is no one else's function.
    return (all(is_reserved(v.path) for v in build.function_versions)
            and all(v.sid in versions for v in build.asset_versions))


async def _only_ours(client: ServerlessClient, state: State, target: str, sid: str) -> bool:
    """Whether the service holds no Function and only Assets assetsync created."""
    if any(not is_reserved(fn.friendly_name) for fn in await client.list_functions(sid)):
        return False
    recorded = set(state.asset_sids(target, sid).values())
    return all(a.sid in recorded for a in await client.list_assets(sid))


async def plan_retirement(
    client: ServerlessClient, state: State, target: str, service: str
) -> Retirement:
    """Read (never write) what retiring `service` takes: which environments, or the service."""
    rec = state.get_service(target, service)
    if rec is None:
        return Retirement(service, None)
    try:
        remote = await client.list_environments(rec.service_sid)
    except NotFoundError:
        return Retirement(service, None)
    recorded = {e.environment_sid for e in state.environments(target, rec.service_sid)}
    versions = {v.version_sid for v in state.versions(target, rec.service_sid)}
    delete: list[tuple[str, str]] = []
    kept: list[str] = []
    for env in sorted(remote, key=lambda e: e.unique_name):
        if await _ours(client, env, recorded, versions):
            delete.append((env.unique_name, env.sid))
        else:
            kept.append(env.unique_name)
    whole = not kept and await _only_ours(client, state, target, rec.service_sid)
    gone = tuple(sorted(recorded - {e.sid for e in remote}))
    return Retirement(service, rec.service_sid, tuple(delete), tuple(kept), whole, gone)


async def _delete(client: ServerlessClient, retirement: Retirement) -> None:
    sid = retirement.service_sid
    if sid is None:
        return
    try:
        if retirement.whole:
            await client.delete_service(sid)
            return
        for _name, env_sid in retirement.delete:
            try:
                await client.delete_environment(sid, env_sid)
            except NotFoundError:
                continue  # deleted by an earlier, interrupted run
    except NotFoundError:
        return  # the service went in between: nothing is served from it any more


def _forget(state: State, target: str, retirement: Retirement) -> None:
    """The state forgets what was deleted; a service that lives on (it holds content of
    others) stops being one of the site's, so `status`, `promote` and `urls` leave it out."""
    rec = state.get_service(target, retirement.service)
    if rec is None:
        return
    whole = retirement.whole or retirement.service_sid is None
    if not whole:
        for env_sid in (*(sid for _name, sid in retirement.delete), *retirement.gone):
            state.forget_environment(target, rec.service_sid, env_sid)
        if state.environments(target, rec.service_sid):
            return  # the site still serves from it somewhere (an environment left as it is)
    state.forget_service(target, retirement.service, rec.service_sid, resources=whole)


async def retire_service(
    client: ServerlessClient,
    state: State,
    target: str,
    retirement: Retirement,
    *,
    dry_run: bool = False,
    on_event: EventCallback | None = None,
) -> str:
    """Say what retiring does (a `retiring` event, before any request), then, unless
    `dry_run`, delete and forget it. Returns the line for the result's notes."""
    if on_event is not None:
        said = retirement.describe("would delete" if dry_run else "deleting")
        on_event(SyncEvent("retiring", sid=retirement.service_sid,
                           message=f"{retirement.service}: {said}"))
    if dry_run:
        return retirement.describe("would delete")
    await _delete(client, retirement)
    _forget(state, target, retirement)
    return retirement.describe("deleted")


def retirement_result(
    retirement: Retirement, environment: str, dropped: Collection[str], line: str, *,
    dry_run: bool,
) -> SyncResult:
    """The retired service's part of a sharded sync's result: its files dropped, no build."""
    return SyncResult(
        service=retirement.service, environment=environment,
        service_sid=retirement.service_sid, environment_sid=None, domain_name=None,
        build_sid=None, deployment_sid=None, uploaded=(), reused=0, created_assets=(),
        dropped=tuple(sorted(dropped)), kept_foreign=(), function_versions=0, upload_bytes=0,
        bytes_sent=0, requests=0, write_requests=0, retries=0, dry_run=dry_run,
        noop=False, notes=(line,),
    )
