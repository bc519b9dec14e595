"""Serving what is deployed, as an environment's `*.twil.io` domain would.

Reached by `Host: <domain_name>` or, from a browser, under `/_serve/<domain_name>/<path>`.
Public assets and functions answer anyone, protected ones only a request with a valid
`X-Twilio-Signature`, private ones never (404), like Twilio's runtime. A function runs with
Node when there is one (`assetsync.emulator.functions_runtime`), else its path answers 501.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from assetsync.emulator.functions_runtime import (
    NODE_ENV_VAR,
    FunctionRequest,
    node_executable,
    run_function,
)
from assetsync.emulator.logs import record_logs
from assetsync.emulator.state import EmulatorState
from assetsync.emulator.storage import Record

__all__ = ["ROOT_FALLBACK", "SERVE_PREFIX", "serve_deployed", "twilio_signature"]

SERVE_PREFIX = "/_serve/"
ROOT_FALLBACK = "/assets/index.html"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> str:
    """The `X-Twilio-Signature` of a request: base64 HMAC-SHA1, keyed by the auth token, of the
    full URL followed by each POST parameter's name and value sorted by name (Twilio's webhook
    security documentation, twilio.com/docs/usage/security)."""
    items = params.items() if isinstance(params, Mapping) else (params or ())
    payload = url + "".join(k + v for k, v in sorted(items))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _signed_urls(request: Request, env: Record, path: str) -> list[str]:
    # Accept a signature over the URL as this request reached us, or over the public https URL
    # of the asset (what Twilio itself would see), so both local and "real" URLs validate.
    query = ("?" + request.url.query) if request.url.query else ""
    host = request.headers.get("host", "")
    seen = f"{request.url.scheme}://{host}{request.url.path}{query}"
    return [seen, f"https://{env.data['domain_name']}{path}{query}"]


def _deployed(
    state: EmulatorState, env: Record, path: str
) -> tuple[Record | None, Record | None, Record | None]:
    """The asset and function versions deployed at `path` (last one wins), and the build."""
    build_sid = env.data.get("build_sid")
    build = state.store.get(build_sid, "build") if build_sid else None
    if build is None:
        return None, None, None
    found = state.store.get_many([*build.data["asset_versions"], *build.data["function_versions"]])
    asset = function = None
    for sid in build.data["asset_versions"]:
        v = found.get(sid)
        if v is not None and v.data["path"] == path:
            asset = v
    for sid in build.data["function_versions"]:
        v = found.get(sid)
        if v is not None and v.data["path"] == path:
            function = v
    return asset, function, build


async def serve_deployed(
    state: EmulatorState, env: Record, path: str, scope: Scope, receive: Receive, send: Send
) -> int:
    """Answer one request for `path` on `env`'s domain; returns the status sent."""
    request = Request(scope, receive)
    asset, function, build = _deployed(state, env, path)
    if path == "/" and asset is None and function is None:
        # "In production we automatically fall back to the contents of /assets/index.html"
        # (twilio-run 5.0.1 dist/runtime/server.js, for a request to the root).
        asset, function, build = _deployed(state, env, ROOT_FALLBACK)
    response: Response
    if asset is None and function is not None and build is not None:
        response = await _serve_function(state, env, build, function, path, request)
    elif request.method not in ("GET", "HEAD"):
        response = PlainTextResponse("Method Not Allowed", status_code=405)
    elif asset is None or asset.data["visibility"] == "private":
        response = PlainTextResponse("Not Found", status_code=404)
    elif asset.data["visibility"] == "protected" and not _signature_ok(
        state, request, env, path, ()
    ):
        response = _forbidden()
    else:
        # Twilio serves an asset with the Content-Type its version was uploaded with (a voice
        # prompt's µ-law bytes at /hold.flac are audio/wav); guess from the asset's own path
        # only without one (the root fallback serves /assets/index.html as text/html).
        uploaded = asset.data.get("content_type")
        if not uploaded or uploaded == "application/octet-stream":
            uploaded = mimetypes.guess_type(str(asset.data["path"]))[0] or uploaded
        media_type = uploaded or "application/octet-stream"
        response = FileResponse(
            state.store.content_path(asset.data["digest"]), media_type=media_type
        )
    await response(scope, receive, send)
    return response.status_code


def _forbidden() -> Response:
    return PlainTextResponse("Forbidden: invalid or missing X-Twilio-Signature", status_code=403)


