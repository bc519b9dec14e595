"""A local Serverless v1 API (main host, upload host, deployed-asset serving) for offline use.

`embedded_transport(data_dir)` runs it in-process for `api = "local"`; `serve.start_in_thread`
and `serve.serve_forever` run it over a socket. See docs/emulator.md.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import httpx

from assetsync.emulator.app import ConnectionDropped, create_app
from assetsync.emulator.state import (
    LOCAL_ACCOUNT_SID,
    LOCAL_AUTH_TOKEN,
    EmulatorLimits,
    EmulatorState,
)

__all__ = [
    "LOCAL_ACCOUNT_SID",
    "LOCAL_AUTH_TOKEN",
    "EmbeddedTransport",
    "EmulatorLimits",
    "EmulatorState",
    "create_app",
    "embedded_transport",
]


class EmbeddedTransport(httpx.ASGITransport):
    """httpx's ASGI transport over the emulator app; a dropped-connection fault surfaces as the
    transport error a real socket would give (`httpx.RemoteProtocolError`)."""

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(app=create_app(state))
        self.state = state
        weakref.finalize(self, state.close)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionDropped as exc:
            if exc.mode == "reset":
                raise httpx.ReadError("[Errno 104] Connection reset by peer",
                                      request=request) from exc
            if exc.mode == "timeout":
                raise httpx.ReadTimeout("timed out", request=request) from exc
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc

    async def aclose(self) -> None:
        self.state.close()


def embedded_transport(data_dir: Path) -> httpx.AsyncBaseTransport:
    """An in-process transport to an emulator keeping its state in `data_dir` (the embedded
    `api = "local"` target). The account is `LOCAL_ACCOUNT_SID` / `LOCAL_AUTH_TOKEN`."""
    return EmbeddedTransport(EmulatorState(Path(data_dir)))
