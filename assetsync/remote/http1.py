"""One HTTP/1.1 client connection over asyncio: send a request, read its whole answer.

What the Serverless API needs and no more (RFC 9112): a request with a `Content-Length` body,
written whole or streamed from a file; an answer framed by `Content-Length`, `chunked` or the
connection's end; keep-alive unless either side says `close`; interim 1xx answers skipped. It
is an `asyncio.Protocol`, not streams: the bytes of an answer are parsed where they arrive, and
a request costs one write and one wake-up (issue 26: httpx/httpcore/h11/anyio spent ~1.2 ms of
CPU per request of a cold publish on their layers; this costs a tenth of that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from assetsync.remote.wire import (
    Answer,
    AnswerLostError,
    RequestBody,
    SendFailedError,
    WireError,
)

__all__ = ["Http1Connection"]

# An answer's head larger than this is not an API answer (Twilio's are under 2 KB).
MAX_HEAD_BYTES = 64 * 1024
_T = TypeVar("_T")
_NO_BODY_STATUS = frozenset({204, 304})


class _MalformedError(Exception):
    """Bytes that are not an HTTP/1.1 answer."""


class _AnswerReader:
    """Parses one answer from the bytes received, as they arrive."""

    def __init__(self, head_only: bool) -> None:
        self.buffer = bytearray()
        self.head_only = head_only
        self.answer: Answer | None = None
        self.keep_alive = True
        self.until_close = False  # the body ends where the connection does
        self._head: tuple[int, str, dict[str, str]] | None = None
        self._length = 0  # the body's length, or the next chunk's size + 2 (its CRLF)
        self._chunked = False
        self._in_chunk = False
        self._in_trailer = False
        self._body = bytearray()

    def feed(self, data: bytes) -> bool:
        """Take received bytes; True once the answer is whole."""
        self.buffer += data
        while self._head is None:
            if not self._read_head():
                return False
        if self._chunked:
            return self._read_chunks()
        if self.until_close:
            return False
        if len(self.buffer) < self._length:
            return False
        self._finish(bytes(self.buffer[:self._length]))
        del self.buffer[:self._length]
        return True

    def finish_at_eof(self) -> bool:
        """The connection ended: True if that ends the answer (a body framed by the close)."""
        if self._head is None or not self.until_close:
            return False
        self._finish(bytes(self.buffer))
        self.buffer.clear()
        return True

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise _MalformedError("an answer head over 64 KB")
            return False
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise _MalformedError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
        status = int(code)
        if 100 <= status < 200:
            return True  # an interim answer (100 Continue): the real one follows
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise _MalformedError(f"not a header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        self._head = (status, reason, headers)
        self._frame(version, status, headers)
        return True

    def _frame(self, version: str, status: int, headers: dict[str, str]) -> None:
        self.keep_alive = version == "HTTP/1.1" and "close" not in headers.get(
            "connection", "").lower()
        if self.head_only or status in _NO_BODY_STATUS:
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit():
                raise _MalformedError(f"a Content-Length of {text[:40]!r}")
            self._length = int(text)
        else:
            self.until_close, self.keep_alive = True, False

    def _read_chunks(self) -> bool:
        buffer = self.buffer
        while not self._in_trailer:
            if not self._in_chunk:
                line_end = buffer.find(b"\r\n")
                if line_end < 0:
                    return False
                size_text = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise _MalformedError(f"a chunk size of {size_text[:20]!r}") from None
                del buffer[:line_end + 2]
                if size == 0:
                    self._in_trailer = True
                    break
                self._length, self._in_chunk = size + 2, True
            if len(buffer) < self._length:
                return False
            self._body += buffer[:self._length - 2]
            del buffer[:self._length]
            self._in_chunk = False
        return self._read_trailer()

    def _read_trailer(self) -> bool:
        # After the last chunk: optional trailer fields, then an empty line.
        if self.buffer.startswith(b"\r\n"):
            end = 0
        else:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            end += 2
        del self.buffer[:end + 2]
        self._finish(bytes(self._body))
        return True

    def _finish(self, content: bytes) -> None:
        assert self._head is not None
        status, reason, headers = self._head
        self.answer = Answer(status, reason, headers, content)


# A Ctrl-C cancels the waiting future from inside a signal handler, which may run between any
# two bytecodes of a callback: "not done" checked a moment ago is no guarantee. So a future is
# settled by trying, and one settled meanwhile (cancelled) is left as it is.


def _resolve(future: asyncio.Future[_T], result: _T) -> None:
    try:
        future.set_result(result)
    except asyncio.InvalidStateError:
        pass


def _reject(future: asyncio.Future[_T], error: WireError) -> bool:
    """Fail `future` with `error`; False if it was settled already."""
    try:
        future.set_exception(error)
    except asyncio.InvalidStateError:
        return False
    return True


class Http1Connection(asyncio.Protocol):
    """One connection; one request at a time (no pipelining).

    `closed` turns true as soon as the loop learns the server closed it, so an idle connection
    the server dropped is not reused.
    """

    def __init__(self, idle_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle_s = idle_s
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = self._loop.time()
        self._reader: _AnswerReader | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._writable: asyncio.Future[None] | None = None  # set while the socket is full
        self._sent_whole = False
        self._last_activity = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is None or self._answer is None or self._answer.done():
            self.close()  # bytes nobody asked for: this connection's framing is lost
            return
        self._last_activity = self._loop.time()
        try:
            whole = reader.feed(data)
        except _MalformedError as exc:
            self._fail(AnswerLostError(f"the server's answer was not HTTP/1.1 ({exc})"))
            return
        if whole:
            self._complete(reader)

    def eof_received(self) -> bool:
        reader = self._reader
        if reader is not None and self._answer is not None and not self._answer.done():
            if reader.finish_at_eof():
                self._complete(reader)
            else:
                self._fail(self._lost("the server closed the connection"))
        self.closed = True
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            reason = (
                f"the connection was lost ({exc})" if exc else "the server closed the connection"
            )
            self._fail(self._lost(reason))
        self._wake_writer(None)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        self._last_activity = self._loop.time()
        self._wake_writer(None)

    # ---------------------------------------------------------------- one exchange

    async def exchange(self, head: bytes, body: bytes | RequestBody | None, *, head_only: bool,
                       on_sent: Callable[[], None] | None) -> Answer:
        """Send the request (`head`, then `body`), return its whole answer."""
        if self.closed or self._transport is None:
            raise SendFailedError("the connection was closed before the request was sent")
        self._reader = _AnswerReader(head_only)
        answer: asyncio.Future[Answer] = self._loop.create_future()
        self._answer = answer
        self._sent_whole = False
        self.reusable = False  # until the answer is whole and both sides keep it alive
        self._last_activity = self._loop.time()
        self._timer = self._loop.call_at(self._last_activity + self._idle_s, self._on_timer)
        try:
            if body is None or isinstance(body, bytes):
                self._transport.write(head + body if body else head)
            else:
                await self._write_stream(head, body)
            if not answer.done():
                self._sent_whole = True
                if on_sent is not None:
                    on_sent()
            result = await answer
        except BaseException:
            self.close()  # mid-request (a failure, a cancel): its framing cannot be trusted
            if answer.done() and not answer.cancelled():
                answer.exception()  # raised from the writer already; not an unseen error
            raise
        finally:
            self._timer.cancel()
            self._reader = None
            self._answer = None
        self.idle_since = self._loop.time()
        return result

    async def _write_stream(self, head: bytes, body: RequestBody) -> None:
        # The request head rides with the body's first chunk: one write for a small file.
        assert self._transport is not None and self._answer is not None
        pending = head
        async for chunk in body:
            if self._answer.done():
                return  # answered (or failed) before the body was all sent: stop sending
            self._transport.write(pending + chunk if pending else chunk)
            pending = b""
            self._last_activity = self._loop.time()
            if self._writable is not None:
                await self._writable  # the socket is full: wait until it drains
        if pending:
            self._transport.write(pending)

    def close(self) -> None:
        """Abort the connection (unsent bytes are dropped)."""
        self.closed = True
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    # ---------------------------------------------------------------- internals

    def _complete(self, reader: _AnswerReader) -> None:
        assert self._answer is not None and reader.answer is not None
        # Reusable only if the request went out whole (not an early answer to a body still
        # being sent, nor still waiting in our write buffer: its rest would reach the server
        # as the next request) and nothing follows the answer.
        transport = self._transport
        self.reusable = (self._sent_whole and reader.keep_alive and not reader.buffer
                         and not self.closed and transport is not None
                         and transport.get_write_buffer_size() == 0)
        _resolve(self._answer, reader.answer)

    def _lost(self, reason: str) -> WireError:
        if self._sent_whole:
            return AnswerLostError(f"{reason} before answering")
        return SendFailedError(f"{reason} while the request was being sent")

    def _fail(self, error: WireError) -> None:
        if self._answer is not None:
            _reject(self._answer, error)
        self._wake_writer(error)
        self.close()

    def _wake_writer(self, error: WireError | None) -> None:
        waiter, self._writable = self._writable, None
        if waiter is None:
            return
        if error is None:
            _resolve(waiter, None)
        elif _reject(waiter, error):
            waiter.exception()  # the answer carries the error; nobody else need see it

    def _on_timer(self) -> None:
        if self._answer is None or self._answer.done():
            return
        due = self._last_activity + self._idle_s
        if due > self._loop.time():
            self._timer = self._loop.call_at(due, self._on_timer)  # bytes moved meanwhile
            return
        idle = f"{self._idle_s:g} s"
        self._fail(AnswerLostError(f"no answer for {idle}") if self._sent_whole
                   else SendFailedError(f"the request could not be sent for {idle}"))
