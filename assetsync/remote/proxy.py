"""HTTP proxies for `SocketWire`: which proxy an origin goes through (the environment, read as
curl and httpx read it) and the CONNECT tunnel through it (RFC 9110 §9.3.6).

Variables: `https_proxy`/`HTTPS_PROXY` for https targets, `http_proxy`/`HTTP_PROXY` for http
ones, `all_proxy`/`ALL_PROXY` for either, the lower-case name first; `no_proxy`/`NO_PROXY`
lists the hosts reached directly. Loopback hosts are always reached directly: a local emulator
must keep working on a machine whose proxy could never reach it. Every connection through a
proxy is a tunnel, https and http targets alike, so the connection it yields is the same
byte stream a direct one is and `Http1Connection` cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import ssl
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from assetsync.frozen import field, frozen
from assetsync.remote.wire import ConnectFailedError, ProxySetupError

__all__ = ["Proxy", "ProxySetupError", "bypasses_proxy", "open_tunnel", "parse_proxy",
           "proxy_for"]

_P = TypeVar("_P", bound=asyncio.BaseProtocol)
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# A proxy's answer head larger than this is not an answer to CONNECT.
_MAX_HEAD_BYTES = 64 * 1024
# The scheme's own port when the variable names none, as httpx (which assetsync used before
# its own client) did; curl would assume 1080.
_DEFAULT_PORTS = {"http": 80, "https": 443}


@frozen
class Proxy:
    """A proxy to tunnel through, the variable that named it, and its credentials as a ready
    `Proxy-Authorization` value (left out of `repr` and `label`: never shown)."""

    scheme: str
    host: str
    port: int
    variable: str
    authorization: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """`scheme://host:port`: how messages name the proxy (never with credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _is_loopback(host: str) -> bool:
    # `.localhost` names resolve to loopback too (RFC 6761 §6.3).
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_for(scheme: str, host: str, port: int,
              environ: Mapping[str, str] = os.environ) -> Proxy | None:
    """The proxy a connection to `scheme://host:port` goes through, or None: straight there.

    `ProxySetupError` when the variable that applies is not a proxy URL."""
    host = host.lower()
    if _is_loopback(host):
        return None
    for variable in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        value = environ.get(variable, "").strip()
        if value:
            break
    else:
        return None
    # An empty `no_proxy` is as good as none: fall through to `NO_PROXY`.
    if bypasses_proxy(host, port, environ.get("no_proxy") or environ.get("NO_PROXY") or ""):
        return None
    return parse_proxy(value, variable)


def parse_proxy(value: str, variable: str) -> Proxy:
    """`http://[user:pass@]host[:port]` or `host:port` (http assumed), as `variable` gave it.

    Messages never repeat the value: it may hold a password."""
    expected = "expected http://host:port or host:port"
    parts = urlsplit(value if "://" in value else f"http://{value}")
    try:
        port = parts.port
    except ValueError:
        raise ProxySetupError(f"{variable} has an invalid proxy port ({expected})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ProxySetupError(
            f"{variable} names a {scheme}:// proxy; only http:// and https:// proxies are "
            "supported")
    if not parts.hostname:
        raise ProxySetupError(f"{variable} is not a proxy URL ({expected})")
    authorization = None
    if parts.username is not None:
        # Percent-decoded, as curl and httpx do: a password may hold `@` or `:` written %40, %3A.
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], variable, authorization)


# ------------------------------------------------------------------------------ NO_PROXY


