"""Running the emulator over a real socket: uvicorn in a background thread (tests, benchmarks)
or in the foreground (`assetsync emulator`), on loopback by default.

Uvicorn runs with a small subclass of its h11 protocol that offers the app a way to abort the
client's connection (the `drop` fault): the app calls the scope extension, the transport is
aborted, and the client sees a connection closed without any HTTP response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from assetsync.emulator.app import DROP_EXTENSION, create_app
from assetsync.emulator.state import EmulatorState

__all__ = ["RunningEmulator", "bind_socket", "serve_forever", "start_in_thread"]

logger = logging.getLogger(__name__)


class _DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the `assetsync.drop` scope extension."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[DROP_EXTENSION] = self._abort
            await inner(scope, receive, send)

        self.app = app

    async def _abort(self, reset: bool = False) -> None:
        if reset:
            # SO_LINGER on with a zero timeout: close() sends a RST instead of a FIN.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
        # Let connection_lost run so uvicorn marks the cycle disconnected and sends nothing.
        for _ in range(3):
            await asyncio.sleep(0)


def _config(state: EmulatorState, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        http=_DroppableH11Protocol,
        lifespan="off",
        log_level="warning",
        log_config=None,  # keep the host application's logging configuration
        access_log=False,
        # Uploads are streamed to disk; keep-alive lets clients reuse connections.
        timeout_keep_alive=30,
    )


@dataclass
class RunningEmulator:
    """An emulator serving in a background thread; `stop()` shuts it down."""

    url: str
    state: EmulatorState
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_in_thread(
    state: EmulatorState, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Serve `state` on `host:port` (0: any free port) from a daemon thread; returns once bound."""
    sock = bind_socket(host, port)
    server = uvicorn.Server(_config(state, host, port))
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="assetsync-emulator", daemon=True)
    thread.start()
    while not ready.wait(0.01):
        if server.started:
            break
    if failure or not server.started:
        thread.join(timeout=5)
        sock.close()
        raise OSError(
            f"the emulator could not listen on {host}:{port}: "
            f"{failure[0] if failure else 'unknown error'}"
        )
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    return RunningEmulator(f"http://{_url_host(host)}:{bound_port}", state, server, thread)


def serve_forever(
    state: EmulatorState, host: str = "127.0.0.1", port: int = 8787, *, on_ready: Any = None
) -> None:
    """Serve in the foreground until Ctrl-C (or SIGTERM); `on_ready(url)` is called once bound.

    Raises:
        OSError: the address cannot be bound (`errno.EADDRINUSE` when the port is taken), before
            anything is served.
    """
    sock = bind_socket(host, port)
    server = uvicorn.Server(_config(state, host, port))

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and on_ready is not None:
            bound = server.servers[0].sockets[0].getsockname()[1]
            on_ready(f"http://{_url_host(host)}:{bound}")
        with contextlib.suppress(SystemExit):  # uvicorn's way out of a failed start-up
            await task
        if not server.started:
            raise OSError(f"cannot serve on {host}:{port}")

    try:
        asyncio.run(main())
    finally:
        sock.close()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (0: any free port).

    Bound here rather than by uvicorn: uvicorn logs a bind failure and leaves through
    `sys.exit(3)` from inside its task, which asyncio re-raises past every handler as a
    traceback (and 3 is the CLI's "another assetsync is running"); here the caller gets the
    `OSError` itself, with its errno, before anything is started.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not the 0 that `socket.create_server` leaves: asyncio turns Nagle off
    # (TCP_NODELAY) only on accepted sockets whose proto says TCP, and they inherit this one's.
    # With Nagle on, every answer's last segment waited for the client's delayed ACK, ~40 ms a
    # request (uvicorn's own bind gets the proto from getaddrinfo, so it never showed there).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name != "nt":  # rebind a port a just-stopped emulator left in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
