"""Our HTTP/1.1 client (`assetsync.remote.pool.SocketWire` over `remote.http1`) against a real
socket server that answers with scripted bytes: framing, keep-alive, and each way an answer
can fail, as the session needs them told apart (sent or not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetsync.remote.http1 import _AnswerReader
from assetsync.remote.pool import SocketWire
from assetsync.remote.wire import (
    Answer,
    AnswerLostError,
    ConnectFailedError,
    SendFailedError,
    Timeouts,
)

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class Server:
    """A loopback server; `answers` are sent in turn, one per request, on any connection."""

    def __init__(self, answers: list[bytes], *, close_after: bool = False) -> None:
        self.answers = answers
        self.close_after = close_after
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                self.requests.append(await _read_request(reader))
                answer = self.answers.pop(0)
                writer.write(answer)
                await writer.drain()
                if self.close_after or answer.startswith(b"HTTP/1.0"):
                    break  # an HTTP/1.0 answer without a length ends with the connection
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


class _Listening:
    """A listening loopback server; `close()` also ends every connection it accepted."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._writers: list[asyncio.StreamWriter] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> _Listening:
        async def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            await self._handler(reader, writer)

        self._server = await asyncio.start_server(track, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)


async def _serve(handler: Handler) -> tuple[_Listening, str]:
    listening = await _Listening(handler).start()
    return listening, listening.url


