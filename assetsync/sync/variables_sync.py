"""A sync's part in the environment's Variables: the .env planned against the live ones, written
before the build (the functions it deploys read them), and their keyed digests remembered for
the offline `plan` (never a value). The diff itself is `assetsync.functions.variables`'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from assetsync.functions.local import FunctionProject
from assetsync.functions.variables import (
    VariablePlan,
    apply_variables,
    check_variables,
    plan_variables,
    recorded_variables,
)
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Environment
from assetsync.state.db import State
from assetsync.sync.phase_values import Request, Target

__all__ = [
    "plan_live_variables",
    "remember_variables",
    "set_variables",
]


def remember_variables(
    state: State, target: str, service_sid: str, environment_sid: str,
    local: Mapping[str, str], plan: VariablePlan,
) -> None:
    """After `plan` was applied or confirmed: the keyed digests the offline `plan` diffs the
    .env against (never a value; the key is this state's own)."""
    key = state.variable_digest_key()
    was = state.variable_digests(target, service_sid, environment_sid)
    now = (recorded_variables(local, plan, key=key, scope=environment_sid, previous=was)
           if key is not None else was)
    if now != was:  # an unchanged record costs no transaction (no fsync)
        state.record_variable_digests(target, service_sid, environment_sid, now)


async def plan_live_variables(
    client: ServerlessClient, functions: FunctionProject, service_sid: str | None,
    env: Environment | None, *, prune: bool,
) -> VariablePlan:
    """The .env against the environment's Variables (all new where there is none yet)."""
    local = functions.variables or {}
    file = functions.env_file or ".env"
    check_variables(local, file=file)  # before any request
    remote = (await client.list_variables(service_sid, env.sid)
              if service_sid is not None and env is not None else ())
    return plan_variables(local, remote, prune=prune, file=file)


async def set_variables(req: Request, at: Target, variables: VariablePlan | None,
                         notes: list[str]) -> None:
    """Before the build: the functions it deploys may read them on their first request."""
    local = req.functions.variables if req.functions is not None else None
    if variables is None or local is None or req.flags.dry_run or at.ledger is None:
        return
    if variables.changed:
        await apply_variables(req.client, at.ledger.service_sid, at.ledger.environment_sid,
                              local, variables)
        notes.append(f"variables: {len(variables.create)} created, {len(variables.update)} "
                     f"updated, {len(variables.delete)} deleted")
    remember_variables(req.state, req.target, at.ledger.service_sid,
                       at.ledger.environment_sid, local, variables)
