"""The connection pool under `ApiSession`: keep-alive HTTP/1.1 connections, one request each.

httpx's default pool (httpcore's `AsyncConnectionPool`) re-examines every connection on every
request added and every response closed: each idle one is polled for a server disconnect
(`has_expired` -> `is_socket_readable`, through anyio's `extra_attributes`). With 12
connections and 2,000 requests (a cold publish of 1,000 files) that bookkeeping was the largest
single share of the client's CPU (issue 26). This pool does what the session needs and no more:
the session's own limiter already bounds the requests in flight, so there is no queue; a
request takes the most recently used idle connection (checked once for a disconnect), or opens
one; a response closed whole gives its connection back. HTTP/2 is not offered: Twilio's API
hosts answer HTTP/1.1 to a client that does not ask for h2, and the emulator speaks HTTP/1.1.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpcore
import httpx

__all__ = ["PooledTransport"]

# httpcore's exceptions as httpx's (what the session catches), most specific first.
_MAPPED: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)

_Origin = tuple[bytes, bytes, int]


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _MAPPED:
            if isinstance(exc, core):
                raise mapped(str(exc) or type(exc).__name__, request=request) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """A response body that gives its connection back to the pool once read and closed."""

    def __init__(self, pool: PooledTransport, origin: _Origin,
                 connection: httpcore.AsyncHTTPConnection, stream: object,
                 request: httpx.Request) -> None:
        self._pool, self._origin, self._connection = pool, origin, connection
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for chunk in self._stream:  # type: ignore[attr-defined]
                yield chunk

    async def aclose(self) -> None:
        with _as_httpx(self._request):
            await self._stream.aclose()  # type: ignore[attr-defined]
        await self._pool._give_back(self._origin, self._connection)


class PooledTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections per origin; at most `max_idle` kept between requests."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None, max_idle: int,
                 keepalive_expiry: float = 5.0) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[_Origin, list[httpcore.AsyncHTTPConnection]] = {}
        self._busy: set[httpcore.AsyncHTTPConnection] = set()

    async def _take(self, origin: _Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()  # the most recent: the least likely to have timed out
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()  # the server closed it, or its keep-alive ran out
        scheme, host, port = origin
        return httpcore.AsyncHTTPConnection(
            httpcore.Origin(scheme, host, port), ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry)

    async def _give_back(self, origin: _Origin,
                         connection: httpcore.AsyncHTTPConnection) -> None:
        self._busy.discard(connection)
        idle = self._idle.setdefault(origin, [])
        if connection.is_idle() and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            await connection.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin: _Origin = (url.raw_scheme, url.raw_host,
                           url.port or (443 if url.raw_scheme == b"https" else 80))
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx(request):
            connection = await self._take(origin)
            self._busy.add(connection)
            try:
                response = await connection.handle_async_request(core)
            except BaseException:
                self._busy.discard(connection)
                await connection.aclose()
                raise
        return httpx.Response(
            response.status, headers=response.headers,
            stream=_Body(self, origin, connection, response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        connections = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            await connection.aclose()
