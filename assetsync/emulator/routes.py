"""The Serverless v1 routes (main host and the upload host's two) as Starlette endpoints.

Each endpoint parses PascalCase form parameters (unknown ones ignored, arrays as repeated keys),
calls the model in `state.py` / `builds.py` and answers with `render.py`'s JSON.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assetsync.emulator.builds import create_build, create_deployment, delete_build
from assetsync.emulator.logs import fetch_log, list_logs
from assetsync.emulator.render import (
    list_body,
    render,
    render_build_json,
    render_build_status,
    render_content,
)
from assetsync.emulator.state import (
    EmulatorError,
    EmulatorState,
    bad_request,
    missing,
    too_large,
)
from assetsync.emulator.storage import Record
from assetsync.emulator.uploads import receive_upload

__all__ = ["ROUTES", "base_url"]

_MAX_FORM_FIELDS = 10_000  # a build may name 1000 + 50 + 50 versions; Starlette's default is 1000
# Below Starlette's 1 MB per-field limit, so a body this small never needs its check.
_FAST_FORM_BYTES = 1024 * 1024
_TOKEN = re.compile(r"^P([TB])(\d+)$")


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def base_url(request: Request) -> str:
    """`scheme://host[:port]` as the client addressed us (for absolute URLs)."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def _json(state: EmulatorState, request: Request, rec: Record, status: int = 200) -> JSONResponse:
    return JSONResponse(render(state, rec, base_url(request)), status_code=status)


async def _form(request: Request) -> FormData:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        # The main host takes form bodies only (api-contract.md §1): a JSON or multipart body
        # is refused rather than read as no parameters at all. A POST with no body is fine.
        if await request.body():
            raise bad_request(
                f"Unsupported Content-Type {media_type or '(none)'}: send parameters as "
                "application/x-www-form-urlencoded")
        return FormData()
    body = await request.body()
    if len(body) <= _FAST_FORM_BYTES:
        # parse_qsl decodes exactly as Starlette's streaming parser does (latin-1 bytes,
        # %-escapes as UTF-8, '+' as space, blank values kept, only '&' separates) at a
        # quarter of its cost: a build's 1,000 AssetVersions took ~2.5 ms through it.
        items: list[tuple[str, str | UploadFile]] = list(_parse_form(body.decode("latin-1")))
        if len(items) > _MAX_FORM_FIELDS:
            raise bad_request(f"Too many fields: at most {_MAX_FORM_FIELDS} are accepted")
        return FormData(items)
    return await request.form(max_fields=_MAX_FORM_FIELDS)


