"""Async client for Twilio Serverless: one method per endpoint the sync engine needs.

Both hosts (main and upload) with region/edge forms and explicit overrides; results are frozen
values from `assetsync.remote.resources`. Retries, pagination and error mapping live in
`assetsync.remote.http`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from assetsync.errors import BuildFailedError, NotFoundError
from assetsync.remote import adopt
from assetsync.remote.http import (
    USER_AGENT,
    ApiSession,
    BuildTimeoutError,
    ClientEvent,
    ClientStats,
    RetryPolicy,
    error_body,
)
from assetsync.remote.resources import (
    Asset,
    AssetVersion,
    Build,
    Deployment,
    Environment,
    FunctionResource,
    LogEntry,
    Service,
    Variable,
    parse_asset,
    parse_asset_version,
    parse_build,
    parse_deployment,
    parse_environment,
    parse_function,
    parse_log,
    parse_service,
    parse_variable,
)
from assetsync.remote.upload import MultipartFile, UploadedVersion
from assetsync.remote.wire import Answer

if TYPE_CHECKING:
    from assetsync.config import TargetConfig

__all__ = [
    "USER_AGENT",
    "BuildTimeoutError",
    "ClientEvent",
    "ClientStats",
    "RetryPolicy",
    "ServerlessClient",
    "resolve_endpoints",
]

# Default edge per region, as the official library derives it (api-contract.md §7.1).
_REGION_EDGES = {
    "us1": "ashburn",
    "au1": "sydney",
    "ie1": "dublin",
    "stage-us1": "ashburn",
    "stage-au1": "sydney",
}


def _twilio_url(product: str, region: str | None, edge: str | None) -> str:
    if region and not edge:
        edge = _REGION_EDGES.get(region)
    labels = [product] + [x for x in (edge, region) if x] + ["twilio.com"]
    return "https://" + ".".join(labels) + "/v1"


def _with_version(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def resolve_endpoints(target: TargetConfig) -> tuple[str, str]:
    """The (main host, upload host) base URLs, each ending in `/v1`, for a target.

    Precedence: explicit URLs (`api_url`/`upload_url`), then `api` given as a URL (one
    emulator serves both hosts), then Twilio's hosts with region/edge. The environment
    variables that stand in for these keys (`ASSETSYNC_API_URL`, `TWILIO_REGION`, ...) were
    applied once, by `assetsync.config`. `api = "local"` has no network endpoints; it resolves
    to a loopback placeholder that the embedded transport answers.
    """
    api = target.api
    if api == "local":
        default_api = default_upload = "http://assetsync.local/v1"
    elif api.startswith(("http://", "https://")):
        default_api = default_upload = _with_version(api)
    else:
        default_api = _twilio_url("serverless", target.region, target.edge)
        default_upload = _twilio_url("serverless-upload", target.region, target.edge)
    api_url = target.api_url or default_api
    # An explicit main URL alone means one server for both (the emulator's layout).
    upload_url = target.upload_url or (api_url if target.api_url else default_upload)
    return _with_version(api_url), _with_version(upload_url)


class ServerlessClient(ApiSession):
    """Async client for the Serverless main host and upload host.

    Use as `async with ServerlessClient(...) as client:`; the HTTP connection pool lives for
    the `async with` block, so one client can serve several `asyncio.run` calls in turn.

    Args:
        api_base: main host base URL ending in `/v1`.
        upload_base: upload host base URL ending in `/v1`.
        credentials: Basic-auth username (account SID or API key SID) and password.
        transport: an httpx transport (the embedded emulator), or None: our own HTTP/1.1
            client over sockets (`assetsync.remote.pool`).
        timeout: `Timeouts`: seconds to connect, and the longest silence while sending or
            waiting for an answer.
        retry: the retry policy.
        on_event: called with a `ClientEvent` for each retry and each page of a list.
        max_concurrency: requests in flight at most (a request sleeping in backoff holds none);
            halved on each 429 and raised back one step at a time (`assetsync.remote.limiter`).
    """

    def _svc(self, service_sid: str) -> str:
        return f"/Services/{service_sid}"

    # ---------------------------------------------------------------- services, environments

    async def list_services(self) -> tuple[Service, ...]:
        """Every Service of the account."""
        return tuple(parse_service(x) for x in await self._list("/Services", "services"))

    async def fetch_service(self, sid_or_unique_name: str) -> Service:
        """One Service by SID or unique name (`NotFoundError` if absent)."""
        url = f"{self.api_base}/Services/{sid_or_unique_name}"
        return parse_service(await self._json("GET", url))

    async def create_service(
        self,
        unique_name: str,
        friendly_name: str | None = None,
        *,
        include_credentials: bool = True,
    ) -> Service:
        """Create a Service."""
        data = {
            "UniqueName": unique_name,
            "FriendlyName": friendly_name or unique_name,
            "IncludeCredentials": "true" if include_credentials else "false",
        }
        find = adopt.by_fetch(self, f"{self.api_base}/Services/{unique_name}")
        url = f"{self.api_base}/Services"
        return parse_service(await self._json("POST", url, data=data, recover=find))

    async def list_environments(self, service_sid: str) -> tuple[Environment, ...]:
        """Every Environment of a Service."""
        items = await self._list(f"{self._svc(service_sid)}/Environments", "environments")
        return tuple(parse_environment(x) for x in items)

    async def fetch_environment(self, service_sid: str, environment_sid: str) -> Environment:
        """One Environment (its `build_sid` is the live build)."""
        url = f"{self.api_base}{self._svc(service_sid)}/Environments/{environment_sid}"
        return parse_environment(await self._json("GET", url))

    async def create_environment(
        self, service_sid: str, unique_name: str, domain_suffix: str | None = None
    ) -> Environment:
        """Create an Environment; no suffix means the bare service domain."""
        data = {"UniqueName": unique_name}
        if domain_suffix:
            data["DomainSuffix"] = domain_suffix
        path = f"{self._svc(service_sid)}/Environments"
        find = adopt.by_field(self, path, "environments", "unique_name", unique_name)
        return parse_environment(
            await self._json("POST", f"{self.api_base}{path}", data=data, recover=find))

    async def delete_environment(self, service_sid: str, environment_sid: str) -> None:
        """Delete an Environment: its domain stops serving (its builds stay with the Service)."""
        url = f"{self.api_base}{self._svc(service_sid)}/Environments/{environment_sid}"
        await self._send("DELETE", url)

    async def delete_service(self, service_sid: str) -> None:
        """Delete a Service with everything in it (environments, builds, assets, functions)."""
        await self._send("DELETE", f"{self.api_base}{self._svc(service_sid)}")

    # ---------------------------------------------------------------- assets and functions

    async def list_assets(self, service_sid: str) -> tuple[Asset, ...]:
        """Every Asset resource of a Service."""
        items = await self._list(f"{self._svc(service_sid)}/Assets", "assets")
        return tuple(parse_asset(x) for x in items)

    async def create_asset(self, service_sid: str, friendly_name: str) -> Asset:
        """Create an Asset resource (assetsync names it after its published path)."""
        return parse_asset(await self._create_named(service_sid, "Assets", friendly_name))

    async def delete_asset(self, service_sid: str, asset_sid: str) -> None:
        """Delete an Asset resource and its versions (one already gone counts as deleted)."""
        await self._delete(f"{self.api_base}{self._svc(service_sid)}/Assets/{asset_sid}")

    async def _delete(self, url: str) -> None:
        # A delete is done once the resource is gone: a 404 on a resend means the attempt
        # whose answer was lost deleted it.
        try:
            await self._send("DELETE", url)
        except NotFoundError:
            pass

    async def list_asset_versions(
        self, service_sid: str, asset_sid: str
    ) -> tuple[AssetVersion, ...]:
        """Every version of one Asset (metadata only: the API never gives content back)."""
        path = f"{self._svc(service_sid)}/Assets/{asset_sid}/Versions"
        return tuple(parse_asset_version(x) for x in await self._list(path, "asset_versions"))

    async def upload_asset_version(
        self,
        service_sid: str,
        asset_sid: str,
        *,
        path: str,
        visibility: str,
        content_path: str | os.PathLike[str],
        content_type: str,
        find_lost: Callable[[], Awaitable[str | None]] | None = None,
    ) -> UploadedVersion:
        """Upload one Asset Version to the upload host, streamed from disk.

        The body is rebuilt from the file for every attempt, so a retry re-sends it whole.
        The result carries the digest and size of the bytes actually sent, which differ from
        the planned ones if the file changed while it was being uploaded. `find_lost`: after
        an attempt sent whole whose answer was lost, gives the SID of the version it made (or
        None), which is adopted instead of sending the file again.
        """
        return await self._upload_version(
            "Assets", service_sid, asset_sid, path=path, visibility=visibility,
            content_path=content_path, content_type=content_type, find_lost=find_lost)

    async def _upload_version(
        self,
        family: str,
        service_sid: str,
        parent_sid: str,
        *,
        path: str,
        visibility: str,
        content_path: str | os.PathLike[str],
        content_type: str,
        find_lost: Callable[[], Awaitable[str | None]] | None = None,
    ) -> UploadedVersion:
        versions = f"{self._svc(service_sid)}/{family}/{parent_sid}/Versions"
        fields = {"Path": path, "Visibility": visibility}
        sent: list[MultipartFile] = []  # every attempt's body, the last one last

        def body() -> MultipartFile:
            sent.append(MultipartFile(fields, "Content", content_path, content_type, name=path))
            return sent[-1]

        async def recover() -> Answer | None:
            # Only a body sent whole can have made a version: a server does not act on an
            # incomplete one (the emulator refuses it with 400).
            if find_lost is None or not any(b.complete for b in sent):
                return None
            sid = await find_lost()
            if sid is None:
                return None
            found = await self._send("GET", f"{self.api_base}{versions}/{sid}")
            adopted.append([b for b in sent if b.complete][-1])  # the bytes it holds
            return found

        adopted: list[MultipartFile] = []
        response = await self._send("POST", f"{self.upload_base}{versions}", upload=body,
                                    recover=recover)
        version = parse_asset_version(error_body(response))
        last = adopted[-1] if adopted else sent[-1]
        return UploadedVersion(version=version, digest=last.digest(), size=last.sent_bytes)

    async def list_functions(self, service_sid: str) -> tuple[FunctionResource, ...]:
        """Every Function resource of a Service."""
        items = await self._list(f"{self._svc(service_sid)}/Functions", "functions")
        return tuple(parse_function(x) for x in items)

    async def create_function(self, service_sid: str, friendly_name: str) -> FunctionResource:
        """Create a Function resource (named after its published path, as the official
        library names it)."""
        return parse_function(await self._create_named(service_sid, "Functions", friendly_name))

    async def _create_named(
        self, service_sid: str, family: str, friendly_name: str
    ) -> Mapping[str, object]:
        # A lost answer: the resource of that name, if the request made it (assetsync never
        # makes two of one name; of several made by another tool, the first).
        path = f"{self._svc(service_sid)}/{family}"
        find = adopt.by_field(self, path, family.lower(), "friendly_name", friendly_name)
        return await self._json("POST", f"{self.api_base}{path}",
                                data={"FriendlyName": friendly_name}, recover=find)

    async def delete_function(self, service_sid: str, function_sid: str) -> None:
        """Delete a Function resource and its versions (one already gone counts as deleted)."""
        await self._delete(f"{self.api_base}{self._svc(service_sid)}/Functions/{function_sid}")

    async def list_function_versions(
        self, service_sid: str, function_sid: str
    ) -> tuple[AssetVersion, ...]:
        """Every version of one Function (metadata; the same shape as an Asset Version's, its
        `asset_sid` holding the Function's SID)."""
        path = f"{self._svc(service_sid)}/Functions/{function_sid}/Versions"
        return tuple(parse_asset_version(x) for x in await self._list(path, "function_versions"))

    async def upload_function_version(
        self,
        service_sid: str,
        function_sid: str,
        *,
        path: str,
        visibility: str,
        content_path: str | os.PathLike[str],
        content_type: str,
        find_lost: Callable[[], Awaitable[str | None]] | None = None,
    ) -> UploadedVersion:
        """Upload one Function Version to the upload host (as `upload_asset_version`)."""
        return await self._upload_version(
            "Functions", service_sid, function_sid, path=path, visibility=visibility,
            content_path=content_path, content_type=content_type, find_lost=find_lost)

    async def fetch_function_version_content(
        self, service_sid: str, function_sid: str, version_sid: str
    ) -> str:
        """A Function Version's code, as the API gives it back (a JSON string)."""
        url = (f"{self.api_base}{self._svc(service_sid)}/Functions/{function_sid}/Versions/"
               f"{version_sid}/Content")
        content = (await self._json("GET", url)).get("content")
        return content if isinstance(content, str) else ""

    # ---------------------------------------------------------------- builds, deployments

    async def list_builds(self, service_sid: str) -> tuple[Build, ...]:
        """Every Build of a Service (Twilio deletes undeployed builds after 24 h)."""
        items = await self._list(f"{self._svc(service_sid)}/Builds", "builds")
        return tuple(parse_build(x) for x in items)

    async def fetch_build(self, service_sid: str, build_sid: str) -> Build:
        """One Build with its embedded versions."""
        url = f"{self.api_base}{self._svc(service_sid)}/Builds/{build_sid}"
        return parse_build(await self._json("GET", url))

    async def fetch_build_status(self, service_sid: str, build_sid: str) -> str:
        """`building`, `completed` or `failed`."""
        url = f"{self.api_base}{self._svc(service_sid)}/Builds/{build_sid}/Status"
        status = (await self._json("GET", url)).get("status")
        return status if isinstance(status, str) else ""

    async def create_build(
        self,
        service_sid: str,
        *,
        asset_versions: Iterable[str],
        function_versions: Iterable[str] = (),
        dependencies: Sequence[tuple[str, str]] = (),
        runtime: str | None = None,
    ) -> Build:
        """Create a Build from existing version SIDs (arrays go as repeated keys)."""
        data: dict[str, str | Sequence[str]] = {}
        assets, functions = sorted(set(asset_versions)), sorted(set(function_versions))
        if assets:
            data["AssetVersions"] = assets
        if functions:
            data["FunctionVersions"] = functions
        if dependencies:
            data["Dependencies"] = json.dumps([{"name": n, "version": v} for n, v in dependencies])
        if runtime:
            data["Runtime"] = runtime
        find = adopt.like_build(self, self._svc(service_sid), assets=assets, functions=functions,
                                dependencies=dependencies, runtime=runtime,
                                since=adopt.since_now())
        url = f"{self.api_base}{self._svc(service_sid)}/Builds"
        return parse_build(await self._json("POST", url, data=data, recover=find))

    async def delete_build(self, service_sid: str, build_sid: str) -> None:
        """Delete a Build (the live one cannot be deleted; one already gone counts as deleted)."""
        await self._delete(f"{self.api_base}{self._svc(service_sid)}/Builds/{build_sid}")

    async def wait_for_build(
        self,
        service_sid: str,
        build_sid: str,
        *,
        timeout_s: float = 300.0,
        poll_interval_s: float = 0.5,
        first_interval_s: float = 0.05,
        on_status: Callable[[str], None] | None = None,
        created_at: float | None = None,
        status: str | None = None,
    ) -> None:
        """Poll a build's status until `completed`: the waits start at `first_interval_s` and
        double up to `poll_interval_s`, so a quick build is seen quickly and a slow one costs
        few requests. The first poll is immediate; with `created_at` (the retry policy's clock
        when the create request was answered) the first wait counts from then, since the build
        started building before that answer was sent. `status`: the build's status in that
        answer; `building` skips the immediate poll (it would only say the same again), and
        `completed` or `failed` is taken as the first poll's answer.

        Raises `BuildFailedError` naming the build when it fails, and its subclass
        `BuildTimeoutError` when `timeout_s` passes first.
        """
        policy = self.retry
        deadline = policy.clock() + timeout_s
        interval = min(first_interval_s, poll_interval_s)
        url = f"{self.api_base}{self._svc(service_sid)}/Builds/{build_sid}"
        while True:
            # Polls run at a fixed rate: each wait counts from the previous poll's start, not
            # its answer, so a build ready in 50 ms is seen at +50 ms rather than +50 ms plus
            # the first poll's round trip.
            polled_at = policy.clock() if created_at is None else created_at
            created_at = None
            if status is None:
                status = await self.fetch_build_status(service_sid, build_sid)
            if on_status is not None:
                on_status(status)
            if status == "completed":
                return
            if status == "failed":
                raise BuildFailedError(
                    f"build {build_sid} failed; the previous deployment stays live. "
                    "Check the build in the Twilio Console, fix and sync again",
                    build_sid=build_sid, method="GET", url=url,
                )
            if policy.clock() + interval > deadline:
                raise BuildTimeoutError(
                    f"build {build_sid} still {status or 'pending'} after {timeout_s:g}s; the "
                    "previous deployment stays live. Run sync again to resume waiting, or raise "
                    "[sync] build_timeout_s",
                    build_sid=build_sid, method="GET", url=url,
                )
            await policy.sleep(max(0.0, interval - (policy.clock() - polled_at)))
            interval = min(poll_interval_s, interval * 2)
            status = None

    async def create_deployment(
        self, service_sid: str, environment_sid: str, build_sid: str
    ) -> Deployment:
        """Make a build live on an environment."""
        env = f"{self._svc(service_sid)}/Environments/{environment_sid}"
        find = adopt.like_deployment(self, env, build_sid, adopt.since_now())
        url = f"{self.api_base}{env}/Deployments"
        return parse_deployment(
            await self._json("POST", url, data={"BuildSid": build_sid}, recover=find))

    async def list_deployments(
        self, service_sid: str, environment_sid: str
    ) -> tuple[Deployment, ...]:
        """Every Deployment of an environment."""
        path = f"{self._svc(service_sid)}/Environments/{environment_sid}/Deployments"
        return tuple(parse_deployment(x) for x in await self._list(path, "deployments"))

    async def list_logs(
        self, service_sid: str, environment_sid: str, *, start_date: str | None = None,
        end_date: str | None = None, function_sid: str | None = None,
    ) -> tuple[LogEntry, ...]:
        """Every Log of an environment in a date range (ISO 8601 GMT; Twilio's defaults: from
        one day ago to now), of one function if `function_sid` is given."""
        path = f"{self._svc(service_sid)}/Environments/{environment_sid}/Logs"
        query = {name: value for name, value in (("StartDate", start_date),
                                                  ("EndDate", end_date),
                                                  ("FunctionSid", function_sid)) if value}
        return tuple(parse_log(x) for x in await self._list(path, "logs", query))

    # ---------------------------------------------------------------- variables
    # Values are secrets: they travel only in request bodies, which nothing logs (the INFO line
    # per mutation names method, URL, status and SID), and in `Variable`, whose repr hides them.

    def _variables(self, service_sid: str, environment_sid: str) -> str:
        return f"{self._svc(service_sid)}/Environments/{environment_sid}/Variables"

    async def list_variables(
        self, service_sid: str, environment_sid: str
    ) -> tuple[Variable, ...]:
        """Every Variable of an environment, with its value."""
        items = await self._list(self._variables(service_sid, environment_sid), "variables")
        return tuple(parse_variable(x) for x in items)

    async def create_variable(
        self, service_sid: str, environment_sid: str, key: str, value: str
    ) -> Variable:
        """Create a Variable (Twilio: Key at most 128 characters, Value at most 450 bytes)."""
        path = self._variables(service_sid, environment_sid)
        find = adopt.by_field(self, path, "variables", "key", key)
        return parse_variable(await self._json("POST", f"{self.api_base}{path}",
                                               data={"Key": key, "Value": value}, recover=find))

    async def update_variable(
        self, service_sid: str, environment_sid: str, sid: str, value: str
    ) -> Variable:
        """Change a Variable's value."""
        url = f"{self.api_base}{self._variables(service_sid, environment_sid)}/{sid}"
        return parse_variable(await self._json("POST", url, data={"Value": value}))

    async def delete_variable(self, service_sid: str, environment_sid: str, sid: str) -> None:
        """Delete a Variable (one already gone counts as deleted)."""
        await self._delete(f"{self.api_base}{self._variables(service_sid, environment_sid)}/{sid}")
