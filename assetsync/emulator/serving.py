"""Serving what is deployed, as an environment's `*.twil.io` domain would.

Reached by `Host: <domain_name>` or, from a browser, under `/_serve/<domain_name>/<path>`.
Public assets are served to anyone, protected ones only with a valid `X-Twilio-Signature`,
private ones never (404), like Twilio's runtime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from assetsync.emulator.state import EmulatorState
from assetsync.emulator.storage import Record

__all__ = ["SERVE_PREFIX", "serve_deployed", "twilio_signature"]

SERVE_PREFIX = "/_serve/"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """The `X-Twilio-Signature` of a request: base64 HMAC-SHA1, keyed by the auth token, of the
    full URL followed by each POST parameter's name and value sorted by name (Twilio's webhook
    security documentation, twilio.com/docs/usage/security)."""
    payload = url + "".join(k + v for k, v in sorted((params or {}).items()))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _signed_urls(request: Request, env: Record, path: str) -> list[str]:
    # Accept a signature over the URL as this request reached us, or over the public https URL
    # of the asset (what Twilio itself would see), so both local and "real" URLs validate.
    query = ("?" + request.url.query) if request.url.query else ""
    host = request.headers.get("host", "")
    seen = f"{request.url.scheme}://{host}{request.url.path}{query}"
    return [seen, f"https://{env.data['domain_name']}{path}{query}"]


def _deployed(state: EmulatorState, env: Record, path: str) -> tuple[Record | None, bool]:
    """The asset version deployed at `path` (last one wins), and whether a function is there."""
    build_sid = env.data.get("build_sid")
    build = state.store.get(build_sid, "build") if build_sid else None
    if build is None:
        return None, False
    found = state.store.get_many([*build.data["asset_versions"], *build.data["function_versions"]])
    asset = None
    for sid in build.data["asset_versions"]:
        v = found.get(sid)
        if v is not None and v.data["path"] == path:
            asset = v
    is_function = any(
        (v := found.get(sid)) is not None and v.data["path"] == path
        for sid in build.data["function_versions"]
    )
    return asset, is_function


async def serve_deployed(
    state: EmulatorState, env: Record, path: str, scope: Scope, receive: Receive, send: Send
) -> int:
    """Answer one request for `path` on `env`'s domain; returns the status sent."""
    request = Request(scope, receive)
    response: Response
    if request.method not in ("GET", "HEAD"):
        response = PlainTextResponse("Method Not Allowed", status_code=405)
    else:
        asset, is_function = _deployed(state, env, path)
        if asset is None and is_function:
            response = PlainTextResponse(
                "The assetsync emulator serves assets only; it does not run functions.",
                status_code=501,
            )
        elif asset is None or asset.data["visibility"] == "private":
            response = PlainTextResponse("Not Found", status_code=404)
        elif asset.data["visibility"] == "protected" and not _signature_ok(
            state, request, env, path
        ):
            response = PlainTextResponse(
                "Forbidden: invalid or missing X-Twilio-Signature", status_code=403
            )
        else:
            # Twilio serves an asset with the Content-Type its version was uploaded with (a
            # voice prompt's µ-law bytes at /hold.flac are audio/wav); guess only without one.
            uploaded = asset.data.get("content_type")
            if not uploaded or uploaded == "application/octet-stream":
                uploaded = mimetypes.guess_type(path)[0] or uploaded
            media_type = uploaded or "application/octet-stream"
            response = FileResponse(
                state.store.content_path(asset.data["digest"]), media_type=media_type
            )
    await response(scope, receive, send)
    return response.status_code


def _signature_ok(state: EmulatorState, request: Request, env: Record, path: str) -> bool:
    given = request.headers.get("x-twilio-signature", "")
    if not given:
        return False
    return any(
        hmac.compare_digest(given, twilio_signature(state.auth_token, url))
        for url in _signed_urls(request, env, path)
    )
