"""The emulator's listening socket: connections accepted from it answer without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket

import pytest

from assetsync.emulator.serve import bind_socket


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_connections_accepted_from_the_bound_socket_have_nagle_off(host: str) -> None:
    # uvicorn serves the socket through loop.create_server(sock=...), as here. With Nagle on
    # (a socket asyncio does not recognise as TCP), each answer's last segment waits for the
    # client's delayed ACK: the emulator got ~30 times slower without any error.
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    try:
        listener = bind_socket(host, 0)
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}: {exc.strerror}")
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Probe, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.open_connection(host, port)
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 10))
    assert seen and seen[0] != 0
