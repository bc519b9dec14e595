"""What `plan` reads before it plans: the functions project, the state (opened for the plan's
duration) and the scan of the source folder.

A module of its own, light to import: `plan`'s output memo (`assetsync.sync.plan_memo`) is keyed
by these inputs, and a plan whose output is kept loads nothing of the planner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from assetsync.config import Config
from assetsync.errors import LockHeldError
from assetsync.frozen import frozen
from assetsync.results import SyncEvent
from assetsync.scan.rules import IgnoreRules, Snapshot, scan_tree
from assetsync.state.db import State

if TYPE_CHECKING:
    from assetsync.functions.local import FunctionProject

__all__ = ["PlanInputs", "open_inputs"]


@frozen
class PlanInputs:
    """The functions project (None: the site deploys none), the open state and the scan."""

    project: FunctionProject | None
    state: State
    snapshot: Snapshot


def _open_state(config: Config, on_event: Callable[[SyncEvent], None]) -> State:
    """The state, or a read-only view of it while another assetsync (say `watch`) holds it."""
    try:
        return State.open(config.state_dir)
    except LockHeldError as exc:
        on_event(SyncEvent("note", message=f"{exc}; planning from a read-only view"))
        return State.open(config.state_dir, readonly=True)


@contextmanager
def open_inputs(config: Config, on_event: Callable[[SyncEvent], None]
                ) -> Iterator[PlanInputs]:
    """Load the functions project, open the state and scan the source folder through its stat
    cache, as `sync` begins (the state is closed when the block ends).

    Raises:
        ConfigError: an unreadable or invalid package.json or .env (first, as in `sync`: a bad
            .env stops before the scan), or a missing source folder.
    """
    from assetsync.functions.local import load_functions

    project = load_functions(config)
    with _open_state(config, on_event) as state:
        snapshot = scan_tree(config.source, rules=IgnoreRules.for_config(config), cache=state,
                             on_event=on_event)
        yield PlanInputs(project, state, snapshot)
