"""The emulator's ASGI application: host dispatch, auth, fault switches, request log, errors.

One app answers the main host's routes, the upload host's two version routes and, for requests
addressed to an environment's domain, what that environment has deployed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assetsync.emulator.faults import (
    ANSWER_LOST_ACTIONS,
    DEFAULT_HANG_S,
    WRONG_CONTENT_TYPE,
    FaultRule,
    HostKind,
    RequestLogEntry,
)
from assetsync.emulator.routes import ROUTES
from assetsync.emulator.serving import SERVE_PREFIX, serve_deployed
from assetsync.emulator.state import EmulatorError, EmulatorState, bad_request, not_found

__all__ = ["DROP_EXTENSION", "ConnectionDropped", "create_app", "error_body"]

logger = logging.getLogger(__name__)

# ASGI scope extension a server may provide to abort the client's connection with no response
# (assetsync.emulator.serve does, for uvicorn): `await drop(reset)` closes it with a FIN, or with
# a RST when `reset`. Without it, `ConnectionDropped` is raised.
DROP_EXTENSION = "assetsync.drop"
_UPLOAD_PATH = re.compile(r"^/v1/Services/[^/]+/(Assets|Functions)/[^/]+/Versions/?$")
_LOCAL_NAMES = {"localhost", "testserver"}
RUNTIME_DOMAIN = ".twil.io"
_NO_ENVIRONMENT = object()  # a runtime host that no environment has: everything is 404
_FAULT_ERRORS = {
    "429": (429, 20429, "Too many requests"),
    "429-retry-after": (429, 20429, "Too many requests"),
    "500": (500, 20500, "Internal Server Error"),
    "503": (503, 20503, "Service Unavailable"),
}


class ConnectionDropped(Exception):
    """A fault switch dropped the connection and the server cannot abort it for real.

    `mode`: how the connection ends, `fin` (closed), `reset` or `timeout` (no answer until the
    client gives up); the embedded transport raises the matching httpx error.
    """

    def __init__(self, message: str, mode: str = "fin") -> None:
        super().__init__(message)
        self.mode = mode


def error_body(status: int, code: int, message: str, kind: HostKind = "api") -> dict[str, Any]:
    """Twilio's error body; the upload host's 429 has its own shape (serverless-api #37)."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    if kind == "upload" and status == 429:
        return {
            "status": status,
            "message": message,
            "detail": "Too many requests for the associated account being sent.",
            "code": code,
            "moreInfo": more_info,
        }
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def create_app(state: EmulatorState) -> ASGIApp:
    """The ASGI application serving `state` (main host, upload host, deployed assets)."""

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EmulatorError)
        return JSONResponse(
            error_body(exc.status, exc.code, exc.message, _kind(request.scope)),
            status_code=exc.status,
            headers=exc.headers,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return await on_error(request, not_found(request.url.path))
        message = f"Method {request.method} is not allowed on {request.url.path}"
        return await on_error(
            request, EmulatorError(exc.status_code, 20000 + exc.status_code, message)
        )

    router = Starlette(
        routes=ROUTES,
        exception_handlers={EmulatorError: on_error, HTTPException: on_http},
    )
    router.state.emulator = state
    return _EmulatorApp(state, router)


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            host: str = value.decode("latin-1").lower()
            return host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return ""


def _kind(scope: Scope) -> HostKind:
    kind: HostKind = scope.get("assetsync.kind", "api")
    return kind


def _is_local(host: str) -> bool:
    if host in _LOCAL_NAMES or not host:
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class _EmulatorApp:
    """Wraps the router with what every request goes through, in Twilio's order of checks."""

    def __init__(self, state: EmulatorState, router: ASGIApp) -> None:
        self.state = state
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        state, method, path = self.state, scope["method"], scope["path"]
        env, serve_path = self._serve_target(scope, path)
        kind: HostKind = (
            "serve"
            if env is not None
            else "upload"
            if (method == "POST" and _UPLOAD_PATH.match(path))
            else "api"
        )
        scope["assetsync.kind"] = kind
        counted = {"in": 0, "status": 0, "logged": 0}
        started = state.now()

        def log() -> None:
            # Logged before the last byte leaves, so a client that has its answer always finds
            # its request in the log.
            if not counted["logged"]:
                counted["logged"] = 1
                state.request_log.append(
                    RequestLogEntry(
                        method, kind, path, counted["status"], counted["in"], state.now(),
                        started,
                    )
                )

        declared = _content_length(scope)

        async def counting_receive() -> Message:
            message = await receive()
            counted["in"] += len(message.get("body", b""))
            if message["type"] == "http.request" and not message.get("more_body", False):
                _check_length(declared, counted["in"])
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counted["status"] = message["status"]
                # A 204/304 or HEAD answer is complete with its head (the server writes no
                # body), so the client may already have it: log now, not at the body message.
                if message["status"] in (204, 304) or method == "HEAD":
                    log()
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log()
            await send(message)

        scope["assetsync.log"] = log
        try:
            if isinstance(declared, EmulatorError):
                raise declared
            await self._handle(scope, counting_receive, recording_send, kind, env, serve_path)
        except ConnectionDropped:
            raise
        except EmulatorError as exc:  # a body refused outside a route (fault or auth answers)
            if not counted["status"]:
                body = error_body(exc.status, exc.code, exc.message, kind)
                await _send_json(recording_send, exc.status, body, {})
        except Exception:
            # A bug here must still look like a server error to the client, never like a Python
            # exception escaping through the embedded transport.
            logger.exception("emulator error on %s %s", method, path)
            if not counted["status"]:
                await _send_json(
                    recording_send, 500, error_body(500, 20500, "Internal Server Error", kind), {}
                )
        finally:
            log()

    def _serve_target(self, scope: Scope, path: str) -> tuple[Any, str]:
        if path.startswith(SERVE_PREFIX):
            domain, _, rest = path[len(SERVE_PREFIX) :].partition("/")
            env = self.state.environment_by_domain(domain.lower())
            return (env if env is not None else _NO_ENVIRONMENT), "/" + rest
        host = _host(scope)
        if _is_local(host):
            return None, path
        env = self.state.environment_by_domain(host)
        if env is None and host.endswith(RUNTIME_DOMAIN):
            return _NO_ENVIRONMENT, path
        return (env, path) if env is not None else (None, path)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, kind: HostKind, env: Any, serve_path: str
    ) -> None:
        state = self.state
        limit = state.limits.concurrent_requests
        if kind != "serve" and limit and state.in_flight >= limit:
            await _drain(receive)
            message = f"Too many concurrent requests (limit {limit})"
            await _send_json(send, 429, error_body(429, 20429, message, kind), {})
            return
        state.in_flight += 1
        try:
            await self._checked(scope, receive, send, kind, env, serve_path)
        finally:
            state.in_flight -= 1

    async def _checked(
        self, scope: Scope, receive: Receive, send: Send, kind: HostKind, env: Any, serve_path: str
    ) -> None:
        """Fault switches, then auth, then the request itself."""
        state = self.state
        fault = state.faults.take(scope["method"], scope["path"])
        if fault is not None:
            logger.debug("fault %s on %s %s", fault.action, scope["method"], scope["path"])
            if fault.action == "delay":  # jitter: unseeded, only ever a duration
                await asyncio.sleep(fault.delay_s + random.uniform(0.0, fault.jitter_s))
            elif fault.action == "wrong-type":  # answered as usual, with the wrong Content-Type
                send = _retyped(send)
            elif fault.action == "drop":
                scope["assetsync.log"]()
                await _drop(scope)
                return
            elif fault.action in ANSWER_LOST_ACTIONS:
                await self._dispatch(scope, receive, _swallow, kind, env, serve_path)
                scope["assetsync.log"]()
                await _lose_answer(scope, receive, fault)
                return
            else:
                await _drain(receive)
                await _send_fault(fault, kind, send)
                return
        if kind != "serve" and not self._authorized(scope):
            await _drain(receive)
            body = error_body(401, 20003, "Authenticate")
            body["detail"] = "Your AccountSid or AuthToken was incorrect."
            await _send_json(send, 401, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return
        state.sweep()
        await self._dispatch(scope, receive, send, kind, env, serve_path)

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, kind: HostKind, env: Any, serve_path: str
    ) -> None:
        if kind == "serve" and env is _NO_ENVIRONMENT:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
        elif kind == "serve":
            await serve_deployed(self.state, env, serve_path, scope, receive, send)
        else:
            await self.router(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            username, sep, password = (
                base64.b64decode(encoded, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and self.state.authenticate(username, password)


def _content_length(scope: Scope) -> int | EmulatorError | None:
    """The declared body length (None: none declared), or the error for a bad header."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = -1
            if length < 0:
                return bad_request("Invalid Content-Length header")
            return length
    return None


def _check_length(declared: int | EmulatorError | None, received: int) -> None:
    # A body that ends before its Content-Length is incomplete: refused before anything is
    # stored (the routes read the whole body before acting on it).
    if isinstance(declared, int) and received != declared:
        raise bad_request(
            f"The request body has {received} bytes but its Content-Length says {declared}; "
            "nothing was stored")


def _retyped(send: Send) -> Send:
    """A `send` that replaces the answer's Content-Type with `WRONG_CONTENT_TYPE`."""

    async def retyped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k != b"content-type"]
            headers.append((b"content-type", WRONG_CONTENT_TYPE.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return retyped


async def _swallow(message: Message) -> None:
    """A `send` that loses the response (the request was processed, the answer never arrives)."""


async def _drain(receive: Receive) -> None:
    # Read the whole request body before answering early, so a client still streaming an upload
    # gets the error response rather than a broken pipe.
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _drop(scope: Scope, mode: str = "fin") -> None:
    drop: Callable[[bool], Awaitable[None]] | None = (
        scope.get("extensions", {}).get(DROP_EXTENSION))
    if drop is None:
        raise ConnectionDropped("fault switch: connection dropped without a response", mode)
    await drop(mode == "reset")


_LOST_MODES = {"drop-after": "fin", "reset-after": "reset", "timeout-after": "timeout"}


async def _lose_answer(scope: Scope, receive: Receive, fault: FaultRule) -> None:
    """The request was processed; end the connection with no answer, as the fault says."""
    mode = _LOST_MODES[fault.action]
    if mode == "timeout" and DROP_EXTENSION in scope.get("extensions", {}):
        # Say nothing until the client gives up (its read timeout closes the connection) or
        # the hang ends; then close. In-process there is no socket to hang on: the embedded
        # transport raises the client's timeout error at once.
        hang = fault.delay_s or DEFAULT_HANG_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until_disconnect(receive), hang)
        mode = "fin"
    await _drop(scope, mode)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_fault(fault: FaultRule, kind: HostKind, send: Send) -> None:
    status, code, message = _FAULT_ERRORS[fault.action]
    headers = {}
    if fault.action == "429-retry-after":
        headers["Retry-After"] = str(math.ceil(fault.delay_s))
    await _send_json(send, status, error_body(status, code, message, kind), headers)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
