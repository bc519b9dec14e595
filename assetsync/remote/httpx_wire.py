"""`TransportWire`: the session's requests through an httpx transport.

For what has no socket to talk to: the embedded emulator (`api = "local"`, an ASGI app in this
process) and a caller's own transport. httpx is imported only here, so a sync over the network
never loads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import httpx

from assetsync.remote.wire import (
    Answer,
    AnswerLostError,
    ConnectFailedError,
    RequestBody,
    SendFailedError,
    Timeouts,
    WireError,
)

__all__ = ["TransportWire"]

# httpx's failures by what they say of the request: never reached the server, or not whole.
_NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_NOT_SENT = (httpx.WriteError, httpx.WriteTimeout)


class _Stream(httpx.AsyncByteStream):
    """A `RequestBody` as httpx's stream type (the ASGI transport insists on it)."""

    def __init__(self, body: RequestBody) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            yield chunk


def _as_wire_error(exc: httpx.TransportError) -> WireError:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, _NOT_CONNECTED):
        return ConnectFailedError(reason)
    if isinstance(exc, _NOT_SENT):
        return SendFailedError(reason)
    return AnswerLostError(reason)


class TransportWire:
    """Requests through `transport`; `headers` go with every request."""

    def __init__(self, transport: httpx.AsyncBaseTransport, *, headers: Mapping[str, str],
                 timeouts: Timeouts) -> None:
        self._client = httpx.AsyncClient(
            transport=transport, headers=dict(headers),
            timeout=httpx.Timeout(timeouts.idle, connect=timeouts.connect))

    async def send(self, method: str, url: str, body: bytes | RequestBody | None,
                   content_type: str | None, on_sent: Callable[[], None] | None) -> Answer:
        """One request and its whole answer (`WireError` when there is none)."""
        headers = {"Content-Type": content_type} if content_type else None
        if body is None or isinstance(body, bytes):
            request = self._client.build_request(
                method, url, content=body, headers=headers,
                extensions={"trace": _trace(on_sent)} if on_sent else None)
        else:
            # httpx would send an async iterable chunked, without a length: swap the stream in.
            request = self._client.build_request(
                method, url, headers={**(headers or {}), "Content-Length": str(body.length)})
            request.stream = _Stream(body)
        try:
            response = await self._client.send(request)
        except httpx.TransportError as exc:
            raise _as_wire_error(exc) from exc
        headers_out = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, response.reason_phrase, headers_out,
                      response.content)

    async def aclose(self) -> None:
        """Close the client (and its transport)."""
        await self._client.aclose()


def _trace(on_sent: Callable[[], None]) -> Callable[[str, Mapping[str, object]],
                                                    Awaitable[None]]:
    # httpcore's trace extension names each step; the body's end is the request sent whole.
    async def trace(name: str, info: Mapping[str, object]) -> None:
        if name.endswith("send_request_body.complete"):
            on_sent()

    return trace
