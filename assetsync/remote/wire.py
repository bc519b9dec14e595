"""What the HTTP layer asks of a wire: send one request, get its whole answer or a `WireError`.

`ApiSession` talks to the network through a `Wire`: `SocketWire` (`assetsync.remote.pool`, our
own HTTP/1.1 client, the default) or `TransportWire` (`assetsync.remote.httpx_wire`, any httpx
transport: the embedded emulator, tests). Failures say whether the server can have acted on the
request, which decides whether a resend must first look for what it made (DESIGN.md
invariant 7).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from assetsync.frozen import frozen

__all__ = [
    "Answer",
    "AnswerLostError",
    "ConnectFailedError",
    "ProxySetupError",
    "RequestBody",
    "SendFailedError",
    "Timeouts",
    "Wire",
    "WireError",
]


@frozen
class Timeouts:
    """Seconds to connect, and the longest silence while sending or waiting for an answer.

    `idle` is an inactivity limit, not a total: a 25 MB upload over a slow link takes as long as
    it takes while bytes move, and a hung upload or answer fails after `idle` seconds of nothing
    (workers-sdk #14964, peers.md §5: a CI job hanging for hours on one upload).
    """

    connect: float = 10.0
    idle: float = 60.0


class Answer:
    """A whole HTTP answer: status, reason, headers (names lower-cased) and body bytes."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status_code: int, reason_phrase: str, headers: dict[str, str],
                 content: bytes) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    def header(self, name: str) -> str | None:
        """A header's value (the last one of that name), by any capitalisation."""
        return self.headers.get(name.lower())

    def json(self) -> object:
        """The body parsed as JSON (`ValueError` when it is not)."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"Answer({self.status_code} {self.reason_phrase}, {len(self.content)} bytes)"


class WireError(Exception):
    """A request that got no whole answer."""


class ConnectFailedError(WireError):
    """No connection: nothing was sent, so the server cannot have acted."""


class ProxySetupError(ConnectFailedError):
    """A proxy setting that cannot work as it stands (a malformed variable, credentials or a
    tunnel the proxy refuses with a 4xx, `assetsync.remote.proxy`): sending again cannot
    help, changing the setting can."""


class SendFailedError(WireError):
    """The request was not handed to the network whole: a server acts only on a whole request."""


class AnswerLostError(WireError):
    """The request went out whole but its answer did not come back whole: the server may have
    acted on it."""


class RequestBody(Protocol):
    """A streamed request body (`assetsync.remote.upload.MultipartFile`)."""

    content_type: str

    @property
    def length(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class Wire(Protocol):
    """Sends requests; holds connections until `aclose`."""

    async def send(self, method: str, url: str, body: bytes | RequestBody | None,
                   content_type: str | None, on_sent: Callable[[], None] | None) -> Answer:
        """One request; `on_sent` is called once all its bytes were handed to the network."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...