def _split_port(entry: str) -> tuple[str, int | None]:
    """An entry's host and optional port: `name:port`, `[v6]:port`; bare IPv6 has no port."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return inside, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def _entry_matches(entry: str, host: str, address: _Address | None, port: int) -> bool:
    name, only_port = _split_port(entry)
    if only_port is not None and only_port != port:
        return False
    try:
        # An address or a CIDR block (curl since 7.86.0); IPv6 is written without brackets.
        network = ipaddress.ip_network(name, strict=False)
    except ValueError:
        network = None
    if network is not None:
        return address is not None and address in network
    if address is not None:
        return False  # a name never matches an address: "2.3" is no domain of 10.1.2.3
    # curl: an entry matches the host itself or any name in its domain, a leading dot or not
    # ("example.com" and ".example.com" both match www.example.com; neither notexample.com).
    domain = name.removeprefix("*").strip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether a `NO_PROXY` value sends `host:port` straight there (curl's CURLOPT_NOPROXY rules:
    comma-separated names, `*` for every host, an optional `:port`, addresses and CIDR blocks)."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        address: _Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if entry and _entry_matches(entry, host, address, port):
            return True
    return False


# ------------------------------------------------------------------------------ the tunnel


class _ConnectAnswer(asyncio.Protocol):
    """Reads the proxy's answer head to CONNECT, then stops reading: what follows a 2xx head is
    the tunnel's, for the protocol that takes the transport over."""

    def __init__(self, proxy: Proxy, authority: str) -> None:
        self._proxy = proxy
        self._authority = authority
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD_BYTES:
                self._fail("answered with a head over 64 KB")
            return
        assert self.transport is not None
        self.transport.pause_reading()  # the rest is the tunnel's: keep it for its protocol
        status_line = self._buffer[:self._buffer.find(b"\r\n")].decode("latin-1")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            self._fail("did not answer in HTTP/1.1")
        elif len(self._buffer) > end + 4 and code.startswith("2"):
            # Nothing was sent through the tunnel yet, so nothing can have come back.
            self._fail("sent bytes through the tunnel before any were asked for")
        else:
            # The reason goes into a one-line message: no control characters, nothing long.
            shown = "".join(c for c in reason.strip() if c.isprintable())[:80]
            self.head.set_result((int(code), shown))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("closed the connection before answering")

    def _fail(self, what: str) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectFailedError(
                f"proxy {self._proxy.label} {what} (CONNECT {self._authority})"))


def _connect_request(proxy: Proxy, authority: str) -> bytes:
    # RFC 9110 §9.3.6: CONNECT's target is the authority (host:port), and Host repeats it.
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    if proxy.authorization is not None:
        head += f"Proxy-Authorization: {proxy.authorization}\r\n"
    try:
        return (head + "\r\n").encode("ascii")
    except UnicodeEncodeError:
        raise ConnectFailedError(f"cannot ask proxy {proxy.label} for {authority}: "
                                 "not an ASCII host name") from None


async def open_tunnel(proxy: Proxy, scheme: str, host: str, port: int,
                      ssl_context: Callable[[], ssl.SSLContext],
                      protocol_factory: Callable[[], _P]) -> _P:
    """A connection to `host:port` through `proxy`'s CONNECT tunnel, TLS to `host` for an https
    target, handed to a new `protocol_factory()` protocol as `create_connection` would.

    `ConnectFailedError` when the proxy refuses (its status in the message; `ProxySetupError`
    for a 4xx), `OSError` when the proxy or the TLS handshake fails; the caller's timeout
    covers all of it."""
    loop = asyncio.get_running_loop()
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = _connect_request(proxy, authority)
    over_tls = proxy.scheme == "https"
    transport, answer = await loop.create_connection(
        lambda: _ConnectAnswer(proxy, authority), proxy.host, proxy.port,
        ssl=ssl_context() if over_tls else None, server_hostname=proxy.host if over_tls else None)
    try:
        transport.write(request)
        status, reason = await answer.head
        if not 200 <= status < 300:
            # A 4xx (407: credentials, 403: a policy) is the setting's to fix; a 5xx (the proxy
            # could not reach the host) may pass like any connection failure.
            kind = ProxySetupError if 400 <= status < 500 else ConnectFailedError
            raise kind(
                f"proxy {proxy.label} refused CONNECT {authority}: {status} {reason}".rstrip())
        protocol = protocol_factory()
        if scheme == "https":
            # start_tls takes the transport over, resumes reading, and does not call
            # `connection_made` on the protocol it is given: that is ours to do below.
            tls = await loop.start_tls(transport, protocol, ssl_context(), server_hostname=host)
            if tls is None:
                raise ConnectFailedError(f"proxy {proxy.label}: TLS to {authority} did not start")
            transport = tls
        else:
            transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if scheme != "https":
            transport.resume_reading()  # after `connection_made`: the protocol is ready for bytes
    except BaseException:
        transport.abort()  # a refusal, a failed handshake, or the caller's timeout
        raise
    return protocol
