"""Finding what a create whose answer was lost made, so that it is adopted, not made twice.

A create (POST) whose connection was reset, closed or timed out after the request was sent may
have been acted on. Before the HTTP layer sends it again it calls one of these finders
(`ApiSession._send(recover=...)`): each looks for the resource the lost request would have made
and answers with a GET of it, or None when there is none (then the create is sent again). The
rules, per resource (DESIGN.md invariant 7):

- Service: by unique name; Environment: by unique name; Asset and Function: by friendly name
  (the first made, if another tool made several); Variable: by key. These names are unique in
  what assetsync manages, so one found is the one the lost request made or an equal one.
- Build: the newest one created since the request was first sent naming exactly the same asset
  and function versions, dependencies and runtime.
- Deployment: the newest one of the same build on the environment created since then.
- Versions: the caller's rule (`assetsync.sync.uploads`: the crash recovery's intent rule).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from assetsync.errors import NotFoundError
from assetsync.remote.resources import parse_build, parse_deployment
from assetsync.remote.wire import Answer

if TYPE_CHECKING:
    from assetsync.remote.http import ApiSession

__all__ = [
    "CLOCK_SKEW",
    "Finder",
    "by_fetch",
    "by_field",
    "like_build",
    "like_deployment",
    "parse_time",
    "since_now",
]

Finder = Callable[[], Awaitable[Answer | None]]
# How far the server's clock may be behind ours when asking what was made since a request.
CLOCK_SKEW = timedelta(minutes=2)


def since_now() -> datetime:
    """The earliest server time a resource made by a request sent from now on can carry."""
    return datetime.now(UTC) - CLOCK_SKEW


def parse_time(text: str | None) -> datetime | None:
    """An API date (ISO 8601, `Z` or an offset; naive ones read as UTC), or None."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _newest(found: list[tuple[datetime, int, str]]) -> str | None:
    # By date, then by list position (dates have whole seconds): lists need not be in order.
    return max(found)[2] if found else None


def _made_at(date_created: str | None, since: datetime) -> datetime | None:
    created = parse_time(date_created)
    return created if created is not None and created >= since else None


def by_fetch(session: ApiSession, url: str) -> Finder:
    """The resource at `url` if it exists (a Service by unique name)."""

    async def find() -> Answer | None:
        try:
            return await session._send("GET", url)
        except NotFoundError:
            return None

    return find


def by_field(session: ApiSession, path: str, key: str, field: str, value: str) -> Finder:
    """The first item of the list at `path` (list key `key`) whose `field` is `value`."""

    async def find() -> Answer | None:
        for item in await session._list(path, key):
            sid = item.get("sid")
            if item.get(field) == value and isinstance(sid, str):
                return await session._send("GET", f"{session.api_base}{path}/{sid}")
        return None

    return find


def like_build(
    session: ApiSession, service_path: str, *, assets: Collection[str],
    functions: Collection[str], dependencies: Sequence[tuple[str, str]], runtime: str | None,
    since: datetime,
) -> Finder:
    """The newest build made since `since` with exactly these versions, dependencies and
    runtime (None: any runtime, the server's default)."""
    want = (frozenset(assets), frozenset(functions), tuple(sorted(dependencies)))

    async def find() -> Answer | None:
        path = f"{service_path}/Builds"
        found: list[tuple[datetime, int, str]] = []
        for i, item in enumerate(await session._list(path, "builds")):
            build = parse_build(item)
            have = (frozenset(v.sid for v in build.asset_versions),
                    frozenset(v.sid for v in build.function_versions),
                    tuple(sorted(build.dependencies)))
            made = _made_at(build.date_created, since)
            if have == want and (runtime is None or build.runtime == runtime) and made:
                found.append((made, i, build.sid))
        sid = _newest(found)
        return None if sid is None else await session._send(
            "GET", f"{session.api_base}{path}/{sid}")

    return find


def like_deployment(
    session: ApiSession, environment_path: str, build_sid: str, since: datetime
) -> Finder:
    """The newest deployment of `build_sid` on the environment made since `since`."""

    async def find() -> Answer | None:
        path = f"{environment_path}/Deployments"
        found: list[tuple[datetime, int, str]] = []
        for i, item in enumerate(await session._list(path, "deployments")):
            deployment = parse_deployment(item)
            made = _made_at(deployment.date_created, since)
            if deployment.build_sid == build_sid and made:
                found.append((made, i, deployment.sid))
        sid = _newest(found)
        return None if sid is None else await session._send(
            "GET", f"{session.api_base}{path}/{sid}")

    return find
