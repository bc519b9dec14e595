"""What every command around a sync opens first: the client for the config's target, the state
and client held while the work runs, and the runner that drives it from synchronous code.

`assetsync.sync.run` (sync) and `assetsync.sync.operations` (status, rollback, promote, prune)
both build on this module, and neither imports the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TypeVar

from assetsync.collector import fewer_collections
from assetsync.config import Config, Credentials, target_key
from assetsync.remote.client import ClientEvent, RetryPolicy, ServerlessClient, resolve_endpoints
from assetsync.results import EventCallback, SyncEvent
from assetsync.state.db import State

__all__ = ["make_client", "open_client", "run_on_state", "run_sync"]

T = TypeVar("T")


def make_client(
    config: Config,
    *,
    on_event: Callable[[ClientEvent], None] | None = None,
    retry: RetryPolicy | None = None,
) -> ServerlessClient:
    """The client for a config's target.

    `api = "local"` runs the emulator in-process on `<state_dir>/emulator` with its built-in local
    account (no credentials, no network); anything else needs Twilio credentials.
    """
    transport = None
    if config.target.api == "local":
        from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, embedded_transport

        transport = embedded_transport(config.state_dir / "emulator")
        credentials = Credentials(
            account_sid=LOCAL_ACCOUNT_SID, username=LOCAL_ACCOUNT_SID, password=LOCAL_AUTH_TOKEN
        )
    else:
        credentials = config.require_credentials()
    api_base, upload_base = resolve_endpoints(config.target)
    return ServerlessClient(
        api_base=api_base,
        upload_base=upload_base,
        credentials=credentials,
        transport=transport,
        retry=retry or RetryPolicy(),
        on_event=on_event,
        max_concurrency=config.sync.concurrency,
    )


@asynccontextmanager
async def open_client(
    config: Config, client: ServerlessClient | None, on_event: EventCallback | None
) -> AsyncIterator[ServerlessClient]:
    """The caller's client (opened if needed) or a new one for the config, with retry events
    forwarded to `on_event`."""

    def retry_event(event: ClientEvent) -> None:
        if on_event is not None and event.kind == "retry":
            on_event(SyncEvent("retry", message=event.reason, sid=str(event.status or "")))

    api = client or make_client(config)
    previous = api.on_event

    def both(event: ClientEvent) -> None:
        if previous is not None:
            previous(event)
        retry_event(event)

    api.on_event = both
    try:
        if api.is_open:
            yield api
        else:
            async with api:
                yield api
    finally:
        api.on_event = previous


def run_sync(make: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run `make()` to completion from synchronous code (the CLI, watch mode, tests), with
    fewer garbage collections while it runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with fewer_collections():
            return asyncio.run(make())
    raise RuntimeError("called from a running event loop: use the *_async variant instead")


def run_on_state(config: Config, client: ServerlessClient | None, on_event: EventCallback | None,
                 work: Callable[[ServerlessClient, State, str], Coroutine[object, object, T]]
                 ) -> T:
    """Run `work(client, state, target key)` to completion with the state open (its lock held)
    and a client for the config's target: the remote-side operations (rollback, promote, prune,
    previews)."""
    async def main() -> T:
        with State.open(config.state_dir) as state:
            async with open_client(config, client, on_event) as api:
                return await work(api, state, target_key(config))

    return run_sync(main)
