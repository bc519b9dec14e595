"""assetsync: publish a folder of static assets to Twilio Serverless Assets, incrementally.

The library's entry points, their result and event types, and the exception tree: everything a
program needs without knowing the stage packages. `load_config` reads `.assetsync.toml` (and the
environment, once); `plan` (offline), `sync`, `status`, `rollback`, `promote`, `prune` and
`watch` take the `Config` it returns.

The entry points that publish are imported on their first call: importing the package (which
every submodule's import does, an encoder worker's and `assetsync plan`'s included) must not load
the HTTP client, the embedded emulator or the watcher. Type checkers see the stage functions
themselves, so their signatures are written once, where they live. No module `__getattr__`.
"""

from __future__ import annotations

# First: `assetsync.remote.http` reads it while this module is still importing.
__version__ = "0.1.0"

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from assetsync.config import Config, load_config
from assetsync.errors import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    AssetsyncError,
    AuthenticationError,
    BuildFailedError,
    ConfigError,
    DriftError,
    LimitError,
    LockHeldError,
    NotFoundError,
    RateLimitError,
    ScanError,
    StateError,
    SyncError,
    TransformError,
)
from assetsync.models import PublishedFile, ScannedFile, Visibility
from assetsync.results import (
    EventCallback,
    FunctionsOutcome,
    PruneResult,
    StatusResult,
    SyncEvent,
    SyncResult,
)

# name -> "module:function" it stands for (the module is imported on the first call).
LAZY_ENTRY_POINTS = {
    "plan": "assetsync.sync.offline_plan:plan_offline",
    "promote": "assetsync.sync.operations:promote",
    "prune": "assetsync.sync.operations:prune",
    "rollback": "assetsync.sync.operations:rollback",
    "status": "assetsync.sync.operations:status",
    "sync": "assetsync.sync.run:sync",
    "watch": "assetsync.watch.run:watch",
}


def _on_first_call(name: str) -> Callable[..., object]:
    module, _, function = LAZY_ENTRY_POINTS[name].partition(":")

    def call(*args: object, **kwargs: object) -> object:
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`{module}.{function}` (imported on the first call; see its docstring)."
    return call


# The stage packages `plan/`, `sync/` and `watch/` share their names with three entry points,
# and loading a package binds it on its parent: all are loaded here (each `__init__` is a
# docstring), before the functions are bound, so `assetsync.plan`, `assetsync.sync` and
# `assetsync.watch` stay the functions.
importlib.import_module("assetsync.plan")
importlib.import_module("assetsync.sync")
importlib.import_module("assetsync.watch")

if TYPE_CHECKING:
    from assetsync.sync.offline_plan import plan_offline as plan
    from assetsync.sync.operations import promote, prune, rollback, status
    from assetsync.sync.run import sync
    from assetsync.watch.run import watch
else:
    plan = _on_first_call("plan")
    promote = _on_first_call("promote")
    prune = _on_first_call("prune")
    rollback = _on_first_call("rollback")
    status = _on_first_call("status")
    sync = _on_first_call("sync")
    watch = _on_first_call("watch")

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiStatusError",
    "AssetsyncError",
    "AuthenticationError",
    "BuildFailedError",
    "Config",
    "ConfigError",
    "DriftError",
    "EventCallback",
    "FunctionsOutcome",
    "LimitError",
    "LockHeldError",
    "NotFoundError",
    "PruneResult",
    "PublishedFile",
    "RateLimitError",
    "ScanError",
    "ScannedFile",
    "StateError",
    "StatusResult",
    "SyncError",
    "SyncEvent",
    "SyncResult",
    "TransformError",
    "Visibility",
    "__version__",
    "load_config",
    "plan",
    "promote",
    "prune",
    "rollback",
    "status",
    "sync",
    "watch",
]