def _wire(idle: float = 5.0) -> SocketWire:
    def no_tls() -> object:
        raise AssertionError("plain http needs no TLS context")

    return SocketWire(headers={"User-Agent": "t"}, timeouts=Timeouts(connect=2, idle=idle),
                      max_idle=4, ssl_context=no_tls)  # type: ignore[arg-type]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_keep_alive_reuses_one_connection_and_sends_length_and_host() -> None:
    async def scenario() -> tuple[list[bytes], int, list[tuple[bytes, bytes]]]:
        server = Server([OK, OK, OK])
        listener, url = await _serve(server.handle)
        wire = _wire()
        bodies = [(await wire.send("POST", f"{url}/v1/A?x=1", b"a=b", "text/plain", None)).content
                  for _ in range(3)]
        await wire.aclose()
        await listener.close()
        return bodies, server.connections, server.requests

    bodies, connections, requests = _run(scenario())
    assert bodies == [b"ok"] * 3
    assert connections == 1
    head, body = requests[0]
    assert head.startswith(b"POST /v1/A?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 3\r\n" in head and b"Content-Type: text/plain\r\n" in head
    assert body == b"a=b"


def test_chunked_interim_and_close_delimited_answers() -> None:
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
               b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n")
    until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"

    async def scenario() -> tuple[Answer, Answer, Answer, int]:
        server = Server([chunked, until_close, OK])
        listener, url = await _serve(server.handle)
        wire = _wire()
        first = await wire.send("GET", f"{url}/a", None, None, None)
        second = await wire.send("GET", f"{url}/b", None, None, None)
        third = await wire.send("GET", f"{url}/c", None, None, None)
        await wire.aclose()
        await listener.close()
        return first, second, third, server.connections

    first, second, third, connections = _run(scenario())
    assert (first.status_code, first.content, first.header("x-a")) == (201, b"abcdefg", "1")
    assert (second.status_code, second.content) == (200, b"all of it")
    assert third.content == b"ok"
    assert connections == 2  # the close-delimited answer ended its connection


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        server = Server([OK, OK], close_after=True)
        listener, url = await _serve(server.handle)
        wire = _wire()
        first = await wire.send("GET", f"{url}/a", None, None, None)
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        second = await wire.send("GET", f"{url}/b", None, None, None)
        await wire.aclose()
        await listener.close()
        return [first.content, second.content], server.connections

    bodies, connections = _run(scenario())
    assert bodies == [b"ok", b"ok"] and connections == 2


@pytest.mark.parametrize(("answer", "needle"), [
    (b"", "closed the connection before answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed the connection"),
    (b"SMTP ready\r\n\r\n", "not HTTP/1.1"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "not HTTP/1.1"),
])
def test_an_answer_lost_after_the_request_went_out_whole(answer: bytes, needle: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        listener, url = await _serve(handler)
        wire = _wire()
        try:
            await wire.send("POST", f"{url}/v1/Assets", b"FriendlyName=x", "text/plain", None)
        finally:
            await wire.aclose()
            await listener.close()

    with pytest.raises(AnswerLostError, match=needle):
        _run(scenario())


def test_silence_after_the_request_is_an_answer_lost_after_the_idle_limit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    async def scenario() -> None:
        listener, url = await _serve(handler)
        wire = _wire(idle=0.2)
        try:
            await wire.send("GET", f"{url}/slow", None, None, None)
        finally:
            await wire.aclose()
            await listener.close()

    with pytest.raises(AnswerLostError, match="no answer for 0.2 s"):
        _run(scenario())


class _Body:
    """A streamed body of `size` bytes in 1 MiB chunks."""

    content_type = "application/octet-stream"

    def __init__(self, size: int) -> None:
        self.size = size
        self.complete = False

    @property
    def length(self) -> int:
        return self.size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self.size
        while left:
            n = min(left, 1 << 20)
            left -= n
            yield bytes(n)
        self.complete = True


def test_a_body_the_server_will_not_take_fails_as_not_sent() -> None:
    # The server reads nothing: the socket's buffers fill, no byte moves for the idle limit.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def scenario() -> None:
        listener, url = await _serve(handler)
        wire = _wire(idle=0.3)
        try:
            await wire.send("POST", f"{url}/up", _Body(64 << 20), _Body.content_type, None)
        finally:
            await wire.aclose()
            await listener.close()

    with pytest.raises(SendFailedError, match="could not be sent"):
        _run(scenario())


async def _answers_before_the_body(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
    """Reads the request head only and answers 413 at once, keeping the connection open."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()


@pytest.mark.parametrize("streamed", [True, False])
def test_an_early_answer_retires_the_connection(streamed: bool) -> None:
    """Streamed, the body stops being sent; given whole (bytes), what still sits in the write
    buffer would reach the server as the next request. Either way the connection is not kept."""
    async def scenario() -> tuple[int, int, bool]:
        listener, url = await _serve(_answers_before_the_body)
        wire = _wire()
        stream = _Body(64 << 20)
        body: bytes | _Body = stream if streamed else bytes(32 << 20)
        answer = await wire.send("POST", f"{url}/up", body, _Body.content_type, None)
        idle = sum(len(v) for v in wire._idle.values())
        await wire.aclose()
        await listener.close()
        return answer.status_code, idle, stream.complete

    status, idle, sent_whole = _run(scenario())
    assert (status, idle) == (413, 0)
    assert not (streamed and sent_whole)  # a streamed body stopped short


def test_no_server_is_a_connect_failure_in_words() -> None:
    async def scenario() -> None:
        listener, url = await _serve(Server([]).handle)
        await listener.close()
        await _wire().send("GET", f"{url}/x", None, None, None)

    with pytest.raises(ConnectFailedError, match="connection refused") as caught:
        _run(scenario())
    assert "Errno" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=12),
       st.binary(max_size=300), st.booleans())
def test_any_split_of_the_bytes_parses_to_the_same_answer(cuts: list[int], body: bytes,
                                                          chunked: bool) -> None:
    if chunked:
        pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed
    else:
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    points = sorted({min(c, len(raw)) for c in cuts})
    reader = _AnswerReader(head_only=False)
    whole = False
    for start, end in zip([0, *points], [*points, len(raw)], strict=True):
        if start == end:
            continue
        assert not whole, "whole before the last byte"
        whole = reader.feed(raw[start:end])
    assert whole and reader.answer is not None
    assert reader.answer.content == body and reader.keep_alive and not reader.buffer
