"""The values one service's sync passes between its phases: how it was asked (`SyncFlags`, the
caller's `RecordedSnapshot`, `[sync]` as `ApplyOptions`), the fixed `Request` every phase reads,
the `Target` the locate phase found and what the write phases `Applied`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from assetsync.config import Config
from assetsync.frozen import frozen
from assetsync.functions.local import FunctionProject
from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile
from assetsync.plan.assets import RecordedService
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Build, Environment
from assetsync.results import EventCallback
from assetsync.state.db import State
from assetsync.state.ledger import StateLedger
from assetsync.sync.apply import ApplyOptions

__all__ = [
    "Applied",
    "RecordedSnapshot",
    "Request",
    "SyncFlags",
    "Target",
    "apply_options",
]


@frozen
class SyncFlags:
    """How a sync treats the plan: `dry_run` (write nothing), `full` (upload everything
    again), `adopt` / `force` (what to do about drift; see `sync`), `prune_variables` (delete
    the environment's Variables the .env no longer has)."""

    dry_run: bool = False
    full: bool = False
    adopt: bool = False
    force: bool = False
    prune_variables: bool = False


@frozen
class RecordedSnapshot:
    """`State.recorded_service` as a caller read it before `sync_service` (a sharded sync reads
    every service's to place files): reused when it is of the service the sync found and the
    state has committed nothing since (`State.writes`), instead of being read again."""

    service_sid: str
    writes: int
    recorded: RecordedService


def apply_options(config: Config) -> ApplyOptions:
    """`[sync]` as apply's knobs."""
    s = config.sync
    return ApplyOptions(concurrency=s.concurrency, build_timeout_s=s.build_timeout_s,
                        poll_interval_s=s.poll_interval_s, runtime=s.runtime, repair=s.repair,
                        remote_manifest=s.remote_manifest)


@frozen
class Target:
    """Where a sync writes (the locate phase's answer): None SIDs in a dry run of a service
    or environment that does not exist yet."""

    service: str
    environment: str
    service_sid: str | None
    env: Environment | None
    live: Build | None
    ledger: StateLedger | None
    fn_ledger: StateLedger | None
    created: bool = False  # this run made the service: it holds nothing to list or adopt


@frozen
class Applied:
    """What the upload, build and deploy phases did."""

    build_sid: str | None = None
    deployment_sid: str | None = None
    uploaded: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    functions_uploaded: tuple[str, ...] = ()


@frozen
class Request:
    """One service's sync as asked: the fixed inputs every phase reads."""

    client: ServerlessClient
    state: State
    target: str
    files: Sequence[PublishedFile]
    options: ApplyOptions
    flags: SyncFlags
    limits: BuildLimits
    functions: FunctionProject | None
    held: frozenset[str]
    on_event: EventCallback | None
    # The Variables' writes, going on while the files upload: awaited before any deployment
    # (the functions read them once deployed), and by `sync_service` before it returns.
    variables: asyncio.Future[None] | None = None
