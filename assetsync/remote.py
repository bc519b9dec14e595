"""Find (or create) the service and environment, read the live build, and describe drift.

Lookups go from cheapest to most thorough: a recorded SID is fetched directly; otherwise the
service is fetched by unique name (Twilio accepts it in place of the SID) and the environment is
found by unique name or domain suffix among the service's environments, as the official toolkit
does (api-contract.md §7.3 steps 1-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from assetsync.client import ServerlessClient
from assetsync.errors import ApiStatusError, NotFoundError
from assetsync.resources import Build, Environment, Service

__all__ = [
    "Drift",
    "describe_drift",
    "fetch_live_build",
    "find_environment",
    "find_service",
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
    try:
        return await client.create_service(unique_name)
    except ApiStatusError as exc:
        # Another deployer created it in between (409): use theirs.
        if exc.status_code != 409:
            raise
        return await client.fetch_service(unique_name)


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


@dataclass(frozen=True, slots=True)
class Drift:
    """How the live build differs from the one assetsync deployed last."""

    live_build_sid: str
    recorded_build_sid: str
    changed_paths: tuple[str, ...]
    added_paths: tuple[str, ...]
    removed_paths: tuple[str, ...]

    def message(self) -> str:
        """One line saying what changed and what to do."""
        parts = []
        for label, paths in (
            ("changed", self.changed_paths),
            ("added", self.added_paths),
            ("removed", self.removed_paths),
        ):
            if paths:
                shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
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
) -> Drift:
    """Compare the live build with the one assetsync recorded.

    Args:
        live: the environment's live build.
        recorded_build_sid: the build assetsync deployed last.
        recorded_sids: the asset version SIDs of that build.
        path_of: version SID -> path, for the versions assetsync uploaded.
    """
    live_paths = {v.path for v in live.asset_versions}
    recorded_paths = {path_of[s] for s in recorded_sids if s in path_of}
    changed, added = set(), set()
    for v in live.asset_versions:
        if v.sid not in recorded_sids:
            (changed if v.path in recorded_paths else added).add(v.path)
    removed = recorded_paths - live_paths
    return Drift(live.sid, recorded_build_sid, tuple(sorted(changed)), tuple(sorted(added)),
                 tuple(sorted(removed)))