async def _serve_function(
    state: EmulatorState, env: Record, build: Record, function: Record, path: str,
    request: Request,
) -> Response:
    if function.data["visibility"] == "private":
        return PlainTextResponse("Not Found", status_code=404)
    form = await _form(request)
    if function.data["visibility"] == "protected" and not _signature_ok(
        state, request, env, path, form.multi_items() if form is not None else ()
    ):
        return _forbidden()
    node = node_executable(os.environ)
    if node is None:
        return PlainTextResponse(
            f"The assetsync emulator cannot run the function {path}: no `node` on PATH, or "
            f"{NODE_ENV_VAR}=0. Install Node.js to run functions here.",
            status_code=501,
        )
    invocation = FunctionRequest(
        file=str(state.store.content_path(function.data["digest"])),
        path=path,
        context=_context(state, env, path),
        event=await _event(request, form),
        functions=_functions(state, build),
        assets=_private_assets(state, build),
        **_runtime_setting(state, env, request),
    )
    reply = await run_function(node, invocation, timeout_s=state.limits.function_execution_s)
    record_logs(state, env, build, function, reply.logs)  # what it wrote: the Logs resource
    response = Response(reply.body, status_code=reply.status)
    skipped = {b"content-length", b"transfer-encoding", b"connection"}
    response.raw_headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
        for k, v in reply.headers
        if k.lower().encode("latin-1") not in skipped
    )
    return response


def _includes_credentials(state: EmulatorState, env: Record) -> bool:
    service = state.store.get(str(env.data["service_sid"]), "service")
    return service is None or bool(service.data.get("include_credentials", True))


def _runtime_setting(state: EmulatorState, env: Record, request: Request) -> dict[str, Any]:
    """Where the code finds the `twilio` package, and how `getTwilioClient()` reaches back."""
    project = str(Path(state.project_dir).absolute()) if state.project_dir is not None else ""
    server = request.scope.get("server")
    api_url = None
    if server and server[1] is not None:
        host = str(server[0])
        # A wildcard bind is reached on loopback; an IPv6 literal needs brackets in a URL.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        api_url = f"http://[{host}]:{server[1]}" if ":" in host else f"http://{host}:{server[1]}"
    include = _includes_credentials(state, env)
    return {
        # Without a project folder, packages are looked for from the code's own file upward
        # (through the data folder, which the embedded target keeps inside the project).
        "base_dir": project,
        "project_dir": project,
        "api_url": api_url,
        "credentials": (state.account_sid, state.auth_token) if include else None,
    }


async def _form(request: Request) -> FormData | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST" or content_type not in _FORM_TYPES:
        return None
    return await request.form()


def _context(state: EmulatorState, env: Record, path: str) -> dict[str, str]:
    # Twilio's context: the domain, the function's path, the service and environment SIDs,
    # the account's credentials when the service includes them (its IncludeCredentials), then
    # the environment's Variables (twilio-run's `constructContext` spreads them last).
    context = {
        "DOMAIN_NAME": str(env.data["domain_name"]),
        "PATH": path,
        "SERVICE_SID": str(env.data["service_sid"]),
        "ENVIRONMENT_SID": env.sid,
    }
    if _includes_credentials(state, env):
        context["ACCOUNT_SID"] = state.account_sid
        context["AUTH_TOKEN"] = state.auth_token
    for variable in state.store.children("variable", env.sid):
        context[str(variable.data["key"])] = str(variable.data["value"])
    return context


async def _event(request: Request, form: FormData | None) -> dict[str, object]:
    # The query string and the body's parameters (twilio-run's `constructEvent`: query, then
    # body), a repeated name as a list; JSON bodies too; and `request` with headers and cookies
    # (Twilio's runtime, twilio.com/docs/serverless/functions-assets/functions/request-flow).
    event: dict[str, object] = {}
    pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
    if form is not None:
        pairs.extend((k, v) for k, v in form.multi_items() if isinstance(v, str))
    for key, value in pairs:
        old = event.get(key)
        if old is None:
            event[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            event[key] = [old, value]
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            event.update(body)
    event["request"] = {
        "headers": {k: v for k, v in request.headers.items() if k != "x-twilio-signature"},
        "cookies": dict(request.cookies),
    }
    return event


def _functions(state: EmulatorState, build: Record) -> dict[str, str]:
    # Runtime.getFunctions(): every function of the build by path without its leading '/'.
    found = state.store.get_many(build.data["function_versions"])
    return {
        str(v.data["path"]).lstrip("/"): str(state.store.content_path(v.data["digest"]))
        for v in found.values()
    }


def _private_assets(state: EmulatorState, build: Record) -> dict[str, str]:
    # Runtime.getAssets(): the private assets, which only code can read (peers.md §4, #387).
    found = state.store.get_many(build.data["asset_versions"])
    return {
        str(v.data["path"]): str(state.store.content_path(v.data["digest"]))
        for v in found.values()
        if v.data["visibility"] == "private"
    }


def _signature_ok(
    state: EmulatorState,
    request: Request,
    env: Record,
    path: str,
    params: Sequence[tuple[str, object]],
) -> bool:
    given = request.headers.get("x-twilio-signature", "")
    if not given:
        return False
    signed = [(k, v) for k, v in params if isinstance(v, str)]
    return any(
        hmac.compare_digest(given, twilio_signature(state.auth_token, url, signed))
        for url in _signed_urls(request, env, path)
    )
