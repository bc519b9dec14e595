"""`SocketWire`: keep-alive HTTP/1.1 connections per origin (`assetsync.remote.http1`).

The session's own limiter bounds the requests in flight, so there is no queue: a request takes
the most recently used idle connection of its origin (the least likely to have timed out), or
opens one; a connection whose answer came back whole and kept alive goes back idle. HTTP/2 is
not offered: Twilio's API hosts answer HTTP/1.1 to a client that does not ask for h2, and with
one request per connection and ten connections the multiplexing would save nothing but the
handshakes, which keep-alive already saves.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from assetsync.remote.http1 import Http1Connection
from assetsync.remote.proxy import open_tunnel, proxy_for
from assetsync.remote.wire import (
    Answer,
    ConnectFailedError,
    RequestBody,
    SendFailedError,
    Timeouts,
)

__all__ = ["SocketWire"]

_Origin = tuple[str, str, int]  # scheme, host, port
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _split(url: str) -> tuple[_Origin, str, str]:
    """The origin, the `Host` header and the request target of an absolute http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConnectFailedError(f"not an http or https URL: {parts.scheme}://{parts.hostname}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    netloc = parts.netloc.rpartition("@")[2]  # never userinfo: credentials go in a header
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, parts.hostname, port), netloc, target


def _reason(exc: OSError) -> str:
    """What went wrong connecting, in words (no errno, no Python repr)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, is the port right?)"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({exc.verify_message})"
    return (exc.strerror or type(exc).__name__).rstrip(".")


class SocketWire:
    """Requests over our own HTTP/1.1 connections; `headers` go with every request."""

    def __init__(self, *, headers: Mapping[str, str], timeouts: Timeouts, max_idle: int,
                 ssl_context: Callable[[], ssl.SSLContext], keepalive_s: float = 5.0) -> None:
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._timeouts = timeouts
        self._max_idle = max_idle
        self._ssl_context = ssl_context
        # An idle connection older than this is not reused: servers drop idle ones after a few
        # seconds, and one dropped as a request goes out loses that request's answer.
        self._keepalive_s = keepalive_s
        self._idle: dict[_Origin, list[Http1Connection]] = {}
        self._busy: set[Http1Connection] = set()

    async def send(self, method: str, url: str, body: bytes | RequestBody | None,
                   content_type: str | None, on_sent: Callable[[], None] | None) -> Answer:
        """One request and its whole answer (`WireError` when there is none)."""
        origin, host, target = _split(url)
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{self._fixed}"
        if body is not None:
            length = len(body) if isinstance(body, bytes) else body.length
            head += f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
        elif method in _BODY_METHODS:
            head += "Content-Length: 0\r\n"
        try:
            encoded = (head + "\r\n").encode("ascii")
        except UnicodeEncodeError:
            raise SendFailedError(f"{method} {url}: not an ASCII request line") from None
        connection = await self._take(origin)
        self._busy.add(connection)
        try:
            answer = await connection.exchange(encoded, body, head_only=method == "HEAD",
                                               on_sent=on_sent)
        finally:
            self._busy.discard(connection)
        self._give_back(origin, connection)
        return answer

    async def _take(self, origin: _Origin) -> Http1Connection:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()  # the most recent
            if not connection.closed and now - connection.idle_since < self._keepalive_s:
                return connection
            connection.close()
        return await self._connect(origin)

    async def _connect(self, origin: _Origin) -> Http1Connection:
        scheme, host, port = origin
        context = self._ssl_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        idle_s = self._timeouts.idle
        # Read at each new connection, not once: cheap next to a handshake, and a long watch
        # follows a changed environment the way a new process would.
        proxy = proxy_for(scheme, host, port)
        where = f"{host}:{port}" if proxy is None else (
            f"{host}:{port} through proxy {proxy.label} (from {proxy.variable})")
        try:
            # The connect timeout covers the whole proxy handshake, CONNECT and TLS included.
            async with asyncio.timeout(self._timeouts.connect):
                if proxy is not None:
                    connection = await open_tunnel(proxy, scheme, host, port, self._ssl_context,
                                                   lambda: Http1Connection(idle_s))
                else:
                    _, connection = await loop.create_connection(
                        lambda: Http1Connection(idle_s), host, port, ssl=context,
                        server_hostname=host if context is not None else None)
        except TimeoutError:
            raise ConnectFailedError(
                f"no connection to {where} within {self._timeouts.connect:g} s") from None
        except OSError as exc:
            raise ConnectFailedError(f"cannot connect to {where}: {_reason(exc)}") from None
        return connection

    def _give_back(self, origin: _Origin, connection: Http1Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if connection.reusable and not connection.closed and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        """Close every connection, idle or busy."""
        for connection in [c for idle in self._idle.values() for c in idle] + list(self._busy):
            connection.close()
        self._idle.clear()
        self._busy.clear()