def _parse_form(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True)`, faster for a body with no escapes at all."""
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    # With nothing to unescape, parse_qsl gives each non-empty piece split at its first '='
    # ('' when there is none): a build's 1,000 AssetVersions in ~0.15 ms instead of ~0.6.
    return [(name, value) for name, _, value in (p.partition("=") for p in text.split("&") if p)]


def _required(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or value == "":
        raise missing(name)
    return value


def _optional(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _bool(form: FormData, name: str, default: bool | None) -> bool | None:
    value = _optional(form, name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise bad_request(f"Invalid {name} {value!r}: use true or false")
    return value.lower() == "true"


# resolution of the URL's parents ------------------------------------------------------------


def _service(request: Request) -> Record:
    return _state(request).service(request.path_params["svc"], request.url.path)


def _child(request: Request, kind: str, param: str, parent: Record) -> Record:
    return _state(request).get(kind, request.path_params[param], parent.sid, request.url.path)


def _environment(request: Request) -> Record:
    return _child(request, "environment", "env", _service(request))


def _owner(request: Request) -> Record:
    kind, _ = _family(request)
    return _child(request, kind, "owner", _service(request))


async def _list(
    request: Request,
    kind: str,
    parent: Record | None,
    key: str,
    extra: dict[str, str] | None = None,
) -> Response:
    state, query = _state(request), request.query_params
    try:
        size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
    except ValueError:
        raise bad_request("Invalid PageSize or Page: expected integers") from None
    if not 1 <= size <= 1000 or page < 0:
        raise bad_request("Invalid PageSize or Page: PageSize must be 1..1000 and Page at least 0")
    token = query.get("PageToken")
    match = _TOKEN.match(token) if token else None
    if token and not match:
        raise bad_request(f"Invalid PageToken {token!r}: use the URLs in meta to page")
    after = int(match[2]) if match and match[1] == "T" else None
    before = int(match[2]) if match and match[1] == "B" else None
    parent_sid = parent.sid if parent else None
    rows = state.store.page(
        kind, parent_sid, after=after, before=before, limit=size + 1, offset=page * size
    )
    if before is not None:
        has_prev, has_next = len(rows) > size, True
        rows = rows[-size:]
    else:
        has_prev, has_next = page > 0, len(rows) > size
        rows = rows[:size]
    base = base_url(request)
    body = list_body(
        key,
        [render(state, r, base) for r in rows],
        base + request.url.path,
        page=page,
        page_size=size,
        next_token=f"PT{rows[-1].seq}" if has_next and rows else None,
        prev_token=f"PB{rows[0].seq}" if has_prev and rows else None,
        extra=extra,
    )
    return JSONResponse(body)


# services -----------------------------------------------------------------------------------


async def services(request: Request) -> Response:
    state = _state(request)
    if request.method == "GET":
        return await _list(request, "service", None, "services")
    form = await _form(request)
    rec = state.create_service(
        _required(form, "UniqueName"),
        _required(form, "FriendlyName"),
        bool(_bool(form, "IncludeCredentials", True)),
        bool(_bool(form, "UiEditable", False)),
    )
    return _json(state, request, rec, 201)


async def service(request: Request) -> Response:
    state, rec = _state(request), _service(request)
    if request.method == "DELETE":
        state.delete_service(rec)
        return Response(status_code=204)
    if request.method == "POST":
        form = await _form(request)
        changes: dict[str, Any] = {}
        for param, name in (
            ("IncludeCredentials", "include_credentials"),
            ("UiEditable", "ui_editable"),
        ):
            value = _bool(form, param, None)
            if value is not None:
                changes[name] = value
        friendly = _optional(form, "FriendlyName")
        if friendly is not None:
            changes["friendly_name"] = friendly
        rec = state.update(rec, changes)
    return _json(state, request, rec)


# environments, deployments, variables, logs -------------------------------------------------


async def environments(request: Request) -> Response:
    state, svc = _state(request), _service(request)
    if request.method == "GET":
        return await _list(request, "environment", svc, "environments")
    form = await _form(request)
    suffix = _optional(form, "DomainSuffix") or None
    rec = state.create_environment(svc, _required(form, "UniqueName"), suffix)
    return _json(state, request, rec, 201)


async def environment(request: Request) -> Response:
    state = _state(request)
    rec = _child(request, "environment", "sid", _service(request))
    if request.method == "DELETE":
        state.delete_environment(rec)
        return Response(status_code=204)
    return _json(state, request, rec)


async def deployments(request: Request) -> Response:
    state, svc = _state(request), _service(request)
    env = _child(request, "environment", "env", svc)
    if request.method == "GET":
        return await _list(request, "deployment", env, "deployments")
    form = await _form(request)
    rec = create_deployment(state, svc, env, _optional(form, "BuildSid") or None)
    return _json(state, request, rec, 201)


async def deployment(request: Request) -> Response:
    return _json(
        _state(request), request, _child(request, "deployment", "sid", _environment(request))
    )


async def variables(request: Request) -> Response:
    state, env = _state(request), _environment(request)
    if request.method == "GET":
        return await _list(request, "variable", env, "variables")
    form = await _form(request)
    rec = state.create_variable(env, _required(form, "Key"), _required(form, "Value"))
    return _json(state, request, rec, 201)


async def variable(request: Request) -> Response:
    state = _state(request)
    rec = _child(request, "variable", "sid", _environment(request))
    if request.method == "DELETE":
        state.store.delete([rec.sid])
        return Response(status_code=204)
    if request.method == "POST":
        form = await _form(request)
        rec = state.update_variable(rec, _optional(form, "Key"), _optional(form, "Value"))
    return _json(state, request, rec)


async def logs(request: Request) -> Response:
    # What deployed functions logged (assetsync.emulator.logs): filtered by date and function.
    return await list_logs(_state(request), _environment(request), request,
                                         base_url(request))


async def log(request: Request) -> Response:
    return fetch_log(_state(request), _environment(request), request,
                                   base_url(request))


# functions, assets, versions ----------------------------------------------------------------


def _family(request: Request) -> tuple[str, str]:
    # /v1/Services/{svc}/{Assets|Functions}/...: both families share their handlers.
    if request.url.path.split("/")[4] == "Assets":
        return "asset", "assets"
    return "function", "functions"


async def owners(request: Request) -> Response:
    state, svc = _state(request), _service(request)
    kind, key = _family(request)
    if request.method == "GET":
        return await _list(request, kind, svc, key)
    form = await _form(request)
    return _json(
        state, request, state.create_named(kind, svc, _required(form, "FriendlyName")), 201
    )


async def owner(request: Request) -> Response:
    state, svc = _state(request), _service(request)
    kind, _ = _family(request)
    rec = _child(request, kind, "sid", svc)
    if request.method == "DELETE":
        state.store.delete([rec.sid])
        return Response(status_code=204)
    if request.method == "POST":
        form = await _form(request)
        rec = state.update(rec, {"friendly_name": _required(form, "FriendlyName")})
    return _json(state, request, rec)


async def versions(request: Request) -> Response:
    state = _state(request)
    try:
        parent = _owner(request)
    except EmulatorError:
        # Read the upload anyway, so a client still streaming it gets the 404, not a broken pipe.
        # A client that went away meanwhile (Ctrl-C mid-upload) needs no answer at all.
        try:
            async for _ in request.stream():
                pass
        except ClientDisconnect:
            pass
        raise
    kind = f"{parent.kind}_version"
    if request.method == "GET":
        return await _list(request, kind, parent, f"{kind}s")
    upload = await receive_upload(
        request.headers.get("content-type", ""),
        request.stream(),
        state.store,
        state.version_limit("public"),
    )
    try:
        path, visibility = upload.fields.get("path"), upload.fields.get("visibility")
        if not path:
            raise missing("Path")
        if not visibility:
            raise missing("Visibility")
        visibility = visibility.lower()
        if visibility not in ("public", "protected", "private"):
            raise bad_request(
                f"Invalid Visibility {visibility!r}: use public, protected or private"
            )
        if upload.content is None:
            raise missing("Content")
        # plugin-assets sends bare basenames and relies on the server adding the slash (§4).
        path = path if path.startswith("/") else "/" + path
        if len(path) > 255:
            raise bad_request("Invalid Path: at most 255 characters are allowed")
        if upload.oversize:
            raise too_large(visibility, state.version_limit(visibility))
    except Exception:
        if upload.content is not None:
            upload.content.discard()
        raise
    rec = state.create_version(kind, parent, path, visibility, upload.content, upload.content_type)
    return _json(state, request, rec, 201)


async def version(request: Request) -> Response:
    state, parent = _state(request), _owner(request)
    rec = _child(request, f"{parent.kind}_version", "sid", parent)
    return _json(state, request, rec)


async def version_content(request: Request) -> Response:
    state, svc = _state(request), _service(request)
    fn = _child(request, "function", "owner", svc)
    rec = _child(request, "function_version", "sid", fn)
    return JSONResponse(render_content(state, rec, base_url(request)))


# builds -------------------------------------------------------------------------------------


async def builds_list(request: Request) -> Response:
    state, svc = _state(request), _service(request)
    if request.method == "GET":
        return await _list(request, "build", svc, "builds")
    form = await _form(request)
    assets = [v for v in form.getlist("AssetVersions") if isinstance(v, str)]
    functions = [v for v in form.getlist("FunctionVersions") if isinstance(v, str)]
    # One lookup of the named versions serves the build's checks and its answer, which embeds
    # them (1,000 records cost ~5 ms to fetch: half of this request's time, twice).
    versions = state.store.get_many([*assets, *functions])
    rec = create_build(
        state,
        svc,
        assets,
        functions,
        _optional(form, "Dependencies"),
        _optional(form, "Runtime") or None,
        versions=versions,
    )
    return _build_json(state, request, rec, 201, versions)


async def build(request: Request) -> Response:
    state = _state(request)
    rec = _child(request, "build", "sid", _service(request))
    if request.method == "DELETE":
        delete_build(state, rec)
        return Response(status_code=204)
    return _build_json(state, request, rec, 200)


def _build_json(
    state: EmulatorState,
    request: Request,
    rec: Record,
    status: int,
    versions: dict[str, Record] | None = None,
) -> Response:
    # The bytes and headers JSONResponse would send (media type application/json, no charset).
    body = render_build_json(state, rec, base_url(request), versions)
    return Response(body, status_code=status, media_type="application/json")


async def build_status(request: Request) -> Response:
    state = _state(request)
    rec = _child(request, "build", "sid", _service(request))
    return JSONResponse(render_build_status(state, rec, base_url(request)))


_S = "/v1/Services/{svc}"
_E = _S + "/Environments/{env}"
ROUTES = [
    Route("/v1/Services", services, methods=["GET", "POST"]),
    Route(_S, service, methods=["GET", "POST", "DELETE"]),
    Route(_S + "/Environments", environments, methods=["GET", "POST"]),
    Route(_S + "/Environments/{sid}", environment, methods=["GET", "DELETE"]),
    Route(_E + "/Deployments", deployments, methods=["GET", "POST"]),
    Route(_E + "/Deployments/{sid}", deployment, methods=["GET"]),
    Route(_E + "/Variables", variables, methods=["GET", "POST"]),
    Route(_E + "/Variables/{sid}", variable, methods=["GET", "POST", "DELETE"]),
    Route(_E + "/Logs", logs, methods=["GET"]),
    Route(_E + "/Logs/{sid}", log, methods=["GET"]),
    *[
        route
        for family in ("/Assets", "/Functions")
        for route in (
            Route(_S + family, owners, methods=["GET", "POST"]),
            Route(_S + family + "/{sid}", owner, methods=["GET", "POST", "DELETE"]),
            Route(_S + family + "/{owner}/Versions", versions, methods=["GET", "POST"]),
            Route(_S + family + "/{owner}/Versions/{sid}", version, methods=["GET"]),
        )
    ],
    Route(_S + "/Functions/{owner}/Versions/{sid}/Content", version_content, methods=["GET"]),
    Route(_S + "/Builds", builds_list, methods=["GET", "POST"]),
    Route(_S + "/Builds/{sid}", build, methods=["GET", "DELETE"]),
    Route(_S + "/Builds/{sid}/Status", build_status, methods=["GET"]),
]
