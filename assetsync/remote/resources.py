"""Typed, frozen views of the Serverless API's JSON resources, parsed at the client boundary.

Field names mirror Twilio's JSON (api-contract.md §3). Parsing is lenient where real servers are
(visibility in any case, `dependencies` as a list or a JSON string) and strict where a wrong guess
would corrupt a build (a SID must be there).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

from assetsync.errors import ApiError
from assetsync.frozen import frozen

__all__ = [
    "Asset",
    "AssetVersion",
    "Build",
    "Deployment",
    "Environment",
    "FunctionResource",
    "LogEntry",
    "Service",
    "Variable",
    "VersionRef",
    "parse_asset",
    "parse_asset_version",
    "parse_build",
    "parse_deployment",
    "parse_environment",
    "parse_function",
    "parse_log",
    "parse_service",
    "parse_variable",
    "parse_version_ref",
]

JsonObject = Mapping[str, object]
_new_tuple = tuple.__new__


@frozen
class Service:
    """A Serverless Service (`ZS…`)."""

    sid: str
    unique_name: str
    friendly_name: str
    domain_base: str


@frozen
class Environment:
    """An Environment (`ZE…`); `build_sid` is the live build, None before any deployment."""

    sid: str
    service_sid: str
    unique_name: str
    domain_suffix: str | None
    domain_name: str
    build_sid: str | None
    date_created: str = ""  # ISO 8601 as Twilio sends it; `preview` names the oldest by it


@frozen
class Asset:
    """An Asset resource (`ZH…`); assetsync names it after the published path."""

    sid: str
    service_sid: str
    friendly_name: str


@frozen
class FunctionResource:
    """A Function resource (`ZH…`)."""

    sid: str
    service_sid: str
    friendly_name: str


@frozen
class AssetVersion:
    """An Asset Version (`ZN…`) as the upload host acknowledged it or a list returned it."""

    sid: str
    service_sid: str
    asset_sid: str
    path: str
    visibility: str
    date_created: str | None


class VersionRef(NamedTuple):
    """A version embedded in a build: `parent_sid` is the asset or function SID. A NamedTuple:
    a build embeds up to 1,100 of these and a sync reads two builds."""

    sid: str
    parent_sid: str
    path: str
    visibility: str


@frozen
class Build:
    """A Build (`ZB…`) with its embedded versions, dependencies and runtime."""

    sid: str
    service_sid: str
    status: str
    asset_versions: tuple[VersionRef, ...]
    function_versions: tuple[VersionRef, ...]
    dependencies: tuple[tuple[str, str], ...]
    runtime: str | None
    date_created: str | None


@frozen
class Deployment:
    """A Deployment (`ZD…`): a build made live on an environment."""

    sid: str
    service_sid: str
    environment_sid: str
    build_sid: str | None
    date_created: str | None


@frozen
class Variable:
    """An environment Variable (`ZV…`). Its value is a secret: `repr` and `str` hide it."""

    sid: str
    key: str
    value: str

    def __repr__(self) -> str:
        return f"Variable(sid={self.sid!r}, key={self.key!r}, value=<hidden>)"

    __str__ = __repr__


def _str(obj: JsonObject, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(f"the API answered without a valid {key!r} field; report this response")
    return value


def _opt(obj: JsonObject, key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _text(obj: JsonObject, key: str) -> str:
    return _opt(obj, key) or ""


def parse_service(obj: JsonObject) -> Service:
    """Parse a Service resource."""
    return Service(
        sid=_str(obj, "sid"),
        unique_name=_text(obj, "unique_name"),
        friendly_name=_text(obj, "friendly_name"),
        domain_base=_text(obj, "domain_base"),
    )


def parse_environment(obj: JsonObject) -> Environment:
    """Parse an Environment resource."""
    return Environment(
        sid=_str(obj, "sid"),
        service_sid=_text(obj, "service_sid"),
        unique_name=_text(obj, "unique_name"),
        domain_suffix=_opt(obj, "domain_suffix"),
        domain_name=_text(obj, "domain_name"),
        build_sid=_opt(obj, "build_sid"),
        date_created=_text(obj, "date_created"),
    )


def parse_asset(obj: JsonObject) -> Asset:
    """Parse an Asset resource."""
    return Asset(
        sid=_str(obj, "sid"),
        service_sid=_text(obj, "service_sid"),
        friendly_name=_text(obj, "friendly_name"),
    )


def parse_function(obj: JsonObject) -> FunctionResource:
    """Parse a Function resource."""
    return FunctionResource(
        sid=_str(obj, "sid"),
        service_sid=_text(obj, "service_sid"),
        friendly_name=_text(obj, "friendly_name"),
    )


def parse_asset_version(obj: JsonObject) -> AssetVersion:
    """Parse an Asset Version resource (visibility normalised to lower case)."""
    return AssetVersion(
        sid=_str(obj, "sid"),
        service_sid=_text(obj, "service_sid"),
        asset_sid=_text(obj, "asset_sid" if obj.get("asset_sid") else "function_sid"),
        path=_text(obj, "path"),
        visibility=_text(obj, "visibility").lower(),
        date_created=_opt(obj, "date_created"),
    )


def parse_version_ref(obj: JsonObject) -> VersionRef:
    """Parse a version object embedded in a build (asset or function)."""
    # The spec's build example shows "PUBLIC" while the version resources say "public"
    # (api-contract.md §3.7): tolerate both.
    # Inlined field checks (same rules as _str/_opt/_text): a build embeds up to 1,100 of these
    # and an incremental sync parses two builds, so per-field calls showed in its wall time.
    get = obj.get
    sid, parent, path, visibility = get("sid"), get("asset_sid"), get("path"), get("visibility")
    if not isinstance(sid, str) or not sid:
        sid = _str(obj, "sid")  # raises the one clear error
    if not isinstance(parent, str) or not parent:
        parent = _text(obj, "function_sid")
    return _new_tuple(VersionRef, (
        sid,
        parent,
        path if isinstance(path, str) else "",
        visibility.lower() if isinstance(visibility, str) else "",
    ))


def _dependencies(value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        text = value.strip()
        # The Node library wraps the JSON array in one extra pair of quotes (§7.3 step 6).
        if text.startswith('"') and text.endswith('"'):
            text = text[1:-1]
        try:
            value = json.loads(text) if text else []
        except ValueError:
            raise ApiError("the API answered with unreadable build dependencies") from None
    if not isinstance(value, list):
        return ()
    deps: list[tuple[str, str]] = []
    for item in value:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            deps.append((str(item["name"]), str(item.get("version") or "*")))
    return tuple(deps)


def _refs(value: object) -> tuple[VersionRef, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(parse_version_ref(item) for item in value if isinstance(item, Mapping))


def parse_build(obj: JsonObject) -> Build:
    """Parse a Build resource with its embedded versions."""
    return Build(
        sid=_str(obj, "sid"),
        service_sid=_text(obj, "service_sid"),
        status=_text(obj, "status"),
        asset_versions=_refs(obj.get("asset_versions")),
        function_versions=_refs(obj.get("function_versions")),
        dependencies=_dependencies(obj.get("dependencies")),
        runtime=_opt(obj, "runtime"),
        date_created=_opt(obj, "date_created"),
    )


def parse_deployment(obj: JsonObject) -> Deployment:
    """Parse a Deployment resource."""
    return Deployment(
        sid=_str(obj, "sid"),
        service_sid=_text(obj, "service_sid"),
        environment_sid=_text(obj, "environment_sid"),
        build_sid=_opt(obj, "build_sid"),
        date_created=_opt(obj, "date_created"),
    )


def parse_variable(obj: JsonObject) -> Variable:
    """Parse a Variable resource (an empty or missing value reads as "")."""
    value = obj.get("value")
    return Variable(
        sid=_str(obj, "sid"),
        key=_text(obj, "key"),
        value=value if isinstance(value, str) else "",
    )


@frozen
class LogEntry:
    """A Log (`NO…`): one line a function invocation wrote (`level` INFO, WARN or ERROR)."""

    sid: str
    function_sid: str
    request_sid: str
    level: str
    message: str
    date_created: str


def parse_log(obj: JsonObject) -> LogEntry:
    """Parse a Log resource of an environment."""
    return LogEntry(
        sid=_str(obj, "sid"),
        function_sid=_text(obj, "function_sid"),
        request_sid=_text(obj, "request_sid"),
        level=_text(obj, "level"),
        message=_text(obj, "message"),
        date_created=_text(obj, "date_created"),
    )
